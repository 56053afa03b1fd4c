package conformance

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

// TestSetupLinkInTheBrowser: the customer's IT admin, with no account,
// opens the setup link in Chromium, chooses Okta and SAML, sees the
// values to paste in Okta's words with copy buttons, pastes a wrong
// metadata URL (told in plain words, what they typed kept) and then the
// right one (checked live), runs a test sign-in at the real IdP that
// shows the attributes it sent (and signs nobody in), turns on SCIM, and
// sees the first SCIM request ticked when the IdP's arrives. The link
// then opens no more.
func TestSetupLinkInTheBrowser(t *testing.T) {
	b := newBrowser(t)
	addr := freeAddr(t)
	root := "http://" + addr
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	g := startGateway(t, "", "GATEHOUSE_LISTEN="+addr, "GATEHOUSE_PUBLIC_URL="+root, "GATEHOUSE_ADMIN_TOKEN="+adminToken)
	operator := bearer(adminToken)
	adminRequest(t, g, "POST", "/orgs", `{"id":"acme","name":"Acme"}`, operator).must(t, 201)
	made := adminRequest(t, g, "POST", "/orgs/acme/setup-links", `{"expires_in":"2h"}`, operator).must(t, 201)
	link := made.str("link")
	if !strings.HasPrefix(link, root+"/gatehouse/o/acme/setup/link/") || made.str("expires") == "" {
		t.Fatalf("the setup link: %s", made.raw)
	}

	admin := b.newTab("it-admin")
	admin.run("open the link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`form button`)))
	if h := admin.text("h1"); h != "Connect Acme to this application" {
		t.Fatalf("the link's page: %q", h)
	}
	admin.submit("start the setup", `form button`)
	if h := admin.text("h1"); h != "Connect Acme's identity provider" || !strings.HasSuffix(admin.location(), "/gatehouse/o/acme/setup") {
		t.Fatalf("the setup page: %q at %s", h, admin.location())
	}
	admin.run("choose Okta and SAML", chromedp.Click(chromedp.CSS(`input[name=vendor][value=okta]`)), chromedp.Click(chromedp.CSS(`input[name=protocol][value=saml]`)))
	admin.submit("choose", `#choose`)

	// The values to paste, in Okta's words, with copy buttons.
	acs := value(admin, "read the ACS", chromedp.Value(chromedp.CSS(`#sp-acs`)))
	entity := value(admin, "read the entity id", chromedp.Value(chromedp.CSS(`#sp-entity`)))
	if acs != root+"/gatehouse/o/acme/saml/acs" || entity != root+"/gatehouse/o/acme/saml/metadata" {
		t.Fatalf("values to paste: %q %q", acs, entity)
	}
	if create := admin.text(`#create`); !strings.Contains(create, "Single sign-on URL") || !strings.Contains(create, "Audience URI (SP Entity ID)") {
		t.Fatalf("not in Okta's words: %q", create)
	}
	admin.run("copy the ACS", chromedp.Click(chromedp.CSS(`button[data-copy=sp-acs]`)))
	admin.waitFor("the copy button says so", `document.querySelector('button[data-copy=sp-acs]').textContent === "Copied"`)

	// A wrong metadata URL, then one that is not metadata: plain words,
	// and what was typed stays.
	paste := func(what, metadataURL string) {
		t.Helper()
		admin.run(what, chromedp.Evaluate[chromedp.Void](`document.querySelector('#metadata-url').value = ''`), chromedp.SendKeys(chromedp.CSS(`#metadata-url`), metadataURL))
		admin.submit(what, `#connect-button`)
	}
	paste("paste a wrong URL", "okta metadata")
	if p := admin.text(`#problem`); !strings.Contains(p, "not a web address") {
		t.Fatalf("a wrong URL: %q", p)
	}
	if kept := value(admin, "read the URL", chromedp.Value(chromedp.CSS(`#metadata-url`))); kept != "okta metadata" {
		t.Fatalf("what was typed: %q", kept)
	}
	paste("paste a URL without metadata", idp.URL+"/nope")
	if p := admin.text(`#problem`); !strings.Contains(p, "could not use what you pasted") || !strings.Contains(p, "Okta") {
		t.Fatalf("a URL without metadata: %q", p)
	}
	if st := adminRequest(t, g, "GET", "/orgs/acme/identity", "", operator); st.str("sso", "protocol") != "none" {
		t.Fatalf("a refused connection changed the settings: %s", st.raw)
	}
	paste("paste the metadata URL", idp.URL+"/metadata")
	if n := admin.text(`#notice`); !strings.Contains(n, "Sign-in connected") || !strings.Contains(admin.text(`#connected`), idp.URL+"/metadata") {
		t.Fatalf("after connecting: %q", n)
	}

	// The test sign-in at the real IdP shows what it sent, and signs in
	// or creates nobody.
	idp.RegisterSP(t, "acme", entity, false)
	admin.run("start the test sign-in", chromedp.Evaluate[chromedp.Void](`window.__gatehouseOldPage = true`), chromedp.Click(chromedp.CSS(`#test-button`)))
	admin.waitFor("the IdP's form", `document.querySelector('input[name=user]') !== null`)
	admin.idpSignIn(samlidptest.User, samlidptest.Password, "#test-result")
	if got := admin.text(`#test-result`); !strings.Contains(got, samlidptest.Email) || !strings.Contains(got, "Ada") || !strings.Contains(got, "Lovelace") || !strings.Contains(got, "engineering") {
		t.Fatalf("the test's attributes: %q", got)
	}
	ctx := context.Background()
	if _, n, _ := g.app.Store().Users().List(ctx, "acme", 0, 10); n != 0 {
		t.Fatalf("the test sign-in created %d users", n)
	}
	if n, _ := g.app.Store().Sessions().Count(ctx, "acme"); n != 0 {
		t.Fatalf("the test sign-in started %d sessions", n)
	}

	// SCIM on: the URL and token to paste, and the first request ticked.
	admin.submit("turn on SCIM", `#scim-button`)
	scimURL := value(admin, "read the SCIM URL", chromedp.Value(chromedp.CSS(`#scim-url`)))
	token := value(admin, "read the SCIM token", chromedp.Value(chromedp.CSS(`#scim-token`)))
	if scimURL != root+"/gatehouse/o/acme/scim/v2" || token == "" || !strings.Contains(admin.text(`#scim`), "SCIM connector base URL") {
		t.Fatalf("SCIM values: %q %q %q", scimURL, token, admin.text(`#scim`))
	}
	if w := admin.text(`#scim-seen`); !strings.Contains(w, "Waiting for the first SCIM request") {
		t.Fatalf("before any SCIM request: %q", w)
	}
	scimAt(t, scimURL, token, "GET", "/Users", "").must(t, 200)
	admin.waitFor("the first SCIM request ticked", `document.querySelector('#scim-seen').textContent.includes("First SCIM request received")`)

	// Everything the link did is audited as the link.
	linkID := made.str("id")
	entries, _, err := g.app.Store().Audit().List(ctx, "acme", gateway.AuditQuery{Actor: "setup_link:" + linkID, Limit: 20})
	actions := map[string]bool{}
	for _, e := range entries {
		actions[e.Action] = true
	}
	if err != nil || !actions["setup_link.open"] || !actions["identity.update"] || !actions["scim_token.rotate"] {
		t.Fatalf("the link's audit entries: %v %v", actions, err)
	}

	// The link opens once; another browser has no setup session.
	again := b.newTab("someone-else")
	again.run("open the used link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	if body := again.text("main"); !strings.Contains(body, "was opened already") {
		t.Fatalf("the used link: %q", body)
	}
	again.run("open the setup page", chromedp.Navigate(root+"/gatehouse/o/acme/setup"), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	if h := again.text("h1"); h != "No setup in progress" {
		t.Fatalf("the setup page without the link: %q", h)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestSetupLinkRefusals: a setup session is the browser's that opened
// the link, for its organization alone, and its forms need its CSRF
// token; a wrong secret opens nothing, a suspended organization's links
// open no more, and managers make links for their own organization only.
func TestSetupLinkRefusals(t *testing.T) {
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken)
	operator := bearer(adminToken)
	for _, org := range []string{"acme", "globex"} {
		adminRequest(t, g, "POST", "/orgs", `{"id":"`+org+`"}`, operator).must(t, 201)
	}
	root := "http://" + g.app.MainAddr() + "/gatehouse"
	link := adminRequest(t, g, "POST", "/orgs/acme/setup-links", "", operator).must(t, 201).str("link")
	token := link[strings.LastIndex(link, "/")+1:]
	local := root + "/o/acme/setup/link/" + token
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	post := func(c *http.Client, to string, form url.Values) page {
		t.Helper()
		req, _ := http.NewRequest("POST", to, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return page{status: resp.StatusCode, body: b.String(), url: resp.Request.URL.String()}
	}
	id, _, _ := strings.Cut(token, ".")
	if p := post(http.DefaultClient, root+"/o/acme/setup/link/"+id+".wrong-secret", nil); p.status != 403 || !strings.Contains(p.body, "not valid") {
		t.Fatalf("a wrong secret: %d %.300s", p.status, p.body)
	}
	if p := post(http.DefaultClient, root+"/o/globex/setup/link/"+token, nil); p.status != 403 || !strings.Contains(p.body, "not valid") {
		t.Fatalf("acme's link at globex: %d %.300s", p.status, p.body)
	}
	opened := post(browser, local, nil)
	m := csrfField.FindStringSubmatch(opened.body)
	if opened.status != 200 || m == nil {
		t.Fatalf("opening the link: %d %.300s", opened.status, opened.body)
	}
	csrf := m[1]
	post(browser, root+"/o/acme/setup/idp", url.Values{"csrf": {csrf}, "vendor": {"entra"}, "protocol": {"oidc"}})
	for name, form := range map[string]url.Values{"no CSRF token": {"issuer": {"https://evil.example"}}, "another token": {"csrf": {"x" + csrf}, "issuer": {"https://evil.example"}}} {
		form.Set("client_id", "c")
		form.Set("client_secret", "s")
		if p := post(browser, root+"/o/acme/setup/connect", form); p.status != 403 {
			t.Errorf("%s: %d %.300s", name, p.status, p.body)
		}
	}
	// The session is acme's: at globex it is nobody.
	if p := getPage(t, browser, root+"/o/globex/setup"); p.status != 403 && p.status != 401 {
		t.Fatalf("acme's setup session at globex: %d %.300s", p.status, p.body)
	}
	if p := post(browser, root+"/o/globex/setup/connect", url.Values{"csrf": {csrf}, "issuer": {"https://evil.example"}, "client_id": {"c"}, "client_secret": {"s"}}); p.status != 403 && p.status != 401 {
		t.Fatalf("acme's setup session changing globex: %d %.300s", p.status, p.body)
	}
	for _, org := range []string{"acme", "globex"} {
		if st := adminRequest(t, g, "GET", "/orgs/"+org+"/identity", "", operator); st.str("sso", "protocol") != "none" {
			t.Fatalf("%s's settings after refused changes: %s", org, st.raw)
		}
	}
	// An API token of globex makes globex's links, not acme's.
	globexToken := adminRequest(t, g, "POST", "/orgs/globex/api-tokens", `{"name":"ci"}`, operator).must(t, 201).str("token")
	adminRequest(t, g, "POST", "/orgs/acme/setup-links", "", bearer(globexToken)).must(t, 403)
	adminRequest(t, g, "POST", "/orgs/globex/setup-links", `{"expires_in":"9000h"}`, bearer(globexToken)).must(t, 422)
	adminRequest(t, g, "POST", "/orgs/globex/setup-links", "", bearer(globexToken)).must(t, 201)
	// Suspended, acme's session and its other links open nothing.
	second := adminRequest(t, g, "POST", "/orgs/acme/setup-links", "", operator).must(t, 201).str("link")
	adminRequest(t, g, "PATCH", "/orgs/acme", `{"suspended":true}`, operator).must(t, 200)
	if p := getPage(t, browser, root+"/o/acme/setup"); p.status != 403 || !strings.Contains(p.body, "suspended") {
		t.Fatalf("the setup session of a suspended organization: %d %.300s", p.status, p.body)
	}
	if p := getPage(t, http.DefaultClient, root+"/o/acme/setup/link/"+second[strings.LastIndex(second, "/")+1:]); p.status != 403 || !strings.Contains(p.body, "suspended") {
		t.Fatalf("a suspended organization's link: %d %.300s", p.status, p.body)
	}
	if got := adminRequest(t, g, "POST", "/orgs/acme/setup-links", "", operator); got.status != 409 {
		t.Fatalf("a link for a suspended organization: %d %s", got.status, got.raw)
	}
}

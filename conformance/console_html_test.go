package conformance

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// consolePages are the pages a manager reaches from the navigation.
var consolePages = []string{"/console/overview", "/console/identity", "/console/users", "/console/groups", "/console/pools", "/console/delivery", "/console/audit"}

// TestConsoleHTML: every control on every console page has a label, and
// every link and form on them leads somewhere that exists.
func TestConsoleHTML(t *testing.T) {
	g := startGateway(t, "", "GATEHOUSE_PROVISIONING_METHOD=manual", "GATEHOUSE_ADMIN_TOKEN="+adminToken)
	cookie, _ := sessionAs(t, g, "mia@example.com", "manager")
	adminRequest(t, g, "POST", "/invitations", `{"email":"inv@example.com"}`, bearer(adminToken))
	other := adminRequest(t, g, "POST", "/users", `{"userName":"uma@example.com","givenName":"Uma"}`, bearer(adminToken))
	root := "http://" + g.app.MainAddr()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", root+path, nil)
		req.AddCookie(cookie)
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	pages := append([]string{}, consolePages...)
	pages = append(pages, "/console/users/"+other.str("id"), "/console/users/"+other.str("id")+"/delete", "/console/users/"+other.str("id")+"/deactivate")
	checked := map[string]bool{}
	for _, path := range pages {
		resp, body := get("/gatehouse" + path)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		doc, err := html.Parse(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		// Every page states which organization it is about.
		if !strings.Contains(body, `<span class="org" id="org" title="The organization every page here is about">Default organization</span>`) ||
			!strings.Contains(body, " · Default organization · Gatehouse console</title>") {
			t.Errorf("%s does not name its organization", path)
		}
		labels := map[string]bool{}
		var controls []*html.Node
		var links, actions []string
		var walk func(n *html.Node, inLabel bool)
		walk = func(n *html.Node, inLabel bool) {
			if n.Type == html.ElementNode {
				switch n.Data {
				case "label":
					if f := attr(n, "for"); f != "" {
						labels[f] = true
					}
					inLabel = true
				case "input", "select", "textarea":
					if typ := attr(n, "type"); typ != "hidden" && typ != "submit" && typ != "button" && !inLabel && attr(n, "aria-label") == "" && attr(n, "aria-labelledby") == "" {
						controls = append(controls, n)
					}
				case "button":
					if strings.TrimSpace(text(n)) == "" && attr(n, "aria-label") == "" {
						t.Errorf("%s: a button without a name", path)
					}
				case "a":
					links = append(links, attr(n, "href"))
				case "form":
					if m := strings.ToLower(attr(n, "method")); m == "post" {
						actions = append(actions, attr(n, "action"))
					}
				}
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c, inLabel)
			}
		}
		walk(doc, false)
		for _, c := range controls {
			if id := attr(c, "id"); id == "" || !labels[id] {
				t.Errorf("%s: <%s name=%q id=%q> has no label", path, c.Data, attr(c, "name"), attr(c, "id"))
			}
		}
		for _, l := range links {
			u, err := url.Parse(l)
			if err != nil || u.Host != "" || l == "#main" || checked[l] {
				continue
			}
			checked[l] = true
			resp, _ := get(l)
			if resp.StatusCode == 404 || resp.StatusCode >= 500 {
				t.Errorf("%s: link %s answers %d", path, l, resp.StatusCode)
			}
		}
		for _, a := range actions {
			if a == "/gatehouse/logout" {
				continue
			}
			// Without the CSRF token a real route refuses (403); a missing
			// one would be 404 or 405.
			req, _ := http.NewRequest("POST", root+a, strings.NewReader(""))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(cookie)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s: form action %s answers %d to a post without the CSRF token", path, a, resp.StatusCode)
			}
		}
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// TestConsoleForms: a form rendered before another manager's change does
// not overwrite it; a reloaded SCIM rotation does not rotate twice; a
// form sent after the session ended, or from another site, changes
// nothing.
func TestConsoleForms(t *testing.T) {
	g := startGateway(t, "", "GATEHOUSE_PROVISIONING_METHOD=manual")
	cookie, csrf := sessionAs(t, g, "mia@example.com", "manager")
	root := "http://" + g.app.MainAddr() + "/gatehouse/console"
	post := func(path string, form url.Values, extra ...string) (int, string) {
		t.Helper()
		return postForm(t, root+path, cookie, form, extra...)
	}
	// No mail server: an invitation's link is shown once, to copy, and the
	// page says no mail was sent (never "Invitation sent.").
	status, body := post("/invitations", url.Values{"csrf": {csrf}, "email": {"bob@example.com"}, "role": {"user"}})
	link := regexp.MustCompile(`id="new-link" type="text" readonly value="([^"]+)"`).FindStringSubmatch(body)
	if status != 200 || link == nil || !strings.HasPrefix(link[1], "https://app.example.test/gatehouse/invite/") ||
		!strings.Contains(body, "No mail was sent") || strings.Contains(body, "Invitation sent") {
		t.Fatalf("invite without a mail server: %d %.3000s", status, body)
	}
	if resp, err := http.Get("http://" + g.app.MainAddr() + strings.TrimPrefix(link[1], "https://app.example.test")); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the shown link does not open the invitation: %v %v", resp.StatusCode, err)
	}
	invs, _ := g.app.Service().Invitations(context.Background(), gateway.DefaultOrg)
	if len(invs) != 1 {
		t.Fatalf("%d invitations", len(invs))
	}
	status, body = post("/invitations/"+invs[0].ID+"/resend", url.Values{"csrf": {csrf}})
	again := regexp.MustCompile(`id="new-link" type="text" readonly value="([^"]+)"`).FindStringSubmatch(body)
	if status != 200 || again == nil || again[1] == link[1] || !strings.Contains(body, "No mail was sent") {
		t.Fatalf("resend without a mail server: %d %.300s", status, body)
	}
	if page := httpGetWithCookie(t, root+"/users", cookie); strings.Contains(page, again[1]) {
		t.Fatal("the link is shown again on the next page load")
	}

	// A refused change says what it needs in the page's words (no
	// configuration keys) and keeps what the manager typed.
	status, body = post("/identity/login", url.Values{"csrf": {csrf}, "version": {"1"}, "protocol": {"oidc"},
		"oidc_issuer": {"https://idp.example"}, "oidc_client_secret": {"s3cret"}, "email_attribute": {"mail"}})
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "fill in the client ID") || strings.Contains(body, "sso.oidc") ||
		!strings.Contains(body, `value="https://idp.example"`) || !strings.Contains(body, `value="mail"`) || !regexp.MustCompile(`value="oidc" checked`).MatchString(body) {
		t.Fatalf("a refused login method: %d %.4000s", status, body)
	}
	status, body = post("/identity/method", url.Values{"csrf": {csrf}, "version": {"1"}, "method": {"jit"}, "email_domain": {"example.com, example.org"}})
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "connect your identity provider with SAML or OIDC") || strings.Contains(body, "sso.protocol") ||
		!strings.Contains(body, `value="example.com, example.org"`) || !regexp.MustCompile(`value="jit" checked`).MatchString(body) {
		t.Fatalf("a refused method: %d %.4000s", status, body)
	}
	method := url.Values{"csrf": {csrf}, "version": {"1"}, "method": {"scim"}}
	if status, body := post("/identity/method", method); status != http.StatusSeeOther {
		t.Fatalf("switch to scim: %d %s", status, body)
	}
	method.Set("method", "manual") // the same form, rendered at version 1
	if status, body := post("/identity/method", method); status != http.StatusConflict || !strings.Contains(body, "changed the identity configuration meanwhile") {
		t.Fatalf("a stale form: %d %.300s", status, body)
	}
	if m := g.app.Service().Policy(gateway.DefaultOrg).Method; m != gateway.SourceSCIM {
		t.Fatalf("the stale form changed the method to %s", m)
	}
	rotate := url.Values{"csrf": {csrf}, "scim_version": {"0"}}
	if status, body := post("/identity/scim-token", rotate); status != 200 || !strings.Contains(body, `id="secret"`) {
		t.Fatalf("rotate: %d %.300s", status, body)
	}
	if status, body := post("/identity/scim-token", rotate); status != http.StatusConflict || !strings.Contains(body, "rotated already") {
		t.Fatalf("the rotation sent again: %d %.300s", status, body)
	}
	if status, _ := post("/pools", url.Values{"csrf": {csrf}, "id": {"x"}}, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"); status != http.StatusForbidden {
		t.Fatalf("a cross-site form: %d", status)
	}
	// Signing everyone out asks first, then ends every session, the
	// manager's own too.
	if status, body := post("/sessions/end", url.Values{"csrf": {csrf}}); status != 200 || !strings.Contains(body, "Sign everyone out") {
		t.Fatalf("sign everyone out, unconfirmed: %d %.300s", status, body)
	}
	if status, _ := post("/sessions/end", url.Values{"csrf": {csrf}, "confirmed": {"yes"}}); status != http.StatusSeeOther {
		t.Fatalf("sign everyone out: %d", status)
	}
	if n, _ := g.app.Store().Sessions().Count(context.Background(), gateway.DefaultOrg); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
	if status, _ := post("/pools", url.Values{"csrf": {csrf}, "id": {"y"}}); status != http.StatusUnauthorized {
		t.Fatalf("the manager after signing everyone out: %d", status)
	}
	cookie = nil
	if status, body := post("/pools", url.Values{"csrf": {csrf}, "id": {"x"}}); status != http.StatusUnauthorized || !strings.Contains(body, "Sign in again") {
		t.Fatalf("a form after the session ended: %d %s", status, body)
	}
	if pools, _ := g.app.Service().Pools(context.Background(), gateway.DefaultOrg); len(pools) != 1 {
		t.Fatalf("refused forms made pools: %+v", pools)
	}
}

// postForm posts a form as a browser with the cookie does (redirects not
// followed) and returns the status and the page.
func postForm(t *testing.T, target string, cookie *http.Cookie, form url.Values, headers ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func httpGetWithCookie(t *testing.T, u string, c *http.Cookie) string {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.AddCookie(c)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	return string(b)
}

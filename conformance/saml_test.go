package conformance

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

// TestSAMLJITLogin is the whole browser journey against a real SAML IdP:
// the app's page sends the browser to sign in, the IdP's form, the
// assertion back to the gateway, a JIT-created user in the default pool
// with the default role, and the page served by the app with the
// identity headers. Signing in again creates nobody; someone outside
// the allowed domains is refused with a page and nothing is created.
func TestSAMLJITLogin(t *testing.T) {
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	idp.Put(t, "/users/eve", `{"password":"eve pass","email":"eve@elsewhere.example","given_name":"Eve"}`)

	var mu sync.Mutex
	var seen []http.Header
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		_, _ = io.WriteString(w, "dashboard of "+r.Header.Get("X-Gatehouse-Email"))
	}))
	defer upstream.Close()

	g, root := startSAMLGateway(t, idp, "",
		"GATEHOUSE_SSO_SAML_FIRST_NAME_ATTRIBUTE=givenName", "GATEHOUSE_SSO_SAML_LAST_NAME_ATTRIBUTE=sn",
		"GATEHOUSE_SSO_SAML_GROUPS_ATTRIBUTE=eduPersonAffiliation",
		"GATEHOUSE_PROVISIONING_METHOD=jit", "GATEHOUSE_PROVISIONING_ALLOWED_DOMAINS=example.com",
		"GATEHOUSE_UPSTREAM_URL="+upstream.URL)

	users := func() []*gateway.User {
		t.Helper()
		us, _, err := g.app.Store().Users().List(context.Background(), gateway.DefaultOrg, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		return us
	}
	browser := samlidptest.Browser(nil)
	acs, form := samlidptest.SignIn(t, browser, root+"/dashboard?tab=2")
	if acs != root+"/gatehouse/saml/acs" {
		t.Fatalf("the IdP posts to %q", acs)
	}
	resp, err := browser.PostForm(acs, form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "dashboard of ada@example.com" || resp.Request.URL.RequestURI() != "/dashboard?tab=2" {
		t.Fatalf("after sign-in: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	us := users()
	if len(us) != 1 {
		t.Fatalf("%d users after the first sign-in", len(us))
	}
	u := us[0]
	if u.UserName != "ada@example.com" || u.Source != gateway.SourceJIT || !slices.Equal(u.Pools, []string{"default"}) || u.Role != "user" ||
		u.GivenName != "Ada" || u.FamilyName != "Lovelace" || !u.Active {
		t.Fatalf("JIT user: %+v", u)
	}
	mu.Lock()
	h := seen[len(seen)-1]
	mu.Unlock()
	if h.Get("X-Gatehouse-User-Id") != u.ID || h.Get("X-Gatehouse-Role") != "user" || h.Get("X-Gatehouse-Assertion") == "" ||
		h.Get("X-Gatehouse-Groups") != "admins,engineering" {
		t.Fatalf("identity headers: %v", h)
	}

	// Sign out and in again: the same user, no second one.
	signOut(t, browser, root)
	acs, form = samlidptest.SignIn(t, browser, root+"/dashboard")
	if resp, err := browser.PostForm(acs, form); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("second sign-in: %v %v", err, resp)
	}
	if n := len(users()); n != 1 {
		t.Fatalf("%d users after signing in again", n)
	}

	// Another domain: refused with a page saying why, nothing created,
	// nothing reaches the app.
	mu.Lock()
	before := len(seen)
	mu.Unlock()
	other := samlidptest.Browser(nil)
	acs, form = samlidptest.SignInAs(t, other, root+"/dashboard", "eve", "eve pass")
	resp, err = other.PostForm(acs, form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "elsewhere.example") {
		t.Fatalf("other domain: %d: %s", resp.StatusCode, body)
	}
	if n := len(users()); n != 1 {
		t.Fatalf("%d users after a refused sign-in", n)
	}
	mu.Lock()
	after := len(seen)
	mu.Unlock()
	if after != before {
		t.Fatal("a refused sign-in reached the app")
	}

	// A replayed response is refused too (its request is used up).
	if resp, err := other.PostForm(acs, form); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("replay: %v %v", err, resp)
	}
	metrics := httpGet(t, "http://"+g.app.OpsAddr()+"/metrics", 200)
	for _, want := range []string{
		`gatehouse_sso_logins_total{protocol="saml",result="ok"} 2`,
		`gatehouse_sso_logins_total{protocol="saml",result="domain"} 1`,
		`gatehouse_sso_logins_total{protocol="saml",result="invalid_response"} 1`,
		`gatehouse_sso_jit_created_total 1`,
		`gatehouse_sso_last_success_timestamp_seconds{org="default",protocol="saml"} 1.`, // a Unix time
		`gatehouse_sso_sessions 1`,                                                       // ada's second; the first ended at logout
		`gatehouse_proxy_requests_total{class="2xx"} 2`,
		`gatehouse_proxy_requests_total{class="3xx"} 3`,
		`gatehouse_proxy_upstream_duration_seconds_count 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestSAMLWithSCIM: under SCIM provisioning, only someone Okta pushed can
// sign in; when Okta deactivates them by SCIM, their session ends at once
// (the next page is a redirect to sign in, nothing reaches the app) and
// signing in again is refused.
func TestSAMLWithSCIM(t *testing.T) {
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	var mu sync.Mutex
	reached := 0
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached++
		mu.Unlock()
		_, _ = io.WriteString(w, "app")
	}))
	defer upstream.Close()
	g, root := startSAMLGateway(t, idp, "", "GATEHOUSE_PROVISIONING_METHOD=scim", "GATEHOUSE_UPSTREAM_URL="+upstream.URL)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	signIn := func(b *http.Client) *http.Response {
		t.Helper()
		acs, form := samlidptest.SignIn(t, b, root+"/home")
		resp, err := b.PostForm(acs, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// Not pushed yet: refused, nothing created.
	if resp := signIn(samlidptest.Browser(nil)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in before SCIM pushed the user: %d", resp.StatusCode)
	}
	// Okta pushes Ada; she signs in.
	id := g.call("POST", "/Users", oktaUser(samlidptest.Email, "Ada", "Lovelace")).must(t, 201).str("id")
	browser := samlidptest.Browser(nil)
	if resp := signIn(browser); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in after the push: %d", resp.StatusCode)
	}
	rootURL, _ := url.Parse(root)
	cookies := browser.Jar.Cookies(rootURL)
	page := func() int {
		req, _ := http.NewRequest("GET", root+"/home", nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if page() != http.StatusOK {
		t.Fatal("the session does not reach the app")
	}
	// Okta deactivates her: the session ends at once.
	g.call("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`).must(t, 200)
	mu.Lock()
	before := reached
	mu.Unlock()
	if got := page(); got != http.StatusFound {
		t.Fatalf("after the SCIM deactivation: %d", got)
	}
	mu.Lock()
	after := reached
	mu.Unlock()
	if after != before {
		t.Fatal("a deactivated user's request reached the app")
	}
	// And she cannot sign in again.
	if resp := signIn(samlidptest.Browser(nil)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in when deactivated: %d", resp.StatusCode)
	}
}

// startSAMLGateway starts a gateway signing in with idp (its metadata
// from a file) and registers it at the IdP; it returns the gateway and
// its root URL.
func startSAMLGateway(t *testing.T, idp *samlidptest.IdP, dataDir string, env ...string) (*gatewayUnderTest, string) {
	t.Helper()
	addr := freeAddr(t)
	mdFile := filepath.Join(t.TempDir(), "idp.xml")
	if err := os.WriteFile(mdFile, idp.Metadata(t), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, dataDir, append([]string{"GATEHOUSE_LISTEN=" + addr, "GATEHOUSE_PUBLIC_URL=http://" + addr,
		"GATEHOUSE_SSO_PROTOCOL=saml", "GATEHOUSE_SSO_SAML_IDP_METADATA_FILE=" + mdFile}, env...)...)
	root := "http://" + addr
	idp.RegisterSP(t, "gatehouse", root+"/gatehouse/saml/metadata", false)
	return g, root
}

// TestExpiredSignInDataIsSwept: every SAML sign-in leaves its assertion
// id (replay protection) and every abandoned one its request; once they
// expire, the sweeper deletes them, and nothing is left to sweep.
func TestExpiredSignInDataIsSwept(t *testing.T) {
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	g, root := startSAMLGateway(t, idp, "", "GATEHOUSE_PROVISIONING_METHOD=jit")
	ctx := context.Background()
	const signIns, abandoned = 5, 2
	for range signIns {
		browser := samlidptest.Browser(func(r *http.Request) bool { return r.URL.Path == "/" })
		acs, form := samlidptest.SignIn(t, browser, root+"/gatehouse/saml/login?return=/")
		resp, err := browser.PostForm(acs, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("sign-in: %d", resp.StatusCode)
		}
	}
	for range abandoned {
		resp, err := samlidptest.Browser(func(*http.Request) bool { return true }).Get(root + "/gatehouse/saml/login?return=/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if got := g.app.SweepExpired(ctx, time.Now()); got.Ephemeral != 0 {
		t.Fatalf("swept %d values that had not expired", got.Ephemeral)
	}
	// An hour on, past every expiry (requests: 10 min; assertion ids:
	// their validity plus the allowed skew).
	later := time.Now().Add(time.Hour)
	if got := g.app.SweepExpired(ctx, later); got.Ephemeral != signIns+abandoned {
		t.Fatalf("swept %d sign-in values, want %d (%d assertion ids, %d abandoned requests)", got.Ephemeral, signIns+abandoned, signIns, abandoned)
	}
	if got := g.app.SweepExpired(ctx, later); got.Ephemeral != 0 {
		t.Fatalf("a second sweep found %d more", got.Ephemeral)
	}
}

package conformance

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

// TestProxyWiring: with upstream.url set, the gateway fronts the app:
// without a session a browser is sent to sign in and nothing reaches the
// app; with one, the app gets the identity; logout ends it; the JWKS is
// published. (Sign-in itself arrives with SAML and OIDC.)
func TestProxyWiring(t *testing.T) {
	var got []http.Header
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Clone())
		_, _ = io.WriteString(w, "hello from the app")
	}))
	defer app.Close()
	g := startGateway(t, "", "GATEHOUSE_UPSTREAM_URL="+app.URL, "GATEHOUSE_PUBLIC_URL=http://127.0.0.1")
	root := strings.TrimSuffix(g.base, "/gatehouse/scim/v2")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, c *http.Cookie) *http.Response {
		req, _ := http.NewRequest("GET", root+path, nil)
		if c != nil {
			req.AddCookie(c)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := get("/dashboard", nil); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/gatehouse/login?return=%2Fdashboard" {
		t.Fatalf("no session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := get("/gatehouse/login?return=%2Fdashboard", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("sign-in page before SSO is configured: %d", resp.StatusCode)
	}
	if resp := get("/gatehouse/.well-known/jwks.json", nil); resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "jwk-set") {
		t.Fatalf("jwks: %d", resp.StatusCode)
	}
	if len(got) != 0 {
		t.Fatal("a request without a session reached the app")
	}
	// A session (as a sign-in will start it).
	cookie := signedInCookie(t, g)
	if cookie.Secure {
		t.Fatal("an http public_url must not get a Secure cookie the browser would drop")
	}
	resp := get("/dashboard", cookie)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "hello from the app" || len(got) != 1 || got[0].Get("X-Gatehouse-Email") != "ada@example.com" {
		t.Fatalf("signed in: %d %s %v", resp.StatusCode, body, got)
	}
	// Signing out: a link (GET) only asks; a POST needs this site and the
	// session's CSRF token, which only the confirmation page carries.
	resp = get("/gatehouse/logout", cookie)
	action, fields := samlidptest.FormOf(t, resp)
	if resp.StatusCode != 200 || action != "/gatehouse/logout" || fields.Get("csrf") == "" {
		t.Fatalf("logout page: %d, form to %q with %v", resp.StatusCode, action, fields)
	}
	post := func(form url.Values, headers ...string) int {
		req, _ := http.NewRequest("POST", root+"/gatehouse/logout", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		req.AddCookie(cookie)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for name, attempt := range map[string]func() int{
		"a link":                       func() int { return get("/gatehouse/logout", cookie).StatusCode },
		"a POST without the token":     func() int { return post(url.Values{}) },
		"a POST with a wrong token":    func() int { return post(url.Values{"csrf": {"forged"}}) },
		"a cross-site POST with token": func() int { return post(fields, "Sec-Fetch-Site", "cross-site") },
		"another origin with token":    func() int { return post(fields, "Origin", "https://evil.example") },
	} {
		status := attempt()
		if name != "a link" && status != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, status)
		}
		if resp := get("/dashboard", cookie); resp.StatusCode != 200 {
			t.Fatalf("%s ended the session (%d)", name, resp.StatusCode)
		}
	}
	if status := post(fields, "Sec-Fetch-Site", "same-origin"); status != 200 {
		t.Fatalf("logout: %d", status)
	}
	if resp := get("/dashboard", cookie); resp.StatusCode != http.StatusFound {
		t.Fatalf("after logout: %d", resp.StatusCode)
	}
}

// signedInCookie makes a user the way a manager would and starts a
// session for it, as a sign-in does; it returns the session cookie.
func signedInCookie(t *testing.T, g *gatewayUnderTest) *http.Cookie {
	t.Helper()
	svc := provision.New(g.app.Store(), nil, provision.Policy{Method: gateway.SourceManual, DefaultPool: "default", DefaultRole: "user"})
	u, err := svc.CreateUser(context.Background(), provision.Meta{Org: gateway.DefaultOrg, Source: gateway.SourceManual},
		&gateway.User{UserName: "ada@example.com", Active: true, Emails: []string{"ada@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if _, err := g.app.Sessions().Start(context.Background(), w, httptest.NewRequest("GET", "/", nil), gateway.DefaultOrg, u.ID, "saml"); err != nil {
		t.Fatal(err)
	}
	return w.Result().Cookies()[0]
}

// signOut signs a browser out as a person does: the sign-out link's
// confirmation page, then its form.
func signOut(t *testing.T, browser *http.Client, root string) {
	t.Helper()
	resp, err := browser.Get(root + "/gatehouse/logout")
	if err != nil {
		t.Fatal(err)
	}
	action, fields := samlidptest.FormOf(t, resp)
	if fields.Get("csrf") == "" {
		t.Fatalf("the sign-out page has no CSRF token: %v", fields)
	}
	resp, err = browser.PostForm(root+action, fields)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "You are signed out") {
		t.Fatalf("sign-out: %d %s", resp.StatusCode, body)
	}
}

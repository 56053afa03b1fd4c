package conformance

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
	if resp := get("/gatehouse/logout", cookie); resp.StatusCode != 200 {
		t.Fatalf("logout: %d", resp.StatusCode)
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
	u, err := svc.CreateUser(context.Background(), provision.Meta{Tenant: gateway.DefaultTenant, Source: gateway.SourceManual},
		&gateway.User{UserName: "ada@example.com", Active: true, Emails: []string{"ada@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if _, err := g.app.Sessions().Start(context.Background(), w, httptest.NewRequest("GET", "/", nil), u.ID, "saml"); err != nil {
		t.Fatal(err)
	}
	return w.Result().Cookies()[0]
}

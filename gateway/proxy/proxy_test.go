package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/proxy"
	"github.com/gatehouse-id/gatehouse/gateway/session"
	"github.com/gatehouse-id/gatehouse/gateway/signer"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
)

type upstream struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []http.Header
}

func (u *upstream) seen() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]http.Header(nil), u.got...)
}

type env struct {
	t       *testing.T
	store   *bolt.Store
	svc     *provision.Service
	user    *gateway.User
	up      *upstream
	gw      *httptest.Server
	sess    *session.Manager
	signer  *signer.Signer
	cookie  *http.Cookie
	noRedir *http.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t}
	var err error
	if e.store, err = bolt.Open(filepath.Join(t.TempDir(), "p.db"), bolt.Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	e.svc = provision.New(e.store, nil, provision.Policy{Method: gateway.SourceManual, DefaultPool: "support", DefaultRole: "manager"})
	m := provision.Meta{Org: gateway.DefaultOrg, Source: gateway.SourceManual}
	if e.user, err = e.svc.CreateUser(context.Background(), m, &gateway.User{UserName: "ada@example.com", Active: true,
		GivenName: "Ada", FamilyName: "Lovelace", Emails: []string{"ada@example.com"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateGroup(context.Background(), m, &gateway.Group{DisplayName: "R&D, Europe"}, []gateway.Member{{UserID: e.user.ID}}); err != nil {
		t.Fatal(err)
	}
	e.up = &upstream{}
	e.up.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.up.mu.Lock()
		e.up.got = append(e.up.got, r.Header.Clone())
		e.up.mu.Unlock()
		if r.URL.Path == "/set-cookies" {
			// An app (or an attacker's content in it) setting the gateway's
			// session cookie beside its own.
			w.Header().Add("Set-Cookie", "gatehouse_session=chosen-by-the-app; Path=/")
			w.Header().Add("Set-Cookie", "__Host-gatehouse_session=chosen; Path=/; Secure")
			w.Header().Add("Set-Cookie", "app_pref=light; Path=/")
		}
		_, _ = io.WriteString(w, "app page "+r.URL.RequestURI())
	}))
	t.Cleanup(e.up.srv.Close)
	e.sess = session.New(session.Options{LegacyOrg: gateway.DefaultOrg, Store: e.store})
	if e.signer, err = signer.New(context.Background(), signer.Options{Org: gateway.DefaultOrg, Store: e.store, Issuer: "https://app.example.com/gatehouse", Audience: "https://app.example.com"}); err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(e.up.srv.URL)
	p := proxy.New(proxy.Options{Upstream: target, Sessions: e.sess, Signer: e.signer, Store: e.store,
		LoginURL: func(ret string) string { return "/gatehouse/saml/login?return=" + url.QueryEscape(ret) }})
	mux := http.NewServeMux()
	mux.Handle("/gatehouse/auth", p.Auth("/gatehouse/auth"))
	mux.Handle("/", p)
	e.gw = httptest.NewServer(mux)
	t.Cleanup(e.gw.Close)
	e.noRedir = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return e
}

func (e *env) signIn() {
	w := httptest.NewRecorder()
	if _, err := e.sess.Start(context.Background(), w, httptest.NewRequest("GET", "/", nil), gateway.DefaultOrg, e.user.ID, "saml"); err != nil {
		e.t.Fatal(err)
	}
	e.cookie = w.Result().Cookies()[0]
}

func (e *env) get(path string, headers ...string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.gw.URL+path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if e.cookie != nil {
		req.AddCookie(e.cookie)
	}
	resp, err := e.noRedir.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

var spoofed = []string{"X-Gatehouse-User-Id", "evil", "x-gatehouse-role", "admin", "X_Gatehouse_Email", "evil@example.com", "X-GATEHOUSE-ASSERTION", "forged"}

func TestWithoutASessionNothingReachesTheApp(t *testing.T) {
	e := newEnv(t)
	resp := e.get("/reports?year=2026", spoofed...)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/gatehouse/saml/login?return=%2Freports%3Fyear%3D2026" {
		t.Fatalf("browser: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, h := range [][]string{{"Accept", "application/json"}, {"X-Requested-With", "XMLHttpRequest"}} {
		if resp := e.get("/api/items", append(spoofed, h...)...); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("API call %v: %d", h, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest("POST", e.gw.URL+"/api/items", strings.NewReader("{}"))
	if resp, err := e.noRedir.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST without a session: %v %v", resp, err)
	}
	if resp := e.get("/gatehouse/auth"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("auth without a session: %d", resp.StatusCode)
	}
	if n := len(e.up.seen()); n != 0 {
		t.Fatalf("%d requests reached the app without a session", n)
	}
}

func TestSignedInRequestsCarryTheIdentity(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	resp := e.get("/reports", append(spoofed, "Cookie", "app_pref=dark")...)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "app page /reports" {
		t.Fatalf("proxied: %d %s", resp.StatusCode, body)
	}
	h := e.up.seen()[0]
	// The session cookie (the admin API's credential) stays with the
	// gateway; the app's own cookies go through.
	if got := h.Values("Cookie"); len(got) != 1 || got[0] != "app_pref=dark" {
		t.Errorf("the app received cookies %q, want only app_pref=dark", got)
	}
	want := map[string]string{
		proxy.HeaderOrg: "default", proxy.HeaderUserID: e.user.ID, proxy.HeaderEmail: "ada@example.com", proxy.HeaderName: "Ada Lovelace",
		proxy.HeaderRole: "manager", proxy.HeaderPool: "support", proxy.HeaderGroups: "R%26D%2C%20Europe",
	}
	for k, v := range want {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for k := range h {
		if strings.Contains(strings.ToLower(k), "gatehouse_") {
			t.Errorf("a spoofed header reached the app: %s", k)
		}
	}
	// The assertion verifies against the JWKS and names the user.
	w := httptest.NewRecorder()
	e.signer.JWKS().ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(h.Get(proxy.HeaderAssertion), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var c signer.Claims
	if err := tok.Claims(set, &c); err != nil {
		t.Fatalf("the assertion does not verify: %v", err)
	}
	if c.Subject != e.user.ID || c.Org != "default" || c.Email != "ada@example.com" || len(c.Groups) != 1 || c.Groups[0] != "R&D, Europe" {
		t.Fatalf("claims: %+v", c)
	}
	if resp := e.get("/gatehouse/auth"); resp.StatusCode != 200 || resp.Header.Get(proxy.HeaderUserID) != e.user.ID {
		t.Fatalf("auth: %d %v", resp.StatusCode, resp.Header)
	}

	// Deactivated (by SCIM, say): the next request does not reach the app.
	before := len(e.up.seen())
	if _, err := e.svc.UpdateUser(context.Background(), provision.Meta{Org: gateway.DefaultOrg, Source: gateway.SourceManual}, e.user.ID, 0,
		func(u *gateway.User) (*gateway.User, error) { u.Active = false; return u, nil }); err != nil {
		t.Fatal(err)
	}
	if resp := e.get("/reports"); resp.StatusCode != http.StatusFound {
		t.Fatalf("after deactivation: %d", resp.StatusCode)
	}
	if len(e.up.seen()) != before {
		t.Fatal("a deactivated user's request reached the app")
	}
}

// TestAssertionFollowsTheUser: the signed assertion is reused for the
// same user state, and a new one is signed as soon as the role or the
// groups change.
func TestAssertionFollowsTheUser(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	assertion := func() string {
		t.Helper()
		if resp := e.get("/x"); resp.StatusCode != 200 {
			t.Fatalf("proxied: %d", resp.StatusCode)
		}
		seen := e.up.seen()
		return seen[len(seen)-1].Get(proxy.HeaderAssertion)
	}
	first := assertion()
	if again := assertion(); again != first {
		t.Fatal("the same user state got a newly signed assertion")
	}
	m := provision.Meta{Org: gateway.DefaultOrg, Source: gateway.SourceManual}
	if _, err := e.svc.UpdateUser(context.Background(), m, e.user.ID, 0, func(u *gateway.User) (*gateway.User, error) { u.Role = "admin"; return u, nil }); err != nil {
		t.Fatal(err)
	}
	afterRole := assertion()
	if afterRole == first || !strings.Contains(e.up.seen()[len(e.up.seen())-1].Get(proxy.HeaderRole), "admin") {
		t.Fatal("a role change did not re-sign the assertion")
	}
	if _, err := e.svc.CreateGroup(context.Background(), m, &gateway.Group{DisplayName: "Ops"}, []gateway.Member{{UserID: e.user.ID}}); err != nil {
		t.Fatal(err)
	}
	if assertion() == afterRole {
		t.Fatal("a new group did not re-sign the assertion")
	}
}

// TestPercentEncode: group names reach the app in one encoding (RFC
// 3986), which the usual decoders read back exactly.
func TestPercentEncode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"engineering", "engineering"},
		{"Support Agents", "Support%20Agents"},
		{"R&D, Europe", "R%26D%2C%20Europe"},
		{"100% remote", "100%25%20remote"},
		{"a+b", "a%2Bb"},
		{"Équipe Zürich", "%C3%89quipe%20Z%C3%BCrich"},
		{"~under_score-dot.", "~under_score-dot."},
	} {
		got := proxy.PercentEncode(tc.in)
		if got != tc.want {
			t.Errorf("PercentEncode(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if back, err := url.PathUnescape(got); err != nil || back != tc.in {
			t.Errorf("PathUnescape(%q) = %q, %v", got, back, err)
		}
		if strings.ContainsAny(got, " ,+") {
			t.Errorf("%q still holds a separator", got)
		}
	}
}

// TestTheAppCannotSetTheGatewaysCookies: a Set-Cookie of the gateway's
// names from the app is dropped (it would fix the session); the app's
// own cookies go through.
func TestTheAppCannotSetTheGatewaysCookies(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	resp := e.get("/set-cookies")
	if got := resp.Header.Values("Set-Cookie"); len(got) != 1 || !strings.HasPrefix(got[0], "app_pref=light") {
		t.Fatalf("Set-Cookie reaching the browser: %q", got)
	}
}

// TestGroupModes: proxy.groups all, mapped (only groups that map to a
// pool or role) and none, in the header and the JWT alike.
func TestGroupModes(t *testing.T) {
	e := newEnv(t)
	m := provision.Meta{Org: gateway.DefaultOrg, Source: gateway.SourceManual}
	if _, err := e.svc.CreateGroup(context.Background(), m, &gateway.Group{DisplayName: "Support"}, []gateway.Member{{UserID: e.user.ID}}); err != nil {
		t.Fatal(err)
	}
	e.signIn()
	target, _ := url.Parse(e.up.srv.URL)
	for _, c := range []struct {
		mode, header string
		claim        []any
	}{
		{proxy.GroupsAll, "R%26D%2C%20Europe,Support", []any{"R&D, Europe", "Support"}},
		{"", "R%26D%2C%20Europe,Support", []any{"R&D, Europe", "Support"}},
		{proxy.GroupsMapped, "Support", []any{"Support"}},
		{proxy.GroupsNone, "", nil},
	} {
		t.Run("mode "+c.mode, func(t *testing.T) {
			p := proxy.New(proxy.Options{Upstream: target, Sessions: e.sess, Signer: e.signer, Store: e.store, Groups: c.mode,
				MappedGroup: func(org gateway.OrgID, group string) bool { return org == gateway.DefaultOrg && group == "Support" },
				LoginURL:    func(string) string { return "/login" }})
			req := httptest.NewRequest("GET", "/x", nil)
			req.AddCookie(e.cookie)
			before := len(e.up.seen())
			p.ServeHTTP(httptest.NewRecorder(), req)
			seen := e.up.seen()
			if len(seen) != before+1 {
				t.Fatal("the request did not reach the app")
			}
			h := seen[len(seen)-1]
			if got := h.Get(proxy.HeaderGroups); got != c.header {
				t.Fatalf("groups header %q, want %q", got, c.header)
			}
			tok, err := jwt.ParseSigned(h.Get(proxy.HeaderAssertion), []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				t.Fatal(err)
			}
			var claims map[string]any
			if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
				t.Fatal(err)
			}
			got, _ := claims["groups"].([]any)
			if len(got) != len(c.claim) || len(got) > 0 && got[0] != c.claim[0] {
				t.Fatalf("groups claim %v, want %v", got, c.claim)
			}
		})
	}
}

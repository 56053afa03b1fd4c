package oidc_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-id/gatehouse/conformance/oidcoptest"
	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/login"
	"github.com/gatehouse-id/gatehouse/gateway/oidc"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
)

type outcome struct {
	mu        sync.Mutex
	completed []gateway.Identity
	intents   []login.Intent
	failures  []string
}

func (o *outcome) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.completed)
}

func (o *outcome) lastFailure() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.failures) == 0 {
		return ""
	}
	return o.failures[len(o.failures)-1]
}

type env struct {
	url string
	op  *oidcoptest.OP
	out *outcome
}

// start runs an RP (its issuer from issuer, or the OP started here).
func start(t *testing.T, issuer string) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	e := &env{url: base, out: &outcome{}}
	if issuer == "" {
		e.op = oidcoptest.Start(t, base+"/gatehouse/oidc/callback")
		issuer = e.op.Issuer
	}
	rp, err := oidc.New(oidc.Options{Org: gateway.DefaultOrg, Store: st, PublicURL: base, PathPrefix: "/gatehouse", Issuer: issuer,
		ClientID: oidcoptest.ClientID, ClientSecret: oidcoptest.ClientSecret,
		Complete: func(w http.ResponseWriter, r *http.Request, id gateway.Identity, in login.Intent) {
			e.out.mu.Lock()
			e.out.completed = append(e.out.completed, id)
			e.out.intents = append(e.out.intents, in)
			e.out.mu.Unlock()
			http.Redirect(w, r, in.Return, http.StatusFound)
		},
		Fail: func(w http.ResponseWriter, r *http.Request, status int, reason, message string) {
			e.out.mu.Lock()
			e.out.failures = append(e.out.failures, reason)
			e.out.mu.Unlock()
			http.Error(w, message, status)
		}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	rp.Mount(mux)
	ts.Config.Handler = mux
	ts.Start()
	t.Cleanup(ts.Close)
	return e
}

func browser() *http.Client {
	return samlidptest.Browser(func(r *http.Request) bool {
		return r.URL.Path == "/gatehouse/oidc/callback" || r.URL.Path == "/" || r.URL.Path == "/reports"
	})
}

func get(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestCodeFlowWithPKCE(t *testing.T) {
	e := start(t, "")
	c := browser()
	back := e.op.SignIn(t, c, e.url+"/gatehouse/oidc/login?return=%2Freports")
	if back.Path != "/gatehouse/oidc/callback" || back.Query().Get("code") == "" {
		t.Fatalf("the OP sent the browser to %s", back)
	}
	resp := get(t, c, back.String())
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/reports" {
		t.Fatalf("callback: %d to %q (failures %v)", resp.StatusCode, resp.Header.Get("Location"), e.out.failures)
	}
	id := e.out.completed[0]
	if id.Protocol != "oidc" || id.Issuer != e.op.Issuer || id.Email == "" || !strings.Contains(id.Email, "@") ||
		id.Subject == "" || strings.Join(id.Groups, ",") != "engineering,admins" {
		t.Fatalf("identity: %+v", id)
	}
	// The same answer again (the browser's back button, or a thief).
	if resp := get(t, c, back.String()); resp.StatusCode != http.StatusForbidden || e.out.count() != 1 {
		t.Fatalf("callback replayed: %d", resp.StatusCode)
	}
}

// TestAttacks: each is refused with 403 and nobody is signed in.
func TestAttacks(t *testing.T) {
	e := start(t, "")
	cases := []struct {
		name   string
		attack func(t *testing.T) (*http.Client, string)
		reason string
	}{
		{"answer delivered to another browser (login CSRF)", func(t *testing.T) (*http.Client, string) {
			back := e.op.SignIn(t, browser(), e.url+"/gatehouse/oidc/login")
			return browser(), back.String()
		}, "invalid_state"},
		{"state swapped for the browser's own", func(t *testing.T) (*http.Client, string) {
			victim := e.op.SignIn(t, browser(), e.url+"/gatehouse/oidc/login")
			c := browser()
			own := e.op.SignIn(t, c, e.url+"/gatehouse/oidc/login")
			q := victim.Query()
			q.Set("state", own.Query().Get("state"))
			victim.RawQuery = q.Encode()
			return c, victim.String() // another sign-in's code: PKCE does not match
		}, "invalid_token"},
		{"forged code", func(t *testing.T) (*http.Client, string) {
			c := browser()
			back := e.op.SignIn(t, c, e.url+"/gatehouse/oidc/login")
			q := back.Query()
			q.Set("code", "forged")
			back.RawQuery = q.Encode()
			return c, back.String()
		}, "invalid_token"},
		{"expired ID token", func(t *testing.T) (*http.Client, string) {
			e.op.ExpireTokens(true)
			t.Cleanup(func() { e.op.ExpireTokens(false) })
			c := browser()
			return c, e.op.SignIn(t, c, e.url+"/gatehouse/oidc/login").String()
		}, "invalid_token"},
		{"error from the OP", func(t *testing.T) (*http.Client, string) {
			c := browser()
			back := e.op.SignIn(t, c, e.url+"/gatehouse/oidc/login")
			q := url.Values{"state": {back.Query().Get("state")}, "error": {"access_denied"}}
			return c, e.url + "/gatehouse/oidc/callback?" + q.Encode()
		}, "idp_error"},
		{"no state", func(t *testing.T) (*http.Client, string) {
			return browser(), e.url + "/gatehouse/oidc/callback?code=x"
		}, "invalid_state"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.out.count()
			c, to := tc.attack(t)
			if resp := get(t, c, to); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
			if e.out.count() != before {
				t.Fatal("the attack signed someone in")
			}
			if got := e.out.lastFailure(); got != tc.reason {
				t.Fatalf("reason %q, want %q", got, tc.reason)
			}
		})
	}
}

// TestIssuerDown: an issuer that cannot be reached does not stop the RP;
// sign-in says so with a 503 page.
func TestIssuerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	ln.Close()
	e := start(t, issuer)
	if resp := get(t, browser(), e.url+"/gatehouse/oidc/login"); resp.StatusCode != http.StatusServiceUnavailable || e.out.lastFailure() != "idp_unavailable" {
		t.Fatalf("issuer down: %d %v", resp.StatusCode, e.out.failures)
	}
}

// TestIssuerMustMatchExactly: an issuer configured with a trailing slash
// (or any spelling other than the one the OP announces) is not trusted:
// sign-in stays unavailable rather than accepting another issuer's tokens.
func TestIssuerMustMatchExactly(t *testing.T) {
	real := start(t, "")
	e := start(t, real.op.Issuer+"/")
	if resp := get(t, browser(), e.url+"/gatehouse/oidc/login"); resp.StatusCode != http.StatusServiceUnavailable || e.out.lastFailure() != "idp_unavailable" {
		t.Fatalf("issuer spelled differently: %d %v", resp.StatusCode, e.out.failures)
	}
}

// TestTwoTabs: two sign-ins started in one browser both complete.
func TestTwoTabs(t *testing.T) {
	e := start(t, "")
	c := browser()
	first := e.op.SignIn(t, c, e.url+"/gatehouse/oidc/login?return=%2Freports")
	second := e.op.SignIn(t, c, e.url+"/gatehouse/oidc/login?return=%2F")
	for _, tab := range []struct {
		back *url.URL
		want string
	}{{second, "/"}, {first, "/reports"}} {
		if resp := get(t, c, tab.back.String()); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != tab.want {
			t.Fatalf("tab %s: %d to %q (failures %v)", tab.want, resp.StatusCode, resp.Header.Get("Location"), e.out.failures)
		}
	}
}

// TestSecureStateCookie: over https the sign-in's state cookie is a
// __Host- cookie (Secure, Path=/, no Domain), and the callback takes only
// that name: a plain-named cookie a sibling subdomain planted is refused.
func TestSecureStateCookie(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	op := oidcoptest.Start(t, "https://app.example/gatehouse/oidc/callback")
	var failures []string
	rp, err := oidc.New(oidc.Options{Org: gateway.DefaultOrg, Store: st, PublicURL: "https://app.example", PathPrefix: "/gatehouse", Issuer: op.Issuer,
		ClientID: oidcoptest.ClientID, ClientSecret: oidcoptest.ClientSecret,
		Complete: func(w http.ResponseWriter, r *http.Request, _ gateway.Identity, _ login.Intent) {
			w.WriteHeader(http.StatusNoContent)
		},
		Fail: func(w http.ResponseWriter, r *http.Request, status int, reason, message string) {
			failures = append(failures, reason)
			http.Error(w, message, status)
		}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	rp.Mount(mux)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "https://app.example/gatehouse/oidc/login?return=/", nil))
	cookies := w.Result().Cookies()
	if w.Code != http.StatusFound || len(cookies) != 1 {
		t.Fatalf("login: %d with cookies %v", w.Code, cookies)
	}
	c := cookies[0]
	if !strings.HasPrefix(c.Name, "__Host-gatehouse_oidc_state_") || c.Path != "/" || c.Domain != "" || !c.Secure || !c.HttpOnly {
		t.Fatalf("state cookie %s: want __Host-, Path=/, no Domain, Secure, HttpOnly", c.String())
	}
	to, err := url.Parse(w.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	state := to.Query().Get("state")
	if state == "" || !strings.HasSuffix(c.Name, state) {
		t.Fatalf("the cookie %s does not name the state %q", c.Name, state)
	}
	planted := httptest.NewRequest("GET", "https://app.example/gatehouse/oidc/callback?code=x&state="+url.QueryEscape(state), nil)
	planted.AddCookie(&http.Cookie{Name: strings.TrimPrefix(c.Name, "__Host-"), Value: "1"})
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, planted)
	if w.Code == http.StatusNoContent || len(failures) != 1 || failures[0] != "invalid_state" {
		t.Fatalf("a plain-named state cookie was taken: %d, failures %v", w.Code, failures)
	}
}

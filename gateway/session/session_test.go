package session_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/session"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	store *bolt.Store
	svc   *provision.Service
	clk   *clock
	m     *session.Manager
	user  *gateway.User
}

func newEnv(t *testing.T, secure bool) *env {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	clk := &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	svc := provision.New(s, clk, provision.Policy{Method: gateway.SourceManual, DefaultPool: "default", DefaultRole: "user"})
	u, err := svc.CreateUser(context.Background(), provision.Meta{Org: gateway.DefaultOrg, Source: gateway.SourceManual},
		&gateway.User{UserName: "ada@example.com", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	m := session.New(session.Options{LegacyOrg: gateway.DefaultOrg, Store: s, Idle: time.Hour, Absolute: 8 * time.Hour, Secure: secure, Clock: clk})
	return &env{store: s, svc: svc, clk: clk, m: m, user: u}
}

// login starts a session and returns the cookie the browser got.
func (e *env) login(t *testing.T, prior *http.Cookie) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/", nil)
	if prior != nil {
		r.AddCookie(prior)
	}
	if _, err := e.m.Start(context.Background(), w, r, gateway.DefaultOrg, e.user.ID, "saml"); err != nil {
		t.Fatal(err)
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("cookies: %v", cs)
	}
	return cs[0]
}

func (e *env) current(c *http.Cookie) (*gateway.User, error) {
	r := httptest.NewRequest("GET", "/", nil)
	if c != nil {
		r.AddCookie(c)
	}
	_, u, err := e.m.Current(context.Background(), r)
	return u, err
}

func TestCookieAttributes(t *testing.T) {
	e := newEnv(t, true)
	c := e.login(t, nil)
	if c.Name != "__Host-gatehouse_session" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
		t.Fatalf("cookie %+v", c)
	}
	if len(c.Value) < 40 {
		t.Fatalf("token too short: %d", len(c.Value))
	}
	// The store keeps a hash, never the token.
	n, _ := e.store.Sessions().Count(context.Background(), gateway.DefaultOrg)
	if _, err := e.store.Sessions().Get(context.Background(), gateway.DefaultOrg, c.Value); gateway.ErrorCodeOf(err) != gateway.ErrNotFound || n != 1 {
		t.Fatalf("the token itself is a key of the store (%v, %d sessions)", err, n)
	}
	plain := newEnv(t, false).login(t, nil)
	if plain.Name != "gatehouse_session" || plain.Secure || !plain.HttpOnly {
		t.Fatalf("development cookie %+v", plain)
	}
}

func TestSessionLifetime(t *testing.T) {
	e := newEnv(t, true)
	c := e.login(t, nil)
	if u, err := e.current(c); err != nil || u.ID != e.user.ID {
		t.Fatalf("current: %v %v", u, err)
	}
	for _, bad := range []*http.Cookie{nil, {Name: c.Name, Value: "forged"}, {Name: c.Name, Value: ""}} {
		if _, err := e.current(bad); !session.SignedOut(err) {
			t.Fatalf("cookie %+v: %v", bad, err)
		}
	}
	// Activity keeps it alive past the idle timeout, up to the absolute end.
	for range 7 {
		e.clk.add(59 * time.Minute)
		if _, err := e.current(c); err != nil {
			t.Fatalf("active session ended early: %v", err)
		}
	}
	e.clk.add(59 * time.Minute) // 7h52m after login, still active
	if _, err := e.current(c); err != nil {
		t.Fatal(err)
	}
	e.clk.add(10 * time.Minute) // past 8h
	if _, err := e.current(c); !session.SignedOut(err) {
		t.Fatalf("past the absolute end: %v", err)
	}
	// Idle.
	c2 := e.login(t, nil)
	e.clk.add(61 * time.Minute)
	if _, err := e.current(c2); !session.SignedOut(err) {
		t.Fatalf("idle: %v", err)
	}
	if n, _ := e.store.Sessions().Count(context.Background(), gateway.DefaultOrg); n != 0 {
		t.Fatalf("ended sessions are kept: %d", n)
	}
}

func TestNewTokenAtEveryLoginAndLogout(t *testing.T) {
	e := newEnv(t, true)
	first := e.login(t, nil)
	second := e.login(t, first)
	if first.Value == second.Value {
		t.Fatal("a login kept the old token")
	}
	if _, err := e.current(first); !session.SignedOut(err) {
		t.Fatalf("the token from before the login still works: %v", err)
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/logout", nil)
	r.AddCookie(second)
	if err := e.m.End(context.Background(), w, r); err != nil {
		t.Fatal(err)
	}
	if set := w.Header().Get("Set-Cookie"); !strings.Contains(set, "Max-Age=0") {
		t.Fatalf("logout does not clear the cookie: %s", set)
	}
	if _, err := e.current(second); !session.SignedOut(err) {
		t.Fatalf("after logout: %v", err)
	}
}

// TestDeactivationEndsSessions: a user deactivated (or deleted) by SCIM
// is signed out at their next request.
func TestDeactivationEndsSessions(t *testing.T) {
	e := newEnv(t, true)
	c := e.login(t, nil)
	other := e.login(t, nil)
	m := provision.Meta{Org: gateway.DefaultOrg, Source: gateway.SourceManual}
	if _, err := e.svc.UpdateUser(context.Background(), m, e.user.ID, 0, func(u *gateway.User) (*gateway.User, error) {
		u.Active = false
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, ck := range []*http.Cookie{c, other} {
		if _, err := e.current(ck); !session.SignedOut(err) {
			t.Fatalf("a deactivated user's session still works: %v", err)
		}
	}
	if n, _ := e.store.Sessions().Count(context.Background(), gateway.DefaultOrg); n != 0 {
		t.Fatalf("a deactivated user keeps %d sessions", n)
	}
}

// TestSessionsBelongToOneOrganization: the token names its organization,
// a token edited to name another is found nowhere, a token from before
// organizations is the legacy organization's, and a browser signed in to
// one organization that signs in to another ends the first session.
func TestSessionsBelongToOneOrganization(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	const acme gateway.OrgID = "acme"
	if _, err := e.svc.CreateOrg(ctx, provision.Operator{Actor: gateway.Actor{Kind: "token", ID: "operator"}}, provision.OrgSpec{ID: acme, Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	ada, err := e.svc.CreateUser(ctx, provision.Meta{Org: acme, Source: gateway.SourceManual}, &gateway.User{UserName: "ada@acme.com", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	start := func(org gateway.OrgID, userID string, prior *http.Cookie) *http.Cookie {
		t.Helper()
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/", nil)
		if prior != nil {
			r.AddCookie(prior)
		}
		se, err := e.m.Start(ctx, w, r, org, userID, "oidc")
		if err != nil || se.Org != org {
			t.Fatalf("start in %s: %+v %v", org, se, err)
		}
		return w.Result().Cookies()[0]
	}
	inAcme := start(acme, ada.ID, nil)
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(inAcme)
	se, u, err := e.m.Current(ctx, r)
	if err != nil || se.Org != acme || u.ID != ada.ID {
		t.Fatalf("current: %+v %v %v", se, u, err)
	}
	_, random, _ := strings.Cut(inAcme.Value, ".")
	for _, forged := range []string{"default." + random, random, "nope." + random, "Acme." + random, "." + random} {
		if _, err := e.current(&http.Cookie{Name: inAcme.Name, Value: forged}); !session.SignedOut(err) {
			t.Fatalf("token %q edited to name another organization: %v", forged, err)
		}
	}
	// A token without an organization (from before they were named).
	legacy := "legacy-token-without-an-organization"
	sum := sha256.Sum256([]byte(legacy))
	now := e.clk.Now()
	if err := e.store.Sessions().Create(ctx, gateway.Session{ID: hex.EncodeToString(sum[:]), Org: gateway.DefaultOrg, UserID: e.user.ID,
		Created: now, LastSeen: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if u, err := e.current(&http.Cookie{Name: inAcme.Name, Value: legacy}); err != nil || u.ID != e.user.ID {
		t.Fatalf("a session from before organizations: %v %v", u, err)
	}
	// Signing in to the default organization ends the Acme session.
	start(gateway.DefaultOrg, e.user.ID, inAcme)
	if n, _ := e.store.Sessions().Count(ctx, acme); n != 0 {
		t.Fatalf("the session in the other organization is kept: %d", n)
	}
	if _, err := e.m.Start(ctx, httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), "", e.user.ID, "oidc"); err == nil {
		t.Fatal("a session without an organization was started")
	}
}

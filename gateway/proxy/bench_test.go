package proxy_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/proxy"
	"github.com/gatehouse-id/gatehouse/gateway/session"
	"github.com/gatehouse-id/gatehouse/gateway/signer"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
)

// BenchmarkProxyAccess measures a signed-in request through the proxy
// (in process, to an upstream on loopback) as before access existed (one
// pool, no rules), and with the person in 50 pools and a table of 100
// rules none of which matches (every one looked at); and the auth
// endpoint's answer to a question about the 50th pool.
//
//	go test ./gateway/proxy -run XXX -bench ProxyAccess -benchmem
func BenchmarkProxyAccess(b *testing.B) {
	ctx := context.Background()
	store, err := bolt.Open(filepath.Join(b.TempDir(), "p.db"), bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	svc := provision.New(store, nil, provision.Policy{Method: gateway.SourceManual, DefaultPool: "default", DefaultRole: "user"})
	mg := provision.Manager{Org: gateway.DefaultOrg, Actor: gateway.Actor{Kind: gateway.ActorToken, ID: "bench"}}
	if _, err := svc.PutRole(ctx, mg, "debugger", 0, []string{"agents.debug", "agents.read", "app.admin"}); err != nil {
		b.Fatal(err)
	}
	pools := []string{"default"}
	if _, err := svc.CreatePool(ctx, gateway.DefaultOrg, mg.Actor, "", "default", "Default", ""); err != nil {
		b.Fatal(err)
	}
	for i := 1; i < 50; i++ {
		id := fmt.Sprintf("pool-%02d", i)
		if _, err := svc.CreatePool(ctx, gateway.DefaultOrg, mg.Actor, "", id, id, "debugger"); err != nil {
			b.Fatal(err)
		}
		pools = append(pools, id)
	}
	meta := provision.Meta{Org: gateway.DefaultOrg, Source: gateway.SourceManual}
	one, err := svc.CreateUser(ctx, meta, &gateway.User{UserName: "one@example.com", Active: true, Pools: []string{"default"}})
	if err != nil {
		b.Fatal(err)
	}
	fifty, err := svc.CreateUser(ctx, meta, &gateway.User{UserName: "fifty@example.com", Active: true, Pools: pools})
	if err != nil {
		b.Fatal(err)
	}
	var rules []proxy.Rule
	for i := range 100 {
		rules = append(rules, proxy.Rule{Path: fmt.Sprintf("/area-%03d/*", i), Permission: "agents.debug", PoolSegment: 2})
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer up.Close()
	target, _ := url.Parse(up.URL)
	sess := session.New(session.Options{LegacyOrg: gateway.DefaultOrg, Store: store})
	sig, err := signer.New(ctx, signer.Options{Org: gateway.DefaultOrg, Store: store, Issuer: "https://app.example.com/gatehouse", Audience: "https://app.example.com"})
	if err != nil {
		b.Fatal(err)
	}
	cookie := func(u *gateway.User) *http.Cookie {
		w := httptest.NewRecorder()
		if _, err := sess.Start(ctx, w, httptest.NewRequest("GET", "/", nil), gateway.DefaultOrg, u.ID, "saml"); err != nil {
			b.Fatal(err)
		}
		return w.Result().Cookies()[0]
	}
	login := func(string) string { return "/login" }
	before := proxy.New(proxy.Options{Upstream: target, Sessions: sess, Signer: sig, Store: store, LoginURL: login})
	now := proxy.New(proxy.Options{Upstream: target, Sessions: sess, Signer: sig, Store: store, LoginURL: login, Access: svc.Access, AccessVersion: svc.AccessVersion, Rules: rules})
	serve := func(b *testing.B, h http.Handler, c *http.Cookie, path string, want int) {
		for b.Loop() {
			req := httptest.NewRequest("GET", path, nil)
			req.AddCookie(c)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != want {
				b.Fatalf("%s: %d", path, w.Code)
			}
		}
	}
	b.Run("before-access/1-pool", func(b *testing.B) { serve(b, before, cookie(one), "/reports/2026", 200) })
	b.Run("before-access/50-pools", func(b *testing.B) { serve(b, before, cookie(fifty), "/reports/2026", 200) })
	b.Run("access/1-pool/no-rules", func(b *testing.B) {
		serve(b, proxy.New(proxy.Options{Upstream: target, Sessions: sess, Signer: sig, Store: store, LoginURL: login, Access: svc.Access, AccessVersion: svc.AccessVersion}), cookie(one), "/reports/2026", 200)
	})
	b.Run("access/50-pools/100-rules", func(b *testing.B) { serve(b, now, cookie(fifty), "/reports/2026", 200) })
	// The auth endpoint does the gateway's whole part of a proxied request
	// (session, user, access, rules, token, headers) without the
	// forwarding: its cost is the proxy's own overhead.
	b.Run("auth/before-access/50-pools", func(b *testing.B) {
		serve(b, before.Auth("/gatehouse/auth"), cookie(fifty), "/gatehouse/auth", 200)
	})
	auth := now.Auth("/gatehouse/auth")
	b.Run("auth/access/50-pools", func(b *testing.B) { serve(b, auth, cookie(fifty), "/gatehouse/auth", 200) })
	b.Run("auth/50-pools/question", func(b *testing.B) {
		serve(b, auth, cookie(fifty), "/gatehouse/auth?pool=pool-49&permission=agents.debug", 200)
	})
	b.Run("auth/50-pools/100-rules", func(b *testing.B) { serve(b, auth, cookie(fifty), "/gatehouse/auth/area-099/pool-49/x", 200) })
	// The worst case: 100 rules under one first segment, all looked at.
	var samePrefix []proxy.Rule
	for i := range 100 {
		samePrefix = append(samePrefix, proxy.Rule{Path: fmt.Sprintf("/area/%03d/*", i), Permission: "agents.debug", PoolSegment: 3})
	}
	worst := proxy.New(proxy.Options{Upstream: target, Sessions: sess, Signer: sig, Store: store, LoginURL: login, Access: svc.Access,
		AccessVersion: svc.AccessVersion, Rules: samePrefix}).Auth("/gatehouse/auth")
	b.Run("auth/50-pools/100-rules-one-prefix", func(b *testing.B) { serve(b, worst, cookie(fifty), "/gatehouse/auth/area/099/pool-49/x", 200) })
	// A person in 2,000 groups: within the 8 KiB budget (the groups move
	// to the groups URL), and without one (all in the headers), with the
	// memberships cached as the proxy keeps them (session.cache_ttl).
	many, err := svc.CreateUser(ctx, meta, &gateway.User{UserName: "many@example.com", Active: true, Pools: []string{"default"}})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 2000 {
		if _, err := svc.CreateGroup(ctx, meta, &gateway.Group{DisplayName: fmt.Sprintf("Engineering Platform Team %04d (EMEA)", i)}, []gateway.Member{{UserID: many.ID}}); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name   string
		budget int
	}{{"auth/2000-groups/8KiB-budget", 0}, {"auth/2000-groups/no-budget", 1 << 20}} {
		cached := proxy.New(proxy.Options{Upstream: target, Sessions: sess, Signer: sig, Store: store, LoginURL: login, Access: svc.Access,
			AccessVersion: svc.AccessVersion, CacheTTL: time.Minute, HeaderBudget: c.budget, GroupsURL: "https://app.example.com/gatehouse/identity/groups"}).Auth("/gatehouse/auth")
		b.Run(c.name, func(b *testing.B) { serve(b, cached, cookie(many), "/gatehouse/auth", 200) })
	}
}

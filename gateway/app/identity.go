package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/admin"
	"github.com/gatehouse-id/gatehouse/gateway/console"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/metrics"
	"github.com/gatehouse-id/gatehouse/gateway/outbox"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/proxy"
	"github.com/gatehouse-id/gatehouse/gateway/session"
	"github.com/gatehouse-id/gatehouse/gateway/signer"
)

// identityRoutes mounts what signed-in browsers use: the JWKS of the
// identity token, logout, the auth_request endpoint, the sign-in entry
// point and, when upstream.url is set, the proxy to the app.
func (a *App) identityRoutes(ctx context.Context, mux *http.ServeMux) error {
	prefix := a.cfg.PathPrefix
	audience := a.cfg.Upstream.Audience
	if audience == "" {
		audience = a.publicURL
	}
	sig, err := signer.New(ctx, signer.Options{Store: a.store, Org: gateway.DefaultOrg,
		Issuer: a.publicURL + prefix, Audience: audience})
	if err != nil {
		return fmt.Errorf("identity token signer: %w", err)
	}
	metrics.RegisterSessionCount(a.registry, func() float64 {
		n, err := a.store.Sessions().Count(context.Background(), gateway.DefaultOrg)
		if err != nil {
			return math.NaN()
		}
		return float64(n)
	})
	csrfKey, err := a.store.Keys().PutIfAbsent(ctx, gateway.DefaultOrg, "csrf", randomKey())
	if err != nil {
		return fmt.Errorf("csrf key: %w", err)
	}
	a.sessions = session.New(session.Options{Store: a.store, Org: gateway.DefaultOrg,
		Idle: time.Duration(a.cfg.Session.IdleTimeout), Absolute: time.Duration(a.cfg.Session.AbsoluteTimeout),
		Secure: strings.HasPrefix(a.publicURL, "https://"), CSRFKey: csrfKey})
	mux.Handle(prefix+admin.Base+"/", admin.New(admin.Options{Service: a.service, Store: a.store, Sessions: a.sessions,
		Delivery: lazyDelivery{a}, Org: gateway.DefaultOrg, PathPrefix: prefix, BootstrapToken: a.cfg.Admin.Token.Value(),
		SettingsFromFile: a.cfg.Admin.IdentitySource == provision.SettingsFromFile, SCIMTokenGrace: time.Duration(a.cfg.Admin.SCIMTokenGrace),
		SCIMBaseURL: a.SCIMBaseURL(), InviteBase: a.publicURL + prefix + "/invite", InvitationTTL: time.Duration(a.cfg.Admin.InvitationTTL),
		Metrics: a.metrics, Logger: a.log}))
	loginURL := func(returnTo string) string { return prefix + "/login?return=" + url.QueryEscape(returnTo) }

	mux.Handle("GET "+prefix+"/.well-known/jwks.json", sig.JWKS())
	mux.HandleFunc("GET "+prefix+"/logout", a.logoutPage)
	mux.HandleFunc("POST "+prefix+"/logout", a.logout)
	// The sign-in routes follow the identity settings: a manager's change
	// swaps them at once, without a restart.
	st, _ := a.service.Settings(gateway.DefaultOrg)
	if err := a.applySSO(ctx, st, true); err != nil {
		return err
	}
	a.service.OnSettings(func(org gateway.OrgID, st provision.Settings) { _ = a.applySSO(context.Background(), st, false) })
	a.service.SetSettingsCheck(func(ctx context.Context, org gateway.OrgID, next gateway.IdentitySettings) error {
		routes, err := a.buildSSO(ctx, next)
		if err != nil {
			a.log.WarnContext(ctx, "identity settings refused: the identity provider's settings cannot be used", "error", err)
			return err
		}
		routes.stop()
		return nil
	})
	a.inviteRoutes(mux)
	con, err := console.New(console.Options{Service: a.service, Store: a.store, Sessions: a.sessions, Delivery: lazyDelivery{a},
		Org: gateway.DefaultOrg, PathPrefix: prefix, SCIMBaseURL: a.SCIMBaseURL(), InviteBase: a.publicURL + prefix + "/invite",
		InvitationTTL: time.Duration(a.cfg.Admin.InvitationTTL), SCIMTokenGrace: time.Duration(a.cfg.Admin.SCIMTokenGrace),
		SettingsFromFile: a.cfg.Admin.IdentitySource == provision.SettingsFromFile, LastSignIn: a.lastSignIns.get, Logger: a.log})
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	mux.Handle(prefix+"/console", con)
	mux.Handle(prefix+"/console/", con)
	var sso http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.sso.Load().handler.ServeHTTP(w, r) })
	sso = a.limitSignInStarts(sso)
	mux.Handle(prefix+"/saml/", sso)
	mux.Handle(prefix+"/oidc/", sso)
	mux.Handle(prefix+"/login", sso)
	if a.cfg.Upstream.URL == "" {
		return nil
	}
	target, err := url.Parse(a.cfg.Upstream.URL)
	if err != nil {
		return fmt.Errorf("upstream.url: %w", err)
	}
	p := proxy.New(proxy.Options{Upstream: target, Sessions: a.sessions, Signer: sig, Store: a.store,
		Org: gateway.DefaultOrg, LoginURL: loginURL, Logger: a.log,
		ObserveUpstream: func(elapsed time.Duration) { a.metrics.ProxyUpstream.Observe(elapsed.Seconds()) }})
	mux.Handle(prefix+"/auth", p.Auth())
	mux.Handle("/", a.countProxied(p))
	return nil
}

// logoutPage asks for confirmation: a link (or a cross-site page) cannot
// end a session by itself, only the form this page posts with the
// session's CSRF token.
func (a *App) logoutPage(w http.ResponseWriter, r *http.Request) {
	se, _, err := a.sessions.Current(r.Context(), r)
	if err != nil {
		page(w, http.StatusOK, "Signed out", "You are not signed in to this application.", "")
		return
	}
	confirmLogout(w, http.StatusOK, a.cfg.PathPrefix, a.sessions.CSRFToken(se), "")
}

// logout ends the session when the sign-out comes from this site (the
// browser says so, and the form carries the session's CSRF token).
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	se, _, err := a.sessions.Current(r.Context(), r)
	if err != nil {
		page(w, http.StatusOK, "Signed out", "You are not signed in to this application.", "")
		return
	}
	if a.crossSite.Check(r) != nil {
		confirmLogout(w, http.StatusForbidden, a.cfg.PathPrefix, a.sessions.CSRFToken(se), "Another site asked to sign you out; you are still signed in.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if !a.sessions.ValidCSRF(se, r.PostFormValue("csrf")) {
		confirmLogout(w, http.StatusForbidden, a.cfg.PathPrefix, a.sessions.CSRFToken(se), "This sign-out did not come from the gateway's own page; you are still signed in.")
		return
	}
	if err := a.sessions.End(r.Context(), w, r); err != nil {
		a.log.ErrorContext(r.Context(), "logout", "error", err)
	}
	a.log.InfoContext(r.Context(), "signed out", "user", se.UserID)
	page(w, http.StatusOK, "Signed out", "You are signed out of this application.", "")
}

var confirmLogoutTemplate = template.Must(template.New("logout").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign out · Gatehouse</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1a1a1a}h1{font-size:1.4rem}button{font:inherit;padding:.4rem 1rem}</style>
</head><body><main><h1>Sign out?</h1>{{with .Notice}}<p role="alert">{{.}}</p>{{end}}
<form method="post" action="{{.Prefix}}/logout"><input type="hidden" name="csrf" value="{{.CSRF}}"><button type="submit" autofocus>Sign out</button></form>
</main></body></html>
`))

func confirmLogout(w http.ResponseWriter, status int, prefix, csrf, notice string) {
	noFraming(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = confirmLogoutTemplate.Execute(w, struct{ Prefix, CSRF, Notice string }{prefix, csrf, notice})
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Gatehouse</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1a1a1a}h1{font-size:1.4rem}</style>
</head><body><main><h1>{{.Title}}</h1><p>{{.Message}}</p>{{with .Hint}}<p>{{.}}</p>{{end}}</main></body></html>
`))

// page writes a small HTML page (errors a person sees, in words).
func page(w http.ResponseWriter, status int, title, message, hint string) {
	noFraming(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, struct{ Title, Message, Hint string }{title, message, hint})
}

// countProxied counts the requests to the app by status class.
func (a *App) countProxied(next http.Handler) http.Handler {
	classes := [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &httpx.StatusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		status := rec.Status
		if status == 0 {
			status = http.StatusOK
		}
		class := "other"
		if i := status/100 - 1; i >= 0 && i < len(classes) {
			class = classes[i]
		}
		a.metrics.ProxyRequests.WithLabelValues(class).Inc()
	})
}

func randomKey() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// lazyDelivery is the outbox dispatcher as the admin API sees it: the
// dispatcher starts after the routes are built.
type lazyDelivery struct{ a *App }

func (d lazyDelivery) Status(ctx context.Context) ([]outbox.Status, error) {
	if d.a.dispatcher == nil {
		return nil, nil
	}
	return d.a.dispatcher.Status(ctx)
}

func (d lazyDelivery) DeadLetters(ctx context.Context, adapter string) ([]gateway.DeadLetter, error) {
	if d.a.dispatcher == nil {
		return nil, gateway.Errorf(gateway.ErrNotFound, "delivery is not running")
	}
	return d.a.dispatcher.DeadLetters(ctx, adapter)
}

func (d lazyDelivery) Replay(ctx context.Context, adapter string, from uint64) (int, error) {
	if d.a.dispatcher == nil {
		return 0, gateway.Errorf(gateway.ErrUnavailable, "delivery is not running")
	}
	return d.a.dispatcher.Replay(ctx, adapter, from)
}

// noFraming keeps the gateway's own pages out of other sites' frames
// (a framed "Accept" or "Sign in" button could be clicked by a victim).
func noFraming(w http.ResponseWriter) {
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
}

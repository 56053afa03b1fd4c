package app

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
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
	sig, err := signer.New(ctx, signer.Options{Store: a.store, Tenant: gateway.DefaultTenant,
		Issuer: a.publicURL + prefix, Audience: audience})
	if err != nil {
		return fmt.Errorf("identity token signer: %w", err)
	}
	a.sessions = session.New(session.Options{Store: a.store, Tenant: gateway.DefaultTenant,
		Idle: time.Duration(a.cfg.Session.IdleTimeout), Absolute: time.Duration(a.cfg.Session.AbsoluteTimeout),
		Secure: strings.HasPrefix(a.publicURL, "https://")})
	loginURL := func(returnTo string) string { return prefix + "/login?return=" + url.QueryEscape(returnTo) }

	mux.Handle("GET "+prefix+"/.well-known/jwks.json", sig.JWKS())
	mux.HandleFunc(prefix+"/logout", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if err := a.sessions.End(r.Context(), w, r); err != nil {
			a.log.ErrorContext(r.Context(), "logout", "error", err)
		}
		page(w, http.StatusOK, "Signed out", "You are signed out of this application.", "")
	})
	mux.HandleFunc("GET "+prefix+"/login", func(w http.ResponseWriter, r *http.Request) {
		// SAML and OIDC sign-in are being built (issue 10); until then the
		// page says what to configure rather than a bare 404.
		page(w, http.StatusServiceUnavailable, "Sign-in is not available",
			fmt.Sprintf("Single sign-on is not available on this gateway yet: sso.protocol is %q.", a.cfg.SSO.Protocol),
			"An administrator sets sso.protocol (GATEHOUSE_SSO_PROTOCOL) to saml or oidc with the identity provider's settings.")
	})
	if a.cfg.Upstream.URL == "" {
		return nil
	}
	target, err := url.Parse(a.cfg.Upstream.URL)
	if err != nil {
		return fmt.Errorf("upstream.url: %w", err)
	}
	p := proxy.New(proxy.Options{Upstream: target, Sessions: a.sessions, Signer: sig, Store: a.store,
		Tenant: gateway.DefaultTenant, LoginURL: loginURL, Logger: a.log})
	mux.Handle(prefix+"/auth", p.Auth())
	mux.Handle("/", p)
	return nil
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Gatehouse</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1a1a1a}h1{font-size:1.4rem}</style>
</head><body><main><h1>{{.Title}}</h1><p>{{.Message}}</p>{{with .Hint}}<p>{{.}}</p>{{end}}</main></body></html>
`))

// page writes a small HTML page (errors a person sees, in words).
func page(w http.ResponseWriter, status int, title, message, hint string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, struct{ Title, Message, Hint string }{title, message, hint})
}

// sessionSweeper deletes ended sessions now and then.
type sessionSweeper struct {
	stop chan struct{}
	done sync.WaitGroup
}

func (a *App) startSessionSweeper() {
	sw := &sessionSweeper{stop: make(chan struct{})}
	idle := time.Duration(a.cfg.Session.IdleTimeout)
	sw.done.Go(func() {
		t := time.NewTicker(10 * time.Minute)
		defer t.Stop()
		for {
			now := time.Now().UTC()
			if _, err := a.store.Sessions().Expire(context.Background(), gateway.DefaultTenant, now, now.Add(-idle)); err != nil {
				a.log.Warn("sessions: expiry sweep failed", "error", err)
			}
			select {
			case <-sw.stop:
				return
			case <-t.C:
			}
		}
	})
	a.workers = append(a.workers, sw)
}

func (sw *sessionSweeper) Stop(ctx context.Context) error {
	close(sw.stop)
	sw.done.Wait()
	return nil
}

package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/admin"
	"github.com/gatehouse-id/gatehouse/gateway/console"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/login"
	"github.com/gatehouse-id/gatehouse/gateway/metrics"
	"github.com/gatehouse-id/gatehouse/gateway/outbox"
	"github.com/gatehouse-id/gatehouse/gateway/pages"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/proxy"
	"github.com/gatehouse-id/gatehouse/gateway/session"
	"github.com/gatehouse-id/gatehouse/gateway/setup"
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
	metrics.RegisterSSOOrgsBuilt(a.registry, func() float64 { return float64(a.sso.size()) })
	csrfKey, err := a.store.Keys().PutIfAbsent(ctx, gateway.DefaultOrg, "csrf", randomKey())
	if err != nil {
		return fmt.Errorf("csrf key: %w", err)
	}
	a.sessions = session.New(session.Options{Store: a.store, LegacyOrg: gateway.DefaultOrg,
		Idle: time.Duration(a.cfg.Session.IdleTimeout), Absolute: time.Duration(a.cfg.Session.AbsoluteTimeout),
		Secure: strings.HasPrefix(a.publicURL, "https://"), CSRFKey: csrfKey, CacheTTL: time.Duration(a.cfg.Session.CacheTTL)})
	mux.Handle(prefix+admin.Base+"/", admin.New(admin.Options{Service: a.service, Store: a.store, Sessions: a.sessions,
		Delivery: lazyDelivery{a}, Org: gateway.DefaultOrg, PathPrefix: prefix, BootstrapToken: a.cfg.Admin.Token.Value(),
		SettingsFromFile: a.cfg.Admin.IdentitySource == provision.SettingsFromFile, SCIMTokenGrace: time.Duration(a.cfg.Admin.SCIMTokenGrace),
		PublicRoot:    a.publicURL + prefix,
		InvitationTTL: time.Duration(a.cfg.Admin.InvitationTTL), Metrics: a.metrics, Logger: a.log}))
	loginURL := func(returnTo string) string { return prefix + "/login?return=" + url.QueryEscape(returnTo) }

	mux.Handle("GET "+prefix+"/.well-known/jwks.json", sig.JWKS())
	// Every sign-in ends in the funnel; each organization's sign-in in
	// force follows its identity settings.
	a.funnel = login.New(login.Options{UnprefixedOrg: gateway.DefaultOrg, Store: a.store, Service: a.service, Sessions: a.sessions, PathPrefix: prefix,
		Starter: a.funnelStarter, Metrics: a.metrics, Logger: a.log})
	// The default organization's sign-in is built at start (a mistake in
	// the file stops the gateway); the others' at their first sign-in. A
	// manager's change swaps them at once, without a restart.
	st, _ := a.service.Settings(gateway.DefaultOrg)
	if err := a.applySSO(ctx, gateway.DefaultOrg, a.sso.entry(gateway.DefaultOrg), st, true); err != nil {
		return err
	}
	a.service.OnOrgDeleted(func(org gateway.OrgID) {
		a.sso.drop(org)
		a.conns.forget(org)
		for _, m := range []interface{ DeleteLabelValues(...string) bool }{a.metrics.IdPCertificateExpiry, a.metrics.IdPMetadataRefreshed, a.metrics.IdPMetadataRefreshFailures} {
			m.DeleteLabelValues(string(org))
		}
	})
	a.service.OnSettings(func(org gateway.OrgID, st provision.Settings) {
		if e := a.sso.existing(org); e != nil {
			_ = a.applySSO(context.Background(), org, e, st, false)
		}
	})
	a.service.SetSettingsCheck(func(ctx context.Context, org gateway.OrgID, next gateway.IdentitySettings) error {
		routes, err := a.buildSSO(ctx, org, next)
		if err != nil {
			a.log.WarnContext(ctx, "identity settings refused: the identity provider's settings cannot be used", "org", string(org), "error", err)
			return err
		}
		routes.stop()
		return nil
	})
	// The pages that start sign-ins for an invitation, joining or a test,
	// and signing out.
	starts := http.NewServeMux()
	a.funnel.Mount(starts)
	for _, path := range []string{"/invite/", "/join", "/join/", "/login/", "/logout",
		"/o/{org}/invite/", "/o/{org}/join", "/o/{org}/join/", "/o/{org}/login/"} {
		mux.Handle(prefix+path, a.limitSignInStarts(starts))
	}
	// The setup link's pages, for a customer's IT admin.
	setupPages, err := setup.New(setup.Options{Service: a.service, Funnel: a.funnel, Starter: a.funnelStarter,
		PublicRoot: a.publicURL + prefix, PathPrefix: prefix, Assets: prefix + "/console/static",
		Secure: strings.HasPrefix(a.publicURL, "https://"), CSRFKey: csrfKey, SCIMTokenGrace: time.Duration(a.cfg.Admin.SCIMTokenGrace),
		SettingsFromFile: a.cfg.Admin.IdentitySource == provision.SettingsFromFile, Logger: a.log})
	if err != nil {
		return fmt.Errorf("setup pages: %w", err)
	}
	setupMux := http.NewServeMux()
	setupPages.Mount(setupMux)
	for _, path := range []string{"/setup", "/setup/", "/o/{org}/setup", "/o/{org}/setup/"} {
		mux.Handle(prefix+path, a.limitSignInStarts(setupMux))
	}
	con, err := console.New(console.Options{Service: a.service, Store: a.store, Sessions: a.sessions, Delivery: lazyDelivery{a},
		UnprefixedOrg: gateway.DefaultOrg, PathPrefix: prefix, PublicRoot: a.publicURL + prefix,
		InvitationTTL: time.Duration(a.cfg.Admin.InvitationTTL), SCIMTokenGrace: time.Duration(a.cfg.Admin.SCIMTokenGrace), Mails: a.cfg.Email.SMTP.Host != "",
		SettingsFromFile: a.cfg.Admin.IdentitySource == provision.SettingsFromFile, LastSignIn: a.funnel.LastTestSignIn,
		IdPCertificateExpiry: a.idpCertificateExpiry, ConnectionHealth: a.connectionHealth, OperatorToken: a.cfg.Admin.Token.Value(), CSRFKey: csrfKey,
		Secure: strings.HasPrefix(a.publicURL, "https://"), Logger: a.log})
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	mux.Handle(prefix+"/console", con)
	mux.Handle(prefix+"/console/", con)
	// Each organization's routes in force, after checking its stored
	// settings' version: settings stored elsewhere (another gateway, a
	// command) swap them before this request uses them.
	serveSSO := func(w http.ResponseWriter, r *http.Request, org gateway.OrgID) {
		routes, err := a.ssoFor(r.Context(), org)
		if err != nil {
			a.log.ErrorContext(r.Context(), "sign-in: the organization's sign-in could not be built", "org", string(org), "error", err)
			unavailableSSO().ServeHTTP(w, r)
			return
		}
		routes.handler.ServeHTTP(w, r)
	}
	defaultSSO := a.limitSignInStarts(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveSSO(w, r, gateway.DefaultOrg)
	}))
	mux.Handle(prefix+"/saml/", defaultSSO)
	mux.Handle(prefix+"/oidc/", defaultSSO)
	mux.Handle(prefix+"/global-token-revocation", defaultSSO)
	mux.Handle(prefix+"/login", a.funnel.Discover(defaultSSO))
	orgSSO := a.limitSignInStarts(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		org := gateway.OrgID(r.PathValue("org"))
		if err := a.service.CheckOrg(r.Context(), org); err != nil {
			if code := gateway.ErrorCodeOf(err); code != gateway.ErrNotFound && code != gateway.ErrInvalid {
				a.log.ErrorContext(r.Context(), "sign-in: reading the organization", "org", string(org), "error", err)
				unavailableSSO().ServeHTTP(w, r)
				return
			}
			pages.Show(w, http.StatusNotFound, pages.Message{Title: "No such organization",
				Message: "This link names an organization the application does not have.",
				Hint:    "Check the link, or ask your administrator for your organization's sign-in link.", RequestID: httpx.RequestID(r.Context())})
			return
		}
		serveSSO(w, r, org)
	}))
	for _, path := range []string{"/o/{org}/saml/", "/o/{org}/oidc/", "/o/{org}/login", "/o/{org}/global-token-revocation"} {
		mux.Handle(prefix+path, orgSSO)
	}
	if a.cfg.Upstream.URL == "" {
		return nil
	}
	target, err := url.Parse(a.cfg.Upstream.URL)
	if err != nil {
		return fmt.Errorf("upstream.url: %w", err)
	}
	rules := make([]proxy.Rule, len(a.cfg.Proxy.Rules))
	for i, r := range a.cfg.Proxy.Rules {
		rules[i] = proxy.Rule{Path: r.Path, Permission: r.Permission, Pool: r.Pool, PoolSegment: r.PoolSegment, PoolHeader: r.PoolHeader}
	}
	groupsPath := prefix + "/identity/groups"
	p := proxy.New(proxy.Options{Upstream: target, Sessions: a.sessions, Signer: sig, Store: a.store, Access: a.service.Access, AccessVersion: a.service.AccessVersion, Rules: rules,
		LoginURL: loginURL, Logger: a.log, CacheTTL: time.Duration(a.cfg.Session.CacheTTL),
		Groups: a.cfg.Proxy.Groups, MappedGroup: a.service.MappedGroup, HeaderBudget: a.cfg.Proxy.HeaderBudget, GroupsURL: a.publicURL + groupsPath,
		VerifyAssertion: func(token string) (gateway.OrgID, string, error) {
			c, err := sig.Verify(token)
			if err != nil {
				return "", "", err
			}
			return gateway.OrgID(c.Org), c.Subject, nil
		},
		ObserveUpstream: func(elapsed time.Duration) { a.metrics.ProxyUpstream.Observe(elapsed.Seconds()) }})
	mux.Handle("GET "+groupsPath, p.GroupsHandler())
	auth := p.Auth(prefix + "/auth")
	mux.Handle(prefix+"/auth", auth)
	mux.Handle(prefix+"/auth/", auth)
	mux.Handle("/", a.countProxied(p))
	return nil
}

// idpCertificateExpiry is when the organization's SAML IdP's signing
// certificate expires (false: no SAML, or not known).
func (a *App) idpCertificateExpiry(ctx context.Context, org gateway.OrgID) (time.Time, bool) {
	routes, err := a.ssoFor(ctx, org)
	if err != nil {
		return time.Time{}, false
	}
	sp, ok := routes.starter.(interface{ IDPCertificateExpiry() (time.Time, bool) })
	if !ok {
		return time.Time{}, false
	}
	return sp.IDPCertificateExpiry()
}

// funnelStarter is the organization's sign-in in force, nil while its
// people do not sign in by SSO.
func (a *App) funnelStarter(ctx context.Context, org gateway.OrgID) (login.Starter, error) {
	routes, err := a.ssoFor(ctx, org)
	if err != nil {
		return nil, err
	}
	return routes.starter, nil
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

func (d lazyDelivery) Status(ctx context.Context, org gateway.OrgID) ([]outbox.Status, error) {
	if d.a.delivery == nil {
		return nil, nil
	}
	disp, err := d.a.delivery.of(ctx, org)
	if err != nil {
		return nil, err
	}
	return disp.Status(ctx)
}

func (d lazyDelivery) DeadLetters(ctx context.Context, org gateway.OrgID, adapter string) ([]gateway.DeadLetter, error) {
	disp, err := d.a.delivery.of(ctx, org)
	if err != nil {
		return nil, err
	}
	return disp.DeadLetters(ctx, adapter)
}

func (d lazyDelivery) Replay(ctx context.Context, org gateway.OrgID, adapter string, from uint64) (int, error) {
	disp, err := d.a.delivery.of(ctx, org)
	if err != nil {
		return 0, err
	}
	return disp.Replay(ctx, adapter, from)
}

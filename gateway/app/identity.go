package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/admin"
	"github.com/gatehouse-id/gatehouse/gateway/console"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/metrics"
	oidcrp "github.com/gatehouse-id/gatehouse/gateway/oidc"
	"github.com/gatehouse-id/gatehouse/gateway/outbox"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/proxy"
	samlsp "github.com/gatehouse-id/gatehouse/gateway/saml"
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
	metrics.RegisterSessionCount(a.registry, func() float64 {
		n, err := a.store.Sessions().Count(context.Background(), gateway.DefaultTenant)
		if err != nil {
			return math.NaN()
		}
		return float64(n)
	})
	csrfKey, err := a.store.Keys().PutIfAbsent(ctx, gateway.DefaultTenant, "csrf", randomKey())
	if err != nil {
		return fmt.Errorf("csrf key: %w", err)
	}
	a.sessions = session.New(session.Options{Store: a.store, Tenant: gateway.DefaultTenant,
		Idle: time.Duration(a.cfg.Session.IdleTimeout), Absolute: time.Duration(a.cfg.Session.AbsoluteTimeout),
		Secure: strings.HasPrefix(a.publicURL, "https://"), CSRFKey: csrfKey})
	mux.Handle(prefix+admin.Base+"/", admin.New(admin.Options{Service: a.service, Store: a.store, Sessions: a.sessions,
		Delivery: lazyDelivery{a}, Tenant: gateway.DefaultTenant, PathPrefix: prefix, BootstrapToken: a.cfg.Admin.Token.Value(),
		SettingsFromFile: a.cfg.Admin.IdentitySource == provision.SettingsFromFile, SCIMTokenGrace: time.Duration(a.cfg.Admin.SCIMTokenGrace),
		SCIMBaseURL: a.SCIMBaseURL(), InviteBase: a.publicURL + prefix + "/invite", InvitationTTL: time.Duration(a.cfg.Admin.InvitationTTL),
		Logger: a.log}))
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
	// The sign-in routes follow the identity settings: a manager's change
	// swaps them at once, without a restart.
	st, _ := a.service.Settings(gateway.DefaultTenant)
	if err := a.applySSO(ctx, st, true); err != nil {
		return err
	}
	a.service.OnSettings(func(tenant string, st provision.Settings) { _ = a.applySSO(context.Background(), st, false) })
	a.service.SetSettingsCheck(func(ctx context.Context, tenant string, next gateway.IdentitySettings) error {
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
		Tenant: gateway.DefaultTenant, PathPrefix: prefix, SCIMBaseURL: a.SCIMBaseURL(), InviteBase: a.publicURL + prefix + "/invite",
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
		Tenant: gateway.DefaultTenant, LoginURL: loginURL, Logger: a.log,
		ObserveUpstream: func(elapsed time.Duration) { a.metrics.ProxyUpstream.Observe(elapsed.Seconds()) }})
	mux.Handle(prefix+"/auth", p.Auth())
	mux.Handle("/", a.countProxied(p))
	return nil
}

// ssoRoutes are the sign-in routes of one version of the identity
// settings, and the background work they need (metadata refresh, or the
// retry of a build that failed).
type ssoRoutes struct {
	handler http.Handler
	workers []*periodic
	version uint64
}

func (r *ssoRoutes) stop() {
	for _, w := range r.workers {
		_ = w.Stop(context.Background())
	}
}

// applySSO builds the sign-in routes of st and puts them in force. Swaps
// are serialized and ordered by the settings' version: a change that
// finishes building late never replaces a newer one. At start-up (strict)
// a failure is returned; later it fails closed (sign-in shows an error
// page, never the previous IdP's routes) and the build is retried until
// it works or newer settings arrive.
func (a *App) applySSO(ctx context.Context, st provision.Settings, strict bool) error {
	a.ssoMu.Lock()
	defer a.ssoMu.Unlock()
	if cur := a.sso.Load(); a.ssoClosed || cur != nil && cur.version > st.Version {
		return nil
	}
	routes, err := a.buildSSO(ctx, st.IdentitySettings)
	if err != nil {
		if strict {
			return err
		}
		a.log.Error("sign-in: the identity settings in force could not be loaded; sign-in shows an error page and the gateway retries",
			"version", st.Version, "error", err)
		routes = &ssoRoutes{handler: unavailableSSO()}
		routes.workers = []*periodic{newPeriodic(30*time.Second, false, func(ctx context.Context) {
			if retry, err := a.buildSSO(ctx, st.IdentitySettings); err == nil {
				retry.stop()
				go func() { _ = a.applySSO(context.Background(), st, false) }()
			}
		})}
	}
	routes.version = st.Version
	for _, w := range routes.workers {
		w.start()
	}
	if old := a.sso.Swap(routes); old != nil {
		old.stop()
	}
	return nil
}

// stopSSO stops the routes' work for good (shutdown).
func (a *App) stopSSO() {
	a.ssoMu.Lock()
	defer a.ssoMu.Unlock()
	a.ssoClosed = true
	if routes := a.sso.Load(); routes != nil {
		routes.stop()
	}
}

func unavailableSSO() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page(w, http.StatusServiceUnavailable, "Sign-in is not available",
			"Single sign-on is misconfigured on this gateway, so nobody can sign in right now.",
			"An administrator fixes the identity settings; the gateway log says what is wrong.")
	})
}

// buildSSO makes the sign-in routes of st: the SAML SP or the OIDC RP and
// the {prefix}/login entry point, or a page saying sign-in is off. Its
// workers are not started.
func (a *App) buildSSO(ctx context.Context, st gateway.IdentitySettings) (*ssoRoutes, error) {
	prefix := a.cfg.PathPrefix
	mux := http.NewServeMux()
	routes := &ssoRoutes{handler: mux}
	switch st.SSO.Protocol {
	case gateway.ProtocolSAML:
		sp, refresh, err := a.samlSP(ctx, st.SSO.SAML)
		if err != nil {
			return nil, err
		}
		if refresh != nil {
			routes.workers = append(routes.workers, refresh)
		}
		sp.Mount(mux)
		mux.HandleFunc("GET "+prefix+"/login", a.loginPage(prefix+"/saml/login", "SAML single sign-on"))
	case gateway.ProtocolOIDC:
		c := st.SSO.OIDC
		relying, err := oidcrp.New(oidcrp.Options{Store: a.store, Tenant: gateway.DefaultTenant, PublicURL: a.publicURL,
			PathPrefix: prefix, Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: c.ClientSecret.Value(),
			Complete: a.completeSignIn, Fail: a.signInFailed("oidc"), Logger: a.log})
		if err != nil {
			return nil, err
		}
		relying.Mount(mux)
		mux.HandleFunc("GET "+prefix+"/login", a.loginPage(prefix+"/oidc/login", "OIDC single sign-on"))
	default:
		protocol := st.SSO.Protocol
		mux.HandleFunc("GET "+prefix+"/login", func(w http.ResponseWriter, r *http.Request) {
			page(w, http.StatusServiceUnavailable, "Sign-in is not available",
				fmt.Sprintf("Single sign-on is not available on this gateway: the login method is %q.", protocol),
				"A manager sets the login method to SAML or OIDC with the identity provider's settings.")
		})
	}
	return routes, nil
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

// periodic runs a task now and then until shutdown.
type periodic struct {
	stop     chan struct{}
	once     sync.Once
	done     sync.WaitGroup
	interval time.Duration
	now      bool
	fn       func(ctx context.Context)
}

// every runs fn every interval (first after one interval when !now),
// stopped with the other workers.
func (a *App) every(interval time.Duration, now bool, fn func(ctx context.Context)) {
	p := newPeriodic(interval, now, fn)
	p.start()
	a.workers = append(a.workers, p)
}

// newPeriodic prepares a periodic task; start runs it.
func newPeriodic(interval time.Duration, now bool, fn func(ctx context.Context)) *periodic {
	return &periodic{stop: make(chan struct{}), interval: interval, now: now, fn: fn}
}

func (p *periodic) start() {
	p.done.Go(func() {
		t := time.NewTicker(p.interval)
		defer t.Stop()
		for first := true; ; first = false {
			if p.now || !first {
				p.fn(context.Background())
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	})
}

// Stop stops the task and waits for it; a second Stop does nothing.
func (p *periodic) Stop(ctx context.Context) error {
	p.once.Do(func() { close(p.stop) })
	p.done.Wait()
	return nil
}

// startSessionSweeper deletes ended sessions now and then.
func (a *App) startSessionSweeper() {
	idle := time.Duration(a.cfg.Session.IdleTimeout)
	a.every(10*time.Minute, true, func(ctx context.Context) {
		now := time.Now().UTC()
		if _, err := a.store.Sessions().Expire(ctx, gateway.DefaultTenant, now, now.Add(-idle)); err != nil {
			a.log.Warn("sessions: expiry sweep failed", "error", err)
		}
	})
}

// samlSP builds the SAML service provider from the SAML settings,
// reading the IdP metadata (uploaded, from its file, or fetched once from
// its URL), and the task that fetches it again for certificate rollover.
func (a *App) samlSP(ctx context.Context, c gateway.SAMLSettings) (*samlsp.SP, *periodic, error) {
	metadata, err := loadMetadata(ctx, c)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", &provision.SettingsProblem{Message: "the IdP metadata could not be read from its URL or file"}, err)
	}
	sp, err := samlsp.New(ctx, samlsp.Options{Store: a.store, Tenant: gateway.DefaultTenant,
		PublicURL: a.publicURL, PathPrefix: a.cfg.PathPrefix, IDPMetadata: metadata,
		AllowIDPInitiated: c.AllowIDPInitiated, EmailAttribute: c.EmailAttribute,
		FirstNameAttribute: c.FirstNameAttribute, LastNameAttribute: c.LastNameAttribute, GroupsAttribute: c.GroupsAttribute,
		Complete: a.completeSignIn, Fail: a.signInFailed("saml"), Logger: a.log})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", &provision.SettingsProblem{Message: "the IdP metadata is not usable SAML metadata of one IdP with a signing certificate"}, err)
	}
	refresh := time.Duration(c.IDPMetadataRefresh)
	if c.IDPMetadataURL == "" || refresh <= 0 {
		return sp, nil, nil
	}
	// Certificate rollover: fetch again; a failure keeps what works.
	return sp, newPeriodic(refresh, false, func(ctx context.Context) {
		raw, err := loadMetadata(ctx, gateway.SAMLSettings{IDPMetadataURL: c.IDPMetadataURL})
		if err == nil {
			var changed bool
			if changed, err = sp.SetIDPMetadata(raw); changed {
				a.log.Info("saml: IdP metadata changed; using the new one")
			}
		}
		if err != nil {
			a.log.Warn("saml: refreshing the IdP metadata failed; keeping the last good one", "error", err)
		}
	}), nil
}

// loadMetadata reads IdP metadata as uploaded, from a file, or from a URL
// (bounded, 10 s).
func loadMetadata(ctx context.Context, c gateway.SAMLSettings) ([]byte, error) {
	file, rawURL := c.IDPMetadataFile, c.IDPMetadataURL
	if c.IDPMetadataXML != "" {
		return []byte(c.IDPMetadataXML), nil
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("sso.saml.idp_metadata_file: %w", err)
		}
		return b, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("sso.saml.idp_metadata_url: %w", err)
	}
	// The metadata carries the IdP's signing certificate: a redirect may
	// not leave https, nor leave the loopback host it started on.
	client := &http.Client{CheckRedirect: func(next *http.Request, via []*http.Request) error {
		first := via[0].URL
		switch {
		case len(via) >= 5:
			return errors.New("too many redirects")
		case next.URL.Scheme != "https" && (first.Scheme == "https" || next.URL.Host != first.Host):
			return fmt.Errorf("refusing a redirect to %s: the metadata must come over https", next.URL.Redacted())
		}
		return nil
	}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sso.saml.idp_metadata_url: fetching the IdP metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("sso.saml.idp_metadata_url: the IdP answered %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("sso.saml.idp_metadata_url: reading the IdP metadata: %w", err)
	}
	return b, nil
}

// completeSignIn takes a verified identity through the login funnel
// (JIT, policy) and starts the session.
func (a *App) completeSignIn(w http.ResponseWriter, r *http.Request, id gateway.Identity, returnTo string) {
	// A manager's test sign-in from the console: show what the IdP sent,
	// whoever signed in at the IdP, and change nothing (no user made, no
	// session replaced).
	if returnTo == a.cfg.PathPrefix+"/console/identity/test" {
		if _, m, err := a.sessions.Current(r.Context(), r); err == nil && admin.IsManager(m) {
			a.lastSignIns.put(m.ID, id)
			a.log.InfoContext(r.Context(), "test sign-in", "protocol", id.Protocol, "manager", m.ID)
			http.Redirect(w, r, returnTo, http.StatusFound)
			return
		}
	}
	returnTo, answered := a.accountFromReturn(w, r, id, returnTo)
	if answered {
		return
	}
	u, created, err := a.service.Login(r.Context(), gateway.DefaultTenant, id)
	if err != nil {
		a.refusedPage(w, r, id.Protocol, err)
		return
	}
	a.lastSignIns.put(u.ID, id)
	if _, err := a.sessions.Start(r.Context(), w, r, u.ID, id.Protocol); err != nil {
		a.metrics.Logins.WithLabelValues(id.Protocol, "store").Inc()
		a.log.ErrorContext(r.Context(), "sign-in: session", "error", err)
		page(w, http.StatusServiceUnavailable, "Sign-in failed", "The sign-in could not be completed right now.", "Try again in a moment.")
		return
	}
	a.metrics.Logins.WithLabelValues(id.Protocol, "ok").Inc()
	if created {
		a.metrics.JITCreations.Inc()
	}
	a.log.InfoContext(r.Context(), "signed in", "protocol", id.Protocol, "user", u.ID, "jit_created", created)
	http.Redirect(w, r, returnTo, http.StatusFound)
}

// signInFailed shows a protocol's refusal and counts it; reason is one
// of the protocol package's fixed words.
func (a *App) signInFailed(protocol string) func(w http.ResponseWriter, r *http.Request, status int, reason, message string) {
	return func(w http.ResponseWriter, _ *http.Request, status int, reason, message string) {
		a.metrics.Logins.WithLabelValues(protocol, reason).Inc()
		page(w, status, "Sign-in failed", message, "")
	}
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

// lastSignIns keeps what the IdP sent at each user's last sign-in in this
// process, for the console's test sign-in (bounded; a diagnostic, not
// state).
type lastSignIns struct {
	mu sync.Mutex
	m  map[string]gateway.Identity
}

func (l *lastSignIns) put(userID string, id gateway.Identity) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]gateway.Identity{}
	}
	if _, ok := l.m[userID]; !ok && len(l.m) >= 1000 {
		for k := range l.m { // evict one, not everyone's
			delete(l.m, k)
			break
		}
	}
	l.m[userID] = id
}

func (l *lastSignIns) get(_ context.Context, userID string) *gateway.Identity {
	l.mu.Lock()
	defer l.mu.Unlock()
	if id, ok := l.m[userID]; ok {
		return &id
	}
	return nil
}

// noFraming keeps the gateway's own pages out of other sites' frames
// (a framed "Accept" or "Sign in" button could be clicked by a victim).
func noFraming(w http.ResponseWriter) {
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
}

// limitSignInStarts bounds the sign-ins started per second (sso.login_rate,
// bursts of twice as many): each costs a signature (SAML) and a stored
// request, so an unbounded stream of them is a cheap way to load the
// gateway. The limit is global: behind a load balancer every client has
// its address. Completions (ACS, callback) are not limited.
func (a *App) limitSignInStarts(next http.Handler) http.Handler {
	if a.cfg.SSO.LoginRate <= 0 {
		return next
	}
	limiter := rate.NewLimiter(rate.Limit(a.cfg.SSO.LoginRate), 2*a.cfg.SSO.LoginRate)
	starts := map[string]bool{a.cfg.PathPrefix + "/saml/login": true, a.cfg.PathPrefix + "/oidc/login": true}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if starts[r.URL.Path] && !limiter.Allow() {
			a.metrics.Logins.WithLabelValues(strings.TrimPrefix(strings.TrimSuffix(r.URL.Path, "/login"), a.cfg.PathPrefix+"/"), "rate_limited").Inc()
			w.Header().Set("Retry-After", "1")
			page(w, http.StatusTooManyRequests, "Too many sign-ins at once", "The gateway is starting more sign-ins than it is set to allow right now.", "Try again in a moment.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/login"
	oidcrp "github.com/gatehouse-id/gatehouse/gateway/oidc"
	"github.com/gatehouse-id/gatehouse/gateway/pages"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	samlsp "github.com/gatehouse-id/gatehouse/gateway/saml"
)

// ssoRoutes are the sign-in routes of one version of an organization's
// identity settings, and the background work they need (metadata
// refresh, or the retry of a build that failed).
type ssoRoutes struct {
	handler http.Handler
	starter login.Starter // nil while people do not sign in by SSO
	workers []*periodic
	// refreshMetadata fetches the IdP metadata again now (nil: it is not
	// fetched from a URL).
	refreshMetadata func(ctx context.Context)
	version         uint64
}

func (r *ssoRoutes) stop() {
	for _, w := range r.workers {
		_ = w.Stop(context.Background())
	}
}

// orgSSO is one organization's sign-in routes in force; mu orders their
// swaps.
type orgSSO struct {
	mu     sync.Mutex
	closed bool // dropped or shut down: no more routes are put in force
	routes atomic.Pointer[ssoRoutes]
	used   atomic.Int64 // when last used (UnixNano), to drop the least recent
}

func (e *orgSSO) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	if routes := e.routes.Load(); routes != nil {
		routes.stop()
	}
}

// ssoSet holds the organizations' sign-in routes, built at their first
// sign-in and kept for at most max organizations (an SP holds its IdP's
// metadata and keys, and may fetch it every hour: a gateway with
// thousands of organizations keeps those in use). The pinned one (the
// default organization, built at start) is never dropped.
type ssoSet struct {
	mu     sync.Mutex
	orgs   map[gateway.OrgID]*orgSSO
	max    int
	pinned gateway.OrgID
	closed bool
}

func newSSOSet(max int, pinned gateway.OrgID) *ssoSet {
	return &ssoSet{orgs: map[gateway.OrgID]*orgSSO{}, max: max, pinned: pinned}
}

// entry returns org's entry, making it (and dropping the least recently
// used beyond max) when it has none; nil after shutdown.
func (s *ssoSet) entry(org gateway.OrgID) *orgSSO {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	e, ok := s.orgs[org]
	if !ok {
		if len(s.orgs) >= s.max {
			s.dropLeastRecent()
		}
		e = &orgSSO{}
		s.orgs[org] = e
	}
	e.used.Store(time.Now().UnixNano())
	return e
}

// existing returns org's entry if it has one.
func (s *ssoSet) existing(org gateway.OrgID) *orgSSO {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.orgs[org]
}

func (s *ssoSet) dropLeastRecent() {
	var victim gateway.OrgID
	oldest := int64(math.MaxInt64)
	for org, e := range s.orgs {
		if used := e.used.Load(); org != s.pinned && used < oldest {
			victim, oldest = org, used
		}
	}
	if e, ok := s.orgs[victim]; ok {
		delete(s.orgs, victim)
		go e.close() // it may be building: it sees closed once done
	}
}

// drop forgets org's sign-in (a deleted organization's).
func (s *ssoSet) drop(org gateway.OrgID) {
	s.mu.Lock()
	e, ok := s.orgs[org]
	if ok && org != s.pinned {
		delete(s.orgs, org)
	}
	s.mu.Unlock()
	if ok && org != s.pinned {
		e.close()
	}
}

// built is every organization's sign-in routes in force.
func (s *ssoSet) built() map[gateway.OrgID]*ssoRoutes {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[gateway.OrgID]*ssoRoutes, len(s.orgs))
	for org, e := range s.orgs {
		if r := e.routes.Load(); r != nil {
			out[org] = r
		}
	}
	return out
}

// size is how many organizations have their sign-in built.
func (s *ssoSet) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.orgs)
}

// close stops every organization's routes for good (shutdown).
func (s *ssoSet) close() {
	s.mu.Lock()
	s.closed = true
	orgs := s.orgs
	s.orgs = map[gateway.OrgID]*orgSSO{}
	s.mu.Unlock()
	for _, e := range orgs {
		e.close()
	}
}

// ssoFor returns the sign-in routes in force for org, building them at
// its first sign-in or when its settings changed (stored by another
// gateway or a command): the version is checked on every use.
func (a *App) ssoFor(ctx context.Context, org gateway.OrgID) (*ssoRoutes, error) {
	st, _ := a.service.Current(ctx, org)
	for range 3 {
		e := a.sso.entry(org)
		if e == nil {
			return nil, errors.New("the gateway is shutting down")
		}
		if routes := e.routes.Load(); routes != nil && routes.version >= st.Version {
			return routes, nil
		}
		if err := a.applySSO(ctx, org, e, st, false); err != nil {
			return nil, err
		}
		if routes := e.routes.Load(); routes != nil {
			return routes, nil
		}
		// Dropped while building (thousands of organizations starting
		// sign-ins at once): build it again.
	}
	return nil, fmt.Errorf("the sign-in of organization %s could not be kept built", org)
}

// applySSO builds org's sign-in routes for st and puts them in force.
// Swaps are serialized and ordered by the settings' version: a change
// that finishes building late never replaces a newer one. At start-up
// (strict) a failure is returned; later it fails closed (sign-in shows an
// error page, never the previous IdP's routes) and the build is retried
// until it works or newer settings arrive.
func (a *App) applySSO(ctx context.Context, org gateway.OrgID, e *orgSSO, st provision.Settings, strict bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur := e.routes.Load(); e.closed || cur != nil && cur.version > st.Version {
		return nil
	}
	routes, err := a.buildSSO(ctx, org, st.IdentitySettings)
	if err != nil {
		if strict {
			return err
		}
		a.log.Error("sign-in: the identity settings in force could not be loaded; sign-in shows an error page and the gateway retries",
			"org", string(org), "version", st.Version, "error", err)
		routes = &ssoRoutes{handler: unavailableSSO()}
		routes.workers = []*periodic{newPeriodic(30*time.Second, false, func(ctx context.Context) {
			if retry, err := a.buildSSO(ctx, org, st.IdentitySettings); err == nil {
				retry.stop()
				go func() { _ = a.applySSO(context.Background(), org, e, st, false) }()
			}
		})}
	}
	routes.version = st.Version
	for _, w := range routes.workers {
		w.start()
	}
	if old := e.routes.Swap(routes); old != nil {
		old.stop()
	}
	return nil
}

func unavailableSSO() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pages.Show(w, http.StatusServiceUnavailable, pages.Message{Title: "Sign-in is not available",
			Message:   "Single sign-on is misconfigured for this organization, so nobody can sign in right now.",
			Hint:      "An administrator fixes the identity settings; the gateway log says what is wrong.",
			RequestID: httpx.RequestID(r.Context())})
	})
}

// buildSSO makes org's sign-in routes for st: the SAML SP or the OIDC RP
// and the organization's login entry point, or a page saying sign-in is
// off, all under the organization's base path ({prefix} for the default
// organization, {prefix}/o/{org} for the others). Its workers are not
// started.
func (a *App) buildSSO(ctx context.Context, org gateway.OrgID, st gateway.IdentitySettings) (*ssoRoutes, error) {
	base := a.funnel.Base(org)
	mux := http.NewServeMux()
	routes := &ssoRoutes{handler: mux}
	complete := func(w http.ResponseWriter, r *http.Request, id gateway.Identity, in login.Intent) {
		a.funnel.Complete(w, r, org, id, in)
	}
	preset, _ := gateway.Preset(st.SSO.Preset) // validated with the settings
	switch st.SSO.Protocol {
	case gateway.ProtocolSAML:
		sp, refresh, err := a.samlSP(ctx, org, base, st.SSO.SAML, preset, complete)
		if err != nil {
			return nil, err
		}
		if refresh != nil {
			routes.workers = append(routes.workers, refresh)
			routes.refreshMetadata = refresh.fn
		}
		sp.Mount(mux)
		routes.starter = sp
		a.checkIdPCertificate(ctx, org, sp)
		a.mountUniversalLogout(mux, org, base, st.SSO.UniversalLogout, sp.IDPEntityID())
		mux.HandleFunc("GET "+base+"/login", a.funnel.LoginPage(org, base+"/saml/login", "SAML single sign-on"))
	case gateway.ProtocolOIDC:
		c := st.SSO.OIDC
		relying, err := oidcrp.New(oidcrp.Options{Store: a.store, Org: org, PublicURL: a.publicURL,
			PathPrefix: base, Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: c.ClientSecret.Value(), Preset: preset,
			Complete: complete, Fail: a.funnel.Failed("oidc"), Logger: a.log.With("org", string(org)), LogoutHooks: a.funnel.LogoutHooks(org)})
		if err != nil {
			return nil, err
		}
		relying.Mount(mux)
		routes.starter = relying
		a.mountUniversalLogout(mux, org, base, st.SSO.UniversalLogout, c.Issuer)
		mux.HandleFunc("GET "+base+"/login", a.funnel.LoginPage(org, base+"/oidc/login", "OIDC single sign-on"))
	default:
		mux.HandleFunc("GET "+base+"/login", noSignIn(st.SSO.Protocol))
	}
	return routes, nil
}

// RefreshIdPMetadata fetches the organization's SAML IdP metadata from
// its URL now, as the hourly refresh does (after an IdP's certificate
// rollover, or in tests); false when its sign-in fetches none.
func (a *App) RefreshIdPMetadata(ctx context.Context, org gateway.OrgID) bool {
	routes, err := a.ssoFor(ctx, org)
	if err != nil || routes.refreshMetadata == nil {
		return false
	}
	routes.refreshMetadata(ctx)
	return true
}

// CheckConnections runs the hourly check of the IdP certificates now.
func (a *App) CheckConnections(ctx context.Context) { a.checkConnections(ctx) }

// mountUniversalLogout serves the organization's Global Token Revocation
// endpoint (Okta's Universal Logout) when its settings name the IdP.
func (a *App) mountUniversalLogout(mux *http.ServeMux, org gateway.OrgID, base string, cfg gateway.UniversalLogoutSettings, signInIssuer string) {
	if cfg.Issuer == "" {
		return
	}
	path := base + "/global-token-revocation"
	mux.HandleFunc("POST "+path, a.funnel.UniversalLogout(org, cfg, a.publicURL+path, signInIssuer))
}

// noSignIn is the sign-in page of an organization whose people do not
// sign in through the gateway: it says how they do, and how managers
// reach the console, rather than being a dead end.
func noSignIn(protocol string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if protocol == gateway.ProtocolExternal {
			pages.Show(w, http.StatusServiceUnavailable, pages.Message{Title: "Sign in through the application",
				Message: "People of this organization sign in through the application itself (or a proxy in front of it), not through this gateway, so it has no sign-in page of its own.",
				Hint: "Managers open the console after signing in through the gateway, which this organization does not use: use the admin API with an API token instead, " +
					"or ask the gateway's operator to connect your identity provider with SAML or OIDC (a setup link lets your IT admin do it step by step).",
				RequestID: httpx.RequestID(r.Context())})
			return
		}
		pages.Show(w, http.StatusServiceUnavailable, pages.Message{Title: "Sign-in is not set up yet",
			Message:   "This organization has not connected its identity provider (Okta, Microsoft Entra ID, …), so nobody can sign in yet.",
			Hint:      "A manager or the gateway's operator connects it with SAML or OIDC; a setup link lets your IT admin do it step by step.",
			RequestID: httpx.RequestID(r.Context())})
	}
}

// samlSP builds org's SAML service provider from its SAML settings,
// reading the IdP metadata (uploaded, from its file, or fetched once from
// its URL), and the task that fetches it again for certificate rollover.
func (a *App) samlSP(ctx context.Context, org gateway.OrgID, base string, c gateway.SAMLSettings, preset gateway.IdPPreset,
	complete func(http.ResponseWriter, *http.Request, gateway.Identity, login.Intent)) (*samlsp.SP, *periodic, error) {
	metadata, err := loadMetadata(ctx, c)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", &provision.SettingsProblem{Message: "the IdP metadata could not be read from its URL or file"}, err)
	}
	log := a.log.With("org", string(org))
	sp, err := samlsp.New(ctx, samlsp.Options{Store: a.store, Org: org,
		PublicURL: a.publicURL, PathPrefix: base, IDPMetadata: metadata,
		AllowIDPInitiated: c.AllowIDPInitiated, EmailAttribute: c.EmailAttribute,
		FirstNameAttribute: c.FirstNameAttribute, LastNameAttribute: c.LastNameAttribute, GroupsAttribute: c.GroupsAttribute, Preset: preset,
		Complete: complete, Fail: a.funnel.Failed("saml"), Logger: log, LogoutHooks: a.funnel.LogoutHooks(org)})
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
				log.Info("saml: IdP metadata changed; using the new one")
			}
		}
		a.noteMetadataRefresh(org, err)
		if err != nil {
			log.Warn("saml: refreshing the IdP metadata failed; keeping the last good one", "error", err)
			return
		}
		a.checkIdPCertificate(ctx, org, sp)
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

// limitSignInStarts bounds the sign-ins started per second in each
// organization (sso.login_rate, bursts of twice as many): each costs a
// signature (SAML) and a stored request, so an unbounded stream of them
// is a cheap way to load the gateway, and one organization's storm may
// not hold back another's sign-ins. Behind a load balancer every client
// has its address, so the limit is per organization, not per client.
// Completions (ACS, callback) are not limited.
func (a *App) limitSignInStarts(next http.Handler) http.Handler {
	if a.cfg.SSO.LoginRate <= 0 {
		return next
	}
	var limiters sync.Map // gateway.OrgID → *rate.Limiter
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start, org := a.signInStart(r.URL.Path)
		if start == "" {
			next.ServeHTTP(w, r)
			return
		}
		l, ok := limiters.Load(org)
		if !ok {
			// Only organizations that exist get a limiter (made-up names in
			// the path would grow the map); the others' pages say so.
			if a.service.CheckOrg(r.Context(), org) != nil {
				next.ServeHTTP(w, r)
				return
			}
			l, _ = limiters.LoadOrStore(org, rate.NewLimiter(rate.Limit(a.cfg.SSO.LoginRate), 2*a.cfg.SSO.LoginRate))
		}
		if !l.(*rate.Limiter).Allow() {
			a.metrics.Logins.WithLabelValues(start, "rate_limited").Inc()
			w.Header().Set("Retry-After", "1")
			pages.Show(w, http.StatusTooManyRequests, pages.Message{Title: "Too many sign-ins at once",
				Message: "The gateway is starting more sign-ins for this organization than it is set to allow right now.", Hint: "Try again in a moment."})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// signInStart names the sign-in a path starts ("saml", "oidc", or what
// the funnel starts it for) and the organization it is for, or "" for
// any other path. An organization named in the path is not checked here
// (the limiters are keyed by valid slugs only).
func (a *App) signInStart(path string) (string, gateway.OrgID) {
	p := a.cfg.PathPrefix
	org := gateway.DefaultOrg
	if rest, ok := strings.CutPrefix(path, p+"/o/"); ok {
		named, tail, _ := strings.Cut(rest, "/")
		if gateway.OrgID(named).Check() != nil {
			return "", ""
		}
		org, path = gateway.OrgID(named), p+"/"+tail
	}
	switch {
	case path == p+"/saml/login":
		return "saml", org
	case path == p+"/oidc/login":
		return "oidc", org
	case path == p+"/join/signin":
		return "join", org
	case path == p+"/login/test":
		return "test", org
	case path == p+"/setup/test":
		return "setup_test", org
	case strings.HasPrefix(path, p+"/invite/") && strings.HasSuffix(path, "/signin"):
		return "invitation", org
	}
	return "", ""
}

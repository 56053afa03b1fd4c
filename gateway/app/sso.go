package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
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

// ssoRoutes are the sign-in routes of one version of the identity
// settings, and the background work they need (metadata refresh, or the
// retry of a build that failed).
type ssoRoutes struct {
	handler http.Handler
	starter login.Starter // nil while people do not sign in by SSO
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
		pages.Show(w, http.StatusServiceUnavailable, pages.Message{Title: "Sign-in is not available",
			Message:   "Single sign-on is misconfigured on this gateway, so nobody can sign in right now.",
			Hint:      "An administrator fixes the identity settings; the gateway log says what is wrong.",
			RequestID: httpx.RequestID(r.Context())})
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
		routes.starter = sp
		mux.HandleFunc("GET "+prefix+"/login", a.funnel.LoginPage(prefix+"/saml/login", "SAML single sign-on"))
	case gateway.ProtocolOIDC:
		c := st.SSO.OIDC
		relying, err := oidcrp.New(oidcrp.Options{Store: a.store, Org: gateway.DefaultOrg, PublicURL: a.publicURL,
			PathPrefix: prefix, Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: c.ClientSecret.Value(),
			Complete: a.funnel.Complete, Fail: a.funnel.Failed("oidc"), Logger: a.log})
		if err != nil {
			return nil, err
		}
		relying.Mount(mux)
		routes.starter = relying
		mux.HandleFunc("GET "+prefix+"/login", a.funnel.LoginPage(prefix+"/oidc/login", "OIDC single sign-on"))
	default:
		protocol := st.SSO.Protocol
		mux.HandleFunc("GET "+prefix+"/login", func(w http.ResponseWriter, r *http.Request) {
			pages.Show(w, http.StatusServiceUnavailable, pages.Message{Title: "Sign-in is not available",
				Message:   fmt.Sprintf("Single sign-on is not available on this gateway: the login method is %q.", protocol),
				Hint:      "A manager sets the login method to SAML or OIDC with the identity provider's settings.",
				RequestID: httpx.RequestID(r.Context())})
		})
	}
	return routes, nil
}

// samlSP builds the SAML service provider from the SAML settings,
// reading the IdP metadata (uploaded, from its file, or fetched once from
// its URL), and the task that fetches it again for certificate rollover.
func (a *App) samlSP(ctx context.Context, c gateway.SAMLSettings) (*samlsp.SP, *periodic, error) {
	metadata, err := loadMetadata(ctx, c)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", &provision.SettingsProblem{Message: "the IdP metadata could not be read from its URL or file"}, err)
	}
	sp, err := samlsp.New(ctx, samlsp.Options{Store: a.store, Org: gateway.DefaultOrg,
		PublicURL: a.publicURL, PathPrefix: a.cfg.PathPrefix, IDPMetadata: metadata,
		AllowIDPInitiated: c.AllowIDPInitiated, EmailAttribute: c.EmailAttribute,
		FirstNameAttribute: c.FirstNameAttribute, LastNameAttribute: c.LastNameAttribute, GroupsAttribute: c.GroupsAttribute,
		Complete: a.funnel.Complete, Fail: a.funnel.Failed("saml"), Logger: a.log})
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if start := a.signInStart(r.URL.Path); start != "" && !limiter.Allow() {
			a.metrics.Logins.WithLabelValues(start, "rate_limited").Inc()
			w.Header().Set("Retry-After", "1")
			pages.Show(w, http.StatusTooManyRequests, pages.Message{Title: "Too many sign-ins at once",
				Message: "The gateway is starting more sign-ins than it is set to allow right now.", Hint: "Try again in a moment."})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// signInStart names the sign-in a path starts ("saml", "oidc", or what
// the funnel starts it for), or "" for any other path.
func (a *App) signInStart(path string) string {
	p := a.cfg.PathPrefix
	switch {
	case path == p+"/saml/login":
		return "saml"
	case path == p+"/oidc/login":
		return "oidc"
	case path == p+"/join/signin":
		return "join"
	case path == p+"/login/test":
		return "test"
	case strings.HasPrefix(path, p+"/invite/") && strings.HasSuffix(path, "/signin"):
		return "invitation"
	}
	return ""
}

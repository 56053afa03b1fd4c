package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/feed"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/scim"
)

// routes is the one place the main listener's endpoints are declared.
func (a *App) routes() (http.Handler, error) {
	scimServer, err := scim.New(scim.Options{
		Service: a.service,
		Store:   a.store,
		Org:     gateway.DefaultOrg,
		BaseURL: a.SCIMBaseURL(),
		Authenticate: func(ctx context.Context, org gateway.OrgID, token string) (bool, error) {
			ok, err := a.service.CheckSCIMToken(ctx, org, token)
			if ok {
				if err := a.service.NoteSCIMRequest(ctx, org); err != nil {
					a.log.WarnContext(ctx, "scim: recording the organization's last request", "org", string(org), "error", err)
				}
			}
			return ok, err
		},
		MaxBodyBytes:          a.cfg.SCIM.MaxBodyBytes,
		MaxResults:            a.cfg.SCIM.MaxResults,
		MaxPatchOperations:    a.cfg.SCIM.MaxPatchOperations,
		MaxMembersPerRequest:  a.cfg.SCIM.MaxMembersPerRequest,
		AuthFailuresPerMinute: a.cfg.SCIM.AuthFailuresPerMinute,
		OrgRequestsPerSecond:  a.cfg.SCIM.OrgRequestsPerSecond,
		Disabled:              a.scimDisabled,
		IssueToken: func(ctx context.Context, org gateway.OrgID, clientID, secret string) (string, time.Duration, error) {
			return a.service.IssueSCIMAccessToken(ctx, org, clientID, secret, time.Duration(a.cfg.SCIM.AccessTokenTTL))
		},
		IssueTokenByAssertion: func(ctx context.Context, org gateway.OrgID, clientID, assertion string) (string, time.Duration, error) {
			return a.service.IssueSCIMAccessTokenByAssertion(ctx, org, clientID, assertion, a.tokenEndpoint(org), time.Duration(a.cfg.SCIM.AccessTokenTTL))
		},
		Logger:  a.log,
		Metrics: a.metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("build scim server: %w", err)
	}
	prefix := a.cfg.PathPrefix
	mux := http.NewServeMux()
	mux.Handle(prefix+"/scim/", http.StripPrefix(prefix+"/scim", scimServer))
	// Every organization's SCIM endpoint, with its own token: an unknown
	// organization has none, so its requests are refused like a wrong
	// token's, telling nobody which organizations exist.
	mux.HandleFunc(prefix+"/o/{org}/scim/", func(w http.ResponseWriter, r *http.Request) {
		org := gateway.OrgID(r.PathValue("org"))
		root := prefix + "/o/" + string(org) + "/scim"
		http.StripPrefix(root, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			scimServer.ServeOrg(w, r, org, a.publicURL+root+"/v2")
		})).ServeHTTP(w, r)
	})
	// The OAuth token endpoint of each organization's SCIM API (client
	// credentials, as Entra's gallery requires).
	mux.HandleFunc(prefix+"/oauth/token", func(w http.ResponseWriter, r *http.Request) {
		scimServer.ServeToken(w, r, gateway.DefaultOrg)
	})
	mux.HandleFunc(prefix+"/o/{org}/oauth/token", func(w http.ResponseWriter, r *http.Request) {
		scimServer.ServeToken(w, r, gateway.OrgID(r.PathValue("org")))
	})
	mux.Handle(prefix+"/events", feed.New(feed.Options{
		Store: a.store, Org: gateway.DefaultOrg,
		Token: a.cfg.Events.Token.Value(), MaxWait: time.Duration(a.cfg.Events.MaxWait),
	}))

	if err := a.identityRoutes(context.Background(), mux); err != nil {
		return nil, err
	}

	var h http.Handler = mux
	h = httpx.AccessLogRedacting(a.log, redactLinkPaths(prefix), h)
	h = httpx.Recover(a.log, h)
	h = httpx.WithRequestID(h)
	return h, nil
}

// opsRoutes serves the operations listener: metrics and health.
func (a *App) opsRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{Registry: a.registry}))
	httpx.Health(mux, a.ready, a.connectionNotes)
	a.outboxRoutes(mux)
	if a.cfg.OpsPprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// tokenEndpoint is the public URL of org's SCIM token endpoint (the
// audience of a client's assertions).
func (a *App) tokenEndpoint(org gateway.OrgID) string {
	if org == gateway.DefaultOrg {
		return a.publicURL + a.cfg.PathPrefix + "/oauth/token"
	}
	return a.publicURL + a.cfg.PathPrefix + "/o/" + string(org) + "/oauth/token"
}

// fetchJWKS reads a client's published key set: bounded in time and size,
// redirects not followed.
func fetchJWKS(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// scimDisabled says why SCIM is off right now (nil when it answers): the
// provisioning method changes live.
func (a *App) scimDisabled(ctx context.Context, org gateway.OrgID) error {
	var refused *provision.LoginError
	switch err := a.service.CheckActive(ctx, org); {
	case errors.As(err, &refused):
		return gateway.Errorf(gateway.ErrForbidden, "The organization %q is suspended by the gateway's operator: SCIM requests are refused until it is resumed.", org)
	case err != nil:
		a.log.ErrorContext(ctx, "scim: reading the organization", "error", err)
		return gateway.Errorf(gateway.ErrUnavailable, "The organization cannot be read right now; retry shortly.")
	}
	st, _ := a.service.Current(ctx, org)
	if method := st.Provisioning.Method; method != gateway.SourceSCIM {
		api := a.cfg.PathPrefix + "/admin/api/v1"
		if org != gateway.DefaultOrg {
			api += "/orgs/" + string(org)
		}
		return gateway.Errorf(gateway.ErrForbidden, "SCIM provisioning is disabled: the active provisioning method is %q; a manager sets provisioning.method to scim in the admin API (PUT %s/identity) or the console.", method, api)
	}
	return nil
}

// redactLinkPaths hides the secret of invitation and setup links in
// logged paths ({prefix}[/o/{org}]/invite/<token>/…,
// {prefix}[/o/{org}]/setup/link/<token>): it is a credential.
func redactLinkPaths(prefix string) func(string) string {
	return func(path string) string {
		rest, ok := strings.CutPrefix(path, prefix+"/")
		if !ok {
			return path
		}
		segs := strings.Split(rest, "/")
		if len(segs) > 2 && segs[0] == "o" {
			segs = segs[2:]
		}
		var secret int
		switch {
		case len(segs) > 1 && segs[0] == "invite":
			secret = 1
		case len(segs) > 2 && segs[0] == "setup" && segs[1] == "link":
			secret = 2
		default:
			return path
		}
		head := path[:len(path)-len(strings.Join(segs, "/"))]
		segs[secret] = "[REDACTED]"
		return head + strings.Join(segs, "/")
	}
}

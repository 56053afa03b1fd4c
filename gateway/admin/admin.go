// Package admin is the admin API: managers (an SSO session with the
// manager role) and API tokens change the identity configuration, users,
// pools and credentials, and read the audit log and delivery health. The
// operations are declared once with huma, which serves them and generates
// the OpenAPI document from the same declarations. Every rule lives in
// package provision; this package authenticates, translates and audits
// nothing of its own beyond that.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/metrics"
	"github.com/gatehouse-id/gatehouse/gateway/outbox"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/session"
)

// Base is where the API lives under the gateway's path prefix.
const Base = "/admin/api/v1"

// CSRFHeader carries the session's anti-CSRF token on cookie-authenticated
// calls that change something.
const CSRFHeader = "X-CSRF-Token"

// Delivery is what the API shows and does of the outbox.
type Delivery interface {
	Status(ctx context.Context, org gateway.OrgID) ([]outbox.Status, error)
	DeadLetters(ctx context.Context, org gateway.OrgID, adapter string) ([]gateway.DeadLetter, error)
	Replay(ctx context.Context, org gateway.OrgID, adapter string, from uint64) (int, error)
}

// Options configures the API.
type Options struct {
	Service    *provision.Service
	Store      gateway.Store
	Sessions   *session.Manager
	Delivery   Delivery // nil: no delivery endpoints answer
	Org        gateway.OrgID
	PathPrefix string // the gateway's, e.g. /gatehouse
	// BootstrapToken is admin.token: a bearer token that always works
	// (compared by SHA-256 in constant time); "" for none.
	BootstrapToken string
	// SettingsFromFile: the configuration file owns the identity settings
	// (admin.identity_source: file) and PUT /identity is refused.
	SettingsFromFile bool
	SCIMTokenGrace   time.Duration
	Metrics          *metrics.Metrics // nil: not counted
	// PublicRoot is {public_url}{prefix}: Org's SCIM, sign-in and links
	// are under it, any other organization's under {PublicRoot}/o/{org}.
	PublicRoot    string
	InvitationTTL time.Duration
	Logger        *slog.Logger
}

// API is the admin API's handler.
type API struct {
	opts      Options
	api       huma.API
	mux       *http.ServeMux
	bootstrap [sha256.Size]byte
	crossSite *http.CrossOriginProtection
}

type actorKey struct{}

// New builds the API.
func New(opts Options) *API {
	if err := opts.Org.Check(); err != nil {
		panic("admin.New: " + err.Error()) // the wiring names the organization; none is assumed
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &API{opts: opts, mux: http.NewServeMux(), crossSite: http.NewCrossOriginProtection()}
	if opts.BootstrapToken != "" {
		a.bootstrap = sha256.Sum256([]byte(opts.BootstrapToken))
	}
	base := opts.PathPrefix + Base
	cfg := huma.DefaultConfig("Gatehouse admin API", "1.0.0")
	cfg.DocsPath = ""    // the docs page loads scripts from a CDN
	cfg.SchemasPath = "" // schemas are inline in the OpenAPI document
	cfg.CreateHooks = nil
	cfg.Info.Description = "Managers run the organization's identity here: the login and provisioning method, users, " +
		"roles and pools, credentials, the audit log and delivery health. Authenticate with an API token " +
		"(Authorization: Bearer) or a manager's SSO session cookie with the X-CSRF-Token header on changes."
	cfg.Servers = []*huma.Server{{URL: base}}
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"token":   {Type: "http", Scheme: "bearer", Description: "admin.token or a token from POST /api-tokens"},
		"session": {Type: "apiKey", In: "cookie", Name: "__Host-gatehouse_session", Description: "a manager's SSO session; changes also need the X-CSRF-Token header (GET /me)"},
	}
	cfg.Security = []map[string][]string{{"token": {}}, {"session": {}}}
	a.api = humago.NewWithPrefix(a.mux, base, cfg)
	a.api.UseMiddleware(a.count, a.authenticate)
	a.register()
	// Unknown paths under the API get a problem, not the mux's text.
	a.mux.HandleFunc(base+"/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, "There is no such admin API endpoint; see "+base+"/openapi.json.")
	})
	return a
}

// ServeHTTP serves the API at its base, acting on the organization the
// wiring names (Options.Org), and every operation again under
// /orgs/{org}/, acting on that organization.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	base := a.opts.PathPrefix + Base
	if rest, ok := strings.CutPrefix(r.URL.Path, base+"/orgs/"); ok {
		if id, sub, ok := strings.Cut(rest, "/"); ok {
			a.serveOrg(w, r, gateway.OrgID(id), sub)
			return
		}
	}
	a.mux.ServeHTTP(w, r)
}

// serveOrg serves an operation under /orgs/{org}/: the request goes on
// at the operation's own path with the organization in its context (the
// authentication then checks the caller may act on it, and that it is
// registered).
func (a *API) serveOrg(w http.ResponseWriter, r *http.Request, org gateway.OrgID, sub string) {
	if org.Check() != nil || sub == "" || sub == "orgs" || strings.HasPrefix(sub, "orgs/") || sub == "openapi.json" {
		writeProblem(w, http.StatusNotFound, "There is no such admin API endpoint; see "+a.opts.PathPrefix+Base+"/openapi.json.")
		return
	}
	in := r.Clone(context.WithValue(r.Context(), orgKey{}, org))
	in.URL.Path, in.URL.RawPath = a.opts.PathPrefix+Base+"/"+sub, ""
	a.mux.ServeHTTP(w, in)
}

// orgRoot is the public root of the organization of a request: Org's at
// the unprefixed URLs, any other's under /o/{org}.
func (a *API) orgRoot(ctx context.Context) string {
	if org := a.org(ctx); org != a.opts.Org {
		return a.opts.PublicRoot + "/o/" + string(org)
	}
	return a.opts.PublicRoot
}

// scimBaseURL is where the organization of a request serves SCIM.
func (a *API) scimBaseURL(ctx context.Context) string { return a.orgRoot(ctx) + "/scim/v2" }

// inviteBase is where an organization's invitation links point: Org's
// at the unprefixed URLs, any other's under /o/{org}.
func (a *API) inviteBase(ctx context.Context) (string, error) {
	return a.orgRoot(ctx) + "/invite", nil
}

type orgKey struct{}

// org is the organization a request acts on.
func (a *API) org(ctx context.Context) gateway.OrgID {
	if org, ok := ctx.Value(orgKey{}).(gateway.OrgID); ok {
		return org
	}
	return a.opts.Org
}

// OpenAPI is the API's description, generated from its operations.
func (a *API) OpenAPI() *huma.OpenAPI { return a.api.OpenAPI() }

// Route is one operation of the API.
type Route struct {
	Method, Path string // Path relative to the API base, e.g. /users/{id}
	OperationID  string
}

// Routes lists every operation the API serves (the authorization test
// walks them, so a new route without a check fails it).
func (a *API) Routes() []Route {
	var out []Route
	for path, item := range a.api.OpenAPI().Paths {
		for method, op := range map[string]*huma.Operation{"GET": item.Get, "POST": item.Post, "PUT": item.Put, "PATCH": item.Patch, "DELETE": item.Delete} {
			if op != nil {
				out = append(out, Route{Method: method, Path: path, OperationID: op.OperationID})
			}
		}
	}
	slices.SortFunc(out, func(x, y Route) int { return strings.Compare(x.Path+" "+x.Method, y.Path+" "+y.Method) })
	return out
}

// authenticate admits an API token or a manager's session (with the CSRF
// token on changes) and puts the actor in the context; everything else is
// refused before any handler runs.
func (a *API) authenticate(ctx huma.Context, next func(huma.Context)) {
	r, w := humago.Unwrap(ctx)
	w.Header().Set("Cache-Control", "no-store")
	org := a.org(r.Context())
	if token, ok := httpx.BearerToken(r); ok {
		actor, home, ok, err := a.tokenActor(r.Context(), org, token)
		switch {
		case err != nil:
			a.opts.Logger.ErrorContext(r.Context(), "admin: checking a token", "error", err)
			refuse(ctx, http.StatusServiceUnavailable, "The token cannot be checked right now; retry shortly.")
		case ok && home != org:
			refuse(ctx, http.StatusForbidden, fmt.Sprintf("This API token belongs to organization %q and works for it alone.", home))
		case !ok:
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse-admin"`)
			refuse(ctx, http.StatusUnauthorized, "The bearer token is not valid: send admin.token or a token from POST /api-tokens.")
		default:
			a.run(huma.WithValue(ctx, actorKey{}, actor), actor, next)
		}
		return
	}
	se, u, err := a.opts.Sessions.Current(r.Context(), r)
	switch {
	case session.SignedOut(err):
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse-admin"`)
		refuse(ctx, http.StatusUnauthorized, "Sign in as a manager, or send an API token in an Authorization: Bearer header.")
		return
	case err != nil:
		a.opts.Logger.ErrorContext(r.Context(), "admin: reading the session", "error", err)
		refuse(ctx, http.StatusServiceUnavailable, "The session cannot be checked right now; retry shortly.")
		return
	case !u.IsManager():
		refuse(ctx, http.StatusForbidden, "You need the manager role to use the admin API.")
		return
	case se.Org != org:
		refuse(ctx, http.StatusForbidden, fmt.Sprintf("You manage organization %q, not %q.", se.Org, org))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !SameSiteChange(a.crossSite, a.opts.Sessions, se, r, r.Header.Get(CSRFHeader)) {
		refuse(ctx, http.StatusForbidden, "A change made with a session cookie needs the "+CSRFHeader+" header from GET /me, sent from this site.")
		return
	}
	actor := SessionActor(u)
	c := huma.WithValue(ctx, actorKey{}, actor)
	a.run(huma.WithValue(c, sessionKey{}, se), actor, next)
}

// run calls the operation and logs a change (the audit log has what it
// changed; the log line ties it to the request, its client and actor).
func (a *API) run(ctx huma.Context, actor gateway.Actor, next func(huma.Context)) {
	if slices.Contains(ctx.Operation().Tags, operatorTag) && actor != OperatorActor() {
		refuse(ctx, http.StatusForbidden, operatorOnly)
		return
	}
	r, _ := humago.Unwrap(ctx)
	if org := a.org(r.Context()); org != a.opts.Org { // the wiring's own is served whether registered or not
		switch err := a.opts.Service.CheckOrg(r.Context(), org); {
		case gateway.ErrorCodeOf(err) == gateway.ErrNotFound:
			refuse(ctx, http.StatusNotFound, fmt.Sprintf("There is no organization %q.", org))
			return
		case err != nil:
			a.opts.Logger.ErrorContext(r.Context(), "admin: reading the organization", "error", err)
			refuse(ctx, http.StatusServiceUnavailable, "The organization cannot be read right now; retry shortly.")
			return
		}
	}
	next(ctx)
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return
	}
	a.opts.Logger.InfoContext(r.Context(), "admin change", "operation", ctx.Operation().OperationID, "status", ctx.Status(), "actor", actor.String())
}

type sessionKey struct{}

// tokenActor checks admin.token (the operator, for any organization),
// then the API tokens: home is the organization the token belongs to
// (ok with home != org: a valid token of another organization).
func (a *API) tokenActor(ctx context.Context, org gateway.OrgID, token string) (actor gateway.Actor, home gateway.OrgID, ok bool, err error) {
	if a.opts.BootstrapToken != "" {
		got := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(got[:], a.bootstrap[:]) == 1 {
			return OperatorActor(), org, true, nil
		}
	}
	home, named := provision.APITokenOrg(token)
	if !named {
		home = a.opts.Org // tokens from before they named their organization are the wiring's
	}
	id, ok, err := a.opts.Service.CheckAPIToken(ctx, home, token)
	if err != nil || !ok {
		return gateway.Actor{}, "", false, err
	}
	return gateway.Actor{Kind: gateway.ActorToken, ID: id}, home, true, nil
}

// manager is the command context of a request.
func (a *API) manager(ctx context.Context) provision.Manager {
	actor, _ := ctx.Value(actorKey{}).(gateway.Actor)
	return provision.Manager{Org: a.org(ctx), Actor: actor, RequestID: httpx.RequestID(ctx)}
}

// Problem is the one error shape of the API: RFC 9457 problem details
// (huma's), with the rules a refused change broke.
type Problem struct {
	huma.ErrorModel
	Rules []gateway.RuleViolation `json:"rules,omitempty" doc:"the identity rules a refused change broke, each with the configuration path and what to change"`
}

// ContentType makes problems application/problem+json.
func (p *Problem) ContentType(string) string { return "application/problem+json" }

func newProblem(status int, detail string) *Problem {
	return &Problem{ErrorModel: huma.ErrorModel{Title: http.StatusText(status), Status: status, Detail: detail}}
}

// refuse answers with a problem from the middleware, through the huma
// context so that the status is known to the request counter.
func refuse(ctx huma.Context, status int, detail string) {
	body, _ := json.Marshal(newProblem(status, detail))
	ctx.SetHeader("Content-Type", "application/problem+json")
	ctx.SetStatus(status)
	_, _ = ctx.BodyWriter().Write(append(body, '\n'))
}

// writeProblem answers with a problem outside huma (unknown paths).
func writeProblem(w http.ResponseWriter, status int, detail string) {
	httpx.WriteJSON(w, status, "application/problem+json", newProblem(status, detail))
}

// fail turns a domain error into a problem; internal errors are logged
// and shown as a sentence without their text.
func (a *API) fail(ctx context.Context, err error) error {
	var rules *gateway.RuleError
	if errors.As(err, &rules) && len(rules.Violations) > 0 {
		p := newProblem(http.StatusUnprocessableEntity, "The identity configuration was refused: "+rules.Violations[0].Message+".")
		if rules.Violations[0].Rule == "managed_by_file" {
			p = newProblem(http.StatusConflict, rules.Violations[0].Message+".")
		}
		p.Type = "https://github.com/gatehouse-id/gatehouse#rule-" + rules.Violations[0].Rule
		p.Rules = rules.Violations
		return p
	}
	status := HTTPStatus(err)
	if status == http.StatusInternalServerError {
		a.opts.Logger.ErrorContext(ctx, "admin API", "error", err)
	}
	return newProblem(status, gateway.ErrorMessageOf(err))
}

// HTTPStatus is the status of a domain error in the admin API and the
// console (500 for anything unexpected).
func HTTPStatus(err error) int {
	switch gateway.ErrorCodeOf(err) {
	case gateway.ErrInvalid:
		return http.StatusUnprocessableEntity
	case gateway.ErrNotFound:
		return http.StatusNotFound
	case gateway.ErrConflict:
		return http.StatusConflict
	case gateway.ErrPreconditionFailed:
		return http.StatusPreconditionFailed
	case gateway.ErrForbidden:
		return http.StatusForbidden
	case gateway.ErrUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// SessionActor is the audit actor of a manager's session.
func SessionActor(u *gateway.User) gateway.Actor {
	return gateway.Actor{Kind: gateway.ActorSession, ID: u.ID, Email: u.PrimaryEmail()}
}

// SameSiteChange reports whether a change made with a session cookie
// comes from this site with the session's CSRF token: browsers say where
// a request comes from (Sec-Fetch-Site, Origin), and the token proves the
// caller read one of our pages.
func SameSiteChange(cop *http.CrossOriginProtection, sessions *session.Manager, se gateway.Session, r *http.Request, token string) bool {
	return cop.Check(r) == nil && sessions.ValidCSRF(se, token)
}

// count records each call by operation and status class (refusals by the
// authentication included).
func (a *API) count(ctx huma.Context, next func(huma.Context)) {
	next(ctx)
	if a.opts.Metrics == nil {
		return
	}
	class := "other"
	if s := ctx.Status(); s >= 100 && s < 600 {
		class = strconv.Itoa(s/100) + "xx"
	}
	a.opts.Metrics.AdminRequests.WithLabelValues(ctx.Operation().OperationID, class).Inc()
}

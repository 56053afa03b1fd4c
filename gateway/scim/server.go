// Package scim serves SCIM 2.0 (RFC 7643/7644) on top of
// github.com/elimity-com/scim. The library routes, parses and validates;
// this package adds what it leaves out and what Okta and Entra rely on:
// bearer-token auth, body limits, IdP quirk normalisation, indexed filter
// execution, paging, projection, the PATCH engine, ETags and If-Match,
// absolute meta.location, and SCIM error mapping.
package scim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	scimlib "github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
	"golang.org/x/time/rate"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/metrics"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/scim/patch"
	"github.com/gatehouse-id/gatehouse/gateway/scim/query"
)

const contentType = "application/scim+json"

// Options configures a Server.
type Options struct {
	Service *provision.Service
	Store   gateway.Store
	Org     gateway.OrgID
	// BaseURL is the absolute public URL of the SCIM base, e.g.
	// https://app.example.com/gatehouse/scim/v2; meta.location and the
	// Location header are built from it.
	BaseURL string
	// Token is the bearer token IdPs present. Only its SHA-256 is kept.
	Token string
	// Authenticate, when set, decides instead of Token whether a
	// presented token is valid (tokens rotated through the admin API).
	Authenticate func(ctx context.Context, org gateway.OrgID, token string) (bool, error)
	MaxBodyBytes int64
	MaxResults   int
	// MaxPatchOperations and MaxMembersPerRequest cap one request's work.
	MaxPatchOperations   int
	MaxMembersPerRequest int
	// AuthFailuresPerMinute bounds wrong-token requests per client
	// address (then 429); 0: no limit.
	AuthFailuresPerMinute int
	// OrgRequestsPerSecond is each organization's share: requests past it
	// (bursts of twice as many) get 429 with Retry-After; 0: no limit.
	OrgRequestsPerSecond int
	// Disabled, when set and returning an error, makes every request
	// answer it: ErrForbidden (403) with the reason SCIM is off (another
	// provisioning method is active, the organization is suspended), or
	// ErrUnavailable (503, Retry-After) when that cannot be read now.
	Disabled func(ctx context.Context, org gateway.OrgID) error
	// IssueToken, when set, serves ServeToken: a client's id and secret
	// for an access token SCIM accepts (Authenticate checks it), and how
	// long it lives. ErrForbidden: the client is not authenticated.
	IssueToken func(ctx context.Context, org gateway.OrgID, clientID, secret string) (string, time.Duration, error)
	// IssueTokenByAssertion is IssueToken for a client authenticated by a
	// signed JWT (RFC 7523) instead of a secret.
	IssueTokenByAssertion func(ctx context.Context, org gateway.OrgID, clientID, assertion string) (string, time.Duration, error)
	Logger                *slog.Logger
	Metrics               *metrics.Metrics
}

// Server is the SCIM endpoint. Mount it so that it sees paths starting
// with /v2 (e.g. behind http.StripPrefix("/gatehouse/scim", s)).
type Server struct {
	opts     Options
	bearer   httpx.Bearer
	failures *httpx.FailureLimiter
	shares   sync.Map // org → *rate.Limiter (made once its token is right: only real organizations get one)
	lib      scimlib.Server
	users    *userHandler
	groups   *groupHandler
	spc      []byte
	// Each resource's schemas, for the PATCH engine and filter evaluation.
	userRes, groupRes query.Resource
}

// New builds a Server.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := opts.Org.Check(); err != nil {
		return nil, fmt.Errorf("scim: %w", err)
	}
	if opts.MaxResults <= 0 {
		opts.MaxResults = 200
	}
	if opts.MaxPatchOperations <= 0 {
		opts.MaxPatchOperations = 1000
	}
	if opts.MaxMembersPerRequest <= 0 {
		opts.MaxMembersPerRequest = 10000
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	// Entra sends booleans as "True"/"False" unless the org URL carries
	// aadOptscim062020. The switch is global in the library; it only widens
	// what is accepted, so setting it here on every New is harmless.
	schema.SetAllowStringValues(true)

	s := &Server{opts: opts, bearer: httpx.NewBearer(opts.Token), failures: httpx.NewFailureLimiter(opts.AuthFailuresPerMinute)}
	s.userRes = query.UserResource()
	s.groupRes = query.GroupResource()
	s.users = &userHandler{s: s}
	s.groups = &groupHandler{s: s}
	lib, err := scimlib.NewServer(&scimlib.ServerArgs{
		ServiceProviderConfig: &scimlib.ServiceProviderConfig{
			DocumentationURI: optional.NewString("https://github.com/gatehouse-id/gatehouse#scim"),
			MaxResults:       opts.MaxResults,
			SupportFiltering: true,
			SupportPatch:     true,
			AuthenticationSchemes: []scimlib.AuthenticationScheme{{
				Type: scimlib.AuthenticationTypeOauthBearerToken, Name: "OAuth Bearer Token",
				Description: "Authentication with the bearer token configured as scim.token.", Primary: true,
			}},
		},
		ResourceTypes: []scimlib.ResourceType{
			{
				ID: optional.NewString("User"), Name: "User", Endpoint: "/Users",
				Description:      optional.NewString("User Account"),
				Schema:           s.userRes.Core,
				SchemaExtensions: []scimlib.SchemaExtension{{Schema: s.userRes.Extensions[0]}},
				Handler:          s.users,
			},
			{
				ID: optional.NewString("Group"), Name: "Group", Endpoint: "/Groups",
				Description: optional.NewString("Group"),
				Schema:      s.groupRes.Core,
				Handler:     s.groups,
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("scim: build server: %w", err)
	}
	s.lib = lib
	s.spc = serviceProviderConfig(opts)
	return s, nil
}

// reqState travels with a request through the library into the handlers
// and back out to the response writer.
type reqState struct {
	requestID string
	org       gateway.OrgID
	base      string // the organization's SCIM base URL
	location  string // set by Create: the new resource's URL
	etag      string // set by handlers whose response may have no body
}

type stateKey struct{}

func state(r *http.Request) *reqState { return stateOf(r.Context()) }

func stateOf(ctx context.Context) *reqState {
	if st, ok := ctx.Value(stateKey{}).(*reqState); ok {
		return st
	}
	return &reqState{}
}

// orgOf is the organization a request is served for; the store refuses
// the empty one a request without state would carry.
func orgOf(ctx context.Context) gateway.OrgID { return stateOf(ctx).org }

// baseOf is the SCIM base URL of the organization a request is served for.
func baseOf(ctx context.Context) string { return stateOf(ctx).base }

func (s *Server) meta(r *http.Request) provision.Meta {
	return provision.Meta{Org: state(r).org, Source: gateway.SourceSCIM, RequestID: state(r).requestID}
}

// ServeHTTP handles one SCIM request for Options.Org at Options.BaseURL.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.ServeOrg(w, r, s.opts.Org, s.opts.BaseURL)
}

// ServeOrg handles one SCIM request for org, whose SCIM base URL is base:
// its token, its users and groups, its URLs. One Server serves every
// organization; nothing of one is built per organization.
func (s *Server) ServeOrg(w http.ResponseWriter, r *http.Request, org gateway.OrgID, base string) {
	start := time.Now()
	resource := resourceLabel(r.URL.Path)
	rec := &httpx.StatusRecorder{ResponseWriter: w}
	defer func() {
		if s.opts.Metrics == nil {
			return
		}
		status := rec.Status
		if status == 0 {
			status = http.StatusOK
		}
		method := methodLabel(r.Method)
		s.opts.Metrics.SCIMRequests.WithLabelValues(resource, method, statusLabel(status)).Inc()
		if status < 400 && org.Check() == nil { // only an authenticated request gets this far
			s.opts.Metrics.SCIMLastSuccess.WithLabelValues(string(org)).SetToCurrentTime()
		}
		s.opts.Metrics.SCIMDuration.WithLabelValues(resource, method).Observe(time.Since(start).Seconds())
	}()
	w = retryOnUnavailable{rec}
	w.Header().Set("Content-Type", contentType)
	if org.Check() != nil {
		writeError(w, http.StatusNotFound, "", fmt.Sprintf("There is no organization %q: the SCIM base URL is {public_url}{path_prefix}/o/{org}/scim/v2, as the organization's identity settings show it.", string(org)))
		return
	}

	st := &reqState{requestID: httpx.RequestID(r.Context()), org: org, base: strings.TrimRight(base, "/")}
	r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
	ok, err := s.authenticate(r)
	if err != nil {
		s.opts.Logger.ErrorContext(r.Context(), "scim: checking the token", "error", err)
		writeError(w, http.StatusServiceUnavailable, "", "The token cannot be checked right now; retry shortly.")
		return
	}
	if !ok {
		if s.opts.Metrics != nil {
			s.opts.Metrics.SCIMAuthFailures.Inc()
		}
		if ok, wait := s.failures.Fail(httpx.ClientAddress(r), time.Now()); !ok {
			if s.opts.Metrics != nil {
				s.opts.Metrics.SCIMAuthThrottled.Inc()
			}
			secs := int(math.Ceil(wait.Seconds()))
			s.opts.Logger.WarnContext(r.Context(), "scim: too many wrong tokens from one client", "client", httpx.ClientAddress(r), "retry_after_s", secs)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeError(w, http.StatusTooManyRequests, "", fmt.Sprintf("Too many requests with a wrong token from this address; retry in %d s with the right token.", secs))
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse-scim"`)
		writeError(w, http.StatusUnauthorized, "", "Authentication failed: send the SCIM token (scim.token, or the one rotated in the admin API or console) in an \"Authorization: Bearer <token>\" header.")
		return
	}

	if wait, ok := s.share(org); !ok {
		if s.opts.Metrics != nil {
			s.opts.Metrics.SCIMOrgThrottled.WithLabelValues(string(org)).Inc()
		}
		secs := max(int(math.Ceil(wait.Seconds())), 1)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeError(w, http.StatusTooManyRequests, "", fmt.Sprintf("This organization is sending more than %d requests a second (scim.org_requests_per_second); retry in %d s.", s.opts.OrgRequestsPerSecond, secs))
		return
	}
	if s.opts.Disabled != nil {
		if err := s.opts.Disabled(r.Context(), org); err != nil {
			writeSCIMError(w, err)
			return
		}
	}
	lib := &scimWriter{ResponseWriter: w, s: s, st: st}

	ep := route(r.URL.EscapedPath())
	if !methodAllowed(w, r, ep) {
		return
	}
	if r.Method == http.MethodHead {
		// Served as GET; net/http drops the body of a HEAD response.
		r = r.Clone(r.Context())
		r.Method = http.MethodGet
	}
	switch ep.kind {
	case epServiceProviderConfig:
		if base == s.opts.BaseURL {
			_, _ = w.Write(s.spc)
		} else {
			opts := s.opts
			opts.BaseURL = st.base
			_, _ = w.Write(serviceProviderConfig(opts))
		}
	case epSchemas, epResourceTypes:
		s.lib.ServeHTTP(lib, r)
	case epSearch, epRootSearch:
		s.serveSearch(w, r, ep)
	case epCollection:
		if r.Method == http.MethodGet {
			q := r.URL.Query()
			s.serveList(w, r, ep.groups, q)
			return
		}
		if body, ok := s.readBody(w, r, ep); ok {
			s.serveWrite(w, r, ep, body)
		}
	case epResource:
		switch r.Method {
		case http.MethodGet:
			s.serveGet(w, r, ep)
		case http.MethodDelete:
			s.lib.ServeHTTP(lib, r)
		case http.MethodPut:
			if body, ok := s.readBody(w, r, ep); ok {
				s.serveWrite(w, r, ep, body)
			}
		default: // PATCH
			body, ok := s.readBody(w, r, ep)
			if !ok || s.servePatch(w, r, ep, body) {
				return
			}
			s.lib.ServeHTTP(lib, r)
		}
	}
}

// readBody enforces the media type and the body limit, normalises IdP
// quirks in the body, and replaces r.Body with the result. It writes the
// error response and returns false when the request must stop here.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, ep endpoint) ([]byte, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/scim+json" && mt != "application/json") {
			writeError(w, http.StatusUnsupportedMediaType, "", "Unsupported Content-Type: send application/scim+json or application/json.")
			return nil, false
		}
	}
	limit := s.opts.MaxBodyBytes
	tooLarge := fmt.Sprintf("The request body exceeds the limit of %d bytes (scim.max_body_bytes).", limit)
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, "", tooLarge)
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, scimerrors.ScimTypeInvalidSyntax, "The request body could not be read.")
		return nil, false
	}
	if int64(len(body)) > limit {
		writeError(w, http.StatusRequestEntityTooLarge, "", tooLarge)
		return nil, false
	}
	res := s.userRes
	if ep.groups {
		res = s.groupRes
	}
	err = checkJSON(body)
	switch {
	case err != nil:
	case r.Method == http.MethodPatch:
		body, err = patch.NormalizeRequest(body, res)
	case ep.kind == epSearch || ep.kind == epRootSearch:
	default:
		body, err = patch.NormalizeResource(body, res) // schemas: see serveWrite
	}
	if err != nil {
		writeSCIMError(w, err)
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return body, true
}

// servePatch answers PATCH /Users/{id} and /Groups/{id} itself when the
// operations have a simple shape (see patch.ParseSimple) and reports
// whether it did; the library takes everything else.
func (s *Server) servePatch(w http.ResponseWriter, r *http.Request, ep endpoint, body []byte) bool {
	var handler interface {
		Patch(*http.Request, string, []scimlib.PatchOperation) (scimlib.Resource, error)
	}
	var res query.Resource
	var rt string
	if ep.groups {
		handler, res, rt = s.groups, s.groupRes, "Group"
	} else {
		handler, res, rt = s.users, s.userRes, "User"
	}
	id := ep.id
	ops, ok := patch.ParseSimple(body, res)
	if !ok {
		return false
	}
	out, err := handler.Patch(r, id, ops)
	if err != nil {
		writeSCIMError(w, err)
		return true
	}
	if len(out.Attributes) == 0 {
		if st := state(r); st.etag != "" {
			w.Header().Set("ETag", st.etag)
		}
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	s.writeResource(w, r, rt, out, http.StatusOK)
	return true
}

// methodLabel bounds the metrics' method label: the raw method comes from
// the client, before the token is checked, and each new value would be a
// new time series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return m
	}
	return "other"
}

// statusLabel bounds the status label to the codes the server writes.
func statusLabel(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code)
}

// resourceLabel bounds the metrics' resource label to known endpoints.
func resourceLabel(path string) string {
	p := strings.TrimPrefix(path, "/v2/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		p = p[:i]
	}
	switch p {
	case "Users", "Groups", "ServiceProviderConfig", "Schemas", "ResourceTypes":
		return p
	}
	return "other"
}

// scimWriter adjusts the library's responses on the way out: an absolute
// meta.location (the library writes a relative one), the Location header
// on 201, and the ETag on bodiless responses.
type scimWriter struct {
	http.ResponseWriter
	s           *Server
	st          *reqState
	wroteHeader bool
}

func (w *scimWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	if code == http.StatusCreated && w.st.location != "" {
		w.Header().Set("Location", w.st.location)
	}
	if w.st.etag != "" && w.Header().Get("ETag") == "" {
		w.Header().Set("ETag", w.st.etag)
	}
	w.ResponseWriter.WriteHeader(code)
}

// The library marshals meta with encoding/json, so a relative location is
// always exactly `"location":"Users/` or `"location":"Groups/`; an
// attribute value cannot produce that byte sequence because its quotes
// would be escaped.
var (
	relUsers  = []byte(`"location":"Users/`)
	relGroups = []byte(`"location":"Groups/`)
)

func (w *scimWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.st.base != "" && (bytes.Contains(b, relUsers) || bytes.Contains(b, relGroups)) {
		b = bytes.ReplaceAll(b, relUsers, []byte(`"location":"`+w.st.base+`/Users/`))
		b = bytes.ReplaceAll(b, relGroups, []byte(`"location":"`+w.st.base+`/Groups/`))
	}
	return w.ResponseWriter.Write(b)
}

// share takes one request from org's share; when there is none left it
// says how long until there is.
func (s *Server) share(org gateway.OrgID) (time.Duration, bool) {
	if s.opts.OrgRequestsPerSecond <= 0 {
		return 0, true
	}
	l, ok := s.shares.Load(org)
	if !ok {
		l, _ = s.shares.LoadOrStore(org, rate.NewLimiter(rate.Limit(s.opts.OrgRequestsPerSecond), 2*s.opts.OrgRequestsPerSecond))
	}
	lim := l.(*rate.Limiter)
	if lim.Allow() {
		return 0, true
	}
	res := lim.Reserve()
	defer res.Cancel()
	return res.Delay(), false
}

// authenticate checks the request's bearer token.
func (s *Server) authenticate(r *http.Request) (bool, error) {
	if s.opts.Authenticate == nil {
		return s.bearer.Check(r), nil
	}
	token, ok := httpx.BearerToken(r)
	if !ok {
		return false, nil
	}
	return s.opts.Authenticate(r.Context(), state(r).org, token)
}

// retryOnUnavailable gives every 503 a Retry-After (the store cannot be
// reached right now: the IdP retries instead of giving up), whichever
// part of the server wrote it.
type retryOnUnavailable struct{ http.ResponseWriter }

func (w retryOnUnavailable) WriteHeader(code int) {
	if code == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "2")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w retryOnUnavailable) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Package proxy puts the gateway in front of the app: every request
// outside the gateway's own path prefix goes to the upstream when its
// browser has a valid session, with the signed-in user's identity in
// headers and a short-lived signed JWT; otherwise a browser is sent to
// sign in and an API call gets 401, and neither reaches the upstream.
// Identity headers a client sent are stripped whatever their spelling.
package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/pages"
	"github.com/gatehouse-id/gatehouse/gateway/session"
)

// Identity headers set for the upstream.
const (
	HeaderOrg       = "X-Gatehouse-Org" // the person's organization id
	HeaderUserID    = "X-Gatehouse-User-Id"
	HeaderEmail     = "X-Gatehouse-Email"
	HeaderName      = "X-Gatehouse-Name"
	HeaderGroups    = "X-Gatehouse-Groups" // comma-separated, each name PercentEncode'd
	HeaderRole      = "X-Gatehouse-Role"
	HeaderPool      = "X-Gatehouse-Pool"      // the user's pool ids, comma-separated
	HeaderAssertion = "X-Gatehouse-Assertion" // the identity JWT
	// HeaderAccess is the person's access, pool by pool:
	// "pool=role:perm,perm;pool=role:perm" (pools and roles hold no
	// '=', ':' or ';', permissions no ',' or ';'). Past accessBudget it is
	// left out and HeaderAccessOmitted says so: the JWT's access claim
	// always holds it.
	HeaderAccess        = "X-Gatehouse-Access"
	HeaderAccessOmitted = "X-Gatehouse-Access-Omitted"
	// When the groups would take the identity headers past their budget,
	// HeaderGroups and the JWT's groups claim are left out, and
	// HeaderGroupsURL (and the JWT's groups_url claim) says where the app
	// reads them: GET with the assertion as the bearer token.
	HeaderGroupsURL = "X-Gatehouse-Groups-Url"
)

// Group modes (proxy.groups): which of a person's groups the app is told.
const (
	GroupsAll    = "all"
	GroupsMapped = "mapped" // only those that map to a pool or a role
	GroupsNone   = "none"
)

// DefaultHeaderBudget bounds the identity headers together, the JWT
// included: 8 KiB fits every common server's default (nginx's 8 KiB
// header line buffers, Node's 16 KiB for all headers).
const DefaultHeaderBudget = 8 << 10

// Signer issues the identity JWT; with a groupsURL it carries that
// instead of the groups.
type Signer interface {
	Sign(u *gateway.User, groups []string, groupsURL string, access []gateway.Access) (string, error)
}

// Options configures the proxy.
type Options struct {
	Upstream *url.URL
	Sessions *session.Manager
	Signer   Signer
	// Store is read for the signed-in person's groups, in the
	// organization of their session.
	Store gateway.Store
	// Access is what a user may do in each of their pools; AccessVersion
	// changes whenever any of it may have (what was worked out for a user
	// under an older version is not reused).
	Access        func(ctx context.Context, u *gateway.User) ([]gateway.Access, uint64, error)
	AccessVersion func() uint64
	// Rules are paths that need a permission; the first matching rule
	// decides (none: any signed-in person passes).
	Rules []Rule
	// LoginURL is where a browser without a session is sent, with the
	// page it asked for (a same-origin path) to come back to.
	LoginURL func(returnTo string) string
	Logger   *slog.Logger
	// ObserveUpstream, when set, is told how long the app took to answer
	// (to its response headers, or to the failure).
	ObserveUpstream func(elapsed time.Duration)
	// CacheTTL is how long a person's session and groups may be answered
	// from memory (0: read on every request); a change in their
	// organization ends it at once (see session.Manager.Cached).
	CacheTTL time.Duration
	// Groups is which groups the app is told (GroupsAll when empty);
	// MappedGroup says whether a group maps to a pool or a role in the
	// organization (for GroupsMapped).
	Groups      string
	MappedGroup func(org gateway.OrgID, group string) bool
	// HeaderBudget bounds the identity headers together, in bytes
	// (DefaultHeaderBudget when 0); GroupsURL is the public URL of the
	// groups endpoint (GroupsHandler), where the groups go past it.
	HeaderBudget int
	GroupsURL    string
	// VerifyAssertion checks an identity JWT the gateway issued, for the
	// groups endpoint.
	VerifyAssertion func(token string) (org gateway.OrgID, userID string, err error)
}

// Proxy serves the upstream behind the gateway's sessions.
type Proxy struct {
	opts   Options
	rules  ruleTable
	rp     *httputil.ReverseProxy
	tokens tokenCache
	groups groupCache
}

// groupCache keeps a person's groups for the hot path, like the session
// cache: for CacheTTL, until the next change in their organization.
type groupCache struct {
	mu sync.Mutex
	m  map[string]groupsEntry
}

type groupsEntry struct {
	view    *groupsView
	until   time.Time
	changed <-chan struct{}
}

// groupsView is what the headers need of a person's groups, worked out
// once per read of their memberships: the names the app is told
// (proxy.groups), the header's value and a short key of them.
type groupsView struct {
	names   []string
	escaped string // the header's value: each name PercentEncode'd, comma-separated
	key     string // SHA-256 of the names: part of the token cache's key
}

// groupsOf is the view of u's groups, from the cache when it may answer.
func (p *Proxy) groupsOf(ctx context.Context, u *gateway.User) (*groupsView, error) {
	if p.opts.Groups == GroupsNone {
		return &groupsView{names: []string{}}, nil
	}
	if p.opts.CacheTTL <= 0 {
		refs, err := p.opts.Store.Groups().Memberships(ctx, u.Org, []string{u.ID})
		if err != nil {
			return nil, err
		}
		return p.viewOf(u.Org, refs[u.ID]), nil
	}
	key, now := string(u.Org)+"\x00"+u.ID, time.Now()
	c := &p.groups
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		select {
		case <-e.changed:
		default:
			return e.view, nil
		}
	}
	changed := p.opts.Store.Outbox().Changed(u.Org) // before reading: a change meanwhile is newer
	refs, err := p.opts.Store.Groups().Memberships(ctx, u.Org, []string{u.ID})
	if err != nil {
		return nil, err
	}
	view := p.viewOf(u.Org, refs[u.ID])
	c.mu.Lock()
	if c.m == nil || len(c.m) >= 100_000 {
		c.m = make(map[string]groupsEntry)
	}
	c.m[key] = groupsEntry{view: view, until: now.Add(p.opts.CacheTTL), changed: changed}
	c.mu.Unlock()
	return view, nil
}

// viewOf works out the view of the groups refs (filtered as
// proxy.groups says).
func (p *Proxy) viewOf(org gateway.OrgID, refs []gateway.GroupRef) *groupsView {
	v := &groupsView{names: make([]string, 0, len(refs))}
	for _, g := range refs {
		if p.opts.Groups == GroupsMapped && (p.opts.MappedGroup == nil || !p.opts.MappedGroup(org, g.DisplayName)) {
			continue
		}
		v.names = append(v.names, g.DisplayName)
	}
	if len(v.names) == 0 {
		return v
	}
	parts := make([]string, len(v.names))
	for i, n := range v.names {
		parts[i] = PercentEncode(n)
	}
	v.escaped = strings.Join(parts, ",")
	sum := sha256.Sum256([]byte(strings.Join(v.names, "\x00")))
	v.key = string(sum[:])
	return v
}

// tokenReuse is how long a signed identity token is handed out again for
// the same user state (id, version, groups). Signing is most of the
// gateway's cost per request; a token so reused still has at least
// 40 s of its 60 s lifetime left.
const tokenReuse = 20 * time.Second

// tokenCache keeps, by user state (and access version), what was worked
// out for it: the signed token, the access and its header.
type tokenCache struct {
	mu sync.Mutex
	m  map[string]cachedToken
}

type cachedToken struct {
	token   string
	access  []gateway.Access
	compact string
	until   time.Time
	// Past the header budget: the access header left out, the groups
	// moved to the groups URL.
	accessOmitted, groupsMoved bool
}

func (c *tokenCache) get(key string, now time.Time) (cachedToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[key]
	if !ok || now.After(t.until) {
		return cachedToken{}, false
	}
	return t, true
}

func (c *tokenCache) put(key string, t cachedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= 10000 {
		c.m = make(map[string]cachedToken) // bounded: start afresh
	}
	c.m[key] = t
}

type identityKey struct{}

type startKey struct{}

func (p *Proxy) observe(r *http.Request) {
	if p.opts.ObserveUpstream == nil {
		return
	}
	if start, ok := r.Context().Value(startKey{}).(time.Time); ok {
		p.opts.ObserveUpstream(time.Since(start))
	}
}

// New builds the proxy.
func New(opts Options) *Proxy {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{opts: opts, rules: compileRules(opts.Rules)}
	// Its own pool: the default keeps 2 idle connections per host, so
	// concurrent requests to the app would each open a new one; and the
	// app beside the gateway is never reached through HTTP_PROXY.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	transport.MaxIdleConns = 512
	transport.MaxIdleConnsPerHost = 256
	p.rp = &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(opts.Upstream)
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host // the app sees the host the browser asked for
			// The session cookie is the admin API's credential: the app
			// never sees it, nor any other cookie of the gateway's.
			httpx.StripGatewayCookies(pr.Out.Header)
			if h, ok := pr.In.Context().Value(identityKey{}).(http.Header); ok {
				for k, v := range h {
					pr.Out.Header[k] = v
				}
			}
		},
		FlushInterval: -1, // stream responses (server-sent events) as they come
		BufferPool:    &bufferPool{},
		ModifyResponse: func(resp *http.Response) error {
			p.observe(resp.Request)
			dropGatewaySetCookies(resp.Header)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.observe(r)
			opts.Logger.WarnContext(r.Context(), "proxy: upstream failed", "error", err)
			http.Error(w, "The application is not answering; try again shortly.", http.StatusBadGateway)
		},
	}
	return p
}

// bufferPool reuses the copy buffers of proxied bodies; without it each
// request allocates 32 KiB, which was most of the proxy's garbage.
type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte {
	if buf, ok := b.pool.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.pool.Put(&buf) }

// dropGatewaySetCookies keeps the app from setting the gateway's own
// cookies (a chosen session cookie would be session fixation).
func dropGatewaySetCookies(h http.Header) {
	values := h["Set-Cookie"]
	if len(values) == 0 {
		return
	}
	kept := values[:0:0]
	for _, v := range values {
		name, _, _ := strings.Cut(v, "=")
		if !httpx.GatewayCookie(strings.TrimSpace(name)) {
			kept = append(kept, v)
		}
	}
	if len(kept) == 0 {
		delete(h, "Set-Cookie")
		return
	}
	h["Set-Cookie"] = kept
}

// StripIdentityHeaders removes every header that could pass for one the
// gateway sets: any X-Gatehouse-* in any case, with '_' or '-'.
func StripIdentityHeaders(h http.Header) {
	for k := range h {
		if strings.HasPrefix(strings.ReplaceAll(strings.ToLower(k), "_", "-"), "x-gatehouse-") {
			delete(h, k)
		}
	}
}

// wantsJSON reports an API call rather than a page load.
func wantsJSON(r *http.Request) bool {
	return r.Header.Get("X-Requested-With") != "" || strings.Contains(r.Header.Get("Accept"), "application/json") &&
		!strings.Contains(r.Header.Get("Accept"), "text/html")
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	StripIdentityHeaders(r.Header)
	identity, access, ok := p.identify(w, r)
	if !ok {
		return
	}
	if len(p.rules.rules) > 0 {
		if !plainPath(r.URL.Path, r.URL.RawPath) {
			http.Error(w, "This path is ambiguous (dot segments, empty segments, or encoded slashes) and the gateway checks paths: ask for it plainly.", http.StatusBadRequest)
			return
		}
		if rule := refusal(p.rules, r, r.URL.Path, access); rule != nil {
			p.forbid(w, r, rule)
			return
		}
	}
	ctx := context.WithValue(r.Context(), identityKey{}, identity)
	if p.opts.ObserveUpstream != nil {
		ctx = context.WithValue(ctx, startKey{}, time.Now())
	}
	p.rp.ServeHTTP(w, r.WithContext(ctx))
}

// accessBudget bounds the access header: beyond it the app reads the
// JWT's claim (a proxy or server in front of the app may refuse larger
// headers).
const accessBudget = 4096

// Auth, served at base, answers nginx auth_request and Envoy ext_authz:
// 200 with the identity headers for a valid session, 401 otherwise (the
// proxy then sends the browser to sign in). With ?pool=ID&permission=P
// it answers a question: 200 when the session holds P in that pool, 403
// when not. Below base (base/<the original path>, as Envoy's path_prefix
// asks) the proxy's rules decide for that path, 403 when one refuses.
func (p *Proxy) Auth(base string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		// A question is asked at base itself; below it the path is the
		// original request's, and so is any query string (Envoy passes it
		// on): it asks nothing, the rules decide.
		original, below := strings.CutPrefix(r.URL.Path, base)
		below = below && original != ""
		var pool, permission string
		if !below {
			q := r.URL.Query()
			pool, permission = q.Get("pool"), q.Get("permission")
			if (pool == "") != (permission == "") {
				http.Error(w, "ask with both pool and permission, or neither", http.StatusBadRequest)
				return
			}
		} else if !strings.HasPrefix(original, "/") || len(p.rules.rules) > 0 && !plainPath(original, strings.TrimPrefix(r.URL.RawPath, base)) {
			http.Error(w, "ambiguous path", http.StatusBadRequest)
			return
		}
		_, u, err := p.opts.Sessions.Cached(r.Context(), r)
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h, access, err := p.headers(r.Context(), u)
		if err != nil {
			p.opts.Logger.ErrorContext(r.Context(), "auth: identity headers", "error", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		for k, v := range h {
			w.Header()[k] = v
		}
		if permission != "" && !holds(access, pool, permission) {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		if below && refusal(p.rules, r, original, access) != nil {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// holds reports whether access grants permission in pool.
func holds(access []gateway.Access, pool, permission string) bool {
	for _, a := range access {
		if a.Pool == pool {
			return slices.Contains(a.Permissions, permission)
		}
	}
	return false
}

// forbid answers a request a rule refuses: JSON for an API call, a page
// for a browser, saying which permission it needs.
func (p *Proxy) forbid(w http.ResponseWriter, r *http.Request, rule *Rule) {
	w.Header().Set("Cache-Control", "no-store")
	where := "in any of your pools"
	if pool := rule.pool(r, r.URL.Path); pool != "" && pool != noPool {
		where = "in the pool " + pool
	}
	if wantsJSON(r) || r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "forbidden", "permission": rule.Permission, "detail": "this needs the permission " + rule.Permission + " " + where})
		return
	}
	pages.Show(w, http.StatusForbidden, pages.Message{Title: "You may not open this",
		Message: "This page needs the permission " + rule.Permission + " " + where + ", and none of your roles there grants it.",
		Hint:    "A manager of your organization can give you a role that does."})
}

// identify returns the identity headers and access of the request's
// user, or writes the answer for a request without a valid session.
func (p *Proxy) identify(w http.ResponseWriter, r *http.Request) (http.Header, []gateway.Access, bool) {
	_, u, err := p.opts.Sessions.Cached(r.Context(), r)
	if err == nil {
		h, access, err := p.headers(r.Context(), u)
		if err != nil {
			p.opts.Logger.ErrorContext(r.Context(), "proxy: identity headers", "error", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return nil, nil, false
		}
		return h, access, true
	}
	if !session.SignedOut(err) {
		p.opts.Logger.ErrorContext(r.Context(), "proxy: session", "error", err)
		http.Error(w, "The gateway cannot check your session right now; try again shortly.", http.StatusServiceUnavailable)
		return nil, nil, false
	}
	w.Header().Set("Cache-Control", "no-store")
	if wantsJSON(r) || r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "not signed in", "login": p.opts.LoginURL("/")})
		return nil, nil, false
	}
	http.Redirect(w, r, p.opts.LoginURL(r.URL.RequestURI()), http.StatusFound)
	return nil, nil, false
}

// headers builds the identity headers for u, within the header budget:
// past it the access header is left out first (the JWT has it), then the
// groups move out of the headers and the JWT to the groups URL.
func (p *Proxy) headers(ctx context.Context, u *gateway.User) (http.Header, []gateway.Access, error) {
	view, err := p.groupsOf(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	groups, escaped := view.names, view.escaped
	var accessVersion uint64
	if p.opts.AccessVersion != nil {
		accessVersion = p.opts.AccessVersion()
	}
	key := string(u.Org) + "\x00" + u.ID + "\x00" + strconv.FormatUint(u.Version, 10) + "\x00" + strconv.FormatUint(accessVersion, 10) +
		"\x00" + view.key
	email := u.PrimaryEmail()
	if email == "" {
		email = u.UserName
	}
	name := u.DisplayName
	if name == "" {
		name = strings.TrimSpace(u.GivenName + " " + u.FamilyName)
	}
	name = headerSafe(name)
	now := time.Now()
	cached, ok := p.tokens.get(key, now)
	if !ok {
		if p.opts.Access != nil {
			if cached.access, _, err = p.opts.Access(ctx, u); err != nil {
				return nil, nil, err
			}
		}
		if cached.token, err = p.opts.Signer.Sign(u, groups, "", cached.access); err != nil {
			return nil, nil, err
		}
		cached.compact, cached.until = CompactAccess(cached.access), now.Add(tokenReuse)
		// What the headers take: the fixed ones, then what may go.
		size := headerSize(HeaderOrg, string(u.Org)) + headerSize(HeaderUserID, u.ID) + headerSize(HeaderEmail, email) +
			headerSize(HeaderName, name) + headerSize(HeaderRole, u.Role) + headerSize(HeaderPool, strings.Join(u.Pools, ",")) +
			headerSize(HeaderAssertion, cached.token) + headerSize(HeaderGroups, escaped) + headerSize(HeaderAccess, cached.compact)
		if len(cached.compact) > accessBudget || size > p.budget() {
			cached.accessOmitted = true
			size += headerSize(HeaderAccessOmitted, accessOmittedNote) - headerSize(HeaderAccess, cached.compact)
		}
		if size > p.budget() && len(groups) > 0 && p.opts.GroupsURL != "" {
			moved, err := p.opts.Signer.Sign(u, groups, p.opts.GroupsURL, cached.access)
			if err != nil {
				return nil, nil, err
			}
			size += headerSize(HeaderAssertion, moved) - headerSize(HeaderAssertion, cached.token) +
				headerSize(HeaderGroupsURL, p.opts.GroupsURL) - headerSize(HeaderGroups, escaped)
			cached.token, cached.groupsMoved = moved, true
		}
		if size > p.budget() {
			p.opts.Logger.WarnContext(ctx, "proxy: the identity headers exceed the budget even without groups and access; the app may refuse them",
				"user", u.ID, "bytes", size, "budget", p.budget())
		}
		p.tokens.put(key, cached)
	}
	token, access := cached.token, cached.access
	if cached.groupsMoved {
		escaped = ""
	}
	// One backing array for the values: this runs on every request.
	values := [...]string{string(u.Org), u.ID, email, name, escaped, u.Role, strings.Join(u.Pools, ","), token}
	h := make(http.Header, len(values)+1)
	for i, k := range [...]string{HeaderOrg, HeaderUserID, HeaderEmail, HeaderName, HeaderGroups, HeaderRole, HeaderPool, HeaderAssertion} {
		h[k] = values[i : i+1 : i+1]
	}
	if cached.groupsMoved {
		delete(h, HeaderGroups)
		h[HeaderGroupsURL] = []string{p.opts.GroupsURL}
	}
	if !cached.accessOmitted {
		h[HeaderAccess] = []string{cached.compact}
	} else {
		h[HeaderAccessOmitted] = []string{accessOmittedNote}
	}
	return h, access, nil
}

const accessOmittedNote = "too-large: read the access claim of " + HeaderAssertion

// headerSize is what a header takes on the wire ("Name: value\r\n").
func headerSize(name, value string) int { return len(name) + len(value) + 4 }

func (p *Proxy) budget() int {
	if p.opts.HeaderBudget > 0 {
		return p.opts.HeaderBudget
	}
	return DefaultHeaderBudget
}

// GroupsHandler serves a person's groups to the app when they did not
// fit in the headers: GET with the identity JWT (X-Gatehouse-Assertion)
// as the bearer token, answered {"groups": [...]} (as proxy.groups
// filters them), for as long as the JWT is valid and the person active.
func (p *Proxy) GroupsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || p.opts.VerifyAssertion == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
			httpx.WriteJSON(w, http.StatusUnauthorized, "application/json", map[string]string{"error": "invalid_token", "error_description": "send the " + HeaderAssertion + " JWT as the bearer token"})
			return
		}
		org, userID, err := p.opts.VerifyAssertion(strings.TrimSpace(token))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
			httpx.WriteJSON(w, http.StatusUnauthorized, "application/json", map[string]string{"error": "invalid_token", "error_description": "the token is not a valid " + HeaderAssertion})
			return
		}
		u, err := p.opts.Store.Users().Get(r.Context(), org, userID)
		if gateway.ErrorCodeOf(err) == gateway.ErrNotFound || err == nil && !u.Active {
			httpx.WriteJSON(w, http.StatusNotFound, "application/json", map[string]string{"error": "not_found", "error_description": "the person is gone or deactivated"})
			return
		}
		if err != nil {
			httpx.WriteJSON(w, http.StatusServiceUnavailable, "application/json", map[string]string{"error": "unavailable"})
			return
		}
		view, err := p.groupsOf(r.Context(), u)
		if err != nil {
			httpx.WriteJSON(w, http.StatusServiceUnavailable, "application/json", map[string]string{"error": "unavailable"})
			return
		}
		httpx.WriteJSON(w, http.StatusOK, "application/json", map[string]any{"sub": u.ID, "org": string(org), "groups": view.names})
	})
}

// CompactAccess writes access in the header's form:
// "pool=role:perm,perm;pool=role:perm".
func CompactAccess(access []gateway.Access) string {
	var b strings.Builder
	n := 0
	for _, a := range access {
		n += len(a.Pool) + len(a.Role) + 3
		for _, perm := range a.Permissions {
			n += len(perm) + 1
		}
	}
	b.Grow(n)
	for i, a := range access {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(a.Pool)
		b.WriteByte('=')
		b.WriteString(a.Role)
		b.WriteByte(':')
		for j, perm := range a.Permissions {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(perm)
		}
	}
	return b.String()
}

// PercentEncode writes s as RFC 3986 percent-encoding: every byte of its
// UTF-8 outside the unreserved set (A-Z a-z 0-9 - . _ ~) as %XX, so a
// space is %20 (never +), a comma %2C and a percent sign %25; JavaScript's
// decodeURIComponent and Go's url.PathUnescape read it back.
func PercentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		if c := s[i]; unreserved(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// headerSafe drops what a header value cannot carry (control characters);
// the JWT carries the exact name.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

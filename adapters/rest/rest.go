// Package rest drives an existing app's own user and group REST API
// without code: per event type a method, a path with {placeholders} and a
// JSON body built from the event (the body is data, encoded as JSON by the
// adapter, so values are always escaped right). The id the app answers a
// create with is kept in the gateway's id map and used in later paths.
package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// Config is the rest adapter's configuration.
type Config struct {
	// BaseURL is prefixed to every operation's path.
	BaseURL string `yaml:"base_url"`
	// Auth is a header carrying the app's credential (a secret).
	Auth struct {
		Header string         `yaml:"header"`
		Value  gateway.Secret `yaml:"value"`
	} `yaml:"auth"`
	// Headers are added to every request.
	Headers map[string]string `yaml:"headers"`
	// Operations maps an event type to the calls that apply it, in order
	// (one call, or a list). Event types without any are acknowledged and
	// skipped.
	Operations map[string]Calls `yaml:"operations"`
	// UserLookup and GroupLookup find a resource the app already has: when
	// a create answers 409, or an operation needs an app id the id map
	// lacks. The id found is linked in the id map.
	UserLookup  *Lookup `yaml:"user_lookup"`
	GroupLookup *Lookup `yaml:"group_lookup"`
}

// Operation is one call.
type Operation struct {
	Method string `yaml:"method"`
	// Path is appended to base_url. Placeholders: {app_id} (the app's id of
	// the event's user or group), {member.id} and {member.app_id} (with
	// per_member), or any event path ({user.id}, {user.email}). Values are
	// path-escaped, or query-escaped after the '?'.
	Path string `yaml:"path"`
	// Body is the JSON sent: its string values that start with ':' are
	// taken from the event (":user.email", ":app_id", ":member.app_id");
	// "::" starts a literal ':'. No body: none is sent.
	Body any `yaml:"body"`
	// IDField is where a create's answer holds the app's id (a dotted path
	// such as "id" or "data.id"); it is kept in the id map.
	IDField string `yaml:"id_field"`
	// PerMember runs the call once per member id of the event.
	PerMember bool `yaml:"per_member"`
}

// Calls is one operation or a list of them.
type Calls []Operation

// UnmarshalYAML accepts a single call or a list (the YAML decoder's
// function form, so that this package needs no YAML library).
func (c *Calls) UnmarshalYAML(unmarshal func(any) error) error {
	var list []Operation
	if err := unmarshal(&list); err == nil {
		*c = list
		return nil
	}
	var one Operation
	if err := unmarshal(&one); err != nil {
		return err
	}
	*c = Calls{one}
	return nil
}

// Lookup is a GET that finds a resource: Path as in Operation, IDField
// where the answer holds the app's id ("users.0.id").
type Lookup struct {
	Path    string `yaml:"path"`
	IDField string `yaml:"id_field"`
}

var placeholder = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_.]*)\}`)

// Validate reports every problem with its key path.
func (c *Config) Validate() []gateway.ConfigProblem {
	var ps []gateway.ConfigProblem
	add := func(path, format string, args ...any) {
		ps = append(ps, gateway.ConfigProblem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if u, err := url.Parse(c.BaseURL); c.BaseURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("base_url", "must be an absolute http or https URL, e.g. https://app.example/api")
	}
	if (c.Auth.Header == "") != !c.Auth.Value.IsConfigured() {
		add("auth", "set both header and value (e.g. Authorization and env:APP_API_TOKEN), or neither")
	}
	if len(c.Operations) == 0 {
		add("operations", "is required: at least one event type with its call")
	}
	types := make([]string, 0, len(c.Operations))
	for t := range c.Operations {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		if !gateway.Op(t).Known() {
			add("operations."+t, "is not an event type (user.created, user.updated, …, group.members_removed)")
			continue
		}
		if len(c.Operations[t]) == 0 {
			add("operations."+t, "has no call")
		}
		known := !strings.HasSuffix(t, ".created") // a create learns the app's id from its answer
		for i, op := range c.Operations[t] {
			path := fmt.Sprintf("operations.%s[%d]", t, i)
			switch op.Method {
			case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			default:
				add(path+".method", "%q is not one of POST, PUT, PATCH, DELETE", op.Method)
			}
			if !strings.HasPrefix(op.Path, "/") {
				add(path+".path", "must start with /")
			}
			for _, name := range placeholders(op.Path, op.Body) {
				if err := checkName(name, op.PerMember); err != nil {
					add(path, "%v", err)
				}
				if name == "app_id" && !known {
					add(path, "cannot use app_id before a call with id_field has created the resource")
				}
			}
			if op.IDField != "" {
				known = true
			}
		}
	}
	for name, l := range map[string]*Lookup{"user_lookup": c.UserLookup, "group_lookup": c.GroupLookup} {
		if l == nil {
			continue
		}
		if !strings.HasPrefix(l.Path, "/") {
			add(name+".path", "must start with /")
		}
		if l.IDField == "" {
			add(name+".id_field", "is required: where the answer holds the app's id, e.g. users.0.id")
		}
		for _, n := range placeholders(l.Path, nil) {
			if err := checkName(n, false); err != nil || n == "app_id" {
				add(name+".path", "{%s} cannot be used in a lookup", n)
			}
		}
	}
	return ps
}

// placeholders lists the names a path and a body refer to.
func placeholders(path string, body any) []string {
	var out []string
	for _, m := range placeholder.FindAllStringSubmatch(path, -1) {
		out = append(out, m[1])
	}
	var walk func(any)
	walk = func(v any) {
		switch t := v.(type) {
		case string:
			if strings.HasPrefix(t, ":") && !strings.HasPrefix(t, "::") {
				out = append(out, t[1:])
			}
		case map[string]any:
			for _, x := range t {
				walk(x)
			}
		case []any:
			for _, x := range t {
				walk(x)
			}
		}
	}
	walk(body)
	return out
}

func checkName(name string, perMember bool) error {
	switch name {
	case "app_id":
		return nil
	case "member.id", "member.app_id":
		if !perMember {
			return fmt.Errorf("{%s} needs per_member: true", name)
		}
		return nil
	}
	if !gateway.WireField(name) {
		return fmt.Errorf("%q is not a field of the event (user.email, group.displayName, invitation.link, app_id, …)", name)
	}
	return nil
}

// Open builds the adapter.
func (c *Config) Open(_ context.Context, env gateway.AdapterEnv) (gateway.Adapter, error) {
	if env.Store == nil {
		return nil, errors.New("rest: the adapter needs the gateway's store for its id map")
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost:   64,
	}
	return &adapter{
		cfg: c, id: env.ID, ids: env.Store.IDMaps(),
		base: strings.TrimRight(c.BaseURL, "/"),
		client: &http.Client{Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}, nil
}

type adapter struct {
	cfg    *Config
	id     string
	ids    gateway.IDMaps
	base   string
	client *http.Client
}

func (a *adapter) Close() error {
	a.client.CloseIdleConnections()
	return nil
}

// resource is the user or group an event is about.
type resource struct {
	kind, id string
	lookup   *Lookup
}

func (a *adapter) resourceOf(e gateway.WireEvent) resource {
	if e.User != nil {
		return resource{kind: "user", id: e.User.ID, lookup: a.cfg.UserLookup}
	}
	if e.Group != nil {
		return resource{kind: "group", id: e.Group.ID, lookup: a.cfg.GroupLookup}
	}
	if e.Invitation != nil {
		return resource{kind: "invitation", id: e.Invitation.ID}
	}
	return resource{}
}

func (a *adapter) Deliver(ctx context.Context, e gateway.WireEvent) error {
	calls := a.cfg.Operations[string(e.Type)]
	if len(calls) == 0 {
		return nil
	}
	doc, err := eventDoc(e)
	if err != nil {
		return fmt.Errorf("encode event: %v: %w", err, gateway.ErrPermanent)
	}
	res := a.resourceOf(e)
	if res.id == "" {
		return fmt.Errorf("%s carries no user, group or invitation: %w", e.Type, gateway.ErrPermanent)
	}
	key := res.kind + ":" + res.id
	appID, err := a.ids.Get(ctx, e.Org, a.id, key)
	if err != nil {
		return err
	}
	if appID == deleted {
		// Gone from the app already: this is a redelivery of something
		// older than the deletion (ids are never reused).
		return nil
	}
	creating := strings.HasSuffix(string(e.Type), ".created")
	deleting := strings.HasSuffix(string(e.Type), ".deleted") || e.Type == gateway.OpUserDeactivated
	if !creating && appID == "" && anyNeeds(calls, "app_id") {
		if appID, err = a.link(ctx, e.Org, res, doc); err != nil {
			return err
		}
		if appID == "" {
			if deleting {
				return nil // the app never had it: nothing to delete
			}
			return fmt.Errorf("the app has no id for %s %s (not created through this adapter, and no %s_lookup found it): %w",
				res.kind, res.id, res.kind, gateway.ErrPermanent)
		}
	}
	vars := map[string]string{"app_id": appID}
	for _, op := range calls {
		if creating && op.IDField != "" && vars["app_id"] != "" {
			continue // created before (a redelivery): the rest may still be due
		}
		if err := a.apply(ctx, e, res, op, doc, vars, creating, deleting); err != nil {
			return err
		}
	}
	if strings.HasSuffix(string(e.Type), ".deleted") {
		return a.ids.Put(ctx, e.Org, a.id, key, deleted)
	}
	return nil
}

// deleted marks, in the id map, a resource deleted from the app, so that a
// redelivered older event about it neither fails nor brings it back.
const deleted = "\x00deleted"

// apply makes one call (once per member with per_member).
func (a *adapter) apply(ctx context.Context, e gateway.WireEvent, res resource, op Operation, doc map[string]any, vars map[string]string, creating, deleting bool) error {
	members := []string{""}
	if op.PerMember {
		members = e.MemberIDs
	}
	for _, m := range members {
		if op.PerMember {
			vars["member.id"], vars["member.app_id"] = m, ""
			if needs(op, "member.app_id") {
				mid, gone, err := a.memberID(ctx, e.Org, m)
				if err != nil {
					return err
				}
				if gone || mid == "" && e.Type == gateway.OpGroupMembersRemoved {
					continue // deleted from the app since, or it never had that member
				}
				if mid == "" {
					// Retried, not permanent: the member's own creation may
					// still be on its way in another lane.
					return fmt.Errorf("the app has no id for member %s yet", m)
				}
				vars["member.app_id"] = mid
			}
		}
		status, body, err := a.call(ctx, op.Method, op.Path, op.Body, doc, vars)
		if err != nil {
			return err
		}
		switch {
		case status >= 200 && status < 300:
			if op.IDField != "" {
				id := field(body, op.IDField)
				if id == "" {
					return fmt.Errorf("the answer has no %q: the app's id cannot be kept: %w", op.IDField, gateway.ErrPermanent)
				}
				if err := a.ids.Put(ctx, e.Org, a.id, res.kind+":"+res.id, id); err != nil {
					return err
				}
				vars["app_id"] = id
			}
		case status == http.StatusNotFound && (deleting || op.Method == http.MethodDelete):
			// Already gone: what a delete, a removal or a deactivation
			// wanted (and what a redelivery of one finds).
		case status == http.StatusConflict && op.IDField != "":
			// The app has it already: link it instead of failing.
			found, err := a.link(ctx, e.Org, res, doc)
			if err != nil {
				return err
			}
			if found == "" {
				return fmt.Errorf("%s %s answered 409 and %s_lookup found no %s to link: %w", op.Method, op.Path, res.kind, res.kind, gateway.ErrPermanent)
			}
			vars["app_id"] = found
		case status == http.StatusConflict && (creating || op.PerMember):
			// A member added (or a create's follow-up) that is already so:
			// a redelivery.
		default:
			return failure(op.Method, op.Path, status, body)
		}
	}
	return nil
}

// memberID is the app's id of a member user, linked by lookup if need be;
// gone says the user was deleted from the app since.
func (a *adapter) memberID(ctx context.Context, org gateway.OrgID, userID string) (id string, gone bool, err error) {
	mid, err := a.ids.Get(ctx, org, a.id, "user:"+userID)
	switch {
	case err != nil:
		return "", false, err
	case mid == deleted:
		return "", true, nil
	case mid != "":
		return mid, false, nil
	}
	mid, err = a.link(ctx, org, resource{kind: "user", id: userID, lookup: a.cfg.UserLookup}, map[string]any{"user": map[string]any{"id": userID}})
	return mid, false, err
}

// link finds the resource with the configured lookup and keeps its id.
func (a *adapter) link(ctx context.Context, org gateway.OrgID, res resource, doc map[string]any) (string, error) {
	if res.lookup == nil {
		return "", nil
	}
	if _, err := expand(res.lookup.Path, doc, nil); err != nil {
		return "", nil // the event lacks what the lookup needs (a member known by id only)
	}
	status, body, err := a.call(ctx, http.MethodGet, res.lookup.Path, nil, doc, nil)
	if err != nil {
		return "", err
	}
	if status == http.StatusNotFound {
		return "", nil
	}
	if status < 200 || status >= 300 {
		return "", failure(http.MethodGet, res.lookup.Path, status, body)
	}
	id := field(body, res.lookup.IDField)
	if id == "" {
		return "", nil
	}
	return id, a.ids.Put(ctx, org, a.id, res.kind+":"+res.id, id)
}

// call sends one request and returns its status and body.
func (a *adapter) call(ctx context.Context, method, path string, body any, doc map[string]any, vars map[string]string) (int, []byte, error) {
	u, err := expand(path, doc, vars)
	if err != nil {
		return 0, nil, fmt.Errorf("%v: %w", err, gateway.ErrPermanent)
	}
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(build(body, doc, vars))
		if err != nil {
			return 0, nil, fmt.Errorf("build body: %v: %w", err, gateway.ErrPermanent)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+u, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("build request: %v: %w", err, gateway.ErrPermanent)
	}
	for k, v := range a.cfg.Headers {
		req.Header.Set(k, v)
	}
	if a.cfg.Auth.Header != "" {
		req.Header.Set(a.cfg.Auth.Header, a.cfg.Auth.Value.Value())
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "Gatehouse-REST/1")
	resp, err := a.client.Do(req)
	if err != nil {
		// Not err's own text: it repeats the URL with its query values
		// (emails, tokens).
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	// 401 and 403 are retried too: a rotated or not yet granted credential
	// is fixed by the operator, and the attempt limit still ends it.
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests, code >= 500, code == http.StatusRequestTimeout, code == http.StatusTooEarly,
		code == http.StatusUnauthorized, code == http.StatusForbidden:
		err := fmt.Errorf("%s %s answered %d: %s", method, path, resp.StatusCode, snippet(b))
		if s, convErr := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); convErr == nil && s >= 0 {
			return 0, nil, &gateway.RetryAfterError{After: time.Duration(s) * time.Second, Err: err}
		}
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

// escapeSegment path-escapes a value, dot segments included, so that a
// value of ".." cannot climb out of the configured path.
func escapeSegment(v string) string {
	if v == "." || v == ".." {
		return strings.ReplaceAll(v, ".", "%2E")
	}
	return url.PathEscape(v)
}

// failure is an answer no retry will change.
func failure(method, path string, status int, body []byte) error {
	return fmt.Errorf("%s %s answered %d: %s: %w", method, path, status, snippet(body), gateway.ErrPermanent)
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func anyNeeds(calls Calls, name string) bool {
	for _, op := range calls {
		if needs(op, name) {
			return true
		}
	}
	return false
}

// needs reports whether an operation refers to name.
func needs(op Operation, name string) bool {
	for _, n := range placeholders(op.Path, op.Body) {
		if n == name {
			return true
		}
	}
	return false
}

// expand fills a path's placeholders, escaping each value for where it
// stands.
func expand(path string, doc map[string]any, vars map[string]string) (string, error) {
	pathPart, query, hasQuery := strings.Cut(path, "?")
	fill := func(s string, escape func(string) string) (string, error) {
		var err error
		out := placeholder.ReplaceAllStringFunc(s, func(m string) string {
			name := m[1 : len(m)-1]
			v, ok := vars[name]
			if !ok {
				v = scalar(lookup(doc, name))
			}
			if v == "" && err == nil {
				err = fmt.Errorf("{%s} is empty for this event", name)
			}
			return escape(v)
		})
		return out, err
	}
	p, err := fill(pathPart, escapeSegment)
	if err != nil || !hasQuery {
		return p, err
	}
	q, err := fill(query, url.QueryEscape)
	return p + "?" + q, err
}

// build makes the body: ":path" strings become the event's values.
func build(v any, doc map[string]any, vars map[string]string) any {
	switch t := v.(type) {
	case string:
		switch {
		case strings.HasPrefix(t, "::"):
			return t[1:]
		case strings.HasPrefix(t, ":"):
			if x, ok := vars[t[1:]]; ok {
				return x
			}
			return lookup(doc, t[1:])
		}
		return t
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = build(x, doc, vars)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = build(x, doc, vars)
		}
		return out
	}
	return v
}

func eventDoc(e gateway.WireEvent) (map[string]any, error) {
	raw, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	return doc, dec.Decode(&doc)
}

func lookup(doc any, path string) any {
	cur := doc
	for _, part := range strings.Split(path, ".") {
		switch t := cur.(type) {
		case map[string]any:
			cur = t[part]
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(t) {
				return nil
			}
			cur = t[i]
		default:
			return nil
		}
	}
	return cur
}

func scalar(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case json.Number:
		return t.String()
	case bool:
		return strconv.FormatBool(t)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// field reads a dotted path from a JSON answer.
func field(body []byte, path string) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return ""
	}
	return scalar(lookup(v, path))
}

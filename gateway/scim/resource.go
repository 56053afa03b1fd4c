package scim

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	scimlib "github.com/elimity-com/scim"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// serverOwned are attributes a client may send but the server decides; they
// are never stored in a resource document. password is accepted (Okta
// always sends one) and dropped: Gatehouse does not authenticate users with
// passwords, and a password must never be echoed back.
var serverOwned = []string{"id", "meta", "schemas", "password", "groups"}

func cleanDoc(attrs scimlib.ResourceAttributes) map[string]any {
	doc := map[string]any(maps.Clone(attrs))
	for _, k := range serverOwned {
		delete(doc, k)
	}
	// The library turns an empty list (Entra's "roles": []) into nil; an
	// absent attribute and a null one mean the same, so store neither.
	for k, v := range doc {
		if v == nil {
			delete(doc, k)
		}
	}
	return doc
}

// userFromDoc derives the user's typed fields from its SCIM document.
// activeDefault applies when the document has no active attribute.
func userFromDoc(doc map[string]any, activeDefault bool) (*gateway.User, error) {
	u := &gateway.User{}
	u.UserName, _ = doc["userName"].(string) // gateway.User.Validate checks it
	u.ExternalID, _ = doc["externalId"].(string)
	u.Active = activeDefault
	if a, ok := doc["active"].(bool); ok {
		u.Active = a
	}
	doc["active"] = u.Active
	if name, ok := doc["name"].(map[string]any); ok {
		u.GivenName, _ = name["givenName"].(string)
		u.FamilyName, _ = name["familyName"].(string)
	}
	u.DisplayName, _ = doc["displayName"].(string)
	u.Emails = gateway.EmailsOf(doc)
	u.Attributes = gateway.NewDocument(doc)
	return u, nil
}

// groupFromDoc splits a SCIM group document into the group and its members.
func groupFromDoc(doc map[string]any) (*gateway.Group, []gateway.Member, error) {
	g := &gateway.Group{}
	g.DisplayName, _ = doc["displayName"].(string) // gateway.Group.Validate checks it
	g.ExternalID, _ = doc["externalId"].(string)
	var members []gateway.Member
	list, _ := doc["members"].([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		v, _ := m["value"].(string)
		if v == "" {
			return nil, nil, gateway.Errorf(gateway.ErrInvalid, "every member needs a non-empty value (the user's id)")
		}
		if t, _ := m["type"].(string); t != "" && !strings.EqualFold(t, "User") {
			return nil, nil, gateway.Errorf(gateway.ErrInvalid, "member %q has type %q: only users can be group members", v, t)
		}
		d, _ := m["display"].(string)
		members = append(members, gateway.Member{UserID: v, Display: d})
	}
	delete(doc, "members")
	g.Attributes = gateway.NewDocument(doc)
	return g, members, nil
}

func membersDoc(members []gateway.Member, base string) []any {
	out := make([]any, len(members))
	for i, m := range members {
		e := map[string]any{"value": m.UserID, "type": "User"}
		if m.Display != "" {
			e["display"] = m.Display
		}
		if base != "" {
			e["$ref"] = base + "/Users/" + m.UserID
		}
		out[i] = e
	}
	return out
}

func etag(version uint64) string { return `W/"` + strconv.FormatUint(version, 10) + `"` }

// ifMatch reads If-Match as a store version: 0 when absent or `*`
// (unconditional; the resource must still exist), and a version no record
// can have when the tag is not one of ours, so the write fails with 412.
func ifMatch(r *http.Request) uint64 {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" || h == "*" {
		return 0
	}
	for _, tag := range strings.Split(h, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if v, err := strconv.ParseUint(strings.Trim(tag, `"`), 10, 64); err == nil && v > 0 {
			return v
		}
	}
	return ^uint64(0)
}

// projection implements the attributes and excludedAttributes query
// parameters (RFC 7644 §3.4.2.5). id, schemas and meta are always returned.
type projection struct {
	include, exclude []string // lower-cased attribute paths, URN prefixes removed
}

func projectionOf(r *http.Request, coreURN string) projection {
	return projectionFrom(r.URL.Query(), coreURN)
}

// projectionFrom reads attributes and excludedAttributes from q (a GET's
// query or a SearchRequest turned into one).
func projectionFrom(q url.Values, coreURN string) projection {
	return projection{include: attrList(q.Get("attributes"), coreURN), exclude: attrList(q.Get("excludedAttributes"), coreURN)}
}

func attrList(v, coreURN string) []string {
	if v == "" {
		return nil
	}
	var out []string
	for _, a := range strings.Split(v, ",") {
		a = strings.ToLower(strings.TrimSpace(a))
		if p := strings.ToLower(coreURN) + ":"; strings.HasPrefix(a, p) {
			a = a[len(p):]
		}
		if a != "" {
			out = append(out, a)
		}
	}
	return out
}

// none reports whether the request asked for no projection.
func (p projection) none() bool { return len(p.include) == 0 && len(p.exclude) == 0 }

// wants reports whether a top-level attribute is returned at all.
func (p projection) wants(attr string) bool {
	a := strings.ToLower(attr)
	if slices.Contains(p.exclude, a) {
		return false
	}
	if len(p.include) == 0 {
		return true
	}
	for _, inc := range p.include {
		if inc == a || strings.HasPrefix(inc, a+".") || strings.HasPrefix(inc, a+":") {
			return true
		}
	}
	return false
}

func (p projection) apply(doc map[string]any) map[string]any {
	if len(p.include) == 0 && len(p.exclude) == 0 {
		return doc
	}
	for k, v := range doc {
		lk := strings.ToLower(k)
		if !p.wants(k) {
			delete(doc, k)
			continue
		}
		// Sub-attribute selection (name.givenName, urn:...:User:department).
		var subs []string
		for _, inc := range p.include {
			if rest, ok := strings.CutPrefix(inc, lk+"."); ok {
				subs = append(subs, rest)
			} else if rest, ok := strings.CutPrefix(inc, lk+":"); ok {
				subs = append(subs, rest)
			} else if inc == lk {
				subs = nil
				break
			}
		}
		if len(subs) > 0 {
			doc[k] = keepSubs(v, subs)
		}
	}
	return doc
}

func keepSubs(v any, subs []string) any {
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, sv := range t {
			if slices.Contains(subs, strings.ToLower(k)) {
				out[k] = sv
			}
		}
		return out
	case []any:
		out := make([]any, 0, len(t))
		for _, e := range t {
			out = append(out, keepSubs(e, subs))
		}
		return out
	}
	return v
}

package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	scimerrors "github.com/elimity-com/scim/errors"
	scimfilter "github.com/elimity-com/scim/filter"
	"github.com/scim2/filter-parser/v2"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/scim/query"
)

// List requests (GET /Users, GET /Groups) are the hot path of every IdP
// sync: Okta looks users up by userName before each create, Entra probes
// every few minutes. ServeHTTP answers them here rather than through the
// library, which parses every filter with a backtracking parser and
// encodes each page twice (its ListResponse marshals itself, and the
// result is validated and compacted again). Filters are still validated
// against the schema with the library's filter package.

type listParams struct {
	startIndex, count int
	expr              filter.Expression
}

// parseListParams reads startIndex, count and filter (RFC 7644 §3.4.2).
func (s *Server) parseListParams(q url.Values, res query.Resource) (listParams, error) {
	p := listParams{startIndex: 1, count: s.opts.MaxResults}
	var bad []string
	if v := q.Get("startIndex"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			bad = append(bad, "startIndex")
		}
		p.startIndex = max(n, 1) // less than 1 is interpreted as 1
	}
	if v := q.Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			bad = append(bad, "count")
		}
		p.count = min(max(n, 0), s.opts.MaxResults) // negative is 0; capped at max_results
	}
	if len(bad) > 0 {
		return p, scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: scimerrors.ScimTypeInvalidValue,
			Detail: "Invalid query parameter " + strings.Join(bad, ", ") + ": must be an integer."}
	}
	f := strings.TrimSpace(q.Get("filter"))
	if f == "" {
		return p, nil
	}
	if err := query.CheckLimits(f); err != nil {
		return p, scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: scimerrors.ScimTypeInvalidFilter,
			Detail: "The filter is refused: " + err.Error() + "."}
	}
	f = query.NormalizeFilter(f)
	if err := query.CheckLimits(f); err != nil { // normalisation may expand it
		return p, scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: scimerrors.ScimTypeInvalidFilter,
			Detail: "The filter is refused: " + err.Error() + "."}
	}
	expr, err := query.Parse(f)
	if err != nil {
		return p, scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: scimerrors.ScimTypeInvalidFilter,
			Detail: "The filter is not valid SCIM filter syntax (RFC 7644 §3.4.2.2): " + strconv.Quote(f)}
	}
	if err := scimfilter.NewFilterValidator(expr, res.Core, res.Extensions...).Validate(); err != nil {
		return p, scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: scimerrors.ScimTypeInvalidFilter,
			Detail: "The filter names an attribute this resource does not have: " + err.Error()}
	}
	p.expr = expr
	return p, nil
}

// listResponse is a page; Resources are encoded resources, assembled by
// writeList without another pass of the JSON encoder over them.
type listResponse struct {
	TotalResults int
	StartIndex   int
	Resources    [][]byte
}

func (l *listResponse) encode() []byte {
	var b bytes.Buffer
	b.WriteString(`{"schemas":["` + listResponseURN + `"],"totalResults":`)
	b.WriteString(strconv.Itoa(l.TotalResults))
	b.WriteString(`,"itemsPerPage":`)
	b.WriteString(strconv.Itoa(len(l.Resources)))
	b.WriteString(`,"startIndex":`)
	b.WriteString(strconv.Itoa(l.StartIndex))
	b.WriteString(`,"Resources":[`)
	for i, r := range l.Resources {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(r)
	}
	b.WriteString("]}")
	return b.Bytes()
}

type metaJSON struct {
	ResourceType string `json:"resourceType"`
	Created      string `json:"created"`
	LastModified string `json:"lastModified"`
	Location     string `json:"location"`
	Version      string `json:"version"`
}

func (s *Server) resourceMeta(base, rt, id string, created, modified time.Time, version uint64) metaJSON {
	return metaJSON{
		ResourceType: rt,
		Created:      created.Format(time.RFC3339),
		LastModified: modified.Format(time.RFC3339),
		Location:     base + "/" + rt + "s/" + id,
		Version:      etag(version),
	}
}

// encodeResource completes a projected attribute map with the common
// attributes, as the library does for single resources.
func encodeResource(doc map[string]any, id, externalID string, schemas []string, meta metaJSON) ([]byte, error) {
	doc["id"] = id
	if externalID != "" {
		doc["externalId"] = externalID
	}
	doc["schemas"] = schemas
	doc["meta"] = meta
	return json.Marshal(doc)
}

// spliceResource writes a resource without decoding its stored document:
// the common attributes (and extra, e.g. groups) first, then the stored
// JSON object's members. The stored document never holds id, schemas,
// meta or groups (see serverOwned), so no key is written twice.
func spliceResource(stored []byte, id string, schemas []string, meta metaJSON, extra map[string]any) ([]byte, error) {
	b := make([]byte, 0, 320+len(stored))
	b = append(b, `{"id":`...)
	b = appendString(b, id)
	b = append(b, `,"schemas":[`...)
	for i, sc := range schemas {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, sc)
	}
	b = append(b, `],"meta":{"resourceType":`...)
	b = appendString(b, meta.ResourceType)
	b = append(b, `,"created":`...)
	b = appendString(b, meta.Created)
	b = append(b, `,"lastModified":`...)
	b = appendString(b, meta.LastModified)
	b = append(b, `,"location":`...)
	b = appendString(b, meta.Location)
	b = append(b, `,"version":`...)
	b = appendString(b, meta.Version)
	b = append(b, '}')
	for k, v := range extra {
		enc, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		b = append(b, ',')
		b = appendString(b, k)
		b = append(b, ':')
		b = append(b, enc...)
	}
	if body := bytes.TrimSpace(stored[1:]); len(body) > 1 {
		b = append(b, ',')
		b = append(b, body...)
	} else {
		b = append(b, '}')
	}
	return b, nil
}

// appendString appends s as a JSON string: directly when it holds only
// printable ASCII that needs no escape (ids, timestamps, URLs), through
// encoding/json otherwise.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s)
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

var (
	userSchemas  = []string{userSchemaURN, query.EnterpriseUserURN}
	groupSchemas = []string{groupSchemaURN}
)

// serveList answers GET /Users and GET /Groups, and their .search, with
// the query parameters in q.
func (s *Server) serveList(w http.ResponseWriter, r *http.Request, groups bool, q url.Values) {
	res, urn := s.userRes, userSchemaURN
	if groups {
		res, urn = s.groupRes, groupSchemaURN
	}
	p, err := s.parseListParams(q, res)
	if err != nil {
		writeSCIMError(w, err)
		return
	}
	proj := projectionFrom(q, urn)
	out := listResponse{StartIndex: p.startIndex}
	ctx := r.Context()
	if groups {
		err = s.renderGroups(ctx, p, proj, &out)
	} else {
		err = s.renderUsers(ctx, p, proj, &out)
	}
	if err != nil {
		writeSCIMError(w, s.fail(r, "list", err))
		return
	}
	_, _ = w.Write(out.encode())
}

func (s *Server) renderUsers(ctx context.Context, p listParams, proj projection, out *listResponse) error {
	users, total, err := s.listUsers(ctx, p.expr, p.startIndex-1, p.count)
	if err != nil {
		return err
	}
	out.TotalResults = total
	var refs map[string][]gateway.GroupRef
	if proj.wants("groups") {
		if refs, err = s.groupRefs(ctx, users); err != nil {
			return err
		}
	}
	for _, u := range users {
		meta := s.resourceMeta(baseOf(ctx), "User", u.ID, u.Created, u.Modified, u.Version)
		var res []byte
		if proj.none() {
			stored, err := u.Attributes.JSON()
			if err != nil {
				return err
			}
			var extra map[string]any
			if gs := refs[u.ID]; len(gs) > 0 {
				extra = map[string]any{"groups": s.groupValues(baseOf(ctx), gs)}
			}
			res, err = spliceResource(stored, u.ID, userSchemas, meta, extra)
			if err != nil {
				return err
			}
		} else {
			doc, err := s.userAttrs(baseOf(ctx), u, refs[u.ID], proj)
			if err != nil {
				return err
			}
			if res, err = encodeResource(doc, u.ID, u.ExternalID, userSchemas, meta); err != nil {
				return err
			}
		}
		out.Resources = append(out.Resources, res)
	}
	return nil
}

func (s *Server) renderGroups(ctx context.Context, p listParams, proj projection, out *listResponse) error {
	groups, total, err := s.listGroups(ctx, p.expr, p.startIndex-1, p.count)
	if err != nil {
		return err
	}
	out.TotalResults = total
	for _, g := range groups {
		var members []gateway.Member
		if proj.wants("members") {
			if members, err = s.opts.Store.Groups().Members(ctx, orgOf(ctx), g.ID); err != nil {
				return err
			}
		}
		doc, err := s.groupAttrs(baseOf(ctx), g, members, proj)
		if err != nil {
			return err
		}
		res, err := encodeResource(doc, g.ID, g.ExternalID, groupSchemas, s.resourceMeta(baseOf(ctx), "Group", g.ID, g.Created, g.Modified, g.Version))
		if err != nil {
			return err
		}
		out.Resources = append(out.Resources, res)
	}
	return nil
}

// listUsers runs a list request: an index lookup when the filter has an
// indexable equality (what Okta and Entra send), a full scan otherwise.
// Results are in id order, which is stable across pages.
func (s *Server) listUsers(ctx context.Context, expr filter.Expression, offset, count int) ([]*gateway.User, int, error) {
	users := s.opts.Store.Users()
	if expr == nil {
		return users.List(ctx, orgOf(ctx), offset, count)
	}
	var matched []*gateway.User
	var evalErr error
	keep := func(u *gateway.User) bool {
		doc, err := userMatchDoc(u)
		if err != nil {
			evalErr = err
			return false
		}
		ok, err := query.Match(expr, doc, s.userRes)
		if err != nil {
			evalErr = err
			return false
		}
		if ok {
			matched = append(matched, u)
		}
		return true
	}
	plan := query.Plan(expr, query.Users)
	if plan.Index == "" {
		if err := users.Scan(ctx, orgOf(ctx), "", keep); err != nil {
			return nil, 0, err
		}
	} else {
		ids := []string{plan.Value}
		if plan.Index != query.IndexID {
			var err error
			if ids, err = users.Lookup(ctx, orgOf(ctx), gateway.UserIndex(plan.Index), plan.Value); err != nil {
				return nil, 0, err
			}
		}
		candidates, err := users.GetMany(ctx, orgOf(ctx), ids)
		if err != nil {
			return nil, 0, err
		}
		slices.SortFunc(candidates, func(a, b *gateway.User) int { return strings.Compare(a.ID, b.ID) })
		if plan.Exact {
			matched = candidates // the index answers the filter exactly
		}
		for _, u := range candidates {
			if plan.Exact || !keep(u) {
				break
			}
		}
	}
	if evalErr != nil {
		return nil, 0, invalidFilter(evalErr)
	}
	return paginate(matched, offset, count), len(matched), nil
}

func (s *Server) listGroups(ctx context.Context, expr filter.Expression, offset, count int) ([]*gateway.Group, int, error) {
	groups := s.opts.Store.Groups()
	if expr == nil {
		return groups.List(ctx, orgOf(ctx), offset, count)
	}
	var candidates []*gateway.Group
	plan := query.Plan(expr, query.Groups)
	if plan.Index == "" {
		// Collect first: member filters read members, and a read inside
		// the scan's transaction could deadlock behind a waiting writer.
		err := groups.Scan(ctx, orgOf(ctx), func(g *gateway.Group) bool {
			candidates = append(candidates, g)
			return true
		})
		if err != nil {
			return nil, 0, err
		}
	} else {
		ids := []string{plan.Value}
		if plan.Index != query.IndexID {
			var err error
			if ids, err = groups.Lookup(ctx, orgOf(ctx), gateway.GroupIndex(plan.Index), plan.Value); err != nil {
				return nil, 0, err
			}
		}
		var err error
		if candidates, err = groups.GetMany(ctx, orgOf(ctx), ids); err != nil {
			return nil, 0, err
		}
		slices.SortFunc(candidates, func(a, b *gateway.Group) int { return strings.Compare(a.ID, b.ID) })
	}
	needMembers := query.References(expr, "members")
	var matched []*gateway.Group
	for _, g := range candidates {
		var members []gateway.Member
		if needMembers {
			var err error
			if members, err = groups.Members(ctx, orgOf(ctx), g.ID); err != nil {
				return nil, 0, err
			}
		}
		doc, err := groupMatchDoc(g, members)
		if err != nil {
			return nil, 0, err
		}
		ok, err := query.Match(expr, doc, s.groupRes)
		if err != nil {
			return nil, 0, invalidFilter(err)
		}
		if ok {
			matched = append(matched, g)
		}
	}
	return paginate(matched, offset, count), len(matched), nil
}

func paginate[T any](all []T, offset, count int) []T {
	if offset >= len(all) || count <= 0 {
		return []T{}
	}
	end := min(offset+count, len(all))
	return all[offset:end]
}

// userMatchDoc is the document filters are evaluated against: the stored
// attributes plus the common attributes the store keeps as fields.
func userMatchDoc(u *gateway.User) (map[string]any, error) {
	doc, err := u.Attributes.Map()
	if err != nil {
		return nil, err
	}
	doc["id"] = u.ID
	doc["active"] = u.Active
	if u.ExternalID != "" {
		doc["externalId"] = u.ExternalID
	}
	doc["meta"] = matchMeta("User", u.Created, u.Modified)
	return doc, nil
}

func groupMatchDoc(g *gateway.Group, members []gateway.Member) (map[string]any, error) {
	doc, err := g.Attributes.Map()
	if err != nil {
		return nil, err
	}
	doc["id"] = g.ID
	doc["displayName"] = g.DisplayName
	if g.ExternalID != "" {
		doc["externalId"] = g.ExternalID
	}
	if members != nil {
		doc["members"] = membersDoc(members, "")
	}
	doc["meta"] = matchMeta("Group", g.Created, g.Modified)
	return doc, nil
}

func matchMeta(rt string, created, modified time.Time) map[string]any {
	return map[string]any{
		"resourceType": rt,
		"created":      created.Format(time.RFC3339Nano),
		"lastModified": modified.Format(time.RFC3339Nano),
	}
}

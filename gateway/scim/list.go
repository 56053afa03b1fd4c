package scim

import (
	"context"
	"encoding/json"
	"maps"
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
	f = query.NormalizeFilter(f)
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

type listResponse struct {
	Schemas      []string `json:"schemas"`
	TotalResults int      `json:"totalResults"`
	ItemsPerPage int      `json:"itemsPerPage"`
	StartIndex   int      `json:"startIndex"`
	Resources    []any    `json:"Resources"`
}

type metaJSON struct {
	ResourceType string `json:"resourceType"`
	Created      string `json:"created"`
	LastModified string `json:"lastModified"`
	Location     string `json:"location"`
	Version      string `json:"version"`
}

// resourceJSON completes an attribute map with the common attributes, as
// the library does for single resources.
func (s *Server) resourceJSON(doc map[string]any, rt, id, externalID string, created, modified time.Time, version uint64, schemas []string) map[string]any {
	doc["id"] = id
	if externalID != "" {
		doc["externalId"] = externalID
	}
	doc["schemas"] = schemas
	doc["meta"] = metaJSON{
		ResourceType: rt,
		Created:      created.Format(time.RFC3339),
		LastModified: modified.Format(time.RFC3339),
		Location:     s.opts.BaseURL + "/" + rt + "s/" + id,
		Version:      etag(version),
	}
	return doc
}

var (
	userSchemas  = []string{userSchemaURN, query.EnterpriseUserURN}
	groupSchemas = []string{groupSchemaURN}
)

// serveList answers GET /Users and GET /Groups.
func (s *Server) serveList(w http.ResponseWriter, r *http.Request, groups bool) {
	res, urn := s.userRes, userSchemaURN
	if groups {
		res, urn = s.groupRes, groupSchemaURN
	}
	q := r.URL.Query()
	p, err := s.parseListParams(q, res)
	if err != nil {
		se := toSCIMError(err)
		writeError(w, se.Status, se.ScimType, se.Detail)
		return
	}
	proj := projection{include: attrList(q.Get("attributes"), urn), exclude: attrList(q.Get("excludedAttributes"), urn)}
	out := listResponse{Schemas: []string{listResponseURN}, StartIndex: p.startIndex, Resources: []any{}}
	ctx := r.Context()
	if groups {
		err = s.renderGroups(ctx, p, proj, &out)
	} else {
		err = s.renderUsers(ctx, p, proj, &out)
	}
	if err != nil {
		se := toSCIMError(s.fail(r, "list", err))
		writeError(w, se.Status, se.ScimType, se.Detail)
		return
	}
	out.ItemsPerPage = len(out.Resources)
	body, err := json.Marshal(out)
	if err != nil {
		se := toSCIMError(s.fail(r, "encode list", err))
		writeError(w, se.Status, se.ScimType, se.Detail)
		return
	}
	_, _ = w.Write(body)
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
		doc := s.userAttrs(u, refs[u.ID], proj)
		out.Resources = append(out.Resources, s.resourceJSON(doc, "User", u.ID, u.ExternalID, u.Created, u.Modified, u.Version, userSchemas))
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
			if members, err = s.opts.Store.Groups().Members(ctx, s.opts.Tenant, g.ID); err != nil {
				return err
			}
		}
		doc := s.groupAttrs(g, members, proj)
		out.Resources = append(out.Resources, s.resourceJSON(doc, "Group", g.ID, g.ExternalID, g.Created, g.Modified, g.Version, groupSchemas))
	}
	return nil
}

// listUsers runs a list request: an index lookup when the filter has an
// indexable equality (what Okta and Entra send), a full scan otherwise.
// Results are in id order, which is stable across pages.
func (s *Server) listUsers(ctx context.Context, expr filter.Expression, offset, count int) ([]*gateway.User, int, error) {
	users := s.opts.Store.Users()
	if expr == nil {
		return users.List(ctx, s.opts.Tenant, offset, count)
	}
	var matched []*gateway.User
	var evalErr error
	keep := func(u *gateway.User) bool {
		ok, err := query.Match(expr, userMatchDoc(u), s.userRes)
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
		if err := users.Scan(ctx, s.opts.Tenant, keep); err != nil {
			return nil, 0, err
		}
	} else {
		ids := []string{plan.Value}
		if plan.Index != query.IndexID {
			var err error
			if ids, err = users.Lookup(ctx, s.opts.Tenant, gateway.UserIndex(plan.Index), plan.Value); err != nil {
				return nil, 0, err
			}
		}
		candidates, err := users.GetMany(ctx, s.opts.Tenant, ids)
		if err != nil {
			return nil, 0, err
		}
		slices.SortFunc(candidates, func(a, b *gateway.User) int { return strings.Compare(a.ID, b.ID) })
		for _, u := range candidates {
			if !keep(u) {
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
		return groups.List(ctx, s.opts.Tenant, offset, count)
	}
	var candidates []*gateway.Group
	plan := query.Plan(expr, query.Groups)
	if plan.Index == "" {
		// Collect first: member filters read members, and a read inside
		// the scan's transaction could deadlock behind a waiting writer.
		err := groups.Scan(ctx, s.opts.Tenant, func(g *gateway.Group) bool {
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
			if ids, err = groups.Lookup(ctx, s.opts.Tenant, gateway.GroupIndex(plan.Index), plan.Value); err != nil {
				return nil, 0, err
			}
		}
		var err error
		if candidates, err = groups.GetMany(ctx, s.opts.Tenant, ids); err != nil {
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
			if members, err = groups.Members(ctx, s.opts.Tenant, g.ID); err != nil {
				return nil, 0, err
			}
		}
		ok, err := query.Match(expr, groupMatchDoc(g, members), s.groupRes)
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
func userMatchDoc(u *gateway.User) map[string]any {
	doc := make(map[string]any, len(u.Attributes)+3)
	maps.Copy(doc, u.Attributes)
	doc["id"] = u.ID
	doc["active"] = u.Active
	if u.ExternalID != "" {
		doc["externalId"] = u.ExternalID
	}
	doc["meta"] = matchMeta("User", u.Created, u.Modified)
	return doc
}

func groupMatchDoc(g *gateway.Group, members []gateway.Member) map[string]any {
	doc := make(map[string]any, len(g.Attributes)+4)
	maps.Copy(doc, g.Attributes)
	doc["id"] = g.ID
	doc["displayName"] = g.DisplayName
	if g.ExternalID != "" {
		doc["externalId"] = g.ExternalID
	}
	if members != nil {
		doc["members"] = membersDoc(members, "")
	}
	doc["meta"] = matchMeta("Group", g.Created, g.Modified)
	return doc
}

func matchMeta(rt string, created, modified time.Time) map[string]any {
	return map[string]any{
		"resourceType": rt,
		"created":      created.Format(time.RFC3339Nano),
		"lastModified": modified.Format(time.RFC3339Nano),
	}
}

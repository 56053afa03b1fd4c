package scim

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	scimlib "github.com/elimity-com/scim"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/scim/query"
)

// listUsers runs a list request: an index lookup when the filter has an
// indexable equality (what Okta and Entra send), a full scan otherwise.
// Results are in id order, which is stable across pages.
func (s *Server) listUsers(ctx context.Context, params scimlib.ListRequestParams) ([]*gateway.User, int, error) {
	users := s.opts.Store.Users()
	offset, count := params.StartIndex-1, params.Count
	if params.FilterValidator == nil {
		return users.List(ctx, s.opts.Tenant, offset, count)
	}
	expr := params.FilterValidator.GetFilter()
	plan := query.Plan(expr, query.Users)
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
	switch plan.Index {
	case "":
		if err := users.Scan(ctx, s.opts.Tenant, keep); err != nil {
			return nil, 0, err
		}
	default:
		candidates, err := s.userCandidates(ctx, plan)
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

func (s *Server) userCandidates(ctx context.Context, plan query.QueryPlan) ([]*gateway.User, error) {
	users := s.opts.Store.Users()
	ids := []string{plan.Value}
	if plan.Index != query.IndexID {
		var err error
		ids, err = users.Lookup(ctx, s.opts.Tenant, gateway.UserIndex(plan.Index), plan.Value)
		if err != nil {
			return nil, err
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return users.GetMany(ctx, s.opts.Tenant, ids)
}

func (s *Server) listGroups(ctx context.Context, params scimlib.ListRequestParams) ([]*gateway.Group, int, error) {
	groups := s.opts.Store.Groups()
	offset, count := params.StartIndex-1, params.Count
	if params.FilterValidator == nil {
		return groups.List(ctx, s.opts.Tenant, offset, count)
	}
	expr := params.FilterValidator.GetFilter()
	plan := query.Plan(expr, query.Groups)
	// Member filters need each candidate's members; load them only then.
	needMembers := query.References(expr, "members")
	var matched []*gateway.Group
	var evalErr error
	keep := func(g *gateway.Group) bool {
		var members []gateway.Member
		if needMembers {
			var err error
			if members, err = groups.Members(ctx, s.opts.Tenant, g.ID); err != nil {
				evalErr = err
				return false
			}
		}
		ok, err := query.Match(expr, groupMatchDoc(g, members), s.groupRes)
		if err != nil {
			evalErr = invalidFilter(err)
			return false
		}
		if ok {
			matched = append(matched, g)
		}
		return true
	}
	if plan.Index == "" {
		if err := groups.Scan(ctx, s.opts.Tenant, keep); err != nil {
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
		var candidates []*gateway.Group
		if len(ids) > 0 {
			var err error
			if candidates, err = groups.GetMany(ctx, s.opts.Tenant, ids); err != nil {
				return nil, 0, err
			}
		}
		slices.SortFunc(candidates, func(a, b *gateway.Group) int { return strings.Compare(a.ID, b.ID) })
		for _, g := range candidates {
			if !keep(g) {
				break
			}
		}
	}
	if evalErr != nil {
		return nil, 0, evalErr
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

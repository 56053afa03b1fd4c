package scim

import (
	"maps"
	"net/http"

	scimlib "github.com/elimity-com/scim"
	"github.com/scim2/filter-parser/v2"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/scim/patch"
)

// groupHandler implements the library's ResourceHandler for /Groups.
type groupHandler struct{ s *Server }

func (h *groupHandler) Create(r *http.Request, attrs scimlib.ResourceAttributes) (scimlib.Resource, error) {
	g, members, err := groupFromDoc(cleanDoc(attrs))
	if err == nil {
		err = h.s.checkMembers(len(members))
	}
	if err != nil {
		return scimlib.Resource{}, toSCIMError(err)
	}
	g, err = h.s.opts.Service.CreateGroup(r.Context(), h.s.meta(r), g, members)
	if err != nil {
		return scimlib.Resource{}, h.s.fail(r, "create group", err)
	}
	state(r).location = baseOf(r.Context()) + "/Groups/" + g.ID
	return h.s.groupResource(r, g, members)
}

func (h *groupHandler) Get(r *http.Request, id string) (scimlib.Resource, error) {
	g, err := h.s.opts.Store.Groups().Get(r.Context(), orgOf(r.Context()), id)
	if err != nil {
		return scimlib.Resource{}, h.s.fail(r, "get group", err)
	}
	members, err := h.s.membersIfWanted(r, g.ID)
	if err != nil {
		return scimlib.Resource{}, h.s.fail(r, "get group members", err)
	}
	return h.s.groupResource(r, g, members)
}

// GetAll is not reached for /Groups (ServeHTTP serves lists itself) but
// keeps the handler complete.
func (h *groupHandler) GetAll(r *http.Request, params scimlib.ListRequestParams) (scimlib.Page, error) {
	var expr filter.Expression
	if params.FilterValidator != nil {
		expr = params.FilterValidator.GetFilter()
	}
	groups, total, err := h.s.listGroups(r.Context(), expr, params.StartIndex-1, params.Count)
	if err != nil {
		return scimlib.Page{}, h.s.fail(r, "list groups", err)
	}
	page := scimlib.Page{TotalResults: total, Resources: make([]scimlib.Resource, 0, len(groups))}
	for _, g := range groups {
		members, err := h.s.membersIfWanted(r, g.ID)
		if err != nil {
			return scimlib.Page{}, h.s.fail(r, "list group members", err)
		}
		res, err := h.s.groupResource(r, g, members)
		if err != nil {
			return scimlib.Page{}, err
		}
		page.Resources = append(page.Resources, res)
	}
	return page, nil
}

// Replace is PUT with the full member list (Okta AIW group push).
func (h *groupHandler) Replace(r *http.Request, id string, attrs scimlib.ResourceAttributes) (scimlib.Resource, error) {
	doc := cleanDoc(attrs)
	if list, ok := doc["members"].([]any); ok {
		if err := h.s.checkMembers(len(list)); err != nil {
			return scimlib.Resource{}, err
		}
	}
	g, members, err := h.s.opts.Service.UpdateGroup(r.Context(), h.s.meta(r), id, ifMatch(r), func(*gateway.Group, []gateway.Member) (*gateway.Group, []gateway.Member, error) {
		return groupFromDoc(maps.Clone(doc))
	})
	if err != nil {
		return scimlib.Resource{}, h.s.fail(r, "replace group", err)
	}
	return h.s.groupResource(r, g, members)
}

// Patch answers 204 unless the client asked for attributes (RFC 7644
// §3.5.2): Entra expects 204 for group PATCH, and echoing a large member
// list back on every membership change is wasted work.
func (h *groupHandler) Patch(r *http.Request, id string, ops []scimlib.PatchOperation) (scimlib.Resource, error) {
	if err := h.s.checkOperations(ops); err != nil {
		return scimlib.Resource{}, err
	}
	if err := h.s.checkMembers(patchMembers(ops)); err != nil {
		return scimlib.Resource{}, err
	}
	g, members, err := h.s.opts.Service.UpdateGroup(r.Context(), h.s.meta(r), id, ifMatch(r), func(old *gateway.Group, oldMembers []gateway.Member) (*gateway.Group, []gateway.Member, error) {
		doc, err := old.Attributes.Map()
		if err != nil {
			return nil, nil, err
		}
		doc["displayName"] = old.DisplayName
		if len(oldMembers) > 0 {
			doc["members"] = membersDoc(oldMembers, "")
		}
		doc, err = patch.Apply(doc, ops, h.s.groupRes)
		if err != nil {
			return nil, nil, err
		}
		for _, k := range serverOwned {
			delete(doc, k)
		}
		return groupFromDoc(doc)
	})
	if err != nil {
		return scimlib.Resource{}, h.s.fail(r, "patch group", err)
	}
	if r.URL.Query().Get("attributes") == "" {
		state(r).etag = etag(g.Version)
		return scimlib.Resource{}, nil
	}
	return h.s.groupResource(r, g, members)
}

func (h *groupHandler) Delete(r *http.Request, id string) error {
	if err := h.s.opts.Service.DeleteGroup(r.Context(), h.s.meta(r), id, ifMatch(r)); err != nil {
		return h.s.fail(r, "delete group", err)
	}
	return nil
}

// membersIfWanted loads a group's members unless the request excluded them
// (Entra asks with excludedAttributes=members; skipping the read matters
// for large groups).
func (s *Server) membersIfWanted(r *http.Request, id string) ([]gateway.Member, error) {
	if !projectionOf(r, groupSchemaURN).wants("members") {
		return nil, nil
	}
	return s.opts.Store.Groups().Members(r.Context(), orgOf(r.Context()), id)
}

func (s *Server) groupResource(r *http.Request, g *gateway.Group, members []gateway.Member) (scimlib.Resource, error) {
	doc, err := s.groupAttrs(baseOf(r.Context()), g, members, projectionOf(r, groupSchemaURN))
	if err != nil {
		return scimlib.Resource{}, s.fail(r, "decode group", err)
	}
	return libResource(r, doc, g.ID, g.ExternalID, &g.Created, &g.Modified, g.Version), nil
}

// groupAttrs is a group's SCIM attributes without id, externalId, schemas
// and meta, projected as the request asked.
func (s *Server) groupAttrs(base string, g *gateway.Group, members []gateway.Member, proj projection) (map[string]any, error) {
	doc, err := g.Attributes.Map()
	if err != nil {
		return nil, err
	}
	doc["displayName"] = g.DisplayName
	delete(doc, "externalId")
	doc["members"] = membersDoc(members, base)
	return proj.apply(doc), nil
}

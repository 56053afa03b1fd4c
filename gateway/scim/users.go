package scim

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"time"

	scimlib "github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/scim2/filter-parser/v2"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/scim/patch"
)

// userHandler implements the library's ResourceHandler for /Users.
type userHandler struct{ s *Server }

func (h *userHandler) Create(r *http.Request, attrs scimlib.ResourceAttributes) (scimlib.Resource, error) {
	u, err := userFromDoc(cleanDoc(attrs), true)
	if err != nil {
		return scimlib.Resource{}, toSCIMError(err)
	}
	u, err = h.s.opts.Service.CreateUser(r.Context(), h.s.meta(r), u)
	if err != nil {
		return scimlib.Resource{}, h.s.fail(r, "create user", err)
	}
	state(r).location = baseOf(r.Context()) + "/Users/" + u.ID
	return h.s.userResource(r, u, nil)
}

func (h *userHandler) Get(r *http.Request, id string) (scimlib.Resource, error) {
	u, err := h.s.opts.Store.Users().Get(r.Context(), orgOf(r.Context()), id)
	if err != nil {
		return scimlib.Resource{}, h.s.fail(r, "get user", err)
	}
	refs, err := h.s.groupRefs(r.Context(), []*gateway.User{u})
	if err != nil {
		return scimlib.Resource{}, h.s.fail(r, "get user groups", err)
	}
	return h.s.userResource(r, u, refs[u.ID])
}

// GetAll is not reached for /Users (ServeHTTP serves lists itself, see
// list.go) but keeps the handler complete.
func (h *userHandler) GetAll(r *http.Request, params scimlib.ListRequestParams) (scimlib.Page, error) {
	var expr filter.Expression
	if params.FilterValidator != nil {
		expr = params.FilterValidator.GetFilter()
	}
	users, total, err := h.s.listUsers(r.Context(), expr, params.StartIndex-1, params.Count)
	if err != nil {
		return scimlib.Page{}, h.s.fail(r, "list users", err)
	}
	refs, err := h.s.groupRefs(r.Context(), users)
	if err != nil {
		return scimlib.Page{}, h.s.fail(r, "list user groups", err)
	}
	page := scimlib.Page{TotalResults: total, Resources: make([]scimlib.Resource, 0, len(users))}
	for _, u := range users {
		res, err := h.s.userResource(r, u, refs[u.ID])
		if err != nil {
			return scimlib.Page{}, err
		}
		page.Resources = append(page.Resources, res)
	}
	return page, nil
}

// Replace is PUT: the document replaces the stored one. Okta's AIW apps
// send every change, deactivation included, as GET then PUT. A PUT without
// active keeps the current state rather than silently reactivating.
func (h *userHandler) Replace(r *http.Request, id string, attrs scimlib.ResourceAttributes) (scimlib.Resource, error) {
	doc := cleanDoc(attrs)
	u, err := h.s.opts.Service.UpdateUser(r.Context(), h.s.meta(r), id, ifMatch(r), func(old *gateway.User) (*gateway.User, error) {
		return userFromDoc(maps.Clone(doc), old.Active)
	})
	if err != nil {
		return scimlib.Resource{}, h.s.fail(r, "replace user", err)
	}
	return h.s.userWithGroups(r, u)
}

func (h *userHandler) Patch(r *http.Request, id string, ops []scimlib.PatchOperation) (scimlib.Resource, error) {
	if err := h.s.checkOperations(ops); err != nil {
		return scimlib.Resource{}, err
	}
	u, err := h.s.opts.Service.UpdateUser(r.Context(), h.s.meta(r), id, ifMatch(r), func(old *gateway.User) (*gateway.User, error) {
		cur, err := old.Attributes.Map()
		if err != nil {
			return nil, err
		}
		// Records written before active was kept in the document (and
		// users created outside SCIM) may lack it: the typed field holds it.
		cur["active"] = old.Active
		doc, err := patch.Apply(cur, ops, h.s.userRes)
		if err != nil {
			return nil, err
		}
		if _, ok := doc["active"]; !ok {
			// active has no default: removing it would either silently
			// keep the old value or invent one.
			return nil, valueError("active cannot be removed: replace it with true or false instead.")
		}
		for _, k := range serverOwned {
			delete(doc, k)
		}
		return userFromDoc(doc, old.Active)
	})
	if err != nil {
		return scimlib.Resource{}, h.s.fail(r, "patch user", err)
	}
	return h.s.userWithGroups(r, u)
}

func (h *userHandler) Delete(r *http.Request, id string) error {
	if err := h.s.opts.Service.DeleteUser(r.Context(), h.s.meta(r), id, ifMatch(r)); err != nil {
		return h.s.fail(r, "delete user", err)
	}
	return nil
}

func (s *Server) userWithGroups(r *http.Request, u *gateway.User) (scimlib.Resource, error) {
	refs, err := s.groupRefs(r.Context(), []*gateway.User{u})
	if err != nil {
		return scimlib.Resource{}, s.fail(r, "get user groups", err)
	}
	return s.userResource(r, u, refs[u.ID])
}

// userResource renders a user for the library.
func (s *Server) userResource(r *http.Request, u *gateway.User, groups []gateway.GroupRef) (scimlib.Resource, error) {
	doc, err := s.userAttrs(baseOf(r.Context()), u, groups, projectionOf(r, userSchemaURN))
	if err != nil {
		return scimlib.Resource{}, s.fail(r, "decode user", err)
	}
	return libResource(r, doc, u.ID, u.ExternalID, &u.Created, &u.Modified, u.Version), nil
}

// libResource wraps attributes for the library, which adds id, externalId,
// schemas and meta to the map (so doc must be a fresh map), and records
// the ETag for the response.
func libResource(r *http.Request, doc map[string]any, id, externalID string, created, modified *time.Time, version uint64) scimlib.Resource {
	st := state(r)
	st.etag = etag(version)
	res := scimlib.Resource{ID: id, Attributes: doc, Meta: scimlib.Meta{Created: created, LastModified: modified, Version: st.etag}}
	if externalID != "" {
		res.ExternalID = optional.NewString(externalID)
	}
	return res
}

// userAttrs is a user's SCIM attributes, without id, externalId, schemas
// and meta, projected as the request asked.
func (s *Server) userAttrs(base string, u *gateway.User, groups []gateway.GroupRef, proj projection) (map[string]any, error) {
	doc, err := u.Attributes.Map()
	if err != nil {
		return nil, err
	}
	doc["active"] = u.Active
	delete(doc, "externalId")
	if len(groups) > 0 {
		doc["groups"] = s.groupValues(base, groups)
	}
	return proj.apply(doc), nil
}

// groupValues renders a user's groups as SCIM "groups" values.
func (s *Server) groupValues(base string, groups []gateway.GroupRef) []any {
	refs := make([]any, len(groups))
	for i, g := range groups {
		ref := map[string]any{"value": g.ID, "display": g.DisplayName, "type": "direct"}
		if base != "" {
			ref["$ref"] = base + "/Groups/" + g.ID
		}
		refs[i] = ref
	}
	return refs
}

// groupRefs returns the groups of each user, in one store read.
func (s *Server) groupRefs(ctx context.Context, users []*gateway.User) (map[string][]gateway.GroupRef, error) {
	if len(users) == 0 {
		return nil, nil
	}
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	return s.opts.Store.Groups().Memberships(ctx, orgOf(ctx), ids)
}

// statusClientClosed is what the metrics and access log record for a
// request whose client went away before the answer (nginx's 499): it is
// neither a server fault nor a client error worth a log line.
const statusClientClosed = 499

// fail converts a handler error to the SCIM error value the library
// writes, logging server-side failures with the request id (never the
// body or the cause's text on the wire). A request whose client went
// away is not a failure of the server: it is logged at debug level and
// answered 499; a write that committed before that stays committed.
func (s *Server) fail(r *http.Request, what string, err error) error {
	if r.Context().Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		s.opts.Logger.DebugContext(r.Context(), "scim request abandoned by the client", "op", what, "request_id", state(r).requestID)
		return scimerrors.ScimError{Status: statusClientClosed, Detail: "The client closed the request."}
	}
	se := toSCIMError(err)
	if se.Status >= http.StatusInternalServerError {
		s.opts.Logger.ErrorContext(r.Context(), "scim request failed", "op", what, "error", err, "request_id", state(r).requestID)
	}
	return se
}

package scim

import (
	"net/http"
	"strings"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// serveGet answers GET /Users/{id} and /Groups/{id}, with conditional GET
// (RFC 7644 §3.14, RFC 9110 §13.1.2): an If-None-Match that names the
// current version answers 304 Not Modified without a body.
func (s *Server) serveGet(w http.ResponseWriter, r *http.Request, ep endpoint) {
	ctx := r.Context()
	var (
		doc        map[string]any
		tag        string
		externalID string
		schemas    []string
		meta       metaJSON
		err        error
	)
	if ep.groups {
		g, gerr := s.opts.Store.Groups().Get(ctx, orgOf(ctx), ep.id)
		if gerr != nil {
			s.writeFailure(w, r, "get group", gerr)
			return
		}
		tag = etag(g.Version)
		if notModified(r, tag) {
			writeNotModified(w, tag)
			return
		}
		members, merr := s.membersIfWanted(r, g.ID)
		if merr != nil {
			s.writeFailure(w, r, "get group members", merr)
			return
		}
		doc, err = s.groupAttrs(baseOf(ctx), g, members, projectionOf(r, groupSchemaURN))
		externalID, schemas = g.ExternalID, groupSchemas
		meta = s.resourceMeta(baseOf(ctx), "Group", g.ID, g.Created, g.Modified, g.Version)
	} else {
		u, uerr := s.opts.Store.Users().Get(ctx, orgOf(ctx), ep.id)
		if uerr != nil {
			s.writeFailure(w, r, "get user", uerr)
			return
		}
		tag = etag(u.Version)
		if notModified(r, tag) {
			writeNotModified(w, tag)
			return
		}
		refs, rerr := s.groupRefs(ctx, []*gateway.User{u})
		if rerr != nil {
			s.writeFailure(w, r, "get user groups", rerr)
			return
		}
		doc, err = s.userAttrs(baseOf(ctx), u, refs[u.ID], projectionOf(r, userSchemaURN))
		externalID, schemas = u.ExternalID, userSchemas
		meta = s.resourceMeta(baseOf(ctx), "User", u.ID, u.Created, u.Modified, u.Version)
	}
	if err != nil {
		s.writeFailure(w, r, "render resource", err)
		return
	}
	enc, err := encodeResource(doc, ep.id, externalID, schemas, meta)
	if err != nil {
		s.writeFailure(w, r, "encode resource", err)
		return
	}
	w.Header().Set("ETag", tag)
	_, _ = w.Write(enc)
}

// notModified reports whether If-None-Match names tag ("*" names any
// existing resource). Comparison is weak, as RFC 9110 requires for
// If-None-Match: W/"3" and "3" are the same version.
func notModified(r *http.Request, tag string) bool {
	want := strings.TrimPrefix(tag, "W/")
	for _, h := range r.Header.Values("If-None-Match") { // the header may repeat
		for _, t := range strings.Split(h, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == want {
				return true
			}
		}
	}
	return false
}

func writeNotModified(w http.ResponseWriter, tag string) {
	h := w.Header()
	h.Del("Content-Type")
	h.Set("ETag", tag)
	w.WriteHeader(http.StatusNotModified)
}

// writeFailure writes the SCIM error for err (see fail).
func (s *Server) writeFailure(w http.ResponseWriter, r *http.Request, what string, err error) {
	writeSCIMError(w, s.fail(r, what, err))
}

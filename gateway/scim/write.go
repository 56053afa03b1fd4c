package scim

import (
	"bytes"
	"encoding/json"
	"net/http"

	scimlib "github.com/elimity-com/scim"

	"github.com/gatehouse-id/gatehouse/gateway/scim/patch"
)

// serveWrite answers POST /Users, POST /Groups and PUT on a resource. It
// validates as the library does but with schemas built once (the library
// rebuilds them, common attributes and all, on every request: a tenth of a
// create's CPU), then calls the same handlers and writes the resource.
func (s *Server) serveWrite(w http.ResponseWriter, r *http.Request, ep endpoint, body []byte) {
	res, rt, name := s.userRes, "User", "/Users"
	var handler scimlib.ResourceHandler = s.users
	if ep.groups {
		res, rt, name, handler = s.groupRes, "Group", "/Groups", s.groups
	}
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		writeError(w, http.StatusBadRequest, "invalidSyntax", "The request body is not a JSON object: "+err.Error())
		return
	}
	if err := checkSchemas(doc, res, name); err != nil {
		writeSCIMError(w, err)
		return
	}
	attrs, err := patch.ValidateResource(doc, res)
	if err != nil {
		writeSCIMError(w, err)
		return
	}
	var out scimlib.Resource
	status := http.StatusOK
	if r.Method == http.MethodPost {
		out, err = handler.Create(r, attrs)
		status = http.StatusCreated
	} else {
		out, err = handler.Replace(r, ep.id, attrs)
	}
	if err != nil {
		writeSCIMError(w, err)
		return
	}
	if status == http.StatusCreated {
		w.Header().Set("Location", state(r).location)
	}
	s.writeResource(w, r, rt, out, status)
}

// writeResource encodes a handler's resource with its ETag.
func (s *Server) writeResource(w http.ResponseWriter, r *http.Request, rt string, out scimlib.Resource, status int) {
	if tag := state(r).etag; tag != "" {
		w.Header().Set("ETag", tag)
	}
	schemas := userSchemas
	if rt == "Group" {
		schemas = groupSchemas
	}
	externalID := ""
	if out.ExternalID.Present() {
		externalID = out.ExternalID.Value()
	}
	meta := s.resourceMeta(baseOf(r.Context()), rt, out.ID, *out.Meta.Created, *out.Meta.LastModified, 0)
	meta.Version = out.Meta.Version
	enc, err := encodeResource(map[string]any(out.Attributes), out.ID, externalID, schemas, meta)
	if err != nil {
		s.writeFailure(w, r, "encode resource", err)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(enc)
}

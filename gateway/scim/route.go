package scim

import (
	"net/http"
	"net/url"
	"strings"
)

// endpointKind is what a request path names.
type endpointKind int

const (
	epUnknown endpointKind = iota
	epCollection
	epResource
	epSearch     // /Users/.search, /Groups/.search
	epRootSearch // /.search
	epServiceProviderConfig
	epResourceTypes // and /ResourceTypes/{id}
	epSchemas       // and /Schemas/{id}
)

// endpoint is a classified request path.
type endpoint struct {
	kind   endpointKind
	groups bool   // the Groups resource type (else Users)
	id     string // epResource: the unescaped id
}

// HEAD is served wherever GET is (RFC 9110 §9.3.2): the same answer
// without its body.
var allowed = map[endpointKind][]string{
	epCollection:            {http.MethodGet, http.MethodHead, http.MethodPost},
	epResource:              {http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete},
	epSearch:                {http.MethodPost},
	epRootSearch:            {http.MethodPost},
	epServiceProviderConfig: {http.MethodGet, http.MethodHead},
	epResourceTypes:         {http.MethodGet, http.MethodHead},
	epSchemas:               {http.MethodGet, http.MethodHead},
}

// implemented is every method the server serves somewhere.
var implemented = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// route classifies an escaped path below the server (it starts with
// /v2); ids are unescaped once, here.
func route(path string) endpoint {
	rest, ok := strings.CutPrefix(path, "/v2")
	if !ok || rest != "" && rest[0] != '/' {
		return endpoint{}
	}
	first, sub, hasSub := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	switch first {
	case "Users", "Groups":
		groups := first == "Groups"
		switch {
		case !hasSub:
			return endpoint{kind: epCollection, groups: groups}
		case sub == ".search":
			return endpoint{kind: epSearch, groups: groups}
		}
		id, err := url.PathUnescape(sub)
		if err != nil || id == "" || strings.Contains(sub, "/") {
			return endpoint{}
		}
		return endpoint{kind: epResource, groups: groups, id: id}
	case ".search":
		if !hasSub {
			return endpoint{kind: epRootSearch}
		}
	case "ServiceProviderConfig":
		if !hasSub {
			return endpoint{kind: epServiceProviderConfig}
		}
	case "ResourceTypes":
		if !hasSub || sub != "" && !strings.Contains(sub, "/") {
			return endpoint{kind: epResourceTypes}
		}
	case "Schemas":
		if !hasSub || sub != "" && !strings.Contains(sub, "/") {
			return endpoint{kind: epSchemas}
		}
	}
	return endpoint{}
}

// methodAllowed writes 405 with Allow (RFC 9110 §15.5.6) when the method
// is not served on the endpoint, and 404 for an unknown path; it reports
// whether the request may go on.
func methodAllowed(w http.ResponseWriter, r *http.Request, ep endpoint) bool {
	if ep.kind == epUnknown {
		if !contains(implemented, r.Method) {
			w.Header().Set("Allow", strings.Join(implemented, ", "))
			writeError(w, http.StatusMethodNotAllowed, "", "Method "+r.Method+" is not supported by this SCIM server.")
			return false
		}
		writeError(w, http.StatusNotFound, "", "No SCIM endpoint at "+r.URL.Path+": the server serves /Users, /Groups, /.search, /ServiceProviderConfig, /ResourceTypes and /Schemas.")
		return false
	}
	ok := allowed[ep.kind]
	if contains(ok, r.Method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(ok, ", "))
	writeError(w, http.StatusMethodNotAllowed, "", "Method "+r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+strings.Join(ok, ", ")+".")
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

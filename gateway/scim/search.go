package scim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	scimerrors "github.com/elimity-com/scim/errors"
)

const searchRequestURN = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

// searchRequest is the body of POST .search (RFC 7644 §3.4.3).
type searchRequest struct {
	Schemas            []string `json:"schemas"`
	Attributes         []string `json:"attributes"`
	ExcludedAttributes []string `json:"excludedAttributes"`
	Filter             string   `json:"filter"`
	SortBy             string   `json:"sortBy"`    // accepted and ignored: sorting is not supported
	SortOrder          string   `json:"sortOrder"` // (ServiceProviderConfig says so)
	StartIndex         *int     `json:"startIndex"`
	Count              *int     `json:"count"`
}

// query turns the request into the query parameters of the equivalent
// GET, so that both are served by one engine.
func (sr searchRequest) query() url.Values {
	q := url.Values{}
	if sr.Filter != "" {
		q.Set("filter", sr.Filter)
	}
	if len(sr.Attributes) > 0 {
		q.Set("attributes", strings.Join(sr.Attributes, ","))
	}
	if len(sr.ExcludedAttributes) > 0 {
		q.Set("excludedAttributes", strings.Join(sr.ExcludedAttributes, ","))
	}
	if sr.StartIndex != nil {
		q.Set("startIndex", strconv.Itoa(*sr.StartIndex))
	}
	if sr.Count != nil {
		q.Set("count", strconv.Itoa(*sr.Count))
	}
	return q
}

func parseSearchRequest(body []byte) (searchRequest, error) {
	var sr searchRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sr); err != nil {
		return sr, scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: scimerrors.ScimTypeInvalidSyntax,
			Detail: "The SearchRequest is not valid: " + err.Error() + ". It may hold schemas, attributes, excludedAttributes, filter, sortBy, sortOrder, startIndex and count (RFC 7644 §3.4.3)."}
	}
	if !containsFold(sr.Schemas, searchRequestURN) {
		return sr, valueError("A SearchRequest must have \"schemas\":[%q].", searchRequestURN)
	}
	return sr, nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// serveSearch answers POST /Users/.search, /Groups/.search and /.search.
func (s *Server) serveSearch(w http.ResponseWriter, r *http.Request, ep endpoint) {
	body, ok := s.readBody(w, r, ep)
	if !ok {
		return
	}
	sr, err := parseSearchRequest(body)
	if err != nil {
		writeSCIMError(w, err)
		return
	}
	if ep.kind == epSearch {
		s.serveList(w, r, ep.groups, sr.query())
		return
	}
	s.serveRootSearch(w, r, sr.query())
}

// serveRootSearch searches every resource type (RFC 7644 §3.4.3): users
// then groups, paged as one list. A filter is applied to each resource
// type whose schema has the attributes it names; one that fits neither is
// an invalidFilter.
func (s *Server) serveRootSearch(w http.ResponseWriter, r *http.Request, q url.Values) {
	pu, errU := s.parseListParams(q, s.userRes)
	pg, errG := s.parseListParams(q, s.groupRes)
	if errU != nil && errG != nil {
		writeSCIMError(w, errU)
		return
	}
	ctx := r.Context()
	out := listResponse{StartIndex: max(pu.startIndex, pg.startIndex)}
	offset, count := out.StartIndex-1, max(pu.count, pg.count)
	if errU == nil {
		pu.startIndex, pu.count = offset+1, count
		proj := projectionFrom(q, userSchemaURN)
		if err := s.renderUsers(ctx, pu, proj, &out); err != nil {
			s.writeFailure(w, r, "search users", err)
			return
		}
	}
	if errG == nil {
		users := out
		pg.startIndex = max(offset-users.TotalResults, 0) + 1
		pg.count = count - len(users.Resources)
		groups := listResponse{}
		proj := projectionFrom(q, groupSchemaURN)
		if err := s.renderGroups(ctx, pg, proj, &groups); err != nil {
			s.writeFailure(w, r, "search groups", err)
			return
		}
		out.TotalResults += groups.TotalResults
		out.Resources = append(out.Resources, groups.Resources...)
	}
	_, _ = w.Write(out.encode())
}

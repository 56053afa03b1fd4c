package saml

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestRequestCookiesOverHTTPS: over https only __Host- cookies name the
// requests in flight; a plain-named one (which a sibling subdomain could
// plant with Domain=) is not taken for this browser's request.
func TestRequestCookiesOverHTTPS(t *testing.T) {
	for _, tc := range []struct {
		publicURL string
		want      []string
	}{
		{"https://app.example", []string{"B"}},
		{"http://127.0.0.1:8080", []string{"A"}},
	} {
		s := &SP{opts: Options{PublicURL: tc.publicURL, PathPrefix: "/gatehouse"}}
		r := httptest.NewRequest("POST", "/gatehouse/saml/acs", nil)
		r.AddCookie(&http.Cookie{Name: requestCookie + "A", Value: "1"})
		r.AddCookie(&http.Cookie{Name: "__Host-" + requestCookie + "B", Value: "1"})
		if got := s.requestsInFlight(r); !slices.Equal(got, tc.want) {
			t.Errorf("%s: requests in flight %v, want %v", tc.publicURL, got, tc.want)
		}
	}
}

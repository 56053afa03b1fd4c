package scim

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
)

const fuzzToken = "fuzz-token-0123456789"

// newTestServer is a SCIM server on a real (temporary, unsynced) store with
// one user and one group in it.
func newTestServer(t testing.TB) (*Server, string, string) {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "fuzz.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc := provision.New(store, nil, provision.Policy{Method: gateway.SourceSCIM, DefaultPool: "default", DefaultRole: "user"})
	s, err := New(Options{Org: gateway.DefaultOrg, Service: svc, Store: store, BaseURL: "https://x/gatehouse/scim/v2", Token: fuzzToken})
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+fuzzToken)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	u := do("POST", "/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada","emails":[{"value":"a@x","type":"work"}]}`)
	uid := between(u.Body.String(), `"id":"`, `"`)
	g := do("POST", "/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Eng","members":[{"value":"`+uid+`"}]}`)
	gid := between(g.Body.String(), `"id":"`, `"`)
	if uid == "" || gid == "" {
		t.Fatalf("seed failed: %s %s", u.Body, g.Body)
	}
	return s, uid, gid
}

func between(s, a, b string) string {
	_, rest, ok := strings.Cut(s, a)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, b)
	return v
}

// FuzzServer sends arbitrary PATCH/PUT/POST bodies and list filters through
// the whole server (quirk normalisation, library, fast paths, PATCH engine,
// provisioning rules, store) and fails on any 5xx: bad input must always
// be a SCIM 4xx.
//
//	go test ./gateway/scim -run XXX -fuzz FuzzServer
func FuzzServer(f *testing.F) {
	for _, seed := range []string{
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"x"}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"USER"}]}]}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bob","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":"m"}}`,
		`{"displayName":"x","members":[{"value":"USER","type":"Group"}]}`,
		`userName eq "ada"`, `emails[type eq "work"].value eq "a@x"`, `members[value eq "USER"]`, `meta.created gt 5`, `active gt true`,
		// Deep nesting: filters, PATCH paths and JSON bodies.
		strings.Repeat("(", 3000) + `userName eq "a"` + strings.Repeat(")", 3000),
		strings.Repeat("not (", 500) + `active eq true` + strings.Repeat(")", 500),
		`emails[` + strings.Repeat("(", 2000) + `type eq "work"` + strings.Repeat(")", 2000) + `].value eq "x"`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"emails[` + strings.Repeat("(", 2000) + `type eq \"work\"` + strings.Repeat(")", 2000) + `].value","value":"x"}]}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"deep","x":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat("}", 5000) + `}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"` + strings.Repeat("(", 3000) + `"}`,
		strings.Repeat("[", 10000),
	} {
		for kind := range uint8(7) {
			f.Add(kind, seed)
		}
	}
	s, uid, gid := newTestServer(f)
	f.Fuzz(func(t *testing.T, kind uint8, input string) {
		input = strings.ReplaceAll(input, "USER", uid)
		var r *http.Request
		switch kind % 7 {
		case 0:
			r = httptest.NewRequest("PATCH", "/v2/Users/"+uid, strings.NewReader(input))
		case 1:
			r = httptest.NewRequest("PATCH", "/v2/Groups/"+gid, strings.NewReader(input))
		case 2:
			r = httptest.NewRequest("PUT", "/v2/Users/"+uid, strings.NewReader(input))
		case 3:
			r = httptest.NewRequest("POST", "/v2/Groups", strings.NewReader(input))
		case 4:
			r = httptest.NewRequest("GET", "/v2/Users?filter="+url.QueryEscape(input), nil)
		case 5:
			r = httptest.NewRequest("GET", "/v2/Groups?filter="+url.QueryEscape(input)+"&excludedAttributes=members", nil)
		case 6:
			r = httptest.NewRequest("POST", "/v2/Users/.search", strings.NewReader(input))
		}
		r.Header.Set("Authorization", "Bearer "+fuzzToken)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("kind %d input %q: %d %s", kind%7, input, w.Code, w.Body)
		}
	})
}

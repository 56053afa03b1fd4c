package patch

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	scimlib "github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/schema"

	"github.com/gatehouse-id/gatehouse/gateway/scim/query"
)

const ent = query.EnterpriseUserURN

// captureHandler records the operations the library hands to Patch.
type captureHandler struct{ ops []scimlib.PatchOperation }

func (c *captureHandler) Patch(_ *http.Request, _ string, ops []scimlib.PatchOperation) (scimlib.Resource, error) {
	c.ops = ops
	return scimlib.Resource{}, nil
}
func (*captureHandler) Create(*http.Request, scimlib.ResourceAttributes) (scimlib.Resource, error) {
	return scimlib.Resource{}, nil
}
func (*captureHandler) Get(*http.Request, string) (scimlib.Resource, error) {
	return scimlib.Resource{}, nil
}
func (*captureHandler) GetAll(*http.Request, scimlib.ListRequestParams) (scimlib.Page, error) {
	return scimlib.Page{}, nil
}
func (*captureHandler) Replace(*http.Request, string, scimlib.ResourceAttributes) (scimlib.Resource, error) {
	return scimlib.Resource{}, nil
}
func (*captureHandler) Delete(*http.Request, string) error { return nil }

// parseOps runs a raw PATCH body through NormalizeRequest and the
// library's validation, exactly as the server does. It returns the
// library's error status and scimType when validation fails.
func parseOps(t testing.TB, body string, res Resource) ([]scimlib.PatchOperation, error) {
	t.Helper()
	norm, err := NormalizeRequest([]byte(body), res)
	if err != nil {
		return nil, err
	}
	h := &captureHandler{}
	rt := scimlib.ResourceType{Name: "R", Endpoint: "/R", Schema: res.Core, Handler: h}
	for _, e := range res.Extensions {
		rt.SchemaExtensions = append(rt.SchemaExtensions, scimlib.SchemaExtension{Schema: e})
	}
	srv, err := scimlib.NewServer(&scimlib.ServerArgs{ServiceProviderConfig: &scimlib.ServiceProviderConfig{}, ResourceTypes: []scimlib.ResourceType{rt}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("PATCH", "/v2/R/x", strings.NewReader(string(norm))))
	if rec.Code >= 400 {
		var se scimerrors.ScimError
		if err := json.Unmarshal(rec.Body.Bytes(), &se); err != nil {
			t.Fatalf("library answered %d with %s", rec.Code, rec.Body)
		}
		return nil, se
	}
	return h.ops, nil
}

func doc(t *testing.T, js string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

const baseUser = `{
	"userName": "ada@example.com", "active": true, "displayName": "Ada",
	"name": {"givenName": "Ada", "familyName": "Lovelace"},
	"emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}
}`

const baseGroup = `{"displayName": "Eng", "members": [{"value": "u1", "display": "one"}, {"value": "u2"}]}`

func ops(list ...string) string {
	return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` + strings.Join(list, ",") + `]}`
}

func TestMain(m *testing.M) {
	// The server turns this on at start-up for Entra; do the same here.
	schema.SetAllowStringValues(true)
	m.Run()
}

func TestApply(t *testing.T) {
	user, group := query.UserResource(), query.GroupResource()
	cases := []struct {
		name     string
		res      Resource
		base     string
		body     string
		want     string // expected document; "" when an error is expected
		scimType scimerrors.ScimType
	}{
		{"okta deactivate path-less replace merges", user, baseUser,
			ops(`{"op":"replace","value":{"active":false}}`),
			strings.Replace(baseUser, `"active": true`, `"active": false`, 1), ""},
		{"okta reactivate", user, strings.Replace(baseUser, `"active": true`, `"active": false`, 1),
			ops(`{"op":"replace","value":{"active":true}}`), baseUser, ""},
		{"okta group rename with id in value", group, baseGroup,
			ops(`{"op":"replace","value":{"id":"g1","displayName":"Engineering"}}`),
			strings.Replace(baseGroup, `"Eng"`, `"Engineering"`, 1), ""},
		{"okta remove+add members in one request", group, baseGroup,
			ops(`{"op":"remove","path":"members[value eq \"u1\"]"}`, `{"op":"add","path":"members","value":[{"value":"u3","display":"three"}]}`),
			`{"displayName":"Eng","members":[{"value":"u2"},{"value":"u3","display":"three"}]}`, ""},
		{"okta full member replace", group, baseGroup,
			ops(`{"op":"replace","path":"members","value":[{"value":"u9"}]}`),
			`{"displayName":"Eng","members":[{"value":"u9"}]}`, ""},
		{"add existing member is idempotent", group, baseGroup,
			ops(`{"op":"add","path":"members","value":[{"value":"u2"}]}`), baseGroup, ""},
		{"remove absent member is a no-op", group, baseGroup,
			ops(`{"op":"remove","path":"members[value eq \"nobody\"]"}`), baseGroup, ""},
		{"entra capitalized ops", user, baseUser,
			ops(`{"op":"Replace","path":"displayName","value":"A. L."}`, `{"op":"Add","path":"title","value":"Countess"}`),
			strings.Replace(baseUser, `"displayName": "Ada"`, `"displayName": "A. L.", "title": "Countess"`, 1), ""},
		{"entra string boolean False", user, baseUser,
			ops(`{"op":"Replace","path":"active","value":"False"}`),
			strings.Replace(baseUser, `"active": true`, `"active": false`, 1), ""},
		{"entra dotted keys path-less", user, baseUser,
			ops(`{"op":"replace","value":{"name.givenName":"Augusta","name.formatted":"Augusta Ada"}}`),
			strings.Replace(baseUser, `"givenName": "Ada"`, `"givenName": "Augusta", "formatted": "Augusta Ada"`, 1), ""},
		{"entra schema-URN keys path-less", user, baseUser,
			ops(`{"op":"replace","value":{"` + ent + `:employeeNumber":"42","urn:ietf:params:scim:schemas:core:2.0:User:displayName":"AL"}}`),
			strings.Replace(strings.Replace(baseUser, `"department": "R&D"`, `"department": "R&D", "employeeNumber": "42"`, 1), `"displayName": "Ada"`, `"displayName": "AL"`, 1), ""},
		{"extension object in a path-less value", user, baseUser,
			ops(`{"op":"replace","value":{"` + ent + `":{"costCenter":"C1"}}}`),
			strings.Replace(baseUser, `"department": "R&D"`, `"department": "R&D", "costCenter": "C1"`, 1), ""},
		{"entra Replace emails[type eq work].value updates", user, baseUser,
			ops(`{"op":"Replace","path":"emails[type eq \"work\"].value","value":"new@example.com"}`),
			strings.Replace(baseUser, `"value": "ada@example.com"`, `"value": "new@example.com"`, 1), ""},
		{"entra Replace emails[type eq home].value creates the element", user, baseUser,
			ops(`{"op":"Replace","path":"emails[type eq \"home\"].value","value":"ada@home.org"}`),
			strings.Replace(baseUser, `"primary": true}]`, `"primary": true}, {"type": "home", "value": "ada@home.org"}]`, 1), ""},
		{"entra Remove members with value array removes only those", group, baseGroup,
			ops(`{"op":"Remove","path":"members","value":[{"value":"u1"}]}`),
			`{"displayName":"Eng","members":[{"value":"u2"}]}`, ""},
		{"entra Add members value array", group, baseGroup,
			ops(`{"op":"Add","path":"members","value":[{"value":"u3"},{"value":"u4"}]}`),
			`{"displayName":"Eng","members":[{"value":"u1","display":"one"},{"value":"u2"},{"value":"u3"},{"value":"u4"}]}`, ""},
		{"entra manager bare string at path", user, baseUser,
			ops(`{"op":"Add","path":"` + ent + `:manager","value":"m-1"}`),
			strings.Replace(baseUser, `"department": "R&D"`, `"department": "R&D", "manager": {"value": "m-1"}`, 1), ""},
		{"entra manager bare string path-less", user, baseUser,
			ops(`{"op":"replace","value":{"` + ent + `:manager":"m-2"}}`),
			strings.Replace(baseUser, `"department": "R&D"`, `"department": "R&D", "manager": {"value": "m-2"}`, 1), ""},
		{"entra userName and active in one request", user, baseUser,
			ops(`{"op":"Replace","path":"userName","value":"al@example.com"}`, `{"op":"Replace","path":"active","value":"false"}`),
			strings.Replace(strings.Replace(baseUser, `"active": true`, `"active": false`, 1), `"userName": "ada@example.com"`, `"userName": "al@example.com"`, 1), ""},
		{"sub-attribute path creates parent", user, `{"userName":"u"}`,
			ops(`{"op":"add","path":"name.familyName","value":"X"}`), `{"userName":"u","name":{"familyName":"X"}}`, ""},
		{"remove sub-attribute", user, baseUser,
			ops(`{"op":"remove","path":"name.givenName"}`),
			strings.Replace(baseUser, `"givenName": "Ada", `, ``, 1), ""},
		{"replace complex keeps unspecified sub-attributes", user, baseUser,
			ops(`{"op":"replace","path":"name","value":{"givenName":"Augusta"}}`),
			strings.Replace(baseUser, `"givenName": "Ada"`, `"givenName": "Augusta"`, 1), ""},
		{"added primary email demotes the old primary", user, baseUser,
			ops(`{"op":"add","path":"emails","value":[{"value":"b@example.com","type":"other","primary":true}]}`),
			strings.Replace(baseUser, `"primary": true}]`, `"primary": false}, {"value": "b@example.com", "type": "other", "primary": true}]`, 1), ""},
		{"remove whole attribute", user, baseUser,
			ops(`{"op":"remove","path":"displayName"}`), strings.Replace(baseUser, `"displayName": "Ada",`, ``, 1), ""},

		{"readOnly id → mutability", user, baseUser, ops(`{"op":"replace","path":"id","value":"x"}`), "", scimerrors.ScimTypeMutability},
		{"readOnly meta.created → mutability", user, baseUser, ops(`{"op":"replace","path":"meta.created","value":"2020-01-01T00:00:00Z"}`), "", scimerrors.ScimTypeMutability},
		{"readOnly groups → mutability", user, baseUser, ops(`{"op":"add","path":"groups","value":[{"value":"g"}]}`), "", scimerrors.ScimTypeMutability},
		{"immutable member display → mutability", group, baseGroup, ops(`{"op":"replace","path":"members[value eq \"u1\"].display","value":"x"}`), "", scimerrors.ScimTypeMutability},
		{"remove userName → invalidValue", user, baseUser, ops(`{"op":"remove","path":"userName"}`), "", scimerrors.ScimTypeInvalidValue},
		{"unknown attr → invalidPath", user, baseUser, ops(`{"op":"replace","path":"shoeSize","value":"9"}`), "", scimerrors.ScimTypeInvalidPath},
		{"unknown schema → invalidPath", user, baseUser, ops(`{"op":"replace","path":"urn:example:Thing:x","value":"9"}`), "", scimerrors.ScimTypeInvalidPath},
		{"remove without path → noTarget", user, baseUser, ops(`{"op":"remove"}`), "", scimerrors.ScimTypeNoTarget},
		{"replace filter matching nothing → noTarget", user, baseUser, ops(`{"op":"replace","path":"emails[type eq \"home\"]","value":{"display":"x"}}`), "", scimerrors.ScimTypeNoTarget},
		{"filter on singular attribute → invalidPath", user, baseUser, ops(`{"op":"replace","path":"name[givenName eq \"Ada\"].familyName","value":"x"}`), "", scimerrors.ScimTypeInvalidPath},
		{"wrong value type → invalidValue", user, baseUser, ops(`{"op":"replace","path":"active","value":{"x":1}}`), "", scimerrors.ScimTypeInvalidValue},
		{"unknown op → invalidValue", user, baseUser, ops(`{"op":"move","path":"displayName","value":"x"}`), "", scimerrors.ScimTypeInvalidValue},
		{"path-less remove value not an object", user, baseUser, ops(`{"op":"replace","value":"x"}`), "", scimerrors.ScimTypeInvalidValue},
		{"multiple ops atomic: second fails → doc unchanged", user, baseUser,
			ops(`{"op":"replace","path":"displayName","value":"Changed"}`, `{"op":"replace","path":"id","value":"x"}`), "", scimerrors.ScimTypeMutability},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := doc(t, tc.base)
			before := doc(t, tc.base)
			ops, err := parseOps(t, tc.body, tc.res)
			var got map[string]any
			if err == nil {
				got, err = Apply(in, ops, tc.res)
			}
			if !reflect.DeepEqual(in, before) {
				t.Fatalf("Apply modified its input")
			}
			if tc.want == "" {
				var se scimerrors.ScimError
				if !errors.As(err, &se) || se.Status != 400 || se.ScimType != tc.scimType {
					t.Fatalf("err = %#v, want 400 %s", err, tc.scimType)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			want := doc(t, tc.want)
			if !reflect.DeepEqual(normalize(got), normalize(want)) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				t.Fatalf("got  %s\nwant %s", g, w)
			}
		})
	}
}

// normalize round-trips through JSON so that numbers and nested types
// compare equal regardless of how they were built.
func normalize(m map[string]any) any {
	b, _ := json.Marshal(m)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func TestNormalizeResource(t *testing.T) {
	res := query.UserResource()
	in := `{"userName":"u","` + ent + `":{"manager":"m-1","department":"D"}}`
	out, err := NormalizeResource([]byte(in), res)
	if err != nil {
		t.Fatal(err)
	}
	got := doc(t, string(out))[ent].(map[string]any)["manager"]
	if !reflect.DeepEqual(got, map[string]any{"value": "m-1"}) {
		t.Fatalf("manager = %#v", got)
	}
	plain := `{"userName":"u"}`
	if out, _ := NormalizeResource([]byte(plain), res); string(out) != plain {
		t.Fatalf("a body without quirks must pass through untouched: %s", out)
	}
	if _, err := NormalizeResource([]byte(`{"manager": `), res); err == nil {
		t.Fatal("broken JSON must be an error")
	}
}

// FuzzApply feeds arbitrary PATCH bodies through the same path as the
// server: NormalizeRequest, the library's validation, Apply. It fails on
// a panic or on any error that is not a 4xx SCIM error value.
func FuzzApply(f *testing.F) {
	seeds := []string{
		ops(`{"op":"replace","value":{"active":false}}`),
		ops(`{"op":"Replace","path":"emails[type eq \"work\"].value","value":"x@y"}`),
		ops(`{"op":"Remove","path":"members","value":[{"value":"u1"}]}`),
		ops(`{"op":"remove","path":"members[value eq \"u1\"]"}`),
		ops(`{"op":"replace","value":{"name.givenName":"A","` + ent + `:manager":"m"}}`),
		ops(`{"op":"add","path":"emails[type eq \"x\" and primary eq true]","value":{"value":"v"}}`),
		ops(`{"op":"replace","path":"name","value":{"givenName":"A"}}`),
		`{"Operations":[{"op":"remove"}]}`, `[]`, `{"schemas":5}`, `{}`,
	}
	for _, s := range seeds {
		f.Add(s, true)
		f.Add(s, false)
	}
	user, group := query.UserResource(), query.GroupResource()
	f.Fuzz(func(t *testing.T, body string, isUser bool) {
		res, base := group, baseGroup
		if isUser {
			res, base = user, baseUser
		}
		ops, err := parseOps(t, body, res)
		if norm, nerr := NormalizeRequest([]byte(body), res); nerr == nil {
			if fast, ok := ParseSimple(norm, res); ok {
				if err != nil {
					t.Fatalf("fast path accepted what the library rejects (%v): %s", err, body)
				}
				if !reflect.DeepEqual(fast, ops) {
					t.Fatalf("fast path and library disagree on %s", body)
				}
			}
		}
		if err == nil {
			var m map[string]any
			_ = json.Unmarshal([]byte(base), &m)
			_, err = Apply(m, ops, res)
		}
		if err == nil {
			return
		}
		var se scimerrors.ScimError
		if !errors.As(err, &se) || se.Status < 400 || se.Status >= 500 {
			t.Fatalf("error is not a 4xx SCIM error: %#v", err)
		}
	})
}

// TestParseSimpleAgreesWithLibrary: for every table body the fast parser
// accepts, it produces exactly the operations the library produces.
func TestParseSimpleAgreesWithLibrary(t *testing.T) {
	user, group := query.UserResource(), query.GroupResource()
	bodies := []struct {
		res  Resource
		body string
	}{
		{user, ops(`{"op":"replace","value":{"active":false}}`)},
		{user, ops(`{"op":"Replace","path":"active","value":"False"}`)},
		{user, ops(`{"op":"replace","value":{"name.givenName":"A","` + ent + `:employeeNumber":"42","active":"true"}}`)},
		{user, ops(`{"op":"Add","path":"` + ent + `:manager","value":{"value":"m-1"}}`)},
		{user, ops(`{"op":"add","path":"emails","value":[{"value":"b@example.com","type":"work","primary":true}]}`)},
		{user, ops(`{"op":"remove","path":"name.givenName"}`)},
		{group, ops(`{"op":"replace","value":{"id":"g1","displayName":"Engineering"}}`)},
		{group, ops(`{"op":"Add","path":"members","value":[{"value":"u3"},{"value":"u4","display":"d"}]}`)},
		{group, ops(`{"op":"Remove","path":"members","value":[{"value":"u1"}]}`)},
		{group, ops(`{"op":"replace","path":"members","value":[]}`)},
	}
	for _, tc := range bodies {
		norm, err := NormalizeRequest([]byte(tc.body), tc.res)
		if err != nil {
			t.Fatal(err)
		}
		fast, ok := ParseSimple(norm, tc.res)
		if !ok {
			t.Errorf("fast path declined %s", tc.body)
			continue
		}
		lib, err := parseOps(t, tc.body, tc.res)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, lib) {
			fj, _ := json.Marshal(fast)
			lj, _ := json.Marshal(lib)
			t.Errorf("%s:\nfast %s\nlib  %s", tc.body, fj, lj)
		}
	}
	for _, body := range []string{
		ops(`{"op":"remove","path":"members[value eq \"u1\"]"}`),
		ops(`{"op":"Replace","path":"emails[type eq \"work\"].value","value":"x"}`),
		ops(`{"op":"replace","path":"active","value":{"x":1}}`),
		ops(`{"op":"move","path":"active","value":true}`),
		ops(`{"op":"replace","path":"shoeSize","value":"9"}`),
		`{"schemas":["other"],"Operations":[{"op":"replace","path":"active","value":true}]}`,
	} {
		if _, ok := ParseSimple([]byte(body), user); ok {
			t.Errorf("fast path must leave %s to the library", body)
		}
	}
}

package patch

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	scimlib "github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/schema"
	"github.com/scim2/filter-parser/v2"

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
// library's validation, exactly as the server does (same resource type
// construction: the query resources as the library's schema and
// extensions). It returns the error the client would get when either
// rejects the body.
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

func doc(t testing.TB, js string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatalf("%v in %s", err, js)
	}
	return m
}

const (
	baseUser = `{"userName":"ada@example.com","active":true,"displayName":"Ada",
		"name":{"givenName":"Ada","familyName":"Lovelace"},
		"emails":[{"value":"ada@example.com","type":"work","primary":true}],
		"` + ent + `":{"department":"R&D"}}`
	// A user Entra has not given a work email yet.
	homeUser = `{"userName":"bo@example.com","emails":[{"value":"bo@home.org","type":"home"}]}`
	// A user with several emails, for filter operators.
	mailUser = `{"userName":"cy@example.com","emails":[
		{"value":"Cy@Example.com","type":"work","primary":true},
		{"value":"cy@old.org","type":"other","display":"old"},
		{"value":"cy@home.org","type":"home"}]}`
	baseGroup = `{"displayName":"Eng","members":[{"value":"u1","display":"one"},{"value":"u2"}]}`
)

func ops(list ...string) string {
	return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` + strings.Join(list, ",") + `]}`
}

func TestMain(m *testing.M) {
	// The server turns this on at start-up for Entra; do the same here.
	schema.SetAllowStringValues(true)
	m.Run()
}

type applyCase struct {
	name     string
	group    bool   // Group resource; User otherwise
	base     string // document before
	body     string // raw PATCH body
	want     string // document after; "" when an error is expected
	scimType scimerrors.ScimType
}

// cases has one row per IdP quirk or rule. Bodies are raw, as sent.
var cases = []applyCase{
	// Okta.
	{name: "okta deactivate path-less replace", base: baseUser,
		body: ops(`{"op":"replace","value":{"active":false}}`),
		want: `{"userName":"ada@example.com","active":false,"displayName":"Ada","name":{"givenName":"Ada","familyName":"Lovelace"},
			"emails":[{"value":"ada@example.com","type":"work","primary":true}],"` + ent + `":{"department":"R&D"}}`},
	{name: "okta reactivate path-less replace", base: `{"userName":"u","active":false}`,
		body: ops(`{"op":"replace","value":{"active":true}}`),
		want: `{"userName":"u","active":true}`},
	{name: "okta group rename with id in value", group: true, base: baseGroup,
		body: ops(`{"op":"replace","value":{"id":"abf4dd94-a4c0-4f67-89c9-76b03340cb9b","displayName":"Engineering"}}`),
		want: `{"displayName":"Engineering","members":[{"value":"u1","display":"one"},{"value":"u2"}]}`},
	{name: "okta remove+add members in one request", group: true, base: baseGroup,
		body: ops(`{"op":"remove","path":"members[value eq \"u1\"]"}`, `{"op":"add","path":"members","value":[{"value":"u3","display":"three"}]}`),
		want: `{"displayName":"Eng","members":[{"value":"u2"},{"value":"u3","display":"three"}]}`},
	{name: "okta full member replace", group: true, base: baseGroup,
		body: ops(`{"op":"replace","path":"members","value":[{"value":"u9","display":"nine"},{"value":"u2"}]}`),
		want: `{"displayName":"Eng","members":[{"value":"u9","display":"nine"},{"value":"u2"}]}`},
	{name: "okta full member replace with none empties the group", group: true, base: baseGroup,
		body: ops(`{"op":"replace","path":"members","value":[]}`),
		want: `{"displayName":"Eng"}`},
	{name: "okta membership payload (library testdata)", group: true,
		base: `{"displayName":"Test","members":[{"value":"89bb1940-b905-4575-9e7f-6f887cfb368e","display":"test.user@okta.local"}]}`,
		body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
			{"op":"remove","path":"members[value eq \"89bb1940-b905-4575-9e7f-6f887cfb368e\"]"},
			{"op":"add","path":"members","value":[{"value":"23a35c27-23d3-4c03-b4c5-6443c09e7173","display":"test.user@okta.local"}]},
			{"op":"replace","path":"members","value":[{"value":"23a35c27-23d3-4c03-b4c5-6443c09e7173","display":"test.user@okta.local"},{"value":"89bb1940-b905-4575-9e7f-6f887cfb368e","display":"test.user@okta.local"}]}]}`,
		want: `{"displayName":"Test","members":[{"value":"23a35c27-23d3-4c03-b4c5-6443c09e7173","display":"test.user@okta.local"},{"value":"89bb1940-b905-4575-9e7f-6f887cfb368e","display":"test.user@okta.local"}]}`},
	{name: "okta add of an existing member is idempotent", group: true, base: baseGroup,
		body: ops(`{"op":"add","path":"members","value":[{"value":"u2"},{"value":"u2"}]}`),
		want: baseGroup},
	{name: "okta retried remove of an absent member is a no-op", group: true, base: baseGroup,
		body: ops(`{"op":"remove","path":"members[value eq \"nobody\"]"}`),
		want: baseGroup},
	{name: "okta path-less replace of name keeps the other sub-attributes", base: `{"userName":"u","name":{"givenName":"A","familyName":"L"}}`,
		body: ops(`{"op":"replace","value":{"name":{"givenName":"Augusta"},"displayName":"AL"}}`),
		want: `{"userName":"u","displayName":"AL","name":{"givenName":"Augusta","familyName":"L"}}`},

	// Entra.
	{name: "entra capitalized ops", base: `{"userName":"u","displayName":"Ada"}`,
		body: ops(`{"op":"Replace","path":"displayName","value":"A. L."}`, `{"op":"Add","path":"title","value":"Countess"}`, `{"op":"REMOVE","path":"title"}`, `{"op":"add","path":"nickName","value":"Ada"}`),
		want: `{"userName":"u","displayName":"A. L.","nickName":"Ada"}`},
	{name: "entra string boolean False", base: `{"userName":"u","active":true}`,
		body: ops(`{"op":"Replace","path":"active","value":"False"}`),
		want: `{"userName":"u","active":false}`},
	{name: "entra string boolean True path-less", base: `{"userName":"u","active":false}`,
		body: ops(`{"op":"Replace","value":{"active":"True"}}`),
		want: `{"userName":"u","active":true}`},
	{name: "entra string boolean in a sub-attribute", base: `{"userName":"u"}`,
		body: ops(`{"op":"Add","path":"roles","value":[{"primary":"False","type":"WindowsAzureActiveDirectoryRole","value":"Admin"}]}`),
		want: `{"userName":"u","roles":[{"primary":false,"type":"WindowsAzureActiveDirectoryRole","value":"Admin"}]}`},
	{name: "entra dotted keys path-less", base: `{"userName":"u","name":{"givenName":"Ada","familyName":"L"}}`,
		body: ops(`{"op":"replace","value":{"name.givenName":"Augusta","name.formatted":"Augusta Ada L","NAME.middleName":"King"}}`),
		want: `{"userName":"u","name":{"givenName":"Augusta","familyName":"L","formatted":"Augusta Ada L","middleName":"King"}}`},
	{name: "entra dotted key creates the parent", base: `{"userName":"u"}`,
		body: ops(`{"op":"add","value":{"name.familyName":"X"}}`),
		want: `{"userName":"u","name":{"familyName":"X"}}`},
	{name: "entra schema-URN keys path-less", base: `{"userName":"u","displayName":"Ada","` + ent + `":{"department":"R&D"}}`,
		body: ops(`{"op":"replace","value":{"` + ent + `:employeeNumber":"42","urn:ietf:params:scim:schemas:core:2.0:User:userName":"v","urn:ietf:params:scim:schemas:core:2.0:User:name.givenName":"G"}}`),
		want: `{"userName":"v","displayName":"Ada","name":{"givenName":"G"},"` + ent + `":{"department":"R&D","employeeNumber":"42"}}`},
	{name: "entra schema-URN key creates the extension", base: `{"userName":"u"}`,
		body: ops(`{"op":"add","value":{"` + ent + `:department":"Ops"}}`),
		want: `{"userName":"u","` + ent + `":{"department":"Ops"}}`},
	{name: "extension object in a path-less value is flattened", base: `{"userName":"u","` + ent + `":{"department":"R&D"}}`,
		body: ops(`{"op":"replace","value":{"` + ent + `":{"costCenter":"C1","manager":"m-7"},"urn:ietf:params:scim:schemas:core:2.0:User":{"title":"T"}}}`),
		want: `{"userName":"u","title":"T","` + ent + `":{"department":"R&D","costCenter":"C1","manager":{"value":"m-7"}}}`},
	{name: "extension URN as the path", base: `{"userName":"u","` + ent + `":{"department":"R&D"}}`,
		body: ops(`{"op":"add","path":"` + ent + `","value":{"division":"D"}}`),
		want: `{"userName":"u","` + ent + `":{"department":"R&D","division":"D"}}`},
	{name: "entra Replace emails[type eq work].value creates element", base: homeUser,
		body: ops(`{"op":"Replace","path":"emails[type eq \"work\"].value","value":"bo@example.com"}`),
		want: `{"userName":"bo@example.com","emails":[{"value":"bo@home.org","type":"home"},{"type":"work","value":"bo@example.com"}]}`},
	{name: "entra Add emails[type eq work and primary eq true].value creates element", base: homeUser,
		body: ops(`{"op":"Add","path":"emails[type eq \"work\" and primary eq true].value","value":"bo@example.com"}`),
		want: `{"userName":"bo@example.com","emails":[{"value":"bo@home.org","type":"home"},{"type":"work","primary":true,"value":"bo@example.com"}]}`},
	{name: "entra Replace emails[type eq work].value updates the existing element", base: baseUser,
		body: ops(`{"op":"Replace","path":"emails[type eq \"Work\"].value","value":"new@example.com"}`),
		want: `{"userName":"ada@example.com","active":true,"displayName":"Ada","name":{"givenName":"Ada","familyName":"Lovelace"},
			"emails":[{"value":"new@example.com","type":"work","primary":true}],"` + ent + `":{"department":"R&D"}}`},
	{name: "entra user payload (library testdata)", base: baseUser,
		body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
			{"op":"Replace","path":"emails[type eq \"work\"].value","value":"updatedEmail@microsoft.com"},
			{"op":"Replace","path":"name.familyName","value":"updatedFamilyName"},
			{"op":"Replace","path":"userName","value":"5b50642d@testuser.com"},
			{"op":"Replace","path":"active","value":false}]}`,
		want: `{"userName":"5b50642d@testuser.com","active":false,"displayName":"Ada","name":{"givenName":"Ada","familyName":"updatedFamilyName"},
			"emails":[{"value":"updatedEmail@microsoft.com","type":"work","primary":true}],"` + ent + `":{"department":"R&D"}}`},
	{name: "entra Remove members with value array removes only those", group: true,
		base: `{"displayName":"Eng","members":[{"value":"u1","display":"one"},{"value":"u2"},{"value":"u3"}]}`,
		body: ops(`{"op":"Remove","path":"members","value":[{"value":"u1"},{"value":"u3","$ref":null}]}`),
		want: `{"displayName":"Eng","members":[{"value":"u2"}]}`},
	{name: "entra Add members value array", group: true, base: `{"displayName":"Eng"}`,
		body: ops(`{"op":"Add","path":"members","value":[{"value":"u3"},{"value":"u4"}]}`),
		want: `{"displayName":"Eng","members":[{"value":"u3"},{"value":"u4"}]}`},
	{name: "entra group payload (library testdata)", group: true, base: `{"displayName":"Old"}`,
		body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
			{"op":"Replace","path":"displayName","value":"1879db59updatedDisplayName"},
			{"op":"Add","path":"members","value":[{"$ref":null,"value":"f648f8d5ea4e4cd38e9c"}]},
			{"op":"Remove","path":"members","value":[{"$ref":null,"value":"f648f8d5ea4e4cd38e9c"}]}]}`,
		want: `{"displayName":"1879db59updatedDisplayName"}`},
	{name: "entra manager bare string", base: `{"userName":"u"}`,
		body: ops(`{"op":"Add","path":"` + ent + `:manager","value":"m-1"}`),
		want: `{"userName":"u","` + ent + `":{"manager":{"value":"m-1"}}}`},
	{name: "entra manager bare string path-less", base: `{"userName":"u","` + ent + `":{"manager":{"value":"m-1"}}}`,
		body: ops(`{"op":"replace","value":{"` + ent + `:manager":"m-2"}}`),
		want: `{"userName":"u","` + ent + `":{"manager":{"value":"m-2"}}}`},
	{name: "entra manager empty string removes the manager", base: `{"userName":"u","` + ent + `":{"manager":{"value":"m-1"},"department":"D"}}`,
		body: ops(`{"op":"Replace","path":"` + ent + `:manager","value":""}`),
		want: `{"userName":"u","` + ent + `":{"department":"D"}}`},
	{name: "entra manager empty string path-less removes the manager", base: `{"userName":"u","` + ent + `":{"manager":{"value":"m-1"}}}`,
		body: ops(`{"op":"Replace","value":{"` + ent + `:manager":"","displayName":"D"}}`),
		want: `{"userName":"u","displayName":"D"}`},
	{name: "entra userName and active in one request", base: `{"userName":"ada@example.com","active":true}`,
		body: ops(`{"op":"Replace","path":"userName","value":"al@example.com"}`, `{"op":"Replace","path":"active","value":"false"}`),
		want: `{"userName":"al@example.com","active":false}`},

	// RFC 7644 §3.5.2 paths.
	{name: "remove members[value eq]", group: true, base: baseGroup,
		body: ops(`{"op":"remove","path":"members[value eq \"u2\"]"}`),
		want: `{"displayName":"Eng","members":[{"value":"u1","display":"one"}]}`},
	{name: "members[value eq] is caseExact", group: true, base: baseGroup,
		body: ops(`{"op":"remove","path":"members[value eq \"U1\"]"}`),
		want: baseGroup},
	{name: "remove the last member drops members", group: true, base: `{"displayName":"Eng","members":[{"value":"u1"}]}`,
		body: ops(`{"op":"remove","path":"members[value eq \"u1\"]"}`),
		want: `{"displayName":"Eng"}`},
	{name: "remove of all members", group: true, base: baseGroup,
		body: ops(`{"op":"remove","path":"members"}`),
		want: `{"displayName":"Eng"}`},
	{name: "sub-attribute path creates the parent", base: `{"userName":"u"}`,
		body: ops(`{"op":"add","path":"name.familyName","value":"X"}`),
		want: `{"userName":"u","name":{"familyName":"X"}}`},
	{name: "remove sub-attribute", base: `{"userName":"u","name":{"givenName":"A","familyName":"L"}}`,
		body: ops(`{"op":"remove","path":"name.givenName"}`),
		want: `{"userName":"u","name":{"familyName":"L"}}`},
	{name: "remove the last sub-attribute drops the parent", base: `{"userName":"u","name":{"givenName":"A"}}`,
		body: ops(`{"op":"remove","path":"name.givenName"}`),
		want: `{"userName":"u"}`},
	{name: "remove the last extension attribute drops the extension", base: `{"userName":"u","` + ent + `":{"department":"D"}}`,
		body: ops(`{"op":"remove","path":"` + ent + `:department"}`),
		want: `{"userName":"u"}`},
	{name: "replace complex keeps unspecified sub-attributes", base: `{"userName":"u","name":{"givenName":"A","familyName":"L"}}`,
		body: ops(`{"op":"replace","path":"name","value":{"givenName":"Augusta"}}`),
		want: `{"userName":"u","name":{"givenName":"Augusta","familyName":"L"}}`},
	{name: "path-less add appends emails skipping duplicates", base: `{"userName":"u","emails":[{"value":"a@x","type":"work"}]}`,
		body: ops(`{"op":"add","value":{"emails":[{"value":"a@x","type":"work"},{"value":"b@x","type":"home"}]}}`),
		want: `{"userName":"u","emails":[{"value":"a@x","type":"work"},{"value":"b@x","type":"home"}]}`},
	{name: "path-less replace replaces the emails list", base: `{"userName":"u","emails":[{"value":"a@x","type":"work"}]}`,
		body: ops(`{"op":"replace","value":{"emails":[{"value":"b@x","type":"home"}]}}`),
		want: `{"userName":"u","emails":[{"value":"b@x","type":"home"}]}`},
	{name: "emails.value without filter sets every element", base: `{"userName":"u","emails":[{"value":"a@x","type":"work"},{"value":"b@x"}]}`,
		body: ops(`{"op":"replace","path":"emails.display","value":"D"}`),
		want: `{"userName":"u","emails":[{"value":"a@x","type":"work","display":"D"},{"value":"b@x","display":"D"}]}`},
	{name: "remove emails.type from every element", base: `{"userName":"u","emails":[{"value":"a@x","type":"work"},{"value":"b@x","type":"home"}]}`,
		body: ops(`{"op":"remove","path":"emails.type"}`),
		want: `{"userName":"u","emails":[{"value":"a@x"},{"value":"b@x"}]}`},
	{name: "replace emails[filter] merges into the matched element", base: mailUser,
		body: ops(`{"op":"replace","path":"emails[type eq \"other\"]","value":{"display":"gone","type":"old"}}`),
		want: `{"userName":"cy@example.com","emails":[{"value":"Cy@Example.com","type":"work","primary":true},{"value":"cy@old.org","type":"old","display":"gone"},{"value":"cy@home.org","type":"home"}]}`},
	{name: "remove emails[filter].sub", base: mailUser,
		body: ops(`{"op":"remove","path":"emails[type eq \"other\"].display"}`),
		want: `{"userName":"cy@example.com","emails":[{"value":"Cy@Example.com","type":"work","primary":true},{"value":"cy@old.org","type":"other"},{"value":"cy@home.org","type":"home"}]}`},
	{name: "filter ew", base: mailUser,
		body: ops(`{"op":"remove","path":"emails[value ew \".ORG\"]"}`),
		want: `{"userName":"cy@example.com","emails":[{"value":"Cy@Example.com","type":"work","primary":true}]}`},
	{name: "filter sw and co are case-insensitive on caseExact=false", base: mailUser,
		body: ops(`{"op":"remove","path":"emails[value sw \"cy@ex\" or value co \"HOME\"]"}`),
		want: `{"userName":"cy@example.com","emails":[{"value":"cy@old.org","type":"other","display":"old"}]}`},
	{name: "filter ne", base: mailUser,
		body: ops(`{"op":"remove","path":"emails[type ne \"work\"]"}`),
		want: `{"userName":"cy@example.com","emails":[{"value":"Cy@Example.com","type":"work","primary":true}]}`},
	{name: "filter pr", base: mailUser,
		body: ops(`{"op":"remove","path":"emails[display pr]"}`),
		want: `{"userName":"cy@example.com","emails":[{"value":"Cy@Example.com","type":"work","primary":true},{"value":"cy@home.org","type":"home"}]}`},
	{name: "filter not and boolean eq", base: mailUser,
		body: ops(`{"op":"remove","path":"emails[not (primary eq true)]"}`),
		want: `{"userName":"cy@example.com","emails":[{"value":"Cy@Example.com","type":"work","primary":true}]}`},
	{name: "filter gt and le on strings", base: mailUser,
		body: ops(`{"op":"remove","path":"emails[type gt \"home\" and type le \"work\"]"}`),
		want: `{"userName":"cy@example.com","emails":[{"value":"cy@home.org","type":"home"}]}`},
	{name: "added primary email demotes the old primary", base: `{"userName":"u","emails":[{"value":"a@x","primary":true}]}`,
		body: ops(`{"op":"add","path":"emails","value":[{"value":"b@x","type":"other","primary":"True"}]}`),
		want: `{"userName":"u","emails":[{"value":"a@x","primary":false},{"value":"b@x","type":"other","primary":true}]}`},
	{name: "remove whole attribute", base: `{"userName":"u","displayName":"D"}`,
		body: ops(`{"op":"remove","path":"displayName"}`),
		want: `{"userName":"u"}`},
	{name: "manager.displayName (readOnly) is dropped from a complex value", base: `{"userName":"u"}`,
		body: ops(`{"op":"add","path":"` + ent + `:manager","value":{"value":"m","displayName":"Boss"}}`),
		want: `{"userName":"u","` + ent + `":{"manager":{"value":"m"}}}`},
	{name: "missing schemas is filled in", base: `{"userName":"u"}`,
		body: `{"Operations":[{"op":"add","path":"title","value":"T"}]}`,
		want: `{"userName":"u","title":"T"}`},
	{name: "externalId is patchable", base: `{"userName":"u"}`,
		body: ops(`{"op":"add","value":{"externalId":"00u1"}}`),
		want: `{"userName":"u","externalId":"00u1"}`},

	// Errors.
	{name: "readOnly id → mutability", base: baseUser,
		body: ops(`{"op":"replace","path":"id","value":"x"}`), scimType: scimerrors.ScimTypeMutability},
	{name: "readOnly meta.created → mutability", base: baseUser,
		body: ops(`{"op":"replace","path":"meta.created","value":"2020-01-01T00:00:00Z"}`), scimType: scimerrors.ScimTypeMutability},
	{name: "readOnly groups on User → mutability", base: baseUser,
		body: ops(`{"op":"add","path":"groups","value":[{"value":"g"}]}`), scimType: scimerrors.ScimTypeMutability},
	{name: "readOnly groups in a path-less value → mutability", base: baseUser,
		body: ops(`{"op":"replace","value":{"groups":[{"value":"g"}]}}`), scimType: scimerrors.ScimTypeMutability},
	{name: "readOnly manager.displayName path → mutability", base: baseUser,
		body: ops(`{"op":"add","path":"` + ent + `:manager.displayName","value":"x"}`), scimType: scimerrors.ScimTypeMutability},
	{name: "immutable member display replace → mutability", group: true, base: baseGroup,
		body: ops(`{"op":"replace","path":"members[value eq \"u1\"].display","value":"x"}`), scimType: scimerrors.ScimTypeMutability},
	{name: "immutable member display changed by merge → mutability", group: true, base: baseGroup,
		body: ops(`{"op":"add","path":"members[value eq \"u1\"]","value":{"display":"x"}}`), scimType: scimerrors.ScimTypeMutability},
	{name: "remove userName → invalidValue", base: baseUser,
		body: ops(`{"op":"remove","path":"userName"}`), scimType: scimerrors.ScimTypeInvalidValue},
	{name: "remove group displayName → invalidValue", group: true, base: baseGroup,
		body: ops(`{"op":"remove","path":"displayName"}`), scimType: scimerrors.ScimTypeInvalidValue},
	{name: "member without value → invalidValue", group: true, base: baseGroup,
		body: ops(`{"op":"add","path":"members","value":[{"display":"nobody"}]}`), scimType: scimerrors.ScimTypeInvalidValue},
	{name: "unknown attr → invalidPath", base: baseUser,
		body: ops(`{"op":"replace","path":"shoeSize","value":"9"}`), scimType: scimerrors.ScimTypeInvalidPath},
	{name: "unknown sub-attribute → invalidPath", base: baseUser,
		body: ops(`{"op":"replace","path":"name.shoeSize","value":"9"}`), scimType: scimerrors.ScimTypeInvalidPath},
	{name: "unknown schema → invalidPath", base: baseUser,
		body: ops(`{"op":"replace","path":"urn:example:Thing:x","value":"9"}`), scimType: scimerrors.ScimTypeInvalidPath},
	{name: "remove without path → noTarget", base: baseUser,
		body: ops(`{"op":"remove"}`), scimType: scimerrors.ScimTypeNoTarget},
	{name: "replace filter matching nothing → noTarget", base: baseUser,
		body: ops(`{"op":"replace","path":"emails[type eq \"home\"]","value":{"display":"x"}}`), scimType: scimerrors.ScimTypeNoTarget},
	{name: "replace filter.sub matching nothing, not only eq → noTarget", base: baseUser,
		body: ops(`{"op":"replace","path":"emails[type sw \"ho\"].value","value":"x@y"}`), scimType: scimerrors.ScimTypeNoTarget},
	{name: "contradicting eq filter matching nothing → noTarget", base: baseUser,
		body: ops(`{"op":"replace","path":"emails[type eq \"a\" and type eq \"b\"].value","value":"x@y"}`), scimType: scimerrors.ScimTypeNoTarget},
	{name: "emails.value on a user without emails → noTarget", base: `{"userName":"u"}`,
		body: ops(`{"op":"replace","path":"emails.value","value":"x@y"}`), scimType: scimerrors.ScimTypeNoTarget},
	{name: "filter on singular attribute → invalidPath", base: baseUser,
		body: ops(`{"op":"replace","path":"name[givenName eq \"Ada\"].familyName","value":"x"}`), scimType: scimerrors.ScimTypeInvalidPath},
	{name: "wrong value type → invalidValue", base: baseUser,
		body: ops(`{"op":"replace","path":"active","value":{"x":1}}`), scimType: scimerrors.ScimTypeInvalidValue},
	{name: "unknown op → invalidValue", base: baseUser,
		body: ops(`{"op":"move","path":"displayName","value":"x"}`), scimType: scimerrors.ScimTypeInvalidValue},
	{name: "path-less value not an object → invalidValue", base: baseUser,
		body: ops(`{"op":"replace","value":"x"}`), scimType: scimerrors.ScimTypeInvalidValue},
	{name: "multiple ops atomic: second fails → doc unchanged", base: baseUser,
		body:     ops(`{"op":"replace","path":"displayName","value":"Changed"}`, `{"op":"remove","path":"emails[type eq \"work\"]"}`, `{"op":"replace","path":"id","value":"x"}`),
		scimType: scimerrors.ScimTypeMutability},
	{name: "multiple ops atomic: result invalid → doc unchanged", base: baseUser,
		body:     ops(`{"op":"replace","path":"displayName","value":"Changed"}`, `{"op":"remove","path":"userName"}`),
		scimType: scimerrors.ScimTypeInvalidValue},
}

func resourceFor(group bool) Resource {
	if group {
		return query.GroupResource()
	}
	return query.UserResource()
}

func TestApply(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := resourceFor(tc.group)
			in, before := doc(t, tc.base), doc(t, tc.base)
			ops, err := parseOps(t, tc.body, res)
			var got map[string]any
			if err == nil {
				got, err = Apply(in, ops, res)
			}
			if !reflect.DeepEqual(in, before) {
				t.Fatalf("Apply modified its input")
			}
			if tc.want == "" {
				se, ok := err.(scimerrors.ScimError)
				if !ok || se.Status != http.StatusBadRequest || se.ScimType != tc.scimType {
					t.Fatalf("err = %#v, want a 400 %s ScimError value", err, tc.scimType)
				}
				if got != nil {
					t.Fatalf("a failed Apply returned a document")
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if g, w := canonical(got), canonical(doc(t, tc.want)); !reflect.DeepEqual(g, w) {
				gj, _ := json.Marshal(g)
				wj, _ := json.Marshal(w)
				t.Fatalf("got  %s\nwant %s", gj, wj)
			}
		})
	}
}

// canonical round-trips through JSON so that numbers and nested types
// compare equal regardless of how they were built.
func canonical(m map[string]any) any {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func mustPath(t *testing.T, s string) *filter.Path {
	t.Helper()
	p, err := filter.ParsePath([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return &p
}

// TestApplyWithoutLibraryCoercion: Apply turns Entra's string booleans
// into booleans itself, whatever schema.SetAllowStringValues says.
func TestApplyWithoutLibraryCoercion(t *testing.T) {
	res := query.UserResource()
	in := map[string]any{"userName": "u", "active": true}
	got, err := Apply(in, []scimlib.PatchOperation{
		{Op: "Replace", Path: mustPath(t, "active"), Value: "FALSE"},
		{Op: "add", Path: mustPath(t, "emails"), Value: []any{map[string]any{"VALUE": "a@x", "Primary": "true"}}},
		{Op: "replace", Value: map[string]any{"name.givenName": "G"}},
	}, res)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"userName": "u", "active": false, "name": map[string]any{"givenName": "G"},
		"emails": []any{map[string]any{"value": "a@x", "primary": true}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v", got)
	}
}

// TestApplyCopiesInput: nothing in the result is shared with the input,
// also when the input was built in Go with other slice and map types.
func TestApplyCopiesInput(t *testing.T) {
	res := query.GroupResource()
	members := []map[string]any{{"value": "u1"}, {"value": "u2"}}
	in := map[string]any{"displayName": "G", "members": members}
	got, err := Apply(in, []scimlib.PatchOperation{
		{Op: "add", Path: mustPath(t, `members[value eq "u1"]`), Value: []any{map[string]any{"display": "one"}}},
	}, res)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := members[0]["display"]; ok {
		t.Fatal("Apply modified a member of its input")
	}
	want := map[string]any{"displayName": "G", "members": []any{map[string]any{"value": "u1", "display": "one"}, map[string]any{"value": "u2"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v", got)
	}
	if out, err := Apply(nil, nil, res); err == nil || out != nil {
		t.Fatalf("an empty group is not valid: %v %v", out, err)
	}
	if _, err := Apply(map[string]any{"displayName": "G"}, []scimlib.PatchOperation{{Op: "add", Path: mustPath(t, "displayName")}}, res); err == nil {
		t.Fatal("add without a value must fail")
	}
}

func TestNormalizeRequest(t *testing.T) {
	res := query.UserResource()
	for _, tc := range []struct{ name, in, want string }{
		{"nothing to do", ops(`{"op":"Replace","path":"active","value":"False","extra":1.50}`),
			ops(`{"op":"Replace","path":"active","value":"False","extra":1.50}`)},
		{"missing schemas", `{"Operations":[{"op":"add","path":"title","value":"T"}]}`,
			ops(`{"op":"add","path":"title","value":"T"}`)},
		{"null schemas", `{"schemas":null,"Operations":[{"op":"add","path":"title","value":"T"}]}`,
			ops(`{"op":"add","path":"title","value":"T"}`)},
		{"wrong schemas left to the library", `{"schemas":["x"],"Operations":[]}`, `{"schemas":["x"],"Operations":[]}`},
		{"extension object flattened", ops(`{"op":"add","value":{"` + ent + `":{"department":"X","manager":"m"},"active":true}}`),
			ops(`{"op":"add","value":{"` + ent + `:department":"X","` + ent + `:manager":{"value":"m"},"active":true}}`)},
		{"extension URN path", ops(`{"op":"add","path":"` + ent + `","value":{"department":"X"}}`),
			ops(`{"op":"add","value":{"` + ent + `:department":"X"}}`)},
		{"manager at path", ops(`{"op":"Replace","path":"` + ent + `:manager","value":"m"}`),
			ops(`{"op":"Replace","path":"` + ent + `:manager","value":{"value":"m"}}`)},
		{"empty manager at path", ops(`{"op":"Replace","path":"` + ent + `:manager","value":""}`),
			ops(`{"op":"remove","path":"` + ent + `:manager"}`)},
		{"empty manager path-less", ops(`{"op":"Replace","value":{"`+ent+`:manager":""}}`, `{"op":"add","path":"title","value":"T"}`),
			ops(`{"op":"Replace","value":{}}`, `{"op":"remove","path":"`+ent+`:manager"}`, `{"op":"add","path":"title","value":"T"}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := NormalizeRequest([]byte(tc.in), res)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := canonical(doc(t, string(out))), canonical(doc(t, tc.want)); !reflect.DeepEqual(g, w) {
				t.Fatalf("got  %s\nwant %s", out, tc.want)
			}
		})
	}
	if out, err := NormalizeRequest([]byte(ops(`{"op":"add","path":"x","value":12345678901234567890}`)), res); err != nil || !strings.Contains(string(out), "12345678901234567890") {
		t.Fatalf("numbers must stay exact: %s %v", out, err)
	}
	if out, err := NormalizeRequest([]byte(`[1]`), res); err != nil || string(out) != `[1]` {
		t.Fatalf("a non-object body goes to the library as is: %s %v", out, err)
	}
	for _, bad := range []string{`{"Operations":`, `{} {}`} {
		if _, err := NormalizeRequest([]byte(bad), res); err == nil {
			t.Fatalf("%s must be an error", bad)
		} else if se, ok := err.(scimerrors.ScimError); !ok || se.Status != 400 || se.ScimType != scimerrors.ScimTypeInvalidSyntax {
			t.Fatalf("%s: %#v", bad, err)
		}
	}
}

func TestNormalizeResource(t *testing.T) {
	res := query.UserResource()
	in := `{"userName":"u","` + ent + `":{"manager":"m-1","department":"D"}}`
	out, err := NormalizeResource([]byte(in), res)
	if err != nil {
		t.Fatal(err)
	}
	if got := doc(t, string(out))[ent]; !reflect.DeepEqual(got, map[string]any{"department": "D", "manager": map[string]any{"value": "m-1"}}) {
		t.Fatalf("extension = %#v", got)
	}
	out, err = NormalizeResource([]byte(`{"userName":"u","roles":[],"`+ent+`":{"manager":""}}`), res)
	if err != nil || !reflect.DeepEqual(doc(t, string(out)), map[string]any{"userName": "u", "roles": []any{}, ent: map[string]any{}}) {
		t.Fatalf("an empty manager is no manager: %s %v", out, err)
	}
	plain := `{"userName":"u","groups":[],"password":"p","meta":{"resourceType":"User"}}`
	if out, _ := NormalizeResource([]byte(plain), res); string(out) != plain {
		t.Fatalf("a body without quirks must pass through untouched: %s", out)
	}
	if _, err := NormalizeResource([]byte(`{"manager": `), res); err == nil {
		t.Fatal("broken JSON must be an error")
	}
}

// FuzzApply feeds arbitrary PATCH bodies through the same path as the
// server: NormalizeRequest, the library's validation (or the fast path
// ParseSimple, which must agree with it), Apply. It fails on a panic or
// on any error that is not a 4xx SCIM error value.
//
//	go test -fuzz=FuzzApply ./gateway/scim/patch/
func FuzzApply(f *testing.F) {
	for _, tc := range cases {
		f.Add(tc.body, !tc.group, uint8(0))
	}
	for _, s := range []string{
		`{"Operations":[{"op":"remove"}]}`, `[]`, `{"schemas":5}`, `{}`, `{"schemas":null,"Operations":null}`,
		ops(`{"op":"add","path":"emails[type eq \"x\" and primary eq true]","value":{"value":"v"}}`),
		ops(`{"op":"replace","path":"` + ent + `","value":{"manager":""}}`),
	} {
		f.Add(s, true, uint8(1))
		f.Add(s, false, uint8(2))
	}
	bases := map[bool][]string{
		true:  {baseUser, `{"userName":"u"}`, mailUser, homeUser},
		false: {baseGroup, `{"displayName":"g"}`},
	}
	f.Fuzz(func(t *testing.T, body string, isUser bool, which uint8) {
		res := resourceFor(!isUser)
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
			b := bases[isUser]
			in := doc(t, b[int(which)%len(b)])
			var out map[string]any
			out, err = Apply(in, ops, res)
			if err == nil {
				if _, jerr := json.Marshal(out); jerr != nil {
					t.Fatalf("result cannot be encoded: %v", jerr)
				}
			}
		}
		if err == nil {
			return
		}
		se, ok := err.(scimerrors.ScimError)
		if !ok || se.Status < 400 || se.Status >= 500 {
			t.Fatalf("error is not a 4xx SCIM error value: %#v", err)
		}
	})
}

// TestParseSimpleAgreesWithLibrary: for every table body the fast parser
// accepts, it produces exactly the operations the library produces; and
// it leaves what it must not judge to the library.
func TestParseSimpleAgreesWithLibrary(t *testing.T) {
	accepted := 0
	for _, tc := range cases {
		res := resourceFor(tc.group)
		norm, err := NormalizeRequest([]byte(tc.body), res)
		if err != nil {
			continue
		}
		fast, ok := ParseSimple(norm, res)
		if !ok {
			continue
		}
		accepted++
		lib, err := parseOps(t, tc.body, res)
		if err != nil {
			t.Errorf("%s: fast path accepted what the library rejects: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(fast, lib) {
			fj, _ := json.Marshal(fast)
			lj, _ := json.Marshal(lib)
			t.Errorf("%s:\nfast %s\nlib  %s", tc.name, fj, lj)
		}
	}
	if accepted < 20 {
		t.Errorf("the fast path took only %d table bodies", accepted)
	}
	user := query.UserResource()
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

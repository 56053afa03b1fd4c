package conformance

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

const enterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// entraUser is what Entra's provisioning service posts: the enterprise
// extension with manager as a bare id string, name.formatted, roles, meta.
func entraUser(userName, externalID, managerID string) string {
	return `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "` + enterpriseURN + `"],
  "externalId": ` + jsonString(externalID) + `,
  "userName": ` + jsonString(userName) + `,
  "active": true,
  "addresses": [],
  "displayName": "Test User",
  "emails": [{"primary": true, "type": "work", "value": ` + jsonString(userName) + `}],
  "meta": {"resourceType": "User"},
  "name": {"formatted": "Test User", "familyName": "User", "givenName": "Test"},
  "roles": [],
  "` + enterpriseURN + `": {"department": "Finance", "employeeNumber": "701984", "manager": ` + jsonString(managerID) + `}
}`
}

const patchOp = `"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]`

// TestEntraSequence replays Microsoft Entra ID's provisioning service in
// its default dialect (capitalized ops, string booleans) and with the
// aadOptscim062020 flag (lower-case ops, real booleans, dotted and
// schema-URN keys in path-less replaces).
func TestEntraSequence(t *testing.T) {
	g := startGateway(t, "")

	// Keep-alive probes ask for random users and groups: empty lists.
	r := g.call("GET", "/Users?"+filterQuery(`userName eq "7f1ab6d2-probe@contoso.test"`), "").must(t, 200)
	if r.num(t, "totalResults") != 0 {
		t.Fatalf("probe: %s", r.raw)
	}
	g.call("GET", "/Groups?"+filterQuery(`displayName eq "b8c1a0d2-probe"`)+"&excludedAttributes=members", "").must(t, 200)

	mgr := g.call("POST", "/Users", entraUser("manager@contoso.test", "mgr-ext", "")).must(t, 201).str("id")
	n0 := g.outboxLen()
	r = g.call("POST", "/Users", entraUser("Test_User_1@contoso.test", "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef", mgr)).must(t, 201)
	id := r.str("id")
	if ext(r, "manager.value") != mgr || ext(r, "department") != "Finance" {
		t.Fatalf("enterprise extension with bare-string manager: %s", r.raw)
	}
	if r.str("name.formatted") != "Test User" {
		t.Errorf("name.formatted lost: %s", r.raw)
	}

	// Queries by externalId (quoted and unquoted), by work email, and a
	// double URL-encoded userName filter.
	for _, q := range []string{
		filterQuery(`externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`),
		filterQuery(`externalId eq 0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef`),
		filterQuery(`emails[type eq "work"].value eq "test_user_1@contoso.test"`),
		filterQuery(`userName eq "Test_User_1@contoso.test"`),
		"filter=" + url.QueryEscape(url.QueryEscape(`userName eq "Test_User_1@contoso.test"`)),
	} {
		r = g.call("GET", "/Users?"+q, "").must(t, 200)
		if r.num(t, "totalResults") != 1 || r.str("Resources.0.id") != id {
			t.Errorf("query %s: %s", q, r.raw)
		}
	}

	// Default dialect: capitalized ops, a filtered path on an email that
	// does not exist yet (create it), Add for changed values.
	r = g.call("PATCH", "/Users/"+id, `{`+patchOp+`,"Operations":[
		{"op":"Replace","path":"emails[type eq \"home\"].value","value":"home@contoso.test"},
		{"op":"Add","path":"displayName","value":"Test User One"},
		{"op":"Replace","path":"name.givenName","value":"Testy"}]}`).must(t, 200)
	if r.str("displayName") != "Test User One" || r.str("name.givenName") != "Testy" {
		t.Fatalf("capitalized ops: %s", r.raw)
	}
	if !hasEmail(r, "home", "home@contoso.test") || !hasEmail(r, "work", "Test_User_1@contoso.test") {
		t.Fatalf("filtered email path must create the home email and keep the work one: %s", r.raw)
	}
	// The new email is indexed.
	r = g.call("GET", "/Users?"+filterQuery(`emails.value eq "HOME@contoso.test"`), "").must(t, 200)
	if r.num(t, "totalResults") != 1 {
		t.Errorf("email index after patch: %s", r.raw)
	}

	// userName and active changed in one request, with a string boolean.
	n1 := g.outboxLen()
	r = g.call("PATCH", "/Users/"+id, `{`+patchOp+`,"Operations":[
		{"op":"Replace","path":"userName","value":"renamed@contoso.test"},
		{"op":"Replace","path":"active","value":"False"}]}`).must(t, 200)
	if r.str("userName") != "renamed@contoso.test" || r.get("active") != false {
		t.Fatalf("userName+active in one request: %s", r.raw)
	}
	if ops := g.opsSince(n1); !slices.Equal(ops, []string{"user.updated", "user.deactivated"}) {
		t.Fatalf("outbox = %v", ops)
	}
	if r := g.call("GET", "/Users?"+filterQuery(`userName eq "test_user_1@contoso.test"`), "").must(t, 200); r.num(t, "totalResults") != 0 {
		t.Errorf("old userName still indexed: %s", r.raw)
	}
	g.call("PATCH", "/Users/"+id, `{`+patchOp+`,"Operations":[{"op":"Replace","path":"active","value":"True"}]}`).must(t, 200)

	// aadOptscim062020 dialect: path-less replace with dotted keys and
	// schema-URN keys, real booleans.
	r = g.call("PATCH", "/Users/"+id, `{`+patchOp+`,"Operations":[{"op":"replace","value":{
		"name.familyName":"Userson",
		"`+enterpriseURN+`:employeeNumber":"42",
		"`+enterpriseURN+`:manager":"`+mgr+`",
		"active":false}}]}`).must(t, 200)
	if r.str("name.familyName") != "Userson" || r.str("name.givenName") != "Testy" || ext(r, "employeeNumber") != "42" ||
		ext(r, "department") != "Finance" || r.get("active") != false {
		t.Fatalf("flag dialect path-less replace: %s", r.raw)
	}
	g.call("PATCH", "/Users/"+id, `{`+patchOp+`,"Operations":[{"op":"replace","path":"active","value":true}]}`).must(t, 200)

	// Groups: created empty; looked up by displayName without members.
	r = g.call("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"externalId":"grp-ext-1","displayName":"Finance","members":[]}`).must(t, 201)
	gid := r.str("id")
	r = g.call("GET", "/Groups?"+filterQuery(`displayName eq "Finance"`)+"&excludedAttributes=members", "").must(t, 200)
	if r.num(t, "totalResults") != 1 || r.str("Resources.0.id") != gid || r.get("Resources.0.members") != nil {
		t.Fatalf("group lookup with excludedAttributes=members: %s", r.raw)
	}
	// Duplicate displayName → 409.
	g.call("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"finance"}`).scimError(t, 409, "uniqueness")
	// Replace displayName → 204.
	g.call("PATCH", "/Groups/"+gid, `{`+patchOp+`,"Operations":[{"op":"Replace","path":"displayName","value":"Finance EMEA"}]}`).must(t, 204)
	// Add members with a value array; then Remove with a value array
	// removes only those members.
	g.call("PATCH", "/Groups/"+gid, `{`+patchOp+`,"Operations":[{"op":"Add","path":"members","value":[{"value":"`+id+`"},{"value":"`+mgr+`"}]}]}`).must(t, 204)
	g.call("PATCH", "/Groups/"+gid, `{`+patchOp+`,"Operations":[{"op":"Remove","path":"members","value":[{"value":"`+mgr+`"}]}]}`).must(t, 204)
	r = g.call("GET", "/Groups/"+gid, "").must(t, 200)
	if r.str("displayName") != "Finance EMEA" || memberIDs(r) != id {
		t.Fatalf("after Entra member Add/Remove: %s", r.raw)
	}
	// Flag dialect removal form.
	g.call("PATCH", "/Groups/"+gid, `{`+patchOp+`,"Operations":[{"op":"add","path":"members","value":[{"value":"`+mgr+`"}]}]}`).must(t, 204)
	g.call("PATCH", "/Groups/"+gid, `{`+patchOp+`,"Operations":[{"op":"remove","path":"members[value eq \"`+mgr+`\"]"}]}`).must(t, 204)
	if r = g.call("GET", "/Groups/"+gid, "").must(t, 200); memberIDs(r) != id {
		t.Fatalf("after members[value eq] removal: %s", r.raw)
	}
	r = g.call("GET", "/Groups?"+filterQuery(`externalId eq "grp-ext-1"`), "").must(t, 200)
	if r.num(t, "totalResults") != 1 {
		t.Errorf("group by externalId: %s", r.raw)
	}

	// Hard delete (30 days after soft delete in Entra): 204, then 404, and
	// the membership edge is gone with the user.
	n2 := g.outboxLen()
	g.call("DELETE", "/Users/"+id, "").must(t, 204)
	g.call("GET", "/Users/"+id, "").scimError(t, 404, "")
	if r = g.call("GET", "/Groups/"+gid, "").must(t, 200); memberIDs(r) != "" {
		t.Fatalf("deleted user still a member: %s", r.raw)
	}
	if ops := g.opsSince(n2); !slices.Equal(ops, []string{"user.deleted", "group.members_removed"}) {
		t.Fatalf("delete outbox = %v", ops)
	}
	g.call("DELETE", "/Users/"+id, "").scimError(t, 404, "")
	_ = n0
}

func hasEmail(r response, typ, value string) bool {
	list, _ := r.get("emails").([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		if t, _ := m["type"].(string); t == typ {
			if v, _ := m["value"].(string); strings.EqualFold(v, value) {
				return true
			}
		}
	}
	return false
}

// ext reads a dotted path inside the enterprise extension (whose URN key
// itself contains dots).
func ext(r response, path string) string {
	m, _ := r.body[enterpriseURN].(map[string]any)
	return response{body: m}.str(path)
}

package conformance

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestConditionalGet: If-None-Match with the current ETag answers 304 with
// no body (RFC 7644 §3.14); an old or foreign tag gets the resource.
func TestConditionalGet(t *testing.T) {
	g := startGateway(t, "")
	uid := g.call("POST", "/Users", oktaUser("ada@example.com", "Ada", "Lovelace")).must(t, 201).str("id")
	gid := g.call("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Eng"}`).must(t, 201).str("id")
	for _, path := range []string{"/Users/" + uid, "/Groups/" + gid} {
		first := g.call("GET", path, "").must(t, 200)
		tag := first.header.Get("ETag")
		if tag == "" || tag != first.str("meta.version") {
			t.Fatalf("%s: ETag %q, meta.version %q", path, tag, first.str("meta.version"))
		}
		for _, inm := range []string{tag, strings.TrimPrefix(tag, "W/"), `"nope", ` + tag, "*"} {
			r := g.call("GET", path, "", "If-None-Match", inm).must(t, 304)
			if len(r.raw) != 0 || r.header.Get("ETag") != tag {
				t.Errorf("%s If-None-Match %s: body %q, ETag %q", path, inm, r.raw, r.header.Get("ETag"))
			}
		}
		g.call("GET", path, "", "If-None-Match", `W/"999"`).must(t, 200)
	}
	old := g.call("GET", "/Users/"+uid, "").header.Get("ETag")
	g.call("PATCH", "/Users/"+uid, `{`+patchOp+`,"Operations":[{"op":"replace","path":"displayName","value":"Countess"}]}`).must(t, 200)
	if r := g.call("GET", "/Users/"+uid, "", "If-None-Match", old).must(t, 200); r.str("displayName") != "Countess" || r.header.Get("ETag") == old {
		t.Fatalf("a changed resource must be sent again with its new tag: %s", r.raw)
	}
	g.call("GET", "/Users/missing", "", "If-None-Match", "*").scimError(t, 404, "")
	spc := g.call("GET", "/ServiceProviderConfig", "").must(t, 200)
	if spc.get("etag.supported") != true {
		t.Fatalf("ETag support must be advertised: %s", spc.raw)
	}
}

// TestMethodsPerEndpoint: only GET is served on the discovery endpoints,
// each other method gets 405 with Allow and a SCIM error; an unknown
// method anywhere is 405, an unknown path 404; nothing answers 200 with a
// second configuration.
func TestMethodsPerEndpoint(t *testing.T) {
	g := startGateway(t, "")
	uid := g.call("POST", "/Users", oktaUser("ada@example.com", "Ada", "Lovelace")).must(t, 201).str("id")
	spc := g.call("GET", "/ServiceProviderConfig", "").must(t, 200).raw
	cases := []struct {
		method, path string
		allow        string
	}{
		{"POST", "/ServiceProviderConfig", "GET, HEAD"},
		{"PUT", "/ServiceProviderConfig", "GET, HEAD"},
		{"PATCH", "/ServiceProviderConfig", "GET, HEAD"},
		{"DELETE", "/ServiceProviderConfig", "GET, HEAD"},
		{"POST", "/ResourceTypes", "GET, HEAD"},
		{"DELETE", "/ResourceTypes/User", "GET, HEAD"},
		{"PUT", "/Schemas", "GET, HEAD"},
		{"PATCH", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", "GET, HEAD"},
		{"PUT", "/Users", "GET, HEAD, POST"},
		{"DELETE", "/Groups", "GET, HEAD, POST"},
		{"POST", "/Users/" + uid, "GET, HEAD, PUT, PATCH, DELETE"},
		{"GET", "/Users/.search", "POST"},
		{"GET", "/.search", "POST"},
		{"FROB", "/Users", "GET, HEAD, POST"},
		{"PROPFIND", "/ServiceProviderConfig", "GET, HEAD"},
		{"BREW", "/NoSuchEndpoint", "GET, HEAD, POST, PUT, PATCH, DELETE"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			body := ""
			if tc.method == "POST" || tc.method == "PUT" || tc.method == "PATCH" {
				body = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x"}`
			}
			r := g.call(tc.method, tc.path, body).scimError(t, 405, "")
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
		})
	}
	g.call("GET", "/NoSuchEndpoint", "").scimError(t, 404, "")
	// /scim/v2Users is not /scim/v2/Users.
	base := g.base
	g.base = strings.TrimSuffix(g.base, "/v2")
	g.call("GET", "/v2Users", "").scimError(t, 404, "")
	g.base = base
	// HEAD answers as GET does, without the body.
	for _, path := range []string{"/Users/" + uid, "/Users", "/ServiceProviderConfig", "/Schemas"} {
		get := g.call("GET", path, "").must(t, 200)
		head := g.call("HEAD", path, "").must(t, 200)
		if len(head.raw) != 0 || head.header.Get("ETag") != get.header.Get("ETag") {
			t.Errorf("HEAD %s: body %q, ETag %q (GET's %q)", path, head.raw, head.header.Get("ETag"), get.header.Get("ETag"))
		}
	}
	if again := g.call("GET", "/ServiceProviderConfig", "").must(t, 200).raw; string(again) != string(spc) {
		t.Fatalf("configuration changed:\n%s\n%s", spc, again)
	}
	if n := g.outboxLen(); n != 1 {
		t.Fatalf("refused requests wrote %d events", n-1)
	}
}

// TestSearchEndpoints: POST .search (RFC 7644 §3.4.3) answers what the
// equivalent GET answers: filter, paging, attributes, excludedAttributes;
// /.search spans users and groups.
func TestSearchEndpoints(t *testing.T) {
	g := startGateway(t, "")
	var uids []string
	for i := range 5 {
		uids = append(uids, g.call("POST", "/Users", oktaUser(fmt.Sprintf("user%d@example.com", i), "U", fmt.Sprint(i))).must(t, 201).str("id"))
	}
	g.call("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Eng","members":[{"value":"`+uids[0]+`"}]}`).must(t, 201)
	g.call("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Ops"}`).must(t, 201)
	search := func(path, body string) response {
		return g.call("POST", path, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],`+body+`}`)
	}
	same := func(viaGet, viaSearch response) {
		t.Helper()
		if string(viaGet.raw) != string(viaSearch.raw) {
			t.Fatalf("GET and .search differ:\nGET    %s\nsearch %s", viaGet.raw, viaSearch.raw)
		}
	}
	same(g.call("GET", "/Users?"+filterQuery(`userName eq "user3@example.com"`), "").must(t, 200),
		search("/Users/.search", `"filter":"userName eq \"user3@example.com\""`).must(t, 200))
	same(g.call("GET", "/Users?startIndex=2&count=2&attributes=userName", "").must(t, 200),
		search("/Users/.search", `"startIndex":2,"count":2,"attributes":["userName"]`).must(t, 200))
	same(g.call("GET", "/Groups?excludedAttributes=members&"+filterQuery(`displayName sw "E"`), "").must(t, 200),
		search("/Groups/.search", `"excludedAttributes":["members"],"filter":"displayName sw \"E\""`).must(t, 200))
	r := search("/Users/.search", `"filter":"userName eq \"user1@example.com\"","attributes":["userName"]`).must(t, 200)
	if r.num(t, "totalResults") != 1 || r.str("Resources.0.userName") != "user1@example.com" || r.get("Resources.0.name") != nil {
		t.Fatalf("search with projection: %s", r.raw)
	}

	all := search("/.search", `"count":100`).must(t, 200)
	if all.num(t, "totalResults") != 7 || len(all.get("Resources").([]any)) != 7 {
		t.Fatalf("root search lists every user and group: %s", all.raw)
	}
	var types []string
	for i := range 7 {
		types = append(types, all.str(fmt.Sprintf("Resources.%d.meta.resourceType", i)))
	}
	if !slices.Equal(types, []string{"User", "User", "User", "User", "User", "Group", "Group"}) {
		t.Fatalf("root search order: %v", types)
	}
	page := search("/.search", `"startIndex":5,"count":2`).must(t, 200)
	if page.num(t, "totalResults") != 7 || page.num(t, "itemsPerPage") != 2 || page.str("Resources.0.meta.resourceType") != "User" || page.str("Resources.1.displayName") != "Eng" {
		t.Fatalf("a page across both types: %s", page.raw)
	}
	byName := search("/.search", `"filter":"displayName eq \"Ops\""`).must(t, 200)
	if byName.num(t, "totalResults") != 1 || byName.str("Resources.0.displayName") != "Ops" {
		t.Fatalf("root search filter on an attribute both types have: %s", byName.raw)
	}
	byUser := search("/.search", `"filter":"userName eq \"user2@example.com\""`).must(t, 200)
	if byUser.num(t, "totalResults") != 1 {
		t.Fatalf("root search filter on a user attribute: %s", byUser.raw)
	}

	search("/.search", `"filter":"shoeSize gt 3"`).scimError(t, 400, "invalidFilter")
	search("/Users/.search", `"filter":"userName eq"`).scimError(t, 400, "invalidFilter")
	search("/Users/.search", `"startIndex":"two"`).scimError(t, 400, "invalidSyntax")
	search("/Users/.search", `"filtre":"userName pr"`).scimError(t, 400, "invalidSyntax")
	g.call("POST", "/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}`).scimError(t, 400, "invalidValue")
	g.call("POST", "/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]} {}`).scimError(t, 400, "invalidSyntax")
	g.callAuth("", "POST", "/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}`).scimError(t, 401, "")
}

// TestSchemasAreTruthful: /Schemas describes what the server does: group
// members are users only, a user's groups are Groups, and every reference
// attribute (meta.location included) names its referenceTypes.
func TestSchemasAreTruthful(t *testing.T) {
	g := startGateway(t, "")
	r := g.call("GET", "/Schemas", "").must(t, 200)
	found := map[string]map[string]any{}
	var walk func(prefix string, attrs []any)
	walk = func(prefix string, attrs []any) {
		for _, a := range attrs {
			m := a.(map[string]any)
			name := prefix + m["name"].(string)
			found[name] = m
			if m["type"] == "reference" {
				if refs, _ := m["referenceTypes"].([]any); len(refs) == 0 {
					t.Errorf("reference attribute %s has no referenceTypes", name)
				}
			}
			if sub, ok := m["subAttributes"].([]any); ok {
				walk(name+".", sub)
			}
		}
	}
	for _, res := range r.get("Resources").([]any) {
		m := res.(map[string]any)
		walk(m["id"].(string)+":", m["attributes"].([]any))
	}
	const group, user = "urn:ietf:params:scim:schemas:core:2.0:Group:", "urn:ietf:params:scim:schemas:core:2.0:User:"
	checks := map[string]string{
		group + "members.$ref":  "[User]",
		user + "groups.$ref":    "[Group]",
		group + "meta.location": "[uri]",
		user + "meta.location":  "[uri]",
		group + "members.type":  "[User]", // canonicalValues
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.$ref": "[User]",
	}
	for name, want := range checks {
		a := found[name]
		if a == nil {
			t.Errorf("%s missing from /Schemas", name)
			continue
		}
		got := fmt.Sprint(a["referenceTypes"])
		if strings.HasSuffix(name, ".type") {
			got = fmt.Sprint(a["canonicalValues"])
		}
		if got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
	g.call("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Nested","members":[{"value":"x","type":"Group"}]}`).scimError(t, 400, "invalidValue")
}

// TestExtensionSchemasKeyRefusedAlike: POST and PATCH refuse a "schemas"
// key inside an extension object with the same sentence, naming the key.
func TestExtensionSchemasKeyRefusedAlike(t *testing.T) {
	g := startGateway(t, "")
	uid := g.call("POST", "/Users", oktaUser("ada@example.com", "Ada", "Lovelace")).must(t, 201).str("id")
	const ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	post := g.call("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"b@example.com","`+ext+`":{"schemas":["`+ext+`"],"department":"R&D"}}`).scimError(t, 400, "invalidValue")
	patch := g.call("PATCH", "/Users/"+uid, `{`+patchOp+`,"Operations":[{"op":"add","value":{"`+ext+`":{"schemas":["`+ext+`"],"department":"R&D"}}}]}`).scimError(t, 400, "invalidValue")
	want := `The ` + ext + ` object has an unexpected key "schemas"`
	for _, r := range []response{post, patch} {
		if !strings.Contains(r.str("detail"), want) {
			t.Errorf("detail %q lacks %q", r.str("detail"), want)
		}
	}
}

// TestUnicodeCaseInsensitiveNames: userName and group displayName are
// compared with full Unicode case folding on NFC text, for uniqueness and
// for filters alike.
func TestUnicodeCaseInsensitiveNames(t *testing.T) {
	g := startGateway(t, "")
	id := g.call("POST", "/Users", oktaUser("straße@example.com", "S", "T")).must(t, 201).str("id")
	for _, dup := range []string{"STRASSE@example.com", "strasse@EXAMPLE.COM"} {
		g.call("POST", "/Users", oktaUser(dup, "S", "T")).scimError(t, 409, "uniqueness")
	}
	g.call("POST", "/Users", oktaUser("caf\u00e9@example.com", "C", "F")).must(t, 201)
	g.call("POST", "/Users", oktaUser("cafe\u0301@example.com", "C", "F")).scimError(t, 409, "uniqueness")
	g.call("POST", "/Users", oktaUser("ﬀion@example.com", "F", "F")).must(t, 201)
	g.call("POST", "/Users", oktaUser("ffion@example.com", "F", "F")).scimError(t, 409, "uniqueness")
	for _, f := range []string{`userName eq "STRASSE@EXAMPLE.COM"`, `userName sw "STRASS"`, `userName co "ASSE@"`} {
		r := g.call("GET", "/Users?"+filterQuery(f), "").must(t, 200)
		if r.num(t, "totalResults") != 1 || r.str("Resources.0.id") != id {
			t.Errorf("filter %s: %s", f, r.raw)
		}
	}
	g.call("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Straßenbau"}`).must(t, 201)
	g.call("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"STRASSENBAU"}`).scimError(t, 409, "uniqueness")
}

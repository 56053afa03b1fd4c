package conformance

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// oktaUser is the body Okta's OIN connector posts on assignment: note the
// random password (sent even with password sync off), the empty groups and
// Okta's own user id as externalId.
func oktaUser(userName, given, family string) string {
	return `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
  "userName": ` + jsonString(userName) + `,
  "name": {"givenName": ` + jsonString(given) + `, "familyName": ` + jsonString(family) + `},
  "emails": [{"primary": true, "value": ` + jsonString(userName) + `, "type": "work"}],
  "displayName": ` + jsonString(given+" "+family) + `,
  "locale": "en-US",
  "externalId": "00ujl29u0le5T6Aj10h7",
  "groups": [],
  "password": "1mz050nq",
  "active": true
}`
}

func filterQuery(f string) string { return "filter=" + url.QueryEscape(f) }

// TestOktaSequence replays what Okta's SCIM 2.0 connector sends, in order,
// from "Test Connector Configuration" through deactivation and group push.
func TestOktaSequence(t *testing.T) {
	g := startGateway(t, "")

	// Test connection on an empty directory: a valid empty ListResponse
	// with integer numbers.
	r := g.call("GET", "/Users?startIndex=1&count=2", "").must(t, 200)
	if r.num(t, "totalResults") != 0 || r.num(t, "startIndex") != 1 {
		t.Fatalf("empty list: %s", r.raw)
	}
	if res, ok := r.get("Resources").([]any); !ok || len(res) != 0 {
		t.Fatalf("empty list Resources = %#v, want []", r.get("Resources"))
	}
	if got := r.header.Get("Content-Type"); got != "application/scim+json" {
		t.Errorf("Content-Type = %q", got)
	}

	// Create on assignment: lookup first (no match is 200 + empty list).
	r = g.call("GET", "/Users?"+filterQuery(`userName eq "ada.lovelace@example.com"`)+"&startIndex=1&count=100", "").must(t, 200)
	if r.num(t, "totalResults") != 0 {
		t.Fatalf("lookup before create found something: %s", r.raw)
	}
	n0 := g.outboxLen()
	r = g.call("POST", "/Users", oktaUser("ada.lovelace@example.com", "Ada", "Lovelace")).must(t, 201)
	id := r.str("id")
	if id == "" {
		t.Fatalf("201 without id: %s", r.raw)
	}
	if strings.Contains(string(r.raw), "1mz050nq") || r.get("password") != nil {
		t.Fatalf("password echoed: %s", r.raw)
	}
	wantLoc := "https://app.example.test/gatehouse/scim/v2/Users/" + id
	if r.str("meta.location") != wantLoc || r.header.Get("Location") != wantLoc {
		t.Errorf("location: meta=%q header=%q, want %q", r.str("meta.location"), r.header.Get("Location"), wantLoc)
	}
	if r.str("meta.resourceType") != "User" || r.str("meta.created") == "" || r.str("meta.lastModified") == "" {
		t.Errorf("meta incomplete: %v", r.get("meta"))
	}
	if r.header.Get("ETag") == "" || r.header.Get("ETag") != r.str("meta.version") {
		t.Errorf("ETag %q vs meta.version %q", r.header.Get("ETag"), r.str("meta.version"))
	}
	if r.str("externalId") != "00ujl29u0le5T6Aj10h7" || r.get("active") != true || r.str("name.givenName") != "Ada" {
		t.Errorf("created user body: %s", r.raw)
	}
	if ops := g.opsSince(n0); !slices.Equal(ops, []string{"user.created"}) {
		t.Fatalf("outbox after create = %v", ops)
	}
	ev := g.events()[n0]
	if ev.User == nil || ev.User.ID != id || ev.User.UserName != "ada.lovelace@example.com" || ev.User.Version != 1 || ev.Source != "scim" || ev.Seq == 0 || ev.ID == "" {
		t.Errorf("user.created event = %+v", ev)
	}

	// Okta's SPEC test: first page must carry the attributes it checks.
	r = g.call("GET", "/Users?count=1&startIndex=1", "").must(t, 200)
	if r.num(t, "totalResults") != 1 || r.num(t, "itemsPerPage") != 1 {
		t.Fatalf("list: %s", r.raw)
	}
	for _, p := range []string{"Resources.0.id", "Resources.0.userName", "Resources.0.name.givenName", "Resources.0.name.familyName", "Resources.0.emails.0.value"} {
		if r.str(p) == "" {
			t.Errorf("list is missing %s: %s", p, r.raw)
		}
	}
	if r.get("Resources.0.active") != true {
		t.Errorf("list Resources.0.active = %v", r.get("Resources.0.active"))
	}

	// userName is case-insensitive: an ALL-CAPS filter finds the user.
	r = g.call("GET", "/Users?"+filterQuery(`userName eq "ADA.LOVELACE@EXAMPLE.COM"`)+"&startIndex=1&count=100", "").must(t, 200)
	if r.num(t, "totalResults") != 1 || r.str("Resources.0.id") != id {
		t.Fatalf("ALL-CAPS filter: %s", r.raw)
	}

	// Duplicate userName, any case → 409 uniqueness, nothing recorded.
	n1 := g.outboxLen()
	g.call("POST", "/Users", oktaUser("Ada.Lovelace@Example.com", "Ada", "L")).scimError(t, 409, "uniqueness")
	if g.outboxLen() != n1 {
		t.Fatalf("duplicate create recorded events")
	}

	// Profile update by PUT, with what Okta copied from its last GET
	// (id, meta, a password).
	got := g.call("GET", "/Users/"+id, "").must(t, 200)
	put := strings.Replace(oktaUser("ada.lovelace@example.com", "Augusta Ada", "King"), `"schemas"`, `"id": "`+id+`", "meta": {"resourceType":"User"}, "schemas"`, 1)
	r = g.call("PUT", "/Users/"+id, put).must(t, 200)
	if r.str("name.givenName") != "Augusta Ada" || r.str("name.familyName") != "King" || r.get("password") != nil {
		t.Fatalf("PUT result: %s", r.raw)
	}
	if r.str("meta.version") == got.str("meta.version") {
		t.Errorf("version did not change on PUT")
	}

	// Deactivate: path-less replace merges {active:false}; nothing else changes.
	n2 := g.outboxLen()
	r = g.call("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`).must(t, 200)
	if r.get("active") != false || r.str("userName") != "ada.lovelace@example.com" || r.str("name.givenName") != "Augusta Ada" || r.str("emails.0.value") == "" {
		t.Fatalf("deactivate must merge, not replace: %s", r.raw)
	}
	if ops := g.opsSince(n2); !slices.Equal(ops, []string{"user.deactivated"}) {
		t.Fatalf("outbox after deactivate = %v", ops)
	}

	// Okta never deletes: the deactivated user stays readable and findable,
	// so re-assignment reactivates instead of creating a duplicate.
	r = g.call("GET", "/Users/"+id, "").must(t, 200)
	if r.get("active") != false {
		t.Fatalf("deactivated user reads active=%v", r.get("active"))
	}
	r = g.call("GET", "/Users?"+filterQuery(`userName eq "ada.lovelace@example.com"`), "").must(t, 200)
	if r.num(t, "totalResults") != 1 || r.get("Resources.0.active") != false {
		t.Fatalf("deactivated user not found by filter: %s", r.raw)
	}
	r = g.call("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":true}}]}`).must(t, 200)
	if r.get("active") != true {
		t.Fatalf("reactivate: %s", r.raw)
	}
	if ops := g.opsSince(n2); !slices.Equal(ops, []string{"user.deactivated", "user.reactivated"}) {
		t.Fatalf("outbox after reactivate = %v", ops)
	}
	// The same deactivation sent twice (Okta retries) records one event.
	patchOff := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`
	g.call("PATCH", "/Users/"+id, patchOff).must(t, 200)
	g.call("PATCH", "/Users/"+id, patchOff).must(t, 200)
	if ops := g.opsSince(n2); !slices.Equal(ops, []string{"user.deactivated", "user.reactivated", "user.deactivated"}) {
		t.Fatalf("idempotent retry recorded events: %v", ops)
	}
	g.call("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":true}}]}`).must(t, 200)

	// 404 and 401 bodies are SCIM errors.
	g.call("GET", "/Users/does-not-exist", "").scimError(t, 404, "")
	g.callAuth("", "GET", "/Users", "").scimError(t, 401, "")
	g.callAuth("Bearer wrong-"+testToken, "GET", "/Users", "").scimError(t, 401, "")

	// A second user to push into groups.
	bob := g.call("POST", "/Users", oktaUser("bob@example.com", "Bob", "Builder")).must(t, 201).str("id")

	// Group push (OIN): create empty, rename with Okta's id inside the value.
	n3 := g.outboxLen()
	r = g.call("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Engineering","members":[]}`).must(t, 201)
	gid := r.str("id")
	if gid == "" || r.str("meta.location") != "https://app.example.test/gatehouse/scim/v2/Groups/"+gid {
		t.Fatalf("group create: %s", r.raw)
	}
	r = g.call("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"id":"`+gid+`","displayName":"Engineering Team"}}]}`)
	if r.status != 204 && r.status != 200 {
		t.Fatalf("group rename: %d %s", r.status, r.raw)
	}
	g.call("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"`+id+`","display":"ada.lovelace@example.com"}]}]}`)
	// Membership delta: remove one and add one in the same request.
	r = g.call("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
		{"op":"remove","path":"members[value eq \"`+id+`\"]"},
		{"op":"add","path":"members","value":[{"value":"`+bob+`","display":"bob@example.com"}]}]}`)
	if r.status != 204 && r.status != 200 {
		t.Fatalf("group remove+add: %d %s", r.status, r.raw)
	}
	r = g.call("GET", "/Groups/"+gid, "").must(t, 200)
	if r.str("displayName") != "Engineering Team" || memberIDs(r) != bob {
		t.Fatalf("group after rename and delta: %s", r.raw)
	}
	// Bob's user resource lists the group.
	if u := g.call("GET", "/Users/"+bob, "").must(t, 200); u.str("groups.0.value") != gid || u.str("groups.0.display") != "Engineering Team" {
		t.Errorf("user groups attribute: %s", u.raw)
	}
	// Full push replaces the whole member list.
	g.call("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"members","value":[{"value":"`+id+`","display":"ada"},{"value":"`+bob+`","display":"bob"}]}]}`)
	r = g.call("GET", "/Groups/"+gid, "").must(t, 200)
	if memberIDs(r) != sortedJoin(id, bob) {
		t.Fatalf("full member replace: %s", r.raw)
	}
	wantOps := []string{"group.created", "group.updated", "group.members_added", "group.members_removed", "group.members_added", "group.members_added"}
	if ops := g.opsSince(n3); !slices.Equal(ops, wantOps) {
		t.Fatalf("group push outbox = %v, want %v", ops, wantOps)
	}
	// An unknown member id gets a clear error and changes nothing.
	n4 := g.outboxLen()
	g.call("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"no-such-user"}]}]}`).scimError(t, 400, "invalidValue")
	if g.outboxLen() != n4 || memberIDs(g.call("GET", "/Groups/"+gid, "")) != sortedJoin(id, bob) {
		t.Fatalf("unknown member changed the group")
	}

	// Deleting the group.
	g.call("DELETE", "/Groups/"+gid, "").must(t, 204)
	g.call("GET", "/Groups/"+gid, "").scimError(t, 404, "")
	if ops := g.opsSince(n4); !slices.Equal(ops, []string{"group.deleted"}) {
		t.Fatalf("group delete outbox = %v", ops)
	}
}

// TestOktaAIWFlows replays Okta's custom (AIW) SCIM apps, which never
// PATCH: every change is GET then a full PUT, and groups carry members.
func TestOktaAIWFlows(t *testing.T) {
	g := startGateway(t, "")
	ada := g.call("POST", "/Users", oktaUser("ada@example.com", "Ada", "Lovelace")).must(t, 201).str("id")
	bob := g.call("POST", "/Users", oktaUser("bob@example.com", "Bob", "Builder")).must(t, 201).str("id")
	cy := g.call("POST", "/Users", oktaUser("cy@example.com", "Cy", "Young")).must(t, 201).str("id")

	// Deactivation by GET + PUT of the whole resource with active:false.
	cur := g.call("GET", "/Users/"+ada, "").must(t, 200)
	body := strings.Replace(string(cur.raw), `"active":true`, `"active":false,"password":"old-secret"`, 1)
	n0 := g.outboxLen()
	r := g.call("PUT", "/Users/"+ada, body).must(t, 200)
	if r.get("active") != false || r.str("name.givenName") != "Ada" || r.get("password") != nil {
		t.Fatalf("AIW deactivate: %s", r.raw)
	}
	if ops := g.opsSince(n0); !slices.Equal(ops, []string{"user.deactivated"}) {
		t.Fatalf("AIW deactivate outbox = %v (a PUT of an unchanged document must record only the change)", ops)
	}

	// Group created with members, then GET + full PUT with the new list.
	r = g.call("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Ops","members":[{"value":"`+ada+`","display":"ada"},{"value":"`+bob+`","display":"bob"}]}`).must(t, 201)
	gid := r.str("id")
	if memberIDs(r) != sortedJoin(ada, bob) {
		t.Fatalf("POST /Groups with members: %s", r.raw)
	}
	cur = g.call("GET", "/Groups/"+gid, "").must(t, 200)
	put := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"` + gid + `","displayName":"Ops","members":[{"value":"` + bob + `"},{"value":"` + cy + `"}]}`
	n1 := g.outboxLen()
	r = g.call("PUT", "/Groups/"+gid, put).must(t, 200)
	if memberIDs(r) != sortedJoin(bob, cy) {
		t.Fatalf("PUT /Groups member replace: %s", r.raw)
	}
	if ops := g.opsSince(n1); !slices.Equal(ops, []string{"group.members_removed", "group.members_added"}) {
		t.Fatalf("PUT group outbox = %v", ops)
	}
	evs := g.events()[n1:]
	if !slices.Equal(evs[0].MemberIDs, []string{ada}) || !slices.Equal(evs[1].MemberIDs, []string{cy}) {
		t.Errorf("member deltas: removed %v added %v", evs[0].MemberIDs, evs[1].MemberIDs)
	}
	_ = cur
}

func memberIDs(r response) string {
	list, _ := r.get("members").([]any)
	var ids []string
	for _, m := range list {
		if v, _ := m.(map[string]any)["value"].(string); v != "" {
			ids = append(ids, v)
		}
	}
	return sortedJoin(ids...)
}

func sortedJoin(ids ...string) string {
	s := slices.Clone(ids)
	slices.Sort(s)
	return strings.Join(s, ",")
}

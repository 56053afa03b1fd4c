package conformance

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/gatehouse-id/gatehouse/adapters"
	"github.com/gatehouse-id/gatehouse/gateway"
)

func eventSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(adapters.EventSchema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	const url = "https://github.com/gatehouse-id/gatehouse/adapters/event.schema.json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validateEvent(t *testing.T, s *jsonschema.Schema, raw []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("not JSON: %v\n%s", err, raw)
	}
	if err := s.Validate(v); err != nil {
		t.Errorf("event does not match adapters/event.schema.json: %v\n%s", err, raw)
	}
}

// TestEventsMatchTheContract: every kind of event a SCIM sequence records,
// in its wire form, validates against the shipped JSON Schema.
func TestEventsMatchTheContract(t *testing.T) {
	schema := eventSchema(t)
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken)
	uid := g.call("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"userName":"ada@example.com","externalId":"00u1","name":{"givenName":"Ada","familyName":"Lovelace"},"emails":[{"value":"Ada@Example.com","type":"work","primary":true}],"active":true,"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D"}}`).must(t, 201).str("id")
	bob := g.call("POST", "/Users", oktaUser("bob@example.com", "Bob", "B")).must(t, 201).str("id")
	g.call("PATCH", "/Users/"+uid, `{`+patchOp+`,"Operations":[{"op":"replace","path":"displayName","value":"Countess"}]}`).must(t, 200)
	g.call("PATCH", "/Users/"+uid, `{`+patchOp+`,"Operations":[{"op":"replace","path":"active","value":false}]}`).must(t, 200)
	g.call("PATCH", "/Users/"+uid, `{`+patchOp+`,"Operations":[{"op":"replace","path":"active","value":true}]}`).must(t, 200)
	gid := g.call("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Eng","members":[{"value":"`+uid+`"}]}`).must(t, 201).str("id")
	g.call("PATCH", "/Groups/"+gid, `{`+patchOp+`,"Operations":[{"op":"add","path":"members","value":[{"value":"`+bob+`"}]}]}`).must(t, 204)
	g.call("PATCH", "/Groups/"+gid, `{`+patchOp+`,"Operations":[{"op":"remove","path":"members[value eq \"`+bob+`\"]"}]}`).must(t, 204)
	g.call("PATCH", "/Groups/"+gid, `{`+patchOp+`,"Operations":[{"op":"replace","path":"displayName","value":"Engineering"}]}`).must(t, 204)
	g.call("DELETE", "/Users/"+bob, "").must(t, 204)
	g.call("DELETE", "/Groups/"+gid, "").must(t, 204)
	g.call("DELETE", "/Users/"+uid, "").must(t, 204)
	// An invitation, made under method manual.
	adminRequest(t, g, "PUT", "/identity", `{"provisioning":{"method":"manual","default_pool":"default","default_role":"user"}}`, bearer(adminToken))
	if c := adminRequest(t, g, "POST", "/invitations", `{"email":"cy@example.com"}`, bearer(adminToken)); c.status != 201 {
		t.Fatalf("invite: %d %s", c.status, c.raw)
	}

	seen := map[gateway.Op]bool{}
	for _, e := range g.events() {
		w := e.Wire()
		raw, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		validateEvent(t, schema, raw)
		seen[w.Type] = true
	}
	for _, op := range []gateway.Op{gateway.OpUserCreated, gateway.OpUserUpdated, gateway.OpUserDeactivated, gateway.OpUserReactivated, gateway.OpUserDeleted,
		gateway.OpGroupCreated, gateway.OpGroupUpdated, gateway.OpGroupDeleted, gateway.OpGroupMembersAdded, gateway.OpGroupMembersRemoved,
		gateway.OpInvitationCreated} {
		if !seen[op] {
			t.Errorf("the sequence recorded no %s event", op)
		}
	}
	// The schema is not a rubber stamp.
	for _, bad := range []string{
		`{"contract":"gatehouse.event.v1","id":"e","type":"user.created","seq":1,"tenant":"default","source":"scim","time":"2026-01-01T00:00:00Z"}`,
		`{"contract":"gatehouse.event.v2","id":"e","type":"group.deleted","seq":1,"tenant":"default","source":"scim","time":"2026-01-01T00:00:00Z","group":{"id":"g","displayName":"x","source":"scim","created":"2026-01-01T00:00:00Z","modified":"2026-01-01T00:00:00Z","version":1}}`,
		`{"contract":"gatehouse.event.v1","id":"e","type":"user.exploded","seq":1,"tenant":"default","source":"scim","time":"2026-01-01T00:00:00Z"}`,
	} {
		v, _ := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(bad)))
		if schema.Validate(v) == nil {
			t.Errorf("the schema accepts an invalid event: %s", bad)
		}
	}
}

// TestREADMEEventExamplesMatchTheContract: the README shows one example
// per event type, and each one validates.
func TestREADMEEventExamplesMatchTheContract(t *testing.T) {
	schema := eventSchema(t)
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```json event\n(.*?)```").FindAllSubmatch(b, -1)
	seen := map[string]bool{}
	for _, m := range blocks {
		validateEvent(t, schema, m[1])
		var e struct{ Type string }
		_ = json.Unmarshal(m[1], &e)
		seen[e.Type] = true
	}
	for _, op := range []string{"user.created", "user.updated", "user.deactivated", "user.reactivated", "user.deleted",
		"group.created", "group.updated", "group.deleted", "group.members_added", "group.members_removed"} {
		if !seen[op] {
			t.Errorf("the README has no example of %s (a ```json event block)", op)
		}
	}
}

package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

// TestGroupsToRoles: with provisioning.group_roles on, a person's role
// follows their IdP groups in order of precedence (SCIM here), and
// user.updated names the role change; a role a manager set wins until it
// is given back to the mapping; with the mapping off, groups change no
// role.
func TestGroupsToRoles(t *testing.T) {
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_PROVISIONING_ROLES=manager,user,agent,supervisor",
		`GATEHOUSE_PROVISIONING_GROUP_ROLES=[{"group":"Support Leads","role":"supervisor"},{"group":"support","role":"agent"}]`,
		"GATEHOUSE_PROVISIONING_GROUP_ROLES_ENABLED=true")
	user := g.call("POST", "/Users", userJSON("ana@example.com")).must(t, 201).str("id")
	role := func() string {
		t.Helper()
		return adminRequest(t, g, "GET", "/users/"+user, "", bearer(adminToken)).must(t, 200).body["role"].(string)
	}
	if r := role(); r != "user" {
		t.Fatalf("a new user holds %q, want the default role", r)
	}
	group := func(name string) string {
		return g.call("POST", "/Groups", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":%q,"members":[{"value":%q}]}`, name, user)).must(t, 201).str("id")
	}
	members := func(id, op string) {
		g.call("PATCH", "/Groups/"+id, fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":%q,"path":"members","value":[{"value":%q}]}]}`, op, user)).must(t, 204)
	}
	support := group("Support")
	if r := role(); r != "agent" {
		t.Fatalf("in Support (mapped in another case): %q, want agent", r)
	}
	roleEvents := func() []string {
		var out []string
		for _, e := range g.events() {
			if e.Op == gateway.OpUserUpdated && e.User != nil && e.User.ID == user && slices.Contains(e.Changed, "role") {
				out = append(out, e.User.Role)
			}
		}
		return out
	}
	if got := roleEvents(); !slices.Equal(got, []string{"agent"}) {
		t.Fatalf("user.updated naming the role: %v", got)
	}
	leads := group("Support Leads")
	if r := role(); r != "supervisor" {
		t.Fatalf("in Support and Support Leads: %q, want supervisor (the first rule wins)", r)
	}
	members(leads, "remove")
	if r := role(); r != "agent" {
		t.Fatalf("out of Support Leads: %q, want agent", r)
	}
	// A manager's choice wins over the mapping...
	adminRequest(t, g, "PATCH", "/users/"+user, `{"role":"user"}`, bearer(adminToken)).must(t, 200)
	members(leads, "add")
	if r := role(); r != "user" {
		t.Fatalf("a role the manager set was overwritten by the mapping: %q", r)
	}
	// ...until they give it back to it.
	if r := adminRequest(t, g, "DELETE", "/users/"+user+"/role", "", bearer(adminToken)).must(t, 200).body["role"]; r != "supervisor" {
		t.Fatalf("given back to the mapping: %v, want supervisor", r)
	}
	g.call("DELETE", "/Groups/"+leads, "").must(t, 204)
	if r := role(); r != "agent" {
		t.Fatalf("Support Leads deleted: %q, want agent", r)
	}
	members(support, "remove")
	if r := role(); r != "user" {
		t.Fatalf("in no mapped group: %q, want the default role", r)
	}
	if got := roleEvents(); !slices.Equal(got, []string{"agent", "supervisor", "agent", "user", "supervisor", "agent", "user"}) {
		t.Fatalf("the role changes told to the app: %v", got)
	}

	// Off: groups change no role.
	cur := adminRequest(t, g, "GET", "/identity", "", bearer(adminToken)).must(t, 200)
	prov := cur.body["provisioning"].(map[string]any)
	prov["group_roles_enabled"] = false
	delete(prov, "roles")
	adminRequest(t, g, "PUT", "/identity", mustJSON(t, map[string]any{"provisioning": prov}), bearer(adminToken)).must(t, 200)
	members(support, "add")
	if r := role(); r != "user" {
		t.Fatalf("with the mapping off, joining Support gave %q", r)
	}
	// On again: everyone's role follows it at once.
	prov["group_roles_enabled"] = true
	adminRequest(t, g, "PUT", "/identity", mustJSON(t, map[string]any{"provisioning": prov}), bearer(adminToken)).must(t, 200)
	if r := role(); r != "agent" {
		t.Fatalf("the mapping turned on again: %q, want agent", r)
	}
	// A role from elsewhere (given before the mapping was on, or by an
	// invitation) is not the mapping's to move.
	lead := g.call("POST", "/Users", userJSON("lead@example.com")).must(t, 201).str("id")
	if _, err := g.app.Service().UpdateUser(context.Background(), provision.Meta{Org: gateway.DefaultOrg, Source: gateway.SourceSCIM}, lead, 0,
		func(u *gateway.User) (*gateway.User, error) { u.Role = "supervisor"; return u, nil }); err != nil {
		t.Fatal(err)
	}
	g.call("PATCH", "/Groups/"+support, fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":%q}]}]}`, lead)).must(t, 204)
	if r := adminRequest(t, g, "GET", "/users/"+lead, "", bearer(adminToken)).must(t, 200).body["role"]; r != "supervisor" {
		t.Fatalf("a role the mapping did not give was moved to %v", r)
	}
	// Refused: a role that does not exist, a group mapped twice.
	prov["group_roles"] = []map[string]string{{"group": "Support", "role": "wizard"}, {"group": "support", "role": "agent"}, {"group": "SUPPORT", "role": "agent"}}
	if r := adminRequest(t, g, "PUT", "/identity", mustJSON(t, map[string]any{"provisioning": prov}), bearer(adminToken)); r.status != 422 {
		t.Fatalf("a bad mapping: %d %s", r.status, r.raw)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

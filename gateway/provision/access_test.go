package provision_test

import (
	"context"
	"slices"
	"testing"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

// TestAccessModel: a person's access pool by pool (their own role, the
// pool's, the default), what a change of each does to it, and a deleted
// person's own roles going with them.
func TestAccessModel(t *testing.T) {
	svc, store := newService(t, gateway.SourceManual)
	ctx := context.Background()
	mg := provision.Manager{Org: gateway.DefaultOrg, Actor: gateway.Actor{Kind: gateway.ActorToken, ID: "t"}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := svc.PutRole(ctx, mg, "debugger", 0, []string{"agents.read", "agents.debug"})
	must(err)
	for _, p := range []struct{ id, role string }{{"default", ""}, {"prod", "debugger"}, {"staging", ""}} {
		_, err := svc.CreatePool(ctx, gateway.DefaultOrg, mg.Actor, "", p.id, p.id, p.role)
		must(err)
	}
	u, err := svc.AddUser(ctx, mg, &gateway.User{UserName: "ada@example.com", Active: true, Pools: []string{"default", "prod", "staging"}})
	must(err)
	roles := func() []string {
		t.Helper()
		u, err := store.Users().Get(ctx, gateway.DefaultOrg, u.ID)
		must(err)
		access, _, err := svc.Access(ctx, u)
		must(err)
		var out []string
		for _, a := range access {
			out = append(out, a.Pool+"="+a.Role)
		}
		return out
	}
	if got := roles(); !slices.Equal(got, []string{"default=user", "prod=debugger", "staging=user"}) {
		t.Fatalf("access: %v", got)
	}
	before := svc.AccessVersion()
	_, err = svc.PutMember(ctx, mg, "staging", u.ID, "debugger")
	must(err)
	if svc.AccessVersion() == before {
		t.Fatal("a membership's own role did not change the access version")
	}
	if got := roles(); !slices.Equal(got, []string{"default=user", "prod=debugger", "staging=debugger"}) {
		t.Fatalf("with her own role in staging: %v", got)
	}
	_, err = svc.SetPoolRole(ctx, mg, "prod", 0, "")
	must(err)
	if got := roles(); !slices.Equal(got, []string{"default=user", "prod=user", "staging=debugger"}) {
		t.Fatalf("after prod's role went back to the default: %v", got)
	}
	if own, err := svc.OwnRoles(ctx, gateway.DefaultOrg, "staging"); err != nil || own[u.ID] != "debugger" {
		t.Fatalf("own roles in staging: %v %v", own, err)
	}
	// Leaving a pool (on her page: her pools) drops her own role there;
	// coming back, she holds the pool's.
	two := []string{"default", "prod"}
	_, err = svc.ChangeUser(ctx, mg, u.ID, 0, provision.UserPatch{Pools: &two})
	must(err)
	if own, _ := svc.OwnRoles(ctx, gateway.DefaultOrg, "staging"); len(own) != 0 {
		t.Fatalf("her own role outlived her membership: %v", own)
	}
	three := []string{"default", "prod", "staging"}
	_, err = svc.ChangeUser(ctx, mg, u.ID, 0, provision.UserPatch{Pools: &three})
	must(err)
	if got := roles(); !slices.Equal(got, []string{"default=user", "prod=user", "staging=user"}) {
		t.Fatalf("back in staging: %v", got)
	}
	_, err = svc.PutMember(ctx, mg, "staging", u.ID, "debugger")
	must(err)
	// A deletion that fails (a stale version) keeps everything.
	if err := svc.RemoveUser(ctx, mg, u.ID, 1); gateway.ErrorCodeOf(err) != gateway.ErrPreconditionFailed {
		t.Fatalf("a deletion at a stale version: %v", err)
	}
	if own, _ := svc.OwnRoles(ctx, gateway.DefaultOrg, "staging"); own[u.ID] != "debugger" {
		t.Fatalf("a failed deletion dropped her own role: %v", own)
	}
	must(svc.RemoveUser(ctx, mg, u.ID, 0))
	if own, err := svc.OwnRoles(ctx, gateway.DefaultOrg, "staging"); err != nil || len(own) != 0 {
		t.Fatalf("a deleted user's own roles: %v %v", own, err)
	}
	must(svc.DeleteRole(ctx, mg, "debugger"))
}

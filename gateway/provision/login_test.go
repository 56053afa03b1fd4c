package provision_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
)

func loginEnv(t *testing.T, method gateway.Source, domains ...string) (*provision.Service, gateway.Store) {
	t.Helper()
	store, err := bolt.Open(filepath.Join(t.TempDir(), "login.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return provision.New(store, nil, provision.Policy{Method: method, DefaultPool: "default", DefaultRole: "user", AllowedDomains: domains}), store
}

func ident(email string) gateway.Identity {
	return gateway.Identity{Protocol: "saml", Issuer: "https://idp", Subject: email, Email: email, EmailVerified: true, GivenName: "Ada", FamilyName: "Lovelace"}
}

func reason(err error) string {
	var le *provision.LoginError
	if errors.As(err, &le) {
		return le.Reason
	}
	return ""
}

func TestJITLogin(t *testing.T) {
	svc, store := loginEnv(t, gateway.SourceJIT)
	ctx := context.Background()
	u, created, err := svc.Login(ctx, gateway.DefaultOrg, ident("Ada@Example.com"))
	if err != nil || !created {
		t.Fatalf("first login: %v created=%v", err, created)
	}
	if u.Source != gateway.SourceJIT || !slices.Equal(u.Pools, []string{"default"}) || u.Role != "user" || u.UserName != "ada@example.com" || !u.Active || u.GivenName != "Ada" {
		t.Fatalf("JIT user: %+v", u)
	}
	evs, _ := store.Outbox().After(ctx, gateway.DefaultOrg, 0, 10)
	if len(evs) != 1 || evs[0].Op != gateway.OpUserCreated || evs[0].Source != gateway.SourceJIT || !evs[0].Wire().User.JIT {
		t.Fatalf("events: %+v", evs)
	}
	again, created, err := svc.Login(ctx, gateway.DefaultOrg, ident("ada@EXAMPLE.com"))
	if err != nil || created || again.ID != u.ID {
		t.Fatalf("second login: %+v created=%v %v", again, created, err)
	}
	if _, total, _ := store.Users().List(ctx, gateway.DefaultOrg, 0, 0); total != 1 {
		t.Fatalf("%d users after two logins", total)
	}
	// The app changes the role; a login with new names refreshes the names
	// and leaves the role alone.
	if _, err := store.Users().Update(ctx, gateway.DefaultOrg, u.ID, 0, func(cur *gateway.User) (gateway.UserChange, error) {
		cur.Role, cur.Pools, cur.Version = "manager", []string{"support"}, cur.Version+1
		return gateway.UserChange{User: cur}, nil
	}); err != nil {
		t.Fatal(err)
	}
	renamed := ident("ada@example.com")
	renamed.GivenName, renamed.FamilyName = "Augusta", "King"
	got, _, err := svc.Login(ctx, gateway.DefaultOrg, renamed)
	if err != nil || got.GivenName != "Augusta" || got.FamilyName != "King" || got.Role != "manager" || !slices.Equal(got.Pools, []string{"support"}) {
		t.Fatalf("refresh: %+v %v", got, err)
	}
}

func TestConcurrentFirstLoginsMakeOneUser(t *testing.T) {
	svc, store := loginEnv(t, gateway.SourceJIT)
	var wg sync.WaitGroup
	ids := make([]string, 10)
	errs := make([]error, 10)
	for i := range ids {
		wg.Go(func() {
			u, _, err := svc.Login(context.Background(), gateway.DefaultOrg, ident("grace@example.com"))
			errs[i] = err
			if u != nil {
				ids[i] = u.ID
			}
		})
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("login %d: %v (%s vs %s)", i, errs[i], ids[i], ids[0])
		}
	}
	if _, total, _ := store.Users().List(context.Background(), gateway.DefaultOrg, 0, 0); total != 1 {
		t.Fatalf("%d users", total)
	}
}

func TestLoginRefusals(t *testing.T) {
	ctx := context.Background()
	manual, mstore := loginEnv(t, gateway.SourceManual)
	m := provision.Meta{Org: gateway.DefaultOrg, Source: gateway.SourceManual}
	existing, err := manual.CreateUser(ctx, m, &gateway.User{UserName: "ada.l", Active: true, Emails: []string{"ada@example.com"}, GivenName: "A"})
	if err != nil {
		t.Fatal(err)
	}
	// Found through its email (the userName is not the address); a
	// non-JIT user's names are the app's, not the IdP's.
	u, created, err := manual.Login(ctx, gateway.DefaultOrg, ident("ada@example.com"))
	if err != nil || created || u.ID != existing.ID || u.GivenName != "A" {
		t.Fatalf("existing manual user: %+v %v", u, err)
	}
	if _, _, err := manual.Login(ctx, gateway.DefaultOrg, ident("stranger@example.com")); reason(err) != "not_provisioned" || gateway.ErrorCodeOf(err) != gateway.ErrForbidden {
		t.Fatalf("unknown user, manual method: %v", err)
	}
	if _, err := manual.UpdateUser(ctx, m, existing.ID, 0, func(u *gateway.User) (*gateway.User, error) { u.Active = false; return u, nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := manual.Login(ctx, gateway.DefaultOrg, ident("ada@example.com")); reason(err) != "deactivated" {
		t.Fatalf("deactivated: %v", err)
	}

	jit, jstore := loginEnv(t, gateway.SourceJIT, "example.com")
	unverified := ident("eve@example.com")
	unverified.EmailVerified = false
	noEmail := ident("")
	for name, tc := range map[string]struct {
		id     gateway.Identity
		reason string
	}{
		"unverified email": {unverified, "unverified_email"},
		"no email":         {noEmail, "no_email"},
		"other domain":     {ident("mallory@evil.example"), "domain"},
	} {
		if _, _, err := jit.Login(ctx, gateway.DefaultOrg, tc.id); reason(err) != tc.reason {
			t.Errorf("%s: %v, want %s", name, err, tc.reason)
		}
	}
	for _, s := range []gateway.Store{mstore, jstore} {
		if n, _ := s.Outbox().Len(ctx, gateway.DefaultOrg); s == jstore && n != 0 {
			t.Fatalf("refused logins recorded %d events", n)
		}
	}
	if _, total, _ := jstore.Users().List(ctx, gateway.DefaultOrg, 0, 0); total != 0 {
		t.Fatalf("refused logins created %d users", total)
	}
}

// TestJITGroups: a JIT user's groups follow what the IdP sends at each
// sign-in; groups are created (source jit) or joined by name in any case,
// left when the IdP stops naming them if JIT made them, and untouched
// when the IdP sends no groups claim.
func TestJITGroups(t *testing.T) {
	svc, store := loginEnv(t, gateway.SourceJIT)
	ctx := context.Background()
	org := gateway.DefaultOrg
	groupsOf := func(userID string) map[string]bool {
		t.Helper()
		refs, err := store.Groups().Memberships(ctx, org, []string{userID})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, r := range refs[userID] {
			out[r.DisplayName] = true
		}
		return out
	}
	// A group the app made itself, before any sign-in.
	if err := store.Groups().Create(ctx, &gateway.Group{ID: "g-app", Org: org, DisplayName: "Admins", Source: gateway.SourceManual, Version: 1}, nil, nil); err != nil {
		t.Fatal(err)
	}
	id := ident("ada@example.com")
	id.Groups = []string{"Engineering", "admins", "engineering", " "}
	u, _, err := svc.Login(ctx, org, id)
	if err != nil {
		t.Fatal(err)
	}
	// Admins is the app's own group: the IdP naming it grants nothing.
	if got := groupsOf(u.ID); len(got) != 1 || !got["Engineering"] {
		t.Fatalf("after first sign-in: %v", got)
	}
	_, total, _ := store.Groups().List(ctx, org, 0, 0)
	if total != 2 {
		t.Fatalf("%d groups, want Admins and one Engineering", total)
	}
	evs, _ := store.Outbox().After(ctx, org, 0, 100)
	var ops []string
	for _, e := range evs {
		ops = append(ops, string(e.Op))
	}
	if strings.Join(ops, " ") != "user.created group.created" || evs[1].Source != gateway.SourceJIT {
		t.Fatalf("events: %v", ops)
	}

	// No groups claim: memberships stay.
	id.Groups = nil
	if _, _, err := svc.Login(ctx, org, id); err != nil {
		t.Fatal(err)
	}
	if got := groupsOf(u.ID); len(got) != 1 {
		t.Fatalf("a sign-in without a groups claim changed memberships: %v", got)
	}
	// A manager puts the user in Admins; the IdP stops naming any group:
	// the JIT group is left, the app's is kept.
	if _, _, err := svc.UpdateGroup(ctx, provision.Meta{Org: org, Source: gateway.SourceJIT}, "g-app", 0,
		func(g *gateway.Group, ms []gateway.Member) (*gateway.Group, []gateway.Member, error) {
			return g, append(ms, gateway.Member{UserID: u.ID}), nil
		}); err != nil {
		t.Fatal(err)
	}
	id.Groups = []string{}
	if _, _, err := svc.Login(ctx, org, id); err != nil {
		t.Fatal(err)
	}
	if got := groupsOf(u.ID); len(got) != 1 || !got["Admins"] {
		t.Fatalf("after the IdP dropped the groups: %v", got)
	}
}

// TestJITGroupsOnlyForJITUsers: a SCIM- or manually-made user's groups
// are not the IdP's to change.
func TestJITGroupsOnlyForJITUsers(t *testing.T) {
	svc, store := loginEnv(t, gateway.SourceJIT)
	ctx := context.Background()
	if err := store.Users().Create(ctx, &gateway.User{ID: "u-1", Org: gateway.DefaultOrg, UserName: "ada@example.com", Active: true,
		Source: gateway.SourceManual, Emails: []string{"ada@example.com"}, Version: 1}, nil); err != nil {
		t.Fatal(err)
	}
	id := ident("ada@example.com")
	id.Groups = []string{"Engineering"}
	if _, _, err := svc.Login(ctx, gateway.DefaultOrg, id); err != nil {
		t.Fatal(err)
	}
	if _, total, _ := store.Groups().List(ctx, gateway.DefaultOrg, 0, 0); total != 0 {
		t.Fatalf("%d groups made for a manual user", total)
	}
}

// TestBootstrapManagersGetTheirIdPGroups: a bootstrap manager signs in
// like any JIT user (groups from the IdP, at the first sign-in and
// after), besides getting the manager role.
func TestBootstrapManagersGetTheirIdPGroups(t *testing.T) {
	svc, store := loginEnv(t, gateway.SourceJIT)
	ctx := context.Background()
	org := gateway.DefaultOrg
	svc.SetBootstrapManagers(org, []string{"root@example.com"})
	groupsOf := func(userID string) []string {
		t.Helper()
		refs, err := store.Groups().Memberships(ctx, org, []string{userID})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range refs[userID] {
			out = append(out, r.DisplayName)
		}
		slices.Sort(out)
		return out
	}
	id := ident("root@example.com")
	id.Groups = []string{"Engineering", "Ops"}
	u, created, err := svc.Login(ctx, org, id)
	if err != nil || !created || u.Role != gateway.RoleManager || u.Source != gateway.SourceJIT {
		t.Fatalf("first sign-in: %+v %v %v", u, created, err)
	}
	if got := groupsOf(u.ID); !slices.Equal(got, []string{"Engineering", "Ops"}) {
		t.Fatalf("a bootstrap manager's groups after the first sign-in: %v", got)
	}
	id.Groups = []string{"Ops"}
	if _, _, err := svc.Login(ctx, org, id); err != nil {
		t.Fatal(err)
	}
	if got := groupsOf(u.ID); !slices.Equal(got, []string{"Ops"}) {
		t.Fatalf("a bootstrap manager's groups after a later sign-in: %v", got)
	}
}

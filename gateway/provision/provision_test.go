package provision_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
)

func newService(t *testing.T, method gateway.Source) (*provision.Service, gateway.Store) {
	t.Helper()
	store, err := bolt.Open(filepath.Join(t.TempDir(), "p.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return provision.New(store, nil, provision.Policy{Method: method, DefaultPool: "default", DefaultRole: "user"}), store
}

// TestValidationIsTheDomains: every way in refuses the same blank and
// malformed names, because the rule lives on the domain types.
func TestValidationIsTheDomains(t *testing.T) {
	svc, store := newService(t, gateway.SourceManual)
	ctx := context.Background()
	m := provision.Meta{Org: gateway.DefaultOrg, Source: gateway.SourceManual}
	for _, name := range []string{"", " ", "\t", "bad\x00name", "bad\xffutf8"} {
		if _, err := svc.CreateUser(ctx, m, &gateway.User{UserName: name}); gateway.ErrorCodeOf(err) != gateway.ErrInvalid {
			t.Errorf("CreateUser(%q): %v", name, err)
		}
		if _, err := svc.CreateGroup(ctx, m, &gateway.Group{DisplayName: name}, nil); gateway.ErrorCodeOf(err) != gateway.ErrInvalid {
			t.Errorf("CreateGroup(%q): %v", name, err)
		}
	}
	u, err := svc.CreateUser(ctx, m, &gateway.User{UserName: "ada@example.com", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateUser(ctx, m, u.ID, 0, func(old *gateway.User) (*gateway.User, error) {
		old.UserName = " "
		return old, nil
	}); gateway.ErrorCodeOf(err) != gateway.ErrInvalid {
		t.Errorf("UpdateUser to a blank name: %v", err)
	}
	if _, total, _ := store.Users().List(ctx, gateway.DefaultOrg, 0, 0); total != 1 {
		t.Errorf("refused writes stored users: %d", total)
	}
}

// TestUnchangedWritesNothing: an update that changes nothing writes no
// record, keeps the version and records no event.
func TestUnchangedWritesNothing(t *testing.T) {
	svc, store := newService(t, gateway.SourceManual)
	ctx := context.Background()
	m := provision.Meta{Org: gateway.DefaultOrg, Source: gateway.SourceManual}
	u, err := svc.CreateUser(ctx, m, &gateway.User{UserName: "ada@example.com", GivenName: "Ada", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	n0, _ := store.Outbox().Len(ctx, gateway.DefaultOrg)
	same, err := svc.UpdateUser(ctx, m, u.ID, 0, func(old *gateway.User) (*gateway.User, error) { return old, nil })
	if err != nil || same.Version != 1 {
		t.Fatalf("no-op update: %+v %v", same, err)
	}
	if n, _ := store.Outbox().Len(ctx, gateway.DefaultOrg); n != n0 {
		t.Fatalf("a no-op recorded %d events", n-n0)
	}
	// The provisioning method is enforced on every command.
	if _, err := svc.CreateUser(ctx, provision.Meta{Org: gateway.DefaultOrg, Source: gateway.SourceSCIM}, &gateway.User{UserName: "x@example.com"}); gateway.ErrorCodeOf(err) != gateway.ErrForbidden {
		t.Fatalf("a disabled method wrote: %v", err)
	}
}

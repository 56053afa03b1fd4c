package provision_test

import (
	"context"
	"sync"
	"testing"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

// TestOrgDeletionSteps: the erasure of a deleted organization, done again
// at once from several places (the request, the retry), records
// org.deleted once; after the deletion finished, a late retry writes
// nothing (no scope comes back for an organization that is gone).
func TestOrgDeletionSteps(t *testing.T) {
	svc, store := newService(t, gateway.SourceManual)
	ctx := context.Background()
	op := provision.Operator{Actor: gateway.Actor{Kind: gateway.ActorToken, ID: "admin.token"}}
	if _, err := svc.CreateOrg(ctx, op, provision.OrgSpec{ID: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateUser(ctx, provision.Meta{Org: "acme", Source: gateway.SourceManual}, &gateway.User{UserName: "ada@acme.example", Active: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DeleteOrg(ctx, op, "acme", 0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := svc.EraseOrg(ctx, "acme"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	events, err := store.Outbox().After(ctx, "acme", 0, 100)
	deleted := 0
	for _, e := range events {
		if e.Op == gateway.OpOrgDeleted {
			deleted++
		}
	}
	if err != nil || deleted != 1 || events[len(events)-1].Op != gateway.OpOrgDeleted {
		t.Fatalf("acme's events after erasing it 9 times: %d org.deleted, %+v %v", deleted, events, err)
	}
	if err := svc.FinishOrgDeletion(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if err := svc.EraseOrg(ctx, "acme"); gateway.ErrorCodeOf(err) != gateway.ErrNotFound {
		t.Fatalf("erasing after the deletion finished: %v", err)
	}
	if last, err := store.Outbox().LastSeq(ctx, "acme"); err != nil || last != 0 {
		t.Fatalf("a late erasure wrote into the gone organization: last event %d, %v", last, err)
	}
}

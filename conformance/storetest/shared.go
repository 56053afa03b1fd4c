package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// RunShared runs the contract of two openers of one store (two
// gateways sharing a database): openPair returns two handles on one new,
// empty store. A backend that one process alone opens (bbolt) passes the
// same handle twice; one that replicas share (PostgreSQL) passes two.
func RunShared(t *testing.T, openPair func(t *testing.T) (a, b gateway.Store)) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b gateway.Store)
	}{
		{"KeysAgreeAcrossOpeners", testSharedKeys},
		{"NamesUniqueAcrossOpeners", testSharedNames},
		{"EventNumbersGaplessAcrossOpeners", testSharedEvents},
		{"ChangedSignalAcrossOpeners", testSharedChanged},
		{"VersionsAcrossOpeners", testSharedVersions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := openPair(t)
			tc.fn(t, a, b)
		})
	}
}

// testSharedKeys: two gateways starting at once create one key between
// them.
func testSharedKeys(t *testing.T, a, b gateway.Store) { racingKeys(t, a, b) }

// testSharedNames: racing creates of one name through both openers: one
// wins.
func testSharedNames(t *testing.T, a, b gateway.Store) {
	errs := make([]error, 20)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			s := []gateway.Store{a, b}[i%2]
			errs[i] = s.Users().Create(ctx(), newUser(orgA, "same@example.com"), ev(gateway.OpUserCreated))
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch code(err) {
		case "":
			won++
		case gateway.ErrConflict:
		default:
			t.Errorf("unexpected: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d creates of one name won across openers", won)
	}
}

// testSharedEvents: writes through both openers number the organization's
// events 1..n without gaps, and each reads what the other wrote.
func testSharedEvents(t *testing.T, a, b gateway.Store) {
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			s := []gateway.Store{a, b}[w%2]
			for i := range 10 {
				if err := s.Users().Create(ctx(), newUser(orgA, fmt.Sprintf("w%d-%d@x.example", w, i)), ev(gateway.OpUserCreated)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for _, s := range []gateway.Store{a, b} {
		evs, err := s.Outbox().After(ctx(), orgA, 0, 100)
		if err != nil || len(evs) != 40 {
			t.Fatalf("%d events, %v", len(evs), err)
		}
		for i, e := range evs {
			if e.Seq != uint64(i+1) {
				t.Fatalf("event %d has seq %d", i+1, e.Seq)
			}
		}
	}
}

// testSharedChanged: a consumer on one opener is woken by events written
// through the other within a second.
func testSharedChanged(t *testing.T, a, b gateway.Store) {
	ch := a.Outbox().Changed(orgA)
	mustCreate(t, b, newUser(orgA, "wake@x.example"))
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("a commit through one opener did not wake a consumer of the other within 1 s")
	}
}

// testSharedVersions: a write through one opener at a version the other
// already moved is refused.
func testSharedVersions(t *testing.T, a, b gateway.Store) {
	u := mustCreate(t, a, newUser(orgA, "ada@x.example"))
	if _, err := b.Users().Update(ctx(), orgA, u.ID, 1, bump(nil, func(cur *gateway.User) { cur.Role = "manager" })); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Users().Update(ctx(), orgA, u.ID, 1, bump(nil, func(cur *gateway.User) { cur.Role = "user" })); code(err) != gateway.ErrPreconditionFailed {
		t.Fatalf("a stale write through the other opener: %v", err)
	}
	if got, _ := a.Users().Get(ctx(), orgA, u.ID); got.Role != "manager" || got.Version != 2 {
		t.Fatalf("read through the other opener: %+v", got)
	}
}

package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// testEventNumbering: several writers in two organizations at once; every
// organization's events are numbered 1..n with no gap, a write's events
// are consecutive, and a reader reading meanwhile never sees a number
// before every smaller one has committed (commit order: a gap is only
// ever a pruned range).
func testEventNumbering(t *testing.T, s gateway.Store) {
	const writers, perWriter = 6, 15
	stop := make(chan struct{})
	var readErr error
	var readers sync.WaitGroup
	for _, org := range []gateway.OrgID{orgA, orgB} {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				evs, err := s.Outbox().After(ctx(), org, 0, 1<<20)
				if err != nil {
					readErr = err
					return
				}
				for i, e := range evs {
					if e.Seq != uint64(i+1) {
						readErr = fmt.Errorf("%s: a reader saw seq %d at position %d: a gap that is not a pruned range", org, e.Seq, i+1)
						return
					}
				}
			}
		})
	}
	var wg sync.WaitGroup
	for w := range writers {
		for _, org := range []gateway.OrgID{orgA, orgB} {
			wg.Go(func() {
				for i := range perWriter {
					u := newUser(org, fmt.Sprintf("w%d-%d@x.example", w, i))
					// Two events per write: they must be consecutive.
					events := append(ev(gateway.OpUserCreated), ev(gateway.OpInvitationCreated)...)
					if err := s.Users().Create(ctx(), u, events); err != nil {
						t.Error(err)
					}
				}
			})
		}
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if readErr != nil {
		t.Fatal(readErr)
	}
	for _, org := range []gateway.OrgID{orgA, orgB} {
		evs, err := s.Outbox().After(ctx(), org, 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		want := writers * perWriter * 2
		if len(evs) != want || lastSeq(t, s, org) != uint64(want) {
			t.Fatalf("%s: %d events, last seq %d; want %d", org, len(evs), lastSeq(t, s, org), want)
		}
		for i, e := range evs {
			if e.Seq != uint64(i+1) || e.Org != org {
				t.Fatalf("%s: event %d has seq %d, organization %q", org, i+1, e.Seq, e.Org)
			}
			if e.Op == gateway.OpUserCreated && (i+1 >= len(evs) || evs[i+1].Op != gateway.OpInvitationCreated) {
				t.Fatalf("%s: the events of one write are not consecutive at seq %d", org, e.Seq)
			}
		}
		if page, _ := s.Outbox().After(ctx(), org, 10, 5); len(page) != 5 || page[0].Seq != 11 || page[4].Seq != 15 {
			t.Fatalf("%s: After(10, 5) = %d events from %d", org, len(page), page[0].Seq)
		}
	}
}

// testOutboxDelivery: cursors move forward only, dead letters come and go
// with the acknowledgement, and pruning keeps the numbering.
func testOutboxDelivery(t *testing.T, s gateway.Store) {
	for i := range 10 {
		mustCreate(t, s, newUser(orgA, fmt.Sprintf("u%d@x.example", i)))
	}
	ob := s.Outbox()
	if c, err := ob.Cursor(ctx(), orgA, "hook"); err != nil || c != 0 {
		t.Fatalf("a new consumer's cursor: %d %v", c, err)
	}
	evs, _ := ob.After(ctx(), orgA, 0, 10)
	dl := gateway.DeadLetter{Event: evs[2], Attempts: 3, LastError: "422 from the app", At: time.Now().UTC().Truncate(time.Millisecond)}
	held := gateway.DeadLetter{Event: evs[4], Attempts: 0, LastError: "held", At: dl.At, HeldBehind: 3}
	if err := ob.Ack(ctx(), orgA, "hook", 5, []gateway.DeadLetter{dl, held}, nil); err != nil {
		t.Fatal(err)
	}
	if c, _ := ob.Cursor(ctx(), orgA, "hook"); c != 5 {
		t.Fatalf("cursor %d, want 5", c)
	}
	if c, _ := ob.Cursor(ctx(), orgA, "other"); c != 0 {
		t.Fatalf("consumers have their own cursors: %d", c)
	}
	if err := ob.Ack(ctx(), orgA, "hook", 2, nil, nil); err != nil {
		t.Fatal(err)
	}
	if c, _ := ob.Cursor(ctx(), orgA, "hook"); c != 5 {
		t.Fatalf("the cursor moved back to %d", c)
	}
	dls, err := ob.DeadLetters(ctx(), orgA, "hook")
	if err != nil || len(dls) != 2 || dls[0].Event.Seq != 3 || dls[0].LastError != "422 from the app" || dls[0].Attempts != 3 ||
		dls[1].Event.Seq != 5 || dls[1].HeldBehind != 3 || dls[0].Event.ID != evs[2].ID {
		t.Fatalf("dead letters: %+v %v", dls, err)
	}
	if err := ob.Ack(ctx(), orgA, "hook", 5, nil, []uint64{3}); err != nil {
		t.Fatal(err)
	}
	if dls, _ := ob.DeadLetters(ctx(), orgA, "hook"); len(dls) != 1 || dls[0].Event.Seq != 5 {
		t.Fatalf("after removing 3: %+v", dls)
	}
	// Prune: up to a seq, recorded before a time, at most limit; the
	// numbering goes on; dead letters keep their copy.
	if n, err := ob.Prune(ctx(), orgA, 4, time.Now().Add(-time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("prune of nothing old enough: %d %v", n, err)
	}
	if n, err := ob.Prune(ctx(), orgA, 6, time.Now().Add(time.Minute), 4); err != nil || n != 4 {
		t.Fatalf("prune limited to 4: %d %v", n, err)
	}
	if n, _ := ob.Prune(ctx(), orgA, 6, time.Now().Add(time.Minute), 100); n != 2 {
		t.Fatalf("the rest up to 6: %d", n)
	}
	if rest, _ := ob.After(ctx(), orgA, 0, 100); len(rest) != 4 || rest[0].Seq != 7 {
		t.Fatalf("after pruning: %d events from %d", len(rest), rest[0].Seq)
	}
	if n, _ := ob.Len(ctx(), orgA); n != 4 {
		t.Fatalf("Len %d after pruning", n)
	}
	mustCreate(t, s, newUser(orgA, "next@x.example"))
	if n := lastSeq(t, s, orgA); n != 11 {
		t.Fatalf("numbering after pruning: last %d, want 11", n)
	}
	if dls, _ := ob.DeadLetters(ctx(), orgA, "hook"); len(dls) != 1 || dls[0].Event.ID != evs[4].ID {
		t.Fatalf("a pruned event's dead letter lost its copy: %+v", dls)
	}
}

// testChangedSignal: a consumer waiting on Changed(org) is woken when the
// organization's next events commit (it may be woken more often).
func testChangedSignal(t *testing.T, s gateway.Store) {
	for _, org := range []gateway.OrgID{orgA, orgB} {
		ch := s.Outbox().Changed(org)
		mustCreate(t, s, newUser(org, "wake@x.example"))
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Changed was not signalled by a commit of its events", org)
		}
	}
}

// testChangedByWhatCachesKeep: Changed(org) is also signalled by the
// writes that change what a session cache keeps (the proxy's): a user
// changed without events (a role change records none), and sessions
// ended, so a revocation is never answered from memory.
func testChangedByWhatCachesKeep(t *testing.T, s gateway.Store) {
	u := mustCreate(t, s, newUser(orgA, "cached@x.example"))
	wait := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("Changed was not signalled by %s", what)
		}
	}
	ch := s.Outbox().Changed(orgA)
	if _, err := s.Users().Update(ctx(), orgA, u.ID, 0, bump(nil, func(u *gateway.User) { u.Role = gateway.RoleManager })); err != nil {
		t.Fatal(err)
	}
	wait("a user changed without events", ch)
	at := time.Now().UTC()
	if err := s.Sessions().Create(ctx(), gateway.Session{ID: "sc1", Org: orgA, UserID: u.ID, Protocol: "saml", Created: at, LastSeen: at, Expires: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ch = s.Outbox().Changed(orgA)
	if n, err := s.Sessions().DeleteUser(ctx(), orgA, u.ID); n != 1 || err != nil {
		t.Fatalf("end the user's sessions: %d %v", n, err)
	}
	wait("a user's sessions ended", ch)
}

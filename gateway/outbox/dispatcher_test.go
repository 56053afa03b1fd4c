package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/outbox"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
)

// recorder is an adapter that records what it receives and fails as its
// test tells it to.
type recorder struct {
	mu       sync.Mutex
	got      []gateway.WireEvent
	attempts map[string]int                     // event id → attempts
	fail     func(gateway.WireEvent, int) error // nil: accept
	times    map[string][]time.Time
}

func newRecorder() *recorder {
	return &recorder{attempts: map[string]int{}, times: map[string][]time.Time{}}
}

func (r *recorder) Deliver(ctx context.Context, e gateway.WireEvent) error {
	r.mu.Lock()
	r.attempts[e.ID]++
	n := r.attempts[e.ID]
	r.times[e.ID] = append(r.times[e.ID], time.Now())
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		if err := fail(e, n); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.got = append(r.got, e)
	r.mu.Unlock()
	return nil
}

func (r *recorder) Close() error { return nil }

func (r *recorder) setFail(f func(gateway.WireEvent, int) error) {
	r.mu.Lock()
	r.fail = f
	r.mu.Unlock()
}

func (r *recorder) delivered() []gateway.WireEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// waitFor polls cond (the dispatcher works in the background); the limit
// only turns a hang into a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type env struct {
	t     *testing.T
	path  string
	store *bolt.Store
	svc   *provision.Service
	meta  provision.Meta
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, path: filepath.Join(t.TempDir(), "outbox.db"), meta: provision.Meta{Org: gateway.DefaultOrg, Source: gateway.SourceManual}}
	e.open()
	return e
}

func (e *env) open() {
	s, err := bolt.Open(e.path, bolt.Options{NoSync: true})
	if err != nil {
		e.t.Fatal(err)
	}
	e.store = s
	e.svc = provision.New(s, nil, provision.Policy{Method: gateway.SourceManual, DefaultPool: "default", DefaultRole: "user"})
	e.t.Cleanup(func() { s.Close() })
}

func (e *env) user(name string) *gateway.User {
	e.t.Helper()
	u, err := e.svc.CreateUser(context.Background(), e.meta, &gateway.User{UserName: name, Active: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *env) rename(id, displayName string) {
	e.t.Helper()
	_, err := e.svc.UpdateUser(context.Background(), e.meta, id, 0, func(u *gateway.User) (*gateway.User, error) {
		u.DisplayName = displayName
		return u, nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) start(targets []outbox.Target, opts outbox.Options) *outbox.Dispatcher {
	e.t.Helper()
	if opts.BackoffMin == 0 {
		opts.BackoffMin, opts.BackoffMax = time.Millisecond, 5*time.Millisecond
	}
	opts.AckEvery = 5 * time.Millisecond
	opts.Org = gateway.DefaultOrg
	d := outbox.New(e.store, targets, opts)
	if err := d.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = d.Stop(context.Background()) })
	return d
}

func (e *env) cursor(id string) uint64 {
	c, err := e.store.Outbox().Cursor(context.Background(), gateway.DefaultOrg, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) lastSeq() uint64 {
	s, _ := e.store.Outbox().LastSeq(context.Background(), gateway.DefaultOrg)
	return s
}

// inOrderPerResource checks that each user's events arrived in seq order.
func inOrderPerResource(t *testing.T, got []gateway.WireEvent) {
	t.Helper()
	last := map[string]uint64{}
	for _, e := range got {
		key := e.User.ID
		if e.Seq <= last[key] {
			t.Fatalf("event %d of %s arrived after %d", e.Seq, key, last[key])
		}
		last[key] = e.Seq
	}
}

func TestDeliversEverythingInOrderAndResumes(t *testing.T) {
	e := newEnv(t)
	var users []*gateway.User
	for i := range 20 {
		users = append(users, e.user(fmt.Sprintf("u%d@example.com", i)))
	}
	for i := range 3 {
		for _, u := range users {
			e.rename(u.ID, fmt.Sprintf("name %d", i))
		}
	}
	a, b := newRecorder(), newRecorder()
	d := e.start([]outbox.Target{{ID: "a", Adapter: a}, {ID: "b", Adapter: b}}, outbox.Options{Lanes: 4})
	total := e.lastSeq()
	waitFor(t, "every event at both adapters", func() bool {
		return len(a.delivered()) == int(total) && len(b.delivered()) == int(total)
	})
	inOrderPerResource(t, a.delivered())
	waitFor(t, "the cursors to be written", func() bool { return e.cursor("a") == total && e.cursor("b") == total })
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// New events while stopped; a restart delivers exactly those.
	e.rename(users[0].ID, "after restart")
	a2 := newRecorder()
	e.start([]outbox.Target{{ID: "a", Adapter: a2}}, outbox.Options{})
	waitFor(t, "the new event", func() bool { return len(a2.delivered()) == 1 })
	if got := a2.delivered()[0]; got.Seq != total+1 || got.User.DisplayName != "after restart" {
		t.Fatalf("after restart got %+v", got)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(a2.delivered()); n != 1 {
		t.Fatalf("a restart redelivered acknowledged events: %d", n)
	}
}

func TestRetriesHonourRetryAfterAndGiveUp(t *testing.T) {
	e := newEnv(t)
	u := e.user("ada@example.com")
	r := newRecorder()
	r.setFail(func(ev gateway.WireEvent, n int) error {
		if n < 3 {
			return &gateway.RetryAfterError{After: 120 * time.Millisecond, Err: errors.New("busy")}
		}
		return nil
	})
	e.start([]outbox.Target{{ID: "hook", Adapter: r}}, outbox.Options{MaxAttempts: 5})
	waitFor(t, "delivery after two refusals", func() bool { return len(r.delivered()) == 1 })
	r.mu.Lock()
	times := r.times[r.got[0].ID]
	r.mu.Unlock()
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < 120*time.Millisecond {
			t.Fatalf("attempt %d came %v after the previous one; Retry-After asked for 120ms", i+1, gap)
		}
	}
	// Too many attempts: a dead letter, and the cursor moves on.
	r.setFail(func(gateway.WireEvent, int) error { return errors.New("still down") })
	e.rename(u.ID, "x")
	waitFor(t, "a dead letter", func() bool {
		dls, _ := e.store.Outbox().DeadLetters(context.Background(), gateway.DefaultOrg, "hook")
		return len(dls) == 1 && dls[0].Attempts == 5 && dls[0].LastError == "still down"
	})
	waitFor(t, "the cursor past it", func() bool { return e.cursor("hook") == e.lastSeq() })
}

func TestPermanentFailureHoldsBackItsResourceOnlyAndReplays(t *testing.T) {
	e := newEnv(t)
	bad, good := e.user("bad@example.com"), e.user("good@example.com")
	r := newRecorder()
	broken := true
	var mu sync.Mutex
	r.setFail(func(ev gateway.WireEvent, n int) error {
		mu.Lock()
		defer mu.Unlock()
		if broken && ev.User.ID == bad.ID && ev.Type == gateway.OpUserUpdated {
			return fmt.Errorf("422 unprocessable: %w", gateway.ErrPermanent)
		}
		return nil
	})
	d := e.start([]outbox.Target{{ID: "api", Adapter: r}}, outbox.Options{Lanes: 1}) // one lane: good shares it
	e.rename(bad.ID, "first")                                                        // refused: dead letter
	e.rename(bad.ID, "second")                                                       // held back behind it
	e.rename(good.ID, "flows")                                                       // another resource: delivered
	waitFor(t, "the other resource's event", func() bool {
		for _, ev := range r.delivered() {
			if ev.User.ID == good.ID && ev.User.DisplayName == "flows" {
				return true
			}
		}
		return false
	})
	var dls []gateway.DeadLetter
	waitFor(t, "two dead letters", func() bool {
		dls, _ = e.store.Outbox().DeadLetters(context.Background(), gateway.DefaultOrg, "api")
		return len(dls) == 2
	})
	if dls[0].HeldBehind != 0 || dls[1].HeldBehind != dls[0].Event.Seq || dls[0].Attempts != 1 {
		t.Fatalf("dead letters: %+v", dls)
	}
	for _, ev := range r.delivered() {
		if ev.User.ID == bad.ID && ev.Type == gateway.OpUserUpdated {
			t.Fatalf("an event behind a dead letter was delivered: %+v", ev)
		}
	}
	// Fixed downstream: replay delivers both, in order, and clears them.
	mu.Lock()
	broken = false
	mu.Unlock()
	n, err := d.Replay(context.Background(), "api", 0)
	if err != nil || n != 2 {
		t.Fatalf("replay scheduled %d: %v", n, err)
	}
	waitFor(t, "the replayed events", func() bool {
		var names []string
		for _, ev := range r.delivered() {
			if ev.User.ID == bad.ID && ev.Type == gateway.OpUserUpdated {
				names = append(names, ev.User.DisplayName)
			}
		}
		return slices.Equal(names, []string{"first", "second"})
	})
	waitFor(t, "the dead letters to go", func() bool {
		dls, _ := e.store.Outbox().DeadLetters(context.Background(), gateway.DefaultOrg, "api")
		return len(dls) == 0
	})
	// Later events of the resource flow again.
	e.rename(bad.ID, "third")
	waitFor(t, "a later event", func() bool {
		got := r.delivered()
		return got[len(got)-1].User.DisplayName == "third"
	})
	if _, err := d.Replay(context.Background(), "nope", 0); gateway.ErrorCodeOf(err) != gateway.ErrNotFound {
		t.Fatalf("replay of an unknown adapter: %v", err)
	}
}

func TestDeadLettersSurviveARestart(t *testing.T) {
	e := newEnv(t)
	u := e.user("ada@example.com")
	r := newRecorder()
	r.setFail(func(ev gateway.WireEvent, n int) error {
		if ev.Type == gateway.OpUserUpdated {
			return gateway.ErrPermanent
		}
		return nil
	})
	d := e.start([]outbox.Target{{ID: "api", Adapter: r}}, outbox.Options{})
	e.rename(u.ID, "one")
	waitFor(t, "the dead letter", func() bool { return e.cursor("api") == e.lastSeq() })
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// After a restart the resource is still held back, then replayed.
	r2 := newRecorder()
	d2 := e.start([]outbox.Target{{ID: "api", Adapter: r2}}, outbox.Options{})
	e.rename(u.ID, "two")
	waitFor(t, "the held-back event", func() bool {
		dls, _ := e.store.Outbox().DeadLetters(context.Background(), gateway.DefaultOrg, "api")
		return len(dls) == 2
	})
	if len(r2.delivered()) != 0 {
		t.Fatalf("an event behind a dead letter was delivered after a restart")
	}
	if n, err := d2.Replay(context.Background(), "api", 0); err != nil || n != 2 {
		t.Fatalf("replay: %d %v", n, err)
	}
	waitFor(t, "both, in order", func() bool {
		got := r2.delivered()
		return len(got) == 2 && got[0].User.DisplayName == "one" && got[1].User.DisplayName == "two"
	})
}

func TestStopDuringRetriesLosesNothing(t *testing.T) {
	e := newEnv(t)
	e.user("ada@example.com")
	r := newRecorder()
	r.setFail(func(gateway.WireEvent, int) error { return errors.New("down") })
	d := e.start([]outbox.Target{{ID: "hook", Adapter: r}}, outbox.Options{})
	waitFor(t, "a few attempts", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, n := range r.attempts {
			return n >= 2
		}
		return false
	})
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := e.cursor("hook"); c != 0 {
		t.Fatalf("an undelivered event was acknowledged: cursor %d", c)
	}
	r2 := newRecorder()
	e.start([]outbox.Target{{ID: "hook", Adapter: r2}}, outbox.Options{})
	waitFor(t, "delivery after the restart", func() bool { return len(r2.delivered()) == 1 })
}

func TestPruneKeepsWhatAnyAdapterStillNeeds(t *testing.T) {
	e := newEnv(t)
	for i := range 10 {
		e.user(fmt.Sprintf("u%d@example.com", i))
	}
	fast, slow := newRecorder(), newRecorder()
	slow.setFail(func(gateway.WireEvent, int) error { return errors.New("down") })
	e.start([]outbox.Target{{ID: "fast", Adapter: fast}, {ID: "slow", Adapter: slow}},
		outbox.Options{Retention: time.Nanosecond, PruneEvery: 10 * time.Millisecond, MaxAttempts: 1000})
	waitFor(t, "the fast adapter", func() bool { return e.cursor("fast") == 10 })
	time.Sleep(50 * time.Millisecond) // several prune rounds
	if n, _ := e.store.Outbox().Len(context.Background(), gateway.DefaultOrg); n != 10 {
		t.Fatalf("events the slow adapter still needs were pruned: %d left", n)
	}
	slow.setFail(nil)
	waitFor(t, "the outbox to empty once both are past", func() bool {
		n, _ := e.store.Outbox().Len(context.Background(), gateway.DefaultOrg)
		return n == 0 && e.cursor("slow") == 10
	})
}

// TestReplayWithinOneAcknowledgementStaysDone: a dead letter set aside and
// replayed before its acknowledgement is written must not come back (nor
// hold its resource back) after a restart.
func TestReplayWithinOneAcknowledgementStaysDone(t *testing.T) {
	e := newEnv(t)
	u := e.user("ada@example.com")
	r := newRecorder()
	var mu sync.Mutex
	broken := true
	r.setFail(func(ev gateway.WireEvent, n int) error {
		mu.Lock()
		defer mu.Unlock()
		if broken && ev.Type == gateway.OpUserUpdated {
			return gateway.ErrPermanent
		}
		return nil
	})
	d := outbox.New(e.store, []outbox.Target{{ID: "api", Adapter: r}}, outbox.Options{
		Org: gateway.DefaultOrg, BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond, AckEvery: time.Hour}) // one acknowledgement, at Stop
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.rename(u.ID, "one")
	waitFor(t, "the refusal", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for id, n := range r.attempts {
			if n > 0 && id != "" {
				return len(r.attempts) == 2
			}
		}
		return false
	})
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	broken = false
	mu.Unlock()
	if _, err := d.Replay(context.Background(), "api", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replayed event", func() bool { return len(r.delivered()) == 2 })
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if dls, _ := e.store.Outbox().DeadLetters(context.Background(), gateway.DefaultOrg, "api"); len(dls) != 0 {
		t.Fatalf("a replayed dead letter came back: %+v", dls)
	}
	r2 := newRecorder()
	e.start([]outbox.Target{{ID: "api", Adapter: r2}}, outbox.Options{})
	e.rename(u.ID, "two")
	waitFor(t, "the next event, not held back", func() bool { return len(r2.delivered()) == 1 })
}

// TestReplayDoesNotWaitForABusyLane: a replay is taken up while the lane
// waits to retry another resource's event, and the call returns at once.
func TestReplayDoesNotWaitForABusyLane(t *testing.T) {
	e := newEnv(t)
	parked, failing := e.user("parked@example.com"), e.user("failing@example.com")
	r := newRecorder()
	var mu sync.Mutex
	fixed := false
	r.setFail(func(ev gateway.WireEvent, n int) error {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case ev.Type != gateway.OpUserUpdated:
			return nil
		case ev.User.ID == parked.ID && !fixed:
			return gateway.ErrPermanent
		case ev.User.ID == failing.ID:
			return errors.New("503 for this one, for ever")
		}
		return nil
	})
	d := e.start([]outbox.Target{{ID: "api", Adapter: r}}, outbox.Options{Lanes: 1, BackoffMin: 200 * time.Millisecond, BackoffMax: 400 * time.Millisecond})
	e.rename(parked.ID, "parked")
	waitFor(t, "the dead letter", func() bool { return e.cursor("api") >= 3 })
	e.rename(failing.ID, "stuck") // the only lane now retries this one
	waitFor(t, "the lane to be retrying", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.attempts) == 4 && slices.Max(slices.Collect(maps.Values(r.attempts))) >= 2
	})
	mu.Lock()
	fixed = true
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n, err := d.Replay(ctx, "api", 0)
	if err != nil || n != 1 {
		t.Fatalf("replay: %d %v", n, err)
	}
	waitFor(t, "the replayed event while the lane still retries", func() bool {
		for _, ev := range r.delivered() {
			if ev.User.ID == parked.ID && ev.Type == gateway.OpUserUpdated {
				return true
			}
		}
		return false
	})
}

// TestIdleLanesEnd: a lane's goroutine runs while it has work and ends
// when idle (thousands of organizations with nothing to deliver hold no
// goroutines); new events and replays start lanes again, and nothing is
// lost on the way.
func TestIdleLanesEnd(t *testing.T) {
	e := newEnv(t)
	rec := newRecorder()
	d := e.start([]outbox.Target{{ID: "app", Adapter: rec}}, outbox.Options{Lanes: 4, LaneIdle: 30 * time.Millisecond, MaxAttempts: 1})
	running := func() int {
		st, err := d.Status(context.Background())
		if err != nil || len(st) != 1 {
			t.Fatalf("status: %v %v", st, err)
		}
		return st[0].LanesRunning
	}
	if n := running(); n != 0 {
		t.Fatalf("%d lanes run before any event", n)
	}
	for i := range 8 {
		e.user(fmt.Sprintf("u%d@example.com", i))
	}
	waitFor(t, "8 deliveries", func() bool { return len(rec.delivered()) == 8 })
	waitFor(t, "the lanes to end", func() bool { return running() == 0 })
	// Again, after they ended.
	rec.setFail(func(gateway.WireEvent, int) error { return fmt.Errorf("refused: %w", gateway.ErrPermanent) })
	late := e.user("late@example.com")
	waitFor(t, "the dead letter", func() bool {
		dls, _ := d.DeadLetters(context.Background(), "app")
		return len(dls) == 1
	})
	waitFor(t, "the lanes to end again", func() bool { return running() == 0 })
	// A replay starts the lane that holds it.
	rec.setFail(nil)
	if n, err := d.Replay(context.Background(), "app", 0); err != nil || n != 1 {
		t.Fatalf("replay: %d %v", n, err)
	}
	waitFor(t, "the replayed event", func() bool {
		for _, w := range rec.delivered() {
			if w.User != nil && w.User.ID == late.ID {
				return true
			}
		}
		return false
	})
	waitFor(t, "the cursor past everything", func() bool { return e.cursor("app") == 9 })
}

package outbox

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// worker delivers the outbox to one adapter: a reader hands events to
// lanes in sequence order, lanes deliver, and a tracker moves the durable
// cursor over the events that are done (delivered or set aside) and
// writes the dead letters, in batched acknowledgements.
type worker struct {
	d       *Dispatcher
	id      string
	adapter gateway.Adapter
	lanes   []*lane
	results chan result // to the tracker, in the order things happened

	mu     sync.Mutex // guards cursor and the last failure (read by status)
	cursor uint64
	// The latest failed attempt: what the app answered, and when.
	lastFailure   string
	lastFailureAt time.Time
	failures      uint64 // failed attempts since the start
}

// failed records a failed attempt for the status.
func (w *worker) failed(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastFailure, w.lastFailureAt = err.Error(), time.Now().UTC()
	w.failures++
}

// result is what the tracker hears: an event handed to a lane
// (dispatched), an event done, dead letters added or removed.
type result struct {
	dispatched uint64
	done       uint64
	add        *gateway.DeadLetter
	remove     uint64
}

type lane struct {
	w      *worker
	msgs   chan *gateway.Event
	parked map[string][]gateway.DeadLetter // resource → its dead letters, in order

	// Replay requests reach a lane beside its events, so that one is taken
	// up at once, even while the lane waits to retry an event.
	mu        sync.Mutex
	replays   []uint64      // pending requests: replay from these seqs
	wake      chan struct{} // a request is pending
	replaying bool          // the lane goroutine is in a replay

	// The lane's goroutine runs while it has work: an event or a replay
	// starts it, and it ends after Options.LaneIdle without any, so that the
	// thousands of organizations with nothing to deliver cost no
	// goroutines. Guarded by mu; start is nil before the worker starts
	// and once it stops.
	running bool
	start   func()
}

// ensure runs the lane's goroutine unless it runs (or the worker
// stopped).
func (l *lane) ensure() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.running && l.start != nil {
		l.running = true
		l.start()
	}
}

func newWorker(d *Dispatcher, t Target) *worker {
	w := &worker{d: d, id: t.ID, adapter: t.Adapter, results: make(chan result, 256)}
	for range d.opts.Lanes {
		w.lanes = append(w.lanes, &lane{w: w, msgs: make(chan *gateway.Event, 64), parked: map[string][]gateway.DeadLetter{},
			wake: make(chan struct{}, 1)})
	}
	return w
}

// load reads the durable state: the cursor and the dead letters, which
// park their resources in the lanes that own them.
func (w *worker) load(ctx context.Context) error {
	ob := w.d.store.Outbox()
	c, err := ob.Cursor(ctx, w.d.opts.Org, w.id)
	if err != nil {
		return err
	}
	w.cursor = c
	dls, err := ob.DeadLetters(ctx, w.d.opts.Org, w.id)
	if err != nil {
		return err
	}
	for _, dl := range dls {
		key := resourceKey(&dl.Event)
		l := w.lanes[laneOf(key, len(w.lanes))]
		l.parked[key] = append(l.parked[key], dl)
	}
	w.d.metricDeadLetters(w.id, len(dls))
	return nil
}

func (w *worker) start(ctx context.Context, wg *sync.WaitGroup) {
	var lanes sync.WaitGroup
	for _, l := range w.lanes {
		l.mu.Lock()
		l.start = func() { lanes.Go(func() { l.run(ctx) }) }
		l.mu.Unlock()
	}
	tracked := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.track(ctx, tracked)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.read(ctx)
		for _, l := range w.lanes {
			l.mu.Lock()
			l.start = nil // no lane starts any more: lanes.Wait below is the last
			l.mu.Unlock()
			close(l.msgs)
		}
		lanes.Wait()
		close(w.results) // the tracker writes what is left and ends
		<-tracked
	}()
}

// read hands events to lanes in sequence order, waiting for new ones.
func (w *worker) read(ctx context.Context) {
	ob := w.d.store.Outbox()
	pos := w.cursor
	for ctx.Err() == nil {
		changed := ob.Changed(w.d.opts.Org) // before reading: a commit after it wakes us
		events, err := ob.After(ctx, w.d.opts.Org, pos, w.d.opts.Batch)
		if err != nil {
			if ctx.Err() == nil {
				w.d.opts.Logger.Warn("outbox: read failed", "adapter", w.id, "error", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		for i := range events {
			e := &events[i]
			w.results <- result{dispatched: e.Seq}
			l := w.lanes[laneOf(resourceKey(e), len(w.lanes))]
			l.ensure()
			select {
			case l.msgs <- e:
			case <-ctx.Done():
				return
			}
			// Again after the send: a lane that ended between the two
			// (finding nothing to do) starts for this event.
			l.ensure()
			pos = e.Seq
		}
		if len(events) < w.d.opts.Batch {
			select {
			case <-changed:
			case <-ctx.Done():
			case <-time.After(15 * time.Second): // a safety net, not the mechanism
			}
		}
	}
}

// track moves the cursor over the events that are done, in order, and
// writes it with the dead-letter changes every AckEvery.
func (w *worker) track(ctx context.Context, finished chan<- struct{}) {
	defer close(finished)
	var pending []uint64 // dispatched, in order
	done := map[uint64]bool{}
	// Dead-letter changes since the last flush, by seq: a later change of
	// the same seq replaces the earlier (set aside, then replayed within
	// one flush: removed; replayed, then failing again: set aside).
	dead := map[uint64]*gateway.DeadLetter{} // nil: remove
	cursor := w.cursor
	flushed := cursor
	flush := func(ctx context.Context) {
		if cursor == flushed && len(dead) == 0 {
			return
		}
		var adds []gateway.DeadLetter
		var removes []uint64
		for seq, dl := range dead {
			if dl == nil {
				removes = append(removes, seq)
			} else {
				adds = append(adds, *dl)
			}
		}
		if err := w.d.store.Outbox().Ack(ctx, w.d.opts.Org, w.id, cursor, adds, removes); err != nil {
			if ctx.Err() == nil {
				w.d.opts.Logger.Warn("outbox: acknowledge failed", "adapter", w.id, "error", err)
			}
			return // kept for the next flush
		}
		deadChanged := len(dead) > 0
		flushed = cursor
		clear(dead)
		w.mu.Lock()
		w.cursor = cursor
		w.mu.Unlock()
		w.d.metricProgress(ctx, w, deadChanged)
	}
	// The write is due AckEvery after something changed: an idle worker
	// (most organizations, most of the time) wakes for nothing.
	var due <-chan time.Time
	for {
		if due == nil && (cursor != flushed || len(dead) > 0) {
			due = time.After(w.d.opts.AckEvery)
		}
		select {
		case r, ok := <-w.results:
			if !ok {
				// Stopping: write what is done, outside the cancelled context.
				final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				flush(final)
				cancel()
				return
			}
			switch {
			case r.dispatched != 0:
				pending = append(pending, r.dispatched)
			case r.done != 0:
				done[r.done] = true
			}
			if r.add != nil {
				dead[r.add.Event.Seq] = r.add
			}
			if r.remove != 0 {
				dead[r.remove] = nil
			}
			for len(pending) > 0 && done[pending[0]] {
				delete(done, pending[0])
				cursor = pending[0]
				pending = pending[1:]
			}
		case <-due:
			due = nil
			flush(ctx) // what it could not write makes the next one due
		}
	}
}

// run delivers the lane's events in order, and takes up replays, until
// it has had nothing to do for Options.LaneIdle.
func (l *lane) run(ctx context.Context) {
	idle := time.NewTimer(l.w.d.opts.LaneIdle)
	defer idle.Stop()
	for {
		select {
		case e, ok := <-l.msgs:
			if !ok {
				return
			}
			if ctx.Err() == nil { // after Stop: drained, nothing more is delivered
				l.handle(ctx, e)
			}
		case <-l.wake:
			l.runReplays(ctx)
		case <-idle.C:
			l.mu.Lock()
			if len(l.msgs) == 0 && len(l.replays) == 0 {
				l.running = false // an event or request after this starts another
				l.mu.Unlock()
				return
			}
			l.mu.Unlock()
		}
		idle.Reset(l.w.d.opts.LaneIdle)
	}
}

// pause waits d (a retry's backoff), taking up replay requests meanwhile;
// it reports whether d passed (false: the dispatcher stops).
func (l *lane) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		case <-l.wake:
			l.runReplays(ctx) // no-op inside a replay: that one loops until none is pending
		}
	}
}

// request queues a replay for the lane.
func (l *lane) request(from uint64) {
	l.mu.Lock()
	l.replays = append(l.replays, from)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default: // already signalled
	}
	l.ensure()
}

func (l *lane) runReplays(ctx context.Context) {
	if l.replaying {
		return
	}
	l.replaying = true
	defer func() { l.replaying = false }()
	for ctx.Err() == nil {
		l.mu.Lock()
		reqs := l.replays
		l.replays = nil
		l.mu.Unlock()
		if len(reqs) == 0 {
			return
		}
		l.replay(ctx, slices.Min(reqs))
	}
}

func (l *lane) handle(ctx context.Context, e *gateway.Event) {
	w := l.w
	key := resourceKey(e)
	if list, parked := l.parked[key]; parked {
		dl := gateway.DeadLetter{Event: *e, At: w.d.opts.Clock.Now(), HeldBehind: list[0].Event.Seq,
			LastError: "held back behind an earlier event of the same resource"}
		l.parked[key] = append(list, dl)
		w.results <- result{done: e.Seq, add: &dl}
		w.d.metricResult(w.id, "held_back")
		return
	}
	attempts, lastErr, ok := l.deliver(ctx, e)
	if ctx.Err() != nil {
		return // not done: delivered again after a restart
	}
	if ok {
		w.results <- result{done: e.Seq}
		return
	}
	dl := gateway.DeadLetter{Event: *e, Attempts: attempts, LastError: lastErr, At: w.d.opts.Clock.Now()}
	l.parked[key] = []gateway.DeadLetter{dl}
	w.results <- result{done: e.Seq, add: &dl}
	w.d.metricResult(w.id, "dead_lettered")
	w.d.opts.Logger.Warn("outbox: event set aside as a dead letter", "adapter", w.id, "seq", e.Seq, "type", e.Op,
		"attempts", attempts, "error", lastErr)
}

// deliver tries an event until it is delivered, fails permanently, runs
// out of attempts, or the dispatcher stops.
func (l *lane) deliver(ctx context.Context, e *gateway.Event) (attempts int, lastErr string, ok bool) {
	w := l.w
	o := w.d.opts
	wire := e.Wire()
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, o.Timeout)
		start := time.Now()
		err := w.adapter.Deliver(actx, wire)
		cancel()
		w.d.metricLatency(w.id, time.Since(start))
		if err == nil {
			w.d.metricResult(w.id, "delivered")
			return attempt, "", true
		}
		if ctx.Err() != nil {
			return attempt, err.Error(), false
		}
		w.failed(err)
		if errors.Is(err, gateway.ErrPermanent) || attempt >= o.MaxAttempts {
			return attempt, err.Error(), false
		}
		wait := backoff(attempt, o.BackoffMin, o.BackoffMax)
		var ra *gateway.RetryAfterError
		if errors.As(err, &ra) && ra.After > wait {
			wait = ra.After
		}
		wait = min(wait, max(o.BackoffMax, maxRetryAfter)) // a Retry-After of a day stalls a lane for a day
		w.d.metricResult(w.id, "retried")
		o.Logger.Info("outbox: delivery failed, will retry", "adapter", w.id, "seq", e.Seq, "attempt", attempt,
			"retry_in_ms", wait.Milliseconds(), "error", err)
		if !l.pause(ctx, wait) {
			return attempt, err.Error(), false
		}
	}
}

// maxRetryAfter caps how long a downstream's Retry-After may hold a lane.
const maxRetryAfter = 5 * time.Minute

// replay delivers, in order, every parked resource that has a dead letter
// at or after from.
func (l *lane) replay(ctx context.Context, from uint64) {
	var keys []string
	for key, list := range l.parked {
		if list[len(list)-1].Event.Seq >= from {
			keys = append(keys, key)
		}
	}
	w := l.w
	for _, key := range keys {
		list := l.parked[key]
		delete(l.parked, key)
		for i := range list {
			attempts, lastErr, ok := l.deliver(ctx, &list[i].Event)
			if ctx.Err() != nil {
				l.parked[key] = list[i:] // still dead letters in the store
				return
			}
			if ok {
				w.results <- result{remove: list[i].Event.Seq}
				w.d.metricResult(w.id, "replayed")
				continue
			}
			// Failed again: it and the rest stay set aside, in order.
			rest := list[i:]
			rest[0].Attempts += attempts
			rest[0].LastError, rest[0].At, rest[0].HeldBehind = lastErr, w.d.opts.Clock.Now(), 0
			w.results <- result{add: &rest[0]}
			l.parked[key] = rest
			break
		}
	}
}

// replay schedules a replay in every lane (each takes up its own parked
// resources) and says how many dead letters it concerns: those of the
// resources that have one at or after from. It does not wait.
func (w *worker) replay(ctx context.Context, from uint64) (int, error) {
	n, err := w.replayCount(ctx, from)
	if err != nil {
		return 0, err
	}
	for _, l := range w.lanes {
		l.request(from)
	}
	return n, nil
}

// replayCount is how many dead letters a replay from from concerns.
func (w *worker) replayCount(ctx context.Context, from uint64) (int, error) {
	dls, err := w.d.store.Outbox().DeadLetters(ctx, w.d.opts.Org, w.id)
	if err != nil {
		return 0, err
	}
	affected := map[string]bool{}
	for _, dl := range dls {
		if dl.Event.Seq >= from {
			affected[resourceKey(&dl.Event)] = true
		}
	}
	n := 0
	for _, dl := range dls {
		if affected[resourceKey(&dl.Event)] {
			n++
		}
	}
	return n, nil
}

// status reads an adapter's delivery state; counting its dead letters
// reads them all, so it is optional.
func (w *worker) status(ctx context.Context, countDeadLetters bool) (Status, error) {
	ob := w.d.store.Outbox()
	w.mu.Lock()
	st := Status{Adapter: w.id, Cursor: w.cursor, Failures: w.failures, LastFailure: w.lastFailure, LastFailureAt: w.lastFailureAt}
	cursor := w.cursor
	w.mu.Unlock()
	st.LanesRunning = w.runningLanes()
	var err error
	if st.LastSeq, err = ob.LastSeq(ctx, w.d.opts.Org); err != nil {
		return st, err
	}
	if st.Stored, err = ob.Len(ctx, w.d.opts.Org); err != nil {
		return st, err
	}
	if st.LastSeq > cursor {
		st.Lag = st.LastSeq - cursor
		if next, err := ob.After(ctx, w.d.opts.Org, cursor, 1); err == nil && len(next) == 1 {
			st.Oldest = next[0].OccurredAt
		}
	}
	if countDeadLetters {
		dls, err := ob.DeadLetters(ctx, w.d.opts.Org, w.id)
		if err != nil {
			return st, err
		}
		st.DeadLetters = len(dls)
	}
	return st, nil
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// runningLanes counts the lanes whose goroutine runs.
func (w *worker) runningLanes() int {
	n := 0
	for _, l := range w.lanes {
		l.mu.Lock()
		if l.running {
			n++
		}
		l.mu.Unlock()
	}
	return n
}

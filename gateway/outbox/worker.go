package outbox

import (
	"context"
	"errors"
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

	mu     sync.Mutex // guards cursor (read by status)
	cursor uint64
}

// result is what the tracker hears: an event handed to a lane
// (dispatched), an event done, dead letters added or removed.
type result struct {
	dispatched uint64
	done       uint64
	add        *gateway.DeadLetter
	remove     uint64
}

// laneMsg is a lane's work: an event in order, or a replay.
type laneMsg struct {
	event  *gateway.Event
	replay *replayReq
}

type replayReq struct {
	from  uint64
	reply chan int // how many dead letters are scheduled
}

type lane struct {
	w      *worker
	msgs   chan laneMsg
	parked map[string][]gateway.DeadLetter // resource → its dead letters, in order
}

func newWorker(d *Dispatcher, t Target) *worker {
	w := &worker{d: d, id: t.ID, adapter: t.Adapter, results: make(chan result, 4096)}
	for range d.opts.Lanes {
		w.lanes = append(w.lanes, &lane{w: w, msgs: make(chan laneMsg, 64), parked: map[string][]gateway.DeadLetter{}})
	}
	return w
}

// load reads the durable state: the cursor and the dead letters, which
// park their resources in the lanes that own them.
func (w *worker) load(ctx context.Context) error {
	ob := w.d.store.Outbox()
	c, err := ob.Cursor(ctx, w.d.opts.Tenant, w.id)
	if err != nil {
		return err
	}
	w.cursor = c
	dls, err := ob.DeadLetters(ctx, w.d.opts.Tenant, w.id)
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
		lanes.Go(func() { l.run(ctx) })
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
		changed := ob.Changed() // before reading: a commit after it wakes us
		events, err := ob.After(ctx, w.d.opts.Tenant, pos, w.d.opts.Batch)
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
			select {
			case l.msgs <- laneMsg{event: e}:
			case <-ctx.Done():
				return
			}
			pos = e.Seq
		}
		if len(events) < w.d.opts.Batch {
			select {
			case <-changed:
			case <-ctx.Done():
			case <-time.After(5 * time.Second): // a safety net, not the mechanism
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
	var adds []gateway.DeadLetter
	var removes []uint64
	cursor := w.cursor
	flushed := cursor
	flush := func(ctx context.Context) {
		if cursor == flushed && len(adds) == 0 && len(removes) == 0 {
			return
		}
		if err := w.d.store.Outbox().Ack(ctx, w.d.opts.Tenant, w.id, cursor, adds, removes); err != nil {
			if ctx.Err() == nil {
				w.d.opts.Logger.Warn("outbox: acknowledge failed", "adapter", w.id, "error", err)
			}
			return // kept for the next flush
		}
		deadChanged := len(adds) > 0 || len(removes) > 0
		flushed, adds, removes = cursor, nil, nil
		w.mu.Lock()
		w.cursor = cursor
		w.mu.Unlock()
		w.d.metricProgress(ctx, w, deadChanged)
	}
	tick := time.NewTicker(w.d.opts.AckEvery)
	defer tick.Stop()
	for {
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
				adds = append(adds, *r.add)
			}
			if r.remove != 0 {
				removes = append(removes, r.remove)
			}
			for len(pending) > 0 && done[pending[0]] {
				delete(done, pending[0])
				cursor = pending[0]
				pending = pending[1:]
			}
		case <-tick.C:
			flush(ctx)
		}
	}
}

// run delivers the lane's messages in order.
func (l *lane) run(ctx context.Context) {
	for m := range l.msgs {
		if ctx.Err() != nil {
			continue // drain: nothing more is delivered after Stop
		}
		switch {
		case m.event != nil:
			l.handle(ctx, m.event)
		case m.replay != nil:
			l.replay(ctx, m.replay)
		}
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
		if errors.Is(err, gateway.ErrPermanent) || attempt >= o.MaxAttempts {
			return attempt, err.Error(), false
		}
		wait := backoff(attempt, o.BackoffMin, o.BackoffMax)
		var ra *gateway.RetryAfterError
		if errors.As(err, &ra) && ra.After > wait {
			wait = ra.After
		}
		w.d.metricResult(w.id, "retried")
		o.Logger.Info("outbox: delivery failed, will retry", "adapter", w.id, "seq", e.Seq, "attempt", attempt,
			"retry_in", wait.Round(time.Millisecond), "error", err)
		if !sleep(ctx, wait) {
			return attempt, err.Error(), false
		}
	}
}

// replay delivers, in order, every parked resource that has a dead letter
// at or after req.from.
func (l *lane) replay(ctx context.Context, req *replayReq) {
	var keys []string
	n := 0
	for key, list := range l.parked {
		if list[len(list)-1].Event.Seq >= req.from {
			keys = append(keys, key)
			n += len(list)
		}
	}
	req.reply <- n
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

func (w *worker) replay(ctx context.Context, from uint64) (int, error) {
	total := 0
	for _, l := range w.lanes {
		req := &replayReq{from: from, reply: make(chan int, 1)}
		select {
		case l.msgs <- laneMsg{replay: req}:
		case <-ctx.Done():
			return total, ctx.Err()
		}
		select {
		case n := <-req.reply:
			total += n
		case <-ctx.Done():
			return total, ctx.Err()
		}
	}
	return total, nil
}

// status reads an adapter's delivery state; counting its dead letters
// reads them all, so it is optional.
func (w *worker) status(ctx context.Context, countDeadLetters bool) (Status, error) {
	ob := w.d.store.Outbox()
	w.mu.Lock()
	cursor := w.cursor
	w.mu.Unlock()
	st := Status{Adapter: w.id, Cursor: cursor}
	var err error
	if st.LastSeq, err = ob.LastSeq(ctx, w.d.opts.Tenant); err != nil {
		return st, err
	}
	if st.Stored, err = ob.Len(ctx, w.d.opts.Tenant); err != nil {
		return st, err
	}
	if st.LastSeq > cursor {
		st.Lag = st.LastSeq - cursor
		if next, err := ob.After(ctx, w.d.opts.Tenant, cursor, 1); err == nil && len(next) == 1 {
			st.Oldest = next[0].OccurredAt
		}
	}
	if countDeadLetters {
		dls, err := ob.DeadLetters(ctx, w.d.opts.Tenant, w.id)
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

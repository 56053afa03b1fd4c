// Package outbox delivers the events recorded in the store's outbox to the
// configured adapters: one worker per adapter with its own durable cursor,
// retries with exponential backoff and jitter (Retry-After honoured), dead
// letters after a permanent failure or too many attempts, per-resource
// order, replay, and pruning of delivered events past their retention.
//
// Order: each worker delivers over a fixed number of lanes, and all events
// of one user or group go through the same lane, in sequence order. A
// failing event holds back the rest of its lane (a downstream that is down
// is down for everyone) until it is delivered or set aside as a dead
// letter; from then on the later events of the same resource are set aside
// behind it (held back, in order) while other resources flow again. A
// replay delivers a resource's dead letters in order before anything newer
// of that resource.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/metrics"
)

// Target is one adapter to deliver to, with the id its cursor is kept by.
type Target struct {
	ID      string
	Adapter gateway.Adapter
}

// Options tunes the dispatcher; zero values get the defaults.
type Options struct {
	Org         gateway.OrgID
	MaxAttempts int           // before an event becomes a dead letter (2400)
	BackoffMin  time.Duration // after the first failure, doubling (200ms)
	BackoffMax  time.Duration // cap of the doubling (2s)
	Timeout     time.Duration // of one attempt (10s)
	Lanes       int           // deliveries in flight per adapter (4)
	Retention   time.Duration // delivered events are kept this long (7 days)
	PruneEvery  time.Duration // how often pruning runs (a quarter of the retention, between 1s and 1m)
	AckEvery    time.Duration // how often cursors are written (100ms)
	Batch       int           // events read at once (512)
	LaneIdle    time.Duration // a lane's goroutine ends after this long without work (30s)
	Logger      *slog.Logger
	Metrics     *metrics.Metrics
	// Forward, on a dispatcher that only observes (another replica
	// delivers the organization), passes a replay on to the one that
	// delivers; without it such a replay is refused.
	Forward func(ctx context.Context, adapter string, from uint64) error
	// SkipGauges leaves the per-adapter gauges (lag, oldest, dead
	// letters) to another dispatcher: they are one organization's (the
	// default's); every organization's is in Status. Counters are shared.
	SkipGauges bool
	Clock      gateway.Clock
}

func (o *Options) defaults() {
	if err := o.Org.Check(); err != nil {
		panic("outbox.New: " + err.Error()) // the wiring names the organization; none is assumed
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 2400
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = 200 * time.Millisecond
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = max(2*time.Second, o.BackoffMin)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Lanes <= 0 {
		// Four keep a local receiver busy (7,000+ events/s) while leaving
		// the CPU to SCIM; eight took a quarter off SCIM writes on one core.
		o.Lanes = 4
	}
	if o.Retention < 0 {
		o.Retention = 0
	}
	if o.PruneEvery <= 0 {
		// A short retention is pruned often, so that the outbox (and the
		// file, which only grows to its high-water mark) stays small.
		o.PruneEvery = min(max(o.Retention/4, time.Second), time.Minute)
	}
	if o.AckEvery <= 0 {
		o.AckEvery = 100 * time.Millisecond
	}
	if o.Batch <= 0 {
		o.Batch = 512
	}
	if o.LaneIdle <= 0 {
		o.LaneIdle = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = gateway.SystemClock{}
	}
}

// Dispatcher runs one worker per target.
type Dispatcher struct {
	store   gateway.Store
	opts    Options
	workers []*worker

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	stopped atomic.Bool
}

// New builds a dispatcher; Start runs it.
func New(store gateway.Store, targets []Target, opts Options) *Dispatcher {
	opts.defaults()
	d := &Dispatcher{store: store, opts: opts}
	for _, t := range targets {
		d.workers = append(d.workers, newWorker(d, t))
	}
	return d
}

// Start loads each worker's state (cursor, dead letters) and starts
// delivering.
func (d *Dispatcher) Start(ctx context.Context) error {
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.cancel = cancel
	for _, w := range d.workers {
		if err := w.load(ctx); err != nil {
			cancel()
			return fmt.Errorf("outbox: start %s: %w", w.id, err)
		}
	}
	for _, w := range d.workers {
		w.start(run, &d.wg)
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.pruneLoop(run)
	}()
	return nil
}

// Observe loads each worker's durable state without delivering: a
// replica that does not deliver an organization's events (another holds
// its lease) answers for their status and dead letters from the store.
func (d *Dispatcher) Observe(ctx context.Context) error {
	for _, w := range d.workers {
		if err := w.load(ctx); err != nil {
			return fmt.Errorf("outbox: read the state of %s: %w", w.id, err)
		}
	}
	return nil
}

// Stop ends delivery: deliveries in flight are abandoned (they are
// delivered again after a restart), cursors are written, adapters closed.
func (d *Dispatcher) Stop(ctx context.Context) error {
	if d.cancel == nil {
		return nil
	}
	d.stopped.Store(true)
	d.cancel()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("outbox: stop: %w", ctx.Err())
	}
	var errs []error
	for _, w := range d.workers {
		if err := w.adapter.Close(); err != nil {
			errs = append(errs, fmt.Errorf("outbox: close %s: %w", w.id, err))
		}
	}
	return errors.Join(errs...)
}

// Replay schedules the dead letters of adapter with Seq >= from for
// delivery again, and with each of them the other dead letters of the
// same user or group (in order, so that none overtakes another). It
// returns how many were scheduled; delivery goes on in the background.
func (d *Dispatcher) Replay(ctx context.Context, adapter string, from uint64) (int, error) {
	if d.stopped.Load() {
		return 0, gateway.Errorf(gateway.ErrUnavailable, "delivery is stopping; replay after the restart")
	}
	for _, w := range d.workers {
		if w.id != adapter {
			continue
		}
		if d.cancel != nil {
			return w.replay(ctx, from)
		}
		if d.opts.Forward == nil {
			return 0, gateway.Errorf(gateway.ErrUnavailable, "this process does not deliver organization %s's events", d.opts.Org)
		}
		n, err := w.replayCount(ctx, from)
		if err != nil {
			return 0, err
		}
		return n, d.opts.Forward(ctx, adapter, from)
	}
	return 0, gateway.Errorf(gateway.ErrNotFound, "no adapter %q is configured", adapter)
}

// Status is one adapter's delivery state.
type Status struct {
	Adapter     string    `json:"adapter"`
	Cursor      uint64    `json:"cursor"`  // events up to here are done
	LastSeq     uint64    `json:"lastSeq"` // the newest event
	Lag         uint64    `json:"lag"`     // events not yet done
	Stored      int       `json:"stored"`  // events kept in the outbox (all adapters, within the retention)
	Oldest      time.Time `json:"oldestUndelivered,omitzero"`
	DeadLetters int       `json:"deadLetters"`
	// LanesRunning counts the lanes delivering now (an idle lane's
	// goroutine ends: an organization with nothing to deliver has none).
	LanesRunning int `json:"lanesRunning"`
	// Failures counts failed attempts since the gateway started; the last
	// one's error (what the downstream answered) and time.
	Failures      uint64    `json:"failures"`
	LastFailure   string    `json:"lastFailure,omitempty"`
	LastFailureAt time.Time `json:"lastFailureAt,omitzero"`
}

// Status reports each adapter's delivery state.
func (d *Dispatcher) Status(ctx context.Context) ([]Status, error) {
	var out []Status
	for _, w := range d.workers {
		st, err := w.status(ctx, true)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// DeadLetters lists an adapter's dead letters.
func (d *Dispatcher) DeadLetters(ctx context.Context, adapter string) ([]gateway.DeadLetter, error) {
	for _, w := range d.workers {
		if w.id == adapter {
			return d.store.Outbox().DeadLetters(ctx, d.opts.Org, w.id)
		}
	}
	return nil, gateway.Errorf(gateway.ErrNotFound, "no adapter %q is configured", adapter)
}

// pruneLoop deletes events every adapter is past and that are older than
// the retention.
func (d *Dispatcher) pruneLoop(ctx context.Context) {
	t := time.NewTicker(d.opts.PruneEvery)
	defer t.Stop()
	for {
		if err := d.prune(ctx); err != nil && ctx.Err() == nil {
			d.opts.Logger.Warn("outbox: prune failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *Dispatcher) prune(ctx context.Context) error {
	upTo := ^uint64(0) // with no adapter (none takes this organization's events), the retention alone
	for _, w := range d.workers {
		c, err := d.store.Outbox().Cursor(ctx, d.opts.Org, w.id)
		if err != nil {
			return err
		}
		upTo = min(upTo, c)
	}
	before := d.opts.Clock.Now().Add(-d.opts.Retention)
	const chunk = 5000 // keep each write transaction small
	for {
		n, err := d.store.Outbox().Prune(ctx, d.opts.Org, upTo, before, chunk)
		if err != nil || n < chunk {
			return err
		}
	}
}

// resourceKey names the user or group an event is about: its events keep
// their order.
func resourceKey(e *gateway.Event) string {
	switch {
	case e.User != nil:
		return "user:" + e.User.ID
	case e.Group != nil:
		return "group:" + e.Group.ID
	}
	return "event:" + e.ID
}

func laneOf(key string, lanes int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(lanes))
}

// backoff is the wait after the n-th failed attempt: doubling from min,
// capped at max, with jitter over its upper half so that retries of many
// events do not arrive together.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

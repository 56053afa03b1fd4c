package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/outbox"
)

// deliveries runs one outbox dispatcher per organization over the same
// adapters: each organization's events have their own cursors, retries
// and dead letters, so a downstream failing for one organization's
// events never holds back another's.
type deliveries struct {
	store   gateway.Store
	targets []outbox.Target   // the adapters, opened once, closed by Stop
	onlyFor [][]gateway.OrgID // per target: the organizations it is limited to (none: all)
	opts    outbox.Options    // every dispatcher's, but Org and SkipGauges

	mu      sync.Mutex
	byOrg   map[gateway.OrgID]*outbox.Dispatcher
	stopped bool
	// deleting are the deleted organizations whose last events are still
	// being delivered; finishing, those being erased for good (no
	// dispatcher starts for them meanwhile).
	deleting, finishing map[gateway.OrgID]bool

	// leases, with a store replicas share, split the organizations among
	// the replicas: each of deliveryShards leases is held by one replica,
	// which alone delivers the events of the organizations hashed to it.
	// held maps the shards held here to the channel closed when the hold
	// is lost. Without leases (bbolt: one process) everything is here.
	leases gateway.Leaser
	held   map[int]heldLease
	// grace is how long after claiming a lease this replica waits before
	// delivering under it: a former holder cut off from the database
	// notices within less and stops (see postgres.LeaseGrace).
	grace time.Duration
	// registryRead is when keepLeases last started the dispatchers of the
	// registered organizations (those another replica created are found
	// within registryEvery).
	registryRead time.Time
}

// registryEvery is how often, with replicas, the registry is read for
// organizations another replica created.
const registryEvery = 10 * time.Second

// heldLease is a delivery lease this replica holds.
type heldLease struct {
	lost   <-chan struct{}
	active bool // past the grace: its organizations are delivered here
	since  time.Time
}

// deliveryShards is how many delivery leases the organizations are
// hashed into: few enough that a replica tries them all every second or
// two, enough to spread organizations over several replicas.
const deliveryShards = 16

func shardOf(org gateway.OrgID) int {
	h := fnv.New32a()
	h.Write([]byte(org))
	return int(h.Sum32() % deliveryShards)
}

// errDeliveredElsewhere: another replica holds the organization's lease.
var errDeliveredElsewhere = gateway.Errorf(gateway.ErrUnavailable, "another replica delivers this organization's events")

// deliversHereLocked reports whether this replica delivers org's events.
func (d *deliveries) deliversHereLocked(org gateway.OrgID) bool {
	return d.leases == nil || d.held[shardOf(org)].active
}

// keepLeases claims the delivery leases no replica holds (all of them at
// the first start, those of a replica that died or stopped later) and
// starts delivering the organizations they cover. A lease lost (the
// database connection holding it broke) stops its organizations'
// dispatchers at once.
func (d *deliveries) keepLeases(ctx context.Context, log *slog.Logger) {
	if d.leases == nil {
		return
	}
	activated := false
	for shard := range deliveryShards {
		d.mu.Lock()
		h, have := d.held[shard]
		if have && !h.active && time.Since(h.since) >= d.grace {
			h.active, activated = true, true
			d.held[shard] = h
		}
		stopped := d.stopped
		d.mu.Unlock()
		if have || stopped {
			continue
		}
		lost, ok, err := d.leases.TryLease(ctx, fmt.Sprintf("delivery/%d", shard))
		if err != nil {
			log.Warn("delivery: claiming a delivery lease (retried)", "error", err)
			return
		}
		if !ok {
			continue
		}
		d.mu.Lock()
		if d.stopped { // stopping meanwhile: the lease is not ours to keep
			d.mu.Unlock()
			d.leases.ReleaseLease(ctx, fmt.Sprintf("delivery/%d", shard))
			return
		}
		if d.held == nil {
			d.held = map[int]heldLease{}
		}
		d.held[shard] = heldLease{lost: lost, since: time.Now(), active: d.grace <= 0}
		activated = activated || d.grace <= 0
		d.mu.Unlock()
		go d.watchLease(shard, lost, log)
	}
	if activated || time.Since(d.registryRead) >= registryEvery {
		d.registryRead = time.Now()
		if err := d.ensureRegistered(ctx); err != nil {
			log.Error("delivery: starting the organizations' dispatchers", "error", err)
		}
	}
}

// watchLease stops the dispatchers of shard's organizations when its
// lease is lost.
func (d *deliveries) watchLease(shard int, lost <-chan struct{}, log *slog.Logger) {
	<-lost
	d.mu.Lock()
	if d.held[shard].lost != lost {
		d.mu.Unlock()
		return
	}
	delete(d.held, shard)
	var stopping []*outbox.Dispatcher
	for org, disp := range d.byOrg {
		if shardOf(org) == shard {
			stopping = append(stopping, disp)
			delete(d.byOrg, org)
		}
	}
	d.mu.Unlock()
	log.Warn("delivery: a delivery lease was lost (the database connection broke); its organizations are delivered by whichever replica claims it next", "shard", shard, "organizations", len(stopping))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, disp := range stopping {
		_ = disp.Stop(ctx)
	}
}

// releaseLeases gives every lease up (a replica shutting down hands its
// organizations to the others at once, not after its connection times
// out).
func (d *deliveries) releaseLeases() {
	if d.leases == nil {
		return
	}
	d.mu.Lock()
	shards := make([]int, 0, len(d.held))
	for shard := range d.held {
		shards = append(shards, shard)
	}
	clear(d.held)
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, shard := range shards {
		d.leases.ReleaseLease(ctx, fmt.Sprintf("delivery/%d", shard))
	}
}

// sharedAdapter is an adapter every organization's dispatcher delivers
// to; a dispatcher stopping does not close it.
type sharedAdapter struct{ gateway.Adapter }

func (sharedAdapter) Close() error { return nil }

// ensure starts org's dispatcher unless it runs.
func (d *deliveries) ensure(ctx context.Context, org gateway.OrgID) (*outbox.Dispatcher, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return nil, gateway.Errorf(gateway.ErrUnavailable, "delivery is stopping")
	}
	if disp, ok := d.byOrg[org]; ok {
		return disp, nil
	}
	if d.finishing[org] {
		return nil, gateway.Errorf(gateway.ErrNotFound, "organization %q is deleted", org)
	}
	if !d.deliversHereLocked(org) {
		return nil, errDeliveredElsewhere
	}
	disp := outbox.New(d.store, d.targetsOf(org), d.optsOf(org))
	if err := disp.Start(ctx); err != nil {
		return nil, fmt.Errorf("start delivery for organization %q: %w", org, err)
	}
	d.byOrg[org] = disp
	if d.leases != nil { // replays asked of other replicas before this one delivered org
		go d.takeReplays(context.WithoutCancel(ctx), org, d.opts.Logger)
	}
	return disp, nil
}

// ensureRegistered starts a dispatcher for every registered organization
// without one (at start, and after the registry changed, here or on
// another replica).
func (d *deliveries) ensureRegistered(ctx context.Context) error {
	var after gateway.OrgID
	var failed []error
	for {
		page, _, err := d.store.Orgs().List(ctx, after, 500)
		if err != nil {
			return fmt.Errorf("list organizations: %w", err)
		}
		for _, o := range page {
			if !o.DeletedAt.IsZero() {
				d.markDeleting(o.ID)
			}
			// One organization's failure to start holds back none of the
			// others' (the default's is started, and fatal, before this).
			if _, err := d.ensure(ctx, o.ID); err != nil && err != errDeliveredElsewhere {
				failed = append(failed, err)
			}
		}
		if len(page) < 500 {
			return errors.Join(failed...)
		}
		after = page[len(page)-1].ID
	}
}

// of returns org's dispatcher, starting it if the organization has none
// yet (its first event may have been written a moment ago).
func (d *deliveries) of(ctx context.Context, org gateway.OrgID) (*outbox.Dispatcher, error) {
	if d == nil {
		return nil, gateway.Errorf(gateway.ErrUnavailable, "delivery is not running")
	}
	disp, err := d.ensure(ctx, org)
	if err != errDeliveredElsewhere {
		return disp, err
	}
	// Another replica delivers org (or none yet, in its lease's grace):
	// answer from the store, and pass replays on through it.
	opts := d.optsOf(org)
	opts.Forward = func(ctx context.Context, adapter string, from uint64) error {
		return d.forwardReplay(ctx, org, adapter, from)
	}
	observer := outbox.New(d.store, d.targetsOf(org), opts)
	if err := observer.Observe(ctx); err != nil {
		return nil, err
	}
	return observer, nil
}

// kindReplay are the replays asked of a replica that does not deliver
// the organization: records the delivering one takes up (told by the
// change feed, and when it starts delivering the organization).
const kindReplay = "delivery-replay"

type replayRequest struct {
	Adapter string `json:"adapter"`
	From    uint64 `json:"from"`
}

func (d *deliveries) forwardReplay(ctx context.Context, org gateway.OrgID, adapter string, from uint64) error {
	raw, err := json.Marshal(replayRequest{Adapter: adapter, From: from})
	if err != nil {
		return err
	}
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	_, err = d.store.Records().Put(ctx, org, kindReplay, hex.EncodeToString(id), 0, raw, gateway.Journal{})
	return err
}

// takeReplays runs the replays asked of other replicas for org, when org
// is delivered here. Each is taken once (its record deleted, at its
// version, by one replica); one that cannot run now is put back for the
// next try. It runs when the change feed names a replay, after the feed
// reconnects, when org starts being delivered here, and each minute.
func (d *deliveries) takeReplays(ctx context.Context, org gateway.OrgID, log *slog.Logger) {
	d.mu.Lock()
	disp := d.byOrg[org]
	d.mu.Unlock()
	if disp == nil {
		return
	}
	recs, err := d.store.Records().List(ctx, org, kindReplay)
	if err != nil {
		log.Warn("delivery: reading the replays asked of other replicas (retried within a minute)", "org", string(org), "error", err)
		return
	}
	for _, rec := range recs {
		if err := d.store.Records().Delete(ctx, org, kindReplay, rec.ID, rec.Version, gateway.Journal{}); err != nil {
			continue // taken by another, or to retry
		}
		var req replayRequest
		if json.Unmarshal(rec.Value, &req) != nil {
			continue
		}
		if _, err := disp.Replay(ctx, req.Adapter, req.From); err != nil {
			log.Warn("delivery: a replay asked of another replica could not run here now (kept for the next try)", "org", string(org), "adapter", req.Adapter, "error", err)
			if _, perr := d.store.Records().Put(ctx, org, kindReplay, rec.ID, 0, rec.Value, gateway.Journal{}); perr != nil {
				log.Error("delivery: a replay asked of another replica is lost: ask for it again", "org", string(org), "adapter", req.Adapter, "error", perr)
			}
		}
	}
}

// takeAllReplays is takeReplays for every organization delivered here.
func (d *deliveries) takeAllReplays(ctx context.Context, log *slog.Logger) {
	if d == nil || d.leases == nil {
		return
	}
	d.mu.Lock()
	orgs := make([]gateway.OrgID, 0, len(d.byOrg))
	for org := range d.byOrg {
		orgs = append(orgs, org)
	}
	d.mu.Unlock()
	for _, org := range orgs {
		d.takeReplays(ctx, org, log)
	}
}

// targetsOf are the adapters org's events go to.
func (d *deliveries) targetsOf(org gateway.OrgID) []outbox.Target {
	var targets []outbox.Target
	for i, t := range d.targets {
		if len(d.onlyFor[i]) == 0 || slices.Contains(d.onlyFor[i], org) {
			targets = append(targets, outbox.Target{ID: t.ID, Adapter: sharedAdapter{t.Adapter}})
		}
	}
	return targets
}

func (d *deliveries) optsOf(org gateway.OrgID) outbox.Options {
	opts := d.opts
	opts.Org, opts.SkipGauges = org, org != gateway.DefaultOrg
	return opts
}

// Stop stops every organization's dispatcher, then closes the adapters.
func (d *deliveries) Stop(ctx context.Context) error {
	d.mu.Lock()
	d.stopped = true
	running := make([]*outbox.Dispatcher, 0, len(d.byOrg))
	for _, disp := range d.byOrg {
		running = append(running, disp)
	}
	d.mu.Unlock()
	var errs []error
	for _, disp := range running {
		if err := disp.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...) // a dispatcher may still be delivering: its adapters stay open
	}
	d.releaseLeases()
	for _, t := range d.targets {
		if err := t.Adapter.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close adapter %s: %w", t.ID, err))
		}
	}
	return errors.Join(errs...)
}

// markDeleting notes a deleted organization whose outbox is still to be
// delivered.
func (d *deliveries) markDeleting(org gateway.OrgID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.deleting == nil {
		d.deleting = map[gateway.OrgID]bool{}
	}
	d.deleting[org] = true
}

// drained reports whether every adapter org's events go to is past its
// last event.
func (d *deliveries) drained(ctx context.Context, org gateway.OrgID) (bool, error) {
	last, err := d.store.Outbox().LastSeq(ctx, org)
	if err != nil {
		return false, err
	}
	for i, t := range d.targets {
		if len(d.onlyFor[i]) > 0 && !slices.Contains(d.onlyFor[i], org) {
			continue
		}
		cursor, err := d.store.Outbox().Cursor(ctx, org, t.ID)
		if err != nil || cursor < last {
			return false, err
		}
	}
	return true, nil
}

// pendingDeletions are the deleted organizations still delivering.
func (d *deliveries) pendingDeletions() []gateway.OrgID {
	d.mu.Lock()
	defer d.mu.Unlock()
	pending := make([]gateway.OrgID, 0, len(d.deleting))
	for org := range d.deleting {
		if d.deliversHereLocked(org) {
			pending = append(pending, org)
		}
	}
	return pending
}

// finishDeletions completes the deletion of every deleted organization
// whose last events (org.deleted last) every adapter is past, delivered
// or set aside as dead letters: its dispatcher stops and erase removes
// the rest of it (its outbox and registry entry).
func (d *deliveries) finishDeletions(ctx context.Context, erase func(context.Context, gateway.OrgID) error) error {
	var errs []error
	for _, org := range d.pendingDeletions() {
		done, err := d.drained(ctx, org)
		if err != nil || !done {
			errs = append(errs, err)
			continue
		}
		d.mu.Lock()
		disp := d.byOrg[org]
		delete(d.byOrg, org)
		if d.finishing == nil {
			d.finishing = map[gateway.OrgID]bool{}
		}
		d.finishing[org] = true
		d.mu.Unlock()
		if disp != nil {
			if err := disp.Stop(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		err = erase(ctx, org)
		d.mu.Lock()
		delete(d.finishing, org)
		if err == nil || gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
			delete(d.deleting, org)
		}
		d.mu.Unlock()
		if err != nil && gateway.ErrorCodeOf(err) != gateway.ErrNotFound {
			errs = append(errs, fmt.Errorf("finish deleting organization %q: %w", org, err))
		}
	}
	return errors.Join(errs...)
}

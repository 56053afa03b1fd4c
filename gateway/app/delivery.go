package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

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
	var targets []outbox.Target
	for i, t := range d.targets {
		if len(d.onlyFor[i]) == 0 || slices.Contains(d.onlyFor[i], org) {
			targets = append(targets, outbox.Target{ID: t.ID, Adapter: sharedAdapter{t.Adapter}})
		}
	}
	opts := d.opts
	opts.Org, opts.SkipGauges = org, org != gateway.DefaultOrg
	disp := outbox.New(d.store, targets, opts)
	if err := disp.Start(ctx); err != nil {
		return nil, fmt.Errorf("start delivery for organization %q: %w", org, err)
	}
	d.byOrg[org] = disp
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
			if _, err := d.ensure(ctx, o.ID); err != nil {
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
	return d.ensure(ctx, org)
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
		pending = append(pending, org)
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

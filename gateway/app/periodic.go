package app

import (
	"context"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// periodic runs a task now and then until shutdown.
type periodic struct {
	stop     chan struct{}
	once     sync.Once
	done     sync.WaitGroup
	interval time.Duration
	now      bool
	fn       func(ctx context.Context)
}

// every runs fn every interval (first after one interval when !now),
// stopped with the other workers.
func (a *App) every(interval time.Duration, now bool, fn func(ctx context.Context)) {
	p := newPeriodic(interval, now, fn)
	p.start()
	a.workers = append(a.workers, p)
}

// newPeriodic prepares a periodic task; start runs it.
func newPeriodic(interval time.Duration, now bool, fn func(ctx context.Context)) *periodic {
	return &periodic{stop: make(chan struct{}), interval: interval, now: now, fn: fn}
}

func (p *periodic) start() {
	p.done.Go(func() {
		t := time.NewTicker(p.interval)
		defer t.Stop()
		for first := true; ; first = false {
			if p.now || !first {
				p.fn(context.Background())
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	})
}

// Stop stops the task and waits for it; a second Stop does nothing.
func (p *periodic) Stop(ctx context.Context) error {
	p.once.Do(func() { close(p.stop) })
	p.done.Wait()
	return nil
}

// sweepInterval is how often expired sessions and sign-in data are
// deleted: they are as good as absent once expired, so this only bounds
// how long they take space.
const sweepInterval = 5 * time.Minute

// startSweeper deletes what expired now and then.
func (a *App) startSweeper() {
	a.every(sweepInterval, true, func(ctx context.Context) { a.SweepExpired(ctx, time.Now()) })
	// The IdP certificates in use come nearer their end: check them hourly.
	a.every(time.Hour, false, a.checkConnections)
}

// Swept says what one sweep deleted.
type Swept struct {
	Sessions  int // ended or idle sessions
	Ephemeral int // sign-in requests in flight and replay records past their expiry
}

// SweepExpired deletes, in every organization, the sessions that ended or
// went idle and the sign-in data (SAML requests and assertion ids, OIDC
// state, test results) that expired before now. An organization with
// nothing expired costs a read. Failures are logged; the next sweep tries
// again.
func (a *App) SweepExpired(ctx context.Context, now time.Time) Swept {
	var out Swept
	now = now.UTC()
	idle := time.Duration(a.cfg.Session.IdleTimeout)
	sweep := func(org gateway.OrgID) {
		n, err := a.store.Sessions().Expire(ctx, org, now, now.Add(-idle))
		if err != nil {
			a.log.Warn("sessions: expiry sweep failed", "org", string(org), "error", err)
		}
		out.Sessions += n
		if n, err = a.store.Ephemeral().Sweep(ctx, org, now); err != nil {
			a.log.Warn("sign-in data: expiry sweep failed", "org", string(org), "error", err)
		}
		out.Ephemeral += n
	}
	sweep(gateway.DefaultOrg) // registered or not
	var after gateway.OrgID
	for {
		page, _, err := a.store.Orgs().List(ctx, after, 500)
		if err != nil {
			a.log.Warn("sweep: listing the organizations failed", "error", err)
			break
		}
		for _, o := range page {
			if o.ID != gateway.DefaultOrg {
				sweep(o.ID)
			}
		}
		if len(page) < 500 {
			break
		}
		after = page[len(page)-1].ID
	}
	if out.Sessions+out.Ephemeral > 0 {
		a.log.Debug("swept expired data", "sessions", out.Sessions, "sign_in_data", out.Ephemeral)
	}
	return out
}

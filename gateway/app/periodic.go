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

// startSessionSweeper deletes ended sessions now and then.
func (a *App) startSessionSweeper() {
	idle := time.Duration(a.cfg.Session.IdleTimeout)
	a.every(10*time.Minute, true, func(ctx context.Context) {
		now := time.Now().UTC()
		if _, err := a.store.Sessions().Expire(ctx, gateway.DefaultTenant, now, now.Add(-idle)); err != nil {
			a.log.Warn("sessions: expiry sweep failed", "error", err)
		}
	})
}

package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// The channel every replica LISTENs on, and the payloads sent on it.
const (
	signalChannel = "gatehouse"
	signalEvents  = "events:"  // + org: events of org committed (after the schema and a space)
	signalRecords = "records:" // + org ":" kind: a record of org was written
)

// signals turns the notifications of every replica's commits into the
// wake-ups of Outbox.Changed. One connection per process listens; once it
// is back after a break (the database restarting), every waiter is woken,
// since notifications sent meanwhile are lost. Not before: what a cache
// keeps stays good for its own short lifetime while the database is
// unreachable, and this process's own commits wake its waiters directly.
type signals struct {
	mu      sync.Mutex
	waiters map[gateway.OrgID]chan struct{}
	records []func(org gateway.OrgID, kind string)
	cancel  context.CancelFunc
	done    chan struct{}
	// ready is closed once the first LISTEN took effect: Open waits for
	// it, so no commit after Open returns goes unheard.
	ready     chan struct{}
	readyOnce sync.Once
}

// listenPing is how long the listening connection may be quiet before it
// is asked to answer.
const listenPing = 5 * time.Second

func newSignals(pool *pgxpool.Pool) *signals {
	ctx, cancel := context.WithCancel(context.Background())
	s := &signals{waiters: map[gateway.OrgID]chan struct{}{}, cancel: cancel, done: make(chan struct{}), ready: make(chan struct{})}
	go s.listen(ctx, withKeepalives(pool.Config().ConnConfig))
	return s
}

// changed returns the channel closed at org's next commit of events.
func (s *signals) changed(org gateway.OrgID) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.waiters[org]
	if !ok {
		ch = make(chan struct{})
		s.waiters[org] = ch
	}
	return ch
}

func (s *signals) fire(org gateway.OrgID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.waiters[org]; ok {
		close(ch)
		delete(s.waiters, org)
	}
}

func (s *signals) fireAll() {
	s.mu.Lock()
	for org, ch := range s.waiters {
		close(ch)
		delete(s.waiters, org)
	}
	subs := s.records
	s.mu.Unlock()
	for _, fn := range subs {
		fn("", "") // what was missed is unknown: everything may be stale
	}
}

func (s *signals) onRecordChange(fn func(org gateway.OrgID, kind string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = append(s.records, fn)
}

func (s *signals) recordChanged(org gateway.OrgID, kind string) {
	s.mu.Lock()
	subs := s.records
	s.mu.Unlock()
	for _, fn := range subs {
		fn(org, kind)
	}
}

// listen keeps a LISTEN connection open until close, reconnecting with a
// growing pause when it fails.
func (s *signals) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	defer close(s.done)
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		if s.listenOnce(ctx, cfg) {
			pause = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		pause = min(2*pause, 3*time.Second)
	}
}

// listenOnce listens on one connection until it fails; it reports
// whether it got as far as listening.
func (s *signals) listenOnce(ctx context.Context, cfg *pgx.ConnConfig) bool {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+signalChannel); err != nil {
		return false
	}
	var schema string
	if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return false
	}
	s.readyOnce.Do(func() { close(s.ready) })
	s.fireAll() // writes may have committed before LISTEN took effect (or while it was down)
	for {
		// A half-open connection would wait for ever: every few seconds
		// without a notification, the connection is asked to answer.
		wait, cancel := context.WithTimeout(ctx, listenPing)
		n, err := conn.WaitForNotification(wait)
		cancel()
		if err != nil {
			if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
				return true
			}
			ping, cancel := context.WithTimeout(ctx, leaseTimeout)
			_, err := conn.Exec(ping, "SELECT 1")
			cancel()
			if err != nil {
				return true
			}
			continue
		}
		scope, what, _ := strings.Cut(n.Payload, " ")
		if scope != schema {
			continue
		}
		if org, ok := strings.CutPrefix(what, signalEvents); ok {
			s.fire(gateway.OrgID(org))
		} else if rec, ok := strings.CutPrefix(what, signalRecords); ok {
			org, kind, _ := strings.Cut(rec, ":")
			s.recordChanged(gateway.OrgID(org), kind)
		}
	}
}

func (s *signals) close() {
	s.cancel()
	<-s.done
	s.fireAll()
}

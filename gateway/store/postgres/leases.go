package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// leases are PostgreSQL session advisory locks held on one connection of
// their own: a replica that dies (or whose connection breaks) loses them
// all at once, and another replica takes them up at its next try.
//   - A keepalive notices a broken connection within leaseNotice, so that
//     the work stops here before another replica, waiting LeaseGrace
//     after a claim, starts it.
//   - The server's TCP keepalives on that connection (5 s idle, then
//     every 2 s, 3 probes) free the locks of a host that vanished without
//     closing it within about 11 s, not the operating system's 2 hours.
//   - Every statement has a deadline, so a database that does not answer
//     never holds the lease mutex for long.
type leases struct {
	cfg    *pgx.ConnConfig
	schema string

	mu   sync.Mutex
	conn *pgx.Conn
	held map[string]int64
	lost chan struct{} // closed when conn broke; shared by the leases held on it

	stop chan struct{}
	done chan struct{}
}

// LeaseGrace is how long a replica waits after claiming a lease before it
// does the lease's work: longer than a former holder whose connection was
// cut takes to notice (leaseNotice) and stop.
const LeaseGrace = 5 * time.Second

const (
	leaseTick    = 500 * time.Millisecond // keepalive period
	leaseTimeout = time.Second            // bound of one lease statement
	// leaseNotice bounds how long a holder takes to notice its connection
	// is gone: a tick, a claim holding the mutex, the keepalive's own
	// statement. LeaseGrace is longer.
	leaseNotice = leaseTick + 2*leaseTimeout
)

// withKeepalives is cfg for a connection of its own that must notice a
// vanished peer: the server's TCP keepalives (5 s idle, then every 2 s, 3
// probes) and a bounded connect.
func withKeepalives(cfg *pgx.ConnConfig) *pgx.ConnConfig {
	cfg = cfg.Copy()
	cfg.ConnectTimeout = 3 * time.Second
	for k, v := range map[string]string{"tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2", "tcp_keepalives_count": "3"} {
		cfg.RuntimeParams[k] = v
	}
	return cfg
}

func newLeases(cfg *pgx.ConnConfig, schema string) *leases {
	cfg = withKeepalives(cfg)
	l := &leases{cfg: cfg, schema: schema, held: map[string]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	go l.keepalive()
	return l
}

// leaseKey is name's advisory lock key: 64 bits of a hash of the schema
// and the name, so gateways in separate schemas never contend.
func (l *leases) key(name string) int64 {
	sum := sha256.Sum256([]byte("gatehouse/" + l.schema + "/" + name))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// TryLease claims name unless another replica holds it.
func (s *Store) TryLease(ctx context.Context, name string) (<-chan struct{}, bool, error) {
	return s.leases.try(ctx, name)
}

// ReleaseLease gives name up.
func (s *Store) ReleaseLease(ctx context.Context, name string) { s.leases.release(ctx, name) }

func (l *leases) try(ctx context.Context, name string) (<-chan struct{}, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.held[name]; ok {
		return l.lost, true, nil
	}
	if l.conn == nil {
		// No lease is held while there is no connection: nothing waits
		// on the mutex meanwhile but other claims.
		conn, err := pgx.ConnectConfig(ctx, l.cfg)
		if err != nil {
			return nil, false, fmt.Errorf("postgres: lease connection: %w", unavailable(err))
		}
		l.conn, l.lost = conn, make(chan struct{})
	}
	// Bounded: the keepalive waits on the mutex, and a holder must notice
	// a lost connection within leaseNotice.
	ctx, cancel := context.WithTimeout(ctx, leaseTimeout)
	defer cancel()
	key := l.key(name)
	var ok bool
	if err := l.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		l.dropLocked()
		return nil, false, fmt.Errorf("postgres: lease %s: %w", name, unavailable(err))
	}
	if !ok {
		return nil, false, nil
	}
	l.held[name] = key
	return l.lost, true, nil
}

func (l *leases) release(ctx context.Context, name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key, ok := l.held[name]
	if !ok || l.conn == nil {
		return
	}
	delete(l.held, name)
	ctx, cancel := context.WithTimeout(ctx, leaseTimeout)
	defer cancel()
	if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
		l.dropLocked() // the other leases are as good as lost
	}
}

// dropLocked closes the lease connection: every lease on it is lost.
func (l *leases) dropLocked() {
	if l.conn == nil {
		return
	}
	_ = l.conn.Close(context.Background())
	l.conn = nil
	close(l.lost)
	clear(l.held)
}

// keepalive checks the lease connection every leaseTick while it holds
// leases.
func (l *leases) keepalive() {
	defer close(l.done)
	t := time.NewTicker(leaseTick)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		if l.conn != nil && len(l.held) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), leaseTimeout)
			if _, err := l.conn.Exec(ctx, "SELECT 1"); err != nil {
				l.dropLocked()
			}
			cancel()
		}
		l.mu.Unlock()
	}
}

func (l *leases) close() {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropLocked()
}

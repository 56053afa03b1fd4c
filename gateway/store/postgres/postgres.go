// Package postgres is Gatehouse's gateway.Store on PostgreSQL, for
// several gateways (replicas) sharing one database. The schema is
// versioned migrations embedded in the binary (pressly/goose), applied at
// Open under a PostgreSQL advisory lock, so replicas starting together
// against an empty database are safe.
//
// How the contract of conformance/storetest is kept:
//   - event numbers: every write that records events ends by bumping its
//     organization's counter row (gh_counters), which it holds locked to
//     its commit, so numbers are handed out in commit order without gaps;
//     the same statement inserts the events and audit entries;
//   - unique names: unique indexes on the folding key (gateway/fold),
//     across replicas as well as within one;
//   - versions: a write reads the row FOR UPDATE (or updates WHERE
//     version = ifVersion), so a stale If-Match from any replica fails;
//   - Changed: a write's events NOTIFY the channel "gatehouse" in their
//     transaction; every replica LISTENs (see signal.go).
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jackc/puddle/v2"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/store/internal/storekit"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tunes Open.
type Options struct {
	// Schema, when set, holds the gateway's tables (search_path): one
	// database can serve several gateways, or tests, side by side.
	Schema string
	// MaxConns bounds the pool (default: pgxpool's, 4 or the CPUs).
	MaxConns int32
	// StatementTimeout bounds every statement (default 10s): a stuck
	// database fails requests fast instead of holding them.
	StatementTimeout time.Duration
}

// Store implements gateway.Store on PostgreSQL.
type Store struct {
	pool    *pgxpool.Pool
	signals *signals
	leases  *leases
	pager   pager
}

// Open connects to dsn, applies the migrations the database lacks and
// starts listening for other replicas' changes.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errBadDSN // pgx's error may quote the password
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	timeout := opts.StatementTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(timeout.Milliseconds())
	if opts.Schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := createSchema(ctx, pool, opts.Schema); err != nil {
		pool.Close()
		return nil, err
	}
	if _, err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool, signals: newSignals(pool), leases: newLeases(pool.Config().ConnConfig, opts.Schema)}
	select {
	case <-s.signals.ready:
	case <-ctx.Done():
		s.Close()
		return nil, fmt.Errorf("postgres: listening for the other replicas' changes: %w", ctx.Err())
	case <-time.After(10 * time.Second):
		s.Close()
		return nil, fmt.Errorf("postgres: listening for the other replicas' changes: no LISTEN connection within 10s")
	}
	return s, nil
}

// Migration says what applying the migrations did: the schema version
// before and after (versions are the numbers of the embedded files).
type Migration struct {
	Before, After int64
}

// Migrate connects to dsn and applies the migrations the database lacks,
// as Open does (the gatehouse migrate command, run before a rollout).
func Migrate(ctx context.Context, dsn string, opts Options) (Migration, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return Migration{}, errBadDSN
	}
	cfg.MaxConns = 2
	if opts.Schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return Migration{}, fmt.Errorf("postgres: connect: %w", err)
	}
	defer pool.Close()
	if err := createSchema(ctx, pool, opts.Schema); err != nil {
		return Migration{}, err
	}
	return migrate(ctx, pool)
}

func createSchema(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	if schema == "" {
		return nil
	}
	// IF NOT EXISTS is not safe against a racing replica: its duplicate
	// is as good as success.
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil && constraint(err) == "" {
		return fmt.Errorf("postgres: create schema %s: %w", schema, unavailable(err))
	}
	return nil
}

// migrate applies the embedded migrations under an advisory lock. A
// database whose schema is newer than this binary's is refused: the
// migrations are forward-only, so an older release cannot know what the
// newer one changed.
func migrate(ctx context.Context, pool *pgxpool.Pool) (Migration, error) {
	// Replicas starting together wait their turn, checking each second
	// for up to 5 minutes (a long migration holds the lock meanwhile).
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return Migration{}, fmt.Errorf("postgres: migration lock: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, mustSub(migrations, "migrations"), goose.WithSessionLocker(locker))
	if err != nil {
		return Migration{}, fmt.Errorf("postgres: migrations: %w", err)
	}
	var m Migration
	if m.Before, err = provider.GetDBVersion(ctx); err != nil && !errors.Is(err, goose.ErrVersionNotFound) {
		return m, fmt.Errorf("postgres: reading the schema version: %w", unavailable(err))
	}
	sources := provider.ListSources()
	known := sources[len(sources)-1].Version
	if m.Before > known {
		return m, fmt.Errorf("postgres: the database's schema is at version %d, newer than this release knows (%d): a newer Gatehouse has used it; run that release or a later one (migrations are forward-only)", m.Before, known)
	}
	if _, err := provider.Up(ctx); err != nil {
		return m, fmt.Errorf("postgres: applying the migrations: %w", unavailable(err))
	}
	if m.After, err = provider.GetDBVersion(ctx); err != nil {
		return m, fmt.Errorf("postgres: reading the schema version: %w", unavailable(err))
	}
	return m, nil
}

// Close stops listening and releases the connections.
func (s *Store) Close() error {
	s.leases.close()
	s.signals.close()
	s.pool.Close()
	return nil
}

// errBadDSN says the DSN cannot be read, without repeating it.
var errBadDSN = errors.New("postgres: store.postgres.dsn is not a connection string PostgreSQL accepts (postgres://user:password@host:5432/database?sslmode=verify-full, or key=value pairs)")

// errNoOrg refuses a call that names no organization.
var errNoOrg = gateway.Errorf(gateway.ErrInvalid, "no organization: the store call names none")

func checkOrg(org gateway.OrgID) error {
	if org == "" {
		return errNoOrg
	}
	return nil
}

// unavailable marks the database errors a request may retry: the
// database is down, restarting or refusing connections, a statement
// timed out, or a transaction lost a deadlock or serialization race more
// often than tx retries. Other errors (a constraint the code should have
// checked, a bad statement) are bugs and stay internal.
func unavailable(err error) error {
	if err == nil || errors.As(err, new(*gateway.Error)) || errors.Is(err, context.Canceled) {
		return err
	}
	if retryable(err) {
		return &gateway.Error{Code: gateway.ErrUnavailable, Message: "The database cannot be reached right now; retry the request.", Err: err}
	}
	return err
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code[:2] == "08", pgErr.Code[:2] == "53", pgErr.Code[:2] == "57", // connection, resources, operator intervention (incl. statement timeout)
			pgErr.Code == "40001", pgErr.Code == "40P01": // serialization failure, deadlock
			return true
		}
		return false
	}
	// The connection broke (the server restarting cuts it mid-reply), or
	// this replica's pool is closing: another try, here or on another
	// replica, may succeed.
	var netErr net.Error
	var connErr *pgconn.ConnectError
	return errors.As(err, &connErr) || errors.As(err, &netErr) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, puddle.ErrClosedPool)
}

// conflictAgain reports a transaction PostgreSQL aborted to break a
// deadlock or a serialization race: running it again is the cure.
func conflictAgain(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// constraint names the unique constraint err violates ("" when it is
// not a unique violation).
func constraint(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return pgErr.ConstraintName
	}
	return ""
}

// foreignKey reports a foreign key violation (an edge naming a user or
// group that is not, or no longer, there).
func foreignKey(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}

// tx runs fn in a transaction, committed when fn returns nil, and runs it
// again (up to 3 times) when PostgreSQL aborted it to break a deadlock:
// fn may run more than once. The organizations whose Changed the
// transaction signals (changedIn) are woken here as soon as it commits;
// the other replicas hear the NOTIFY.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	w := &signalledTx{}
	for range 3 {
		err = pgx.BeginFunc(ctx, s.pool, func(t pgx.Tx) error {
			w.Tx, w.changed = t, w.changed[:0]
			return fn(w)
		})
		if !conflictAgain(err) {
			break
		}
	}
	if err == nil {
		for _, org := range w.changed {
			s.signals.fire(org)
		}
	}
	return err
}

// signalledTx is a transaction that remembers the organizations it
// signals.
type signalledTx struct {
	pgx.Tx
	changed []gateway.OrgID
}

// changedIn NOTIFYs, at commit, that org changed (Outbox.Changed on every
// replica, and the caches that follow it), and has tx wake this process's
// waiters when it commits.
func changedIn(ctx context.Context, tx pgx.Tx, org gateway.OrgID) error {
	if w, ok := tx.(*signalledTx); ok {
		w.changed = append(w.changed, org)
	}
	// The payload names the schema: gateways sharing a database in
	// separate schemas do not wake each other.
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, current_schema() || ' ' || $2)`, signalChannel, signalEvents+string(org))
	return err
}

var (
	notFound           = storekit.NotFound
	preconditionFailed = storekit.PreconditionFailed
	unstamped          = storekit.Unstamped
	checkStamped       = storekit.CheckStamped
)

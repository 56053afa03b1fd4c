// Package sqldb writes events into the app's own PostgreSQL tables with
// configured statements (pgx): one transaction per event, idempotent on
// the event id through a processed-events table, so a redelivery changes
// nothing.
package sqldb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// Config is the sqldb adapter's configuration.
type Config struct {
	// DSN is the app's database, e.g. env:APP_DATABASE_URL holding
	// postgres://gatehouse@db/app.
	DSN gateway.Secret `yaml:"dsn"`
	// Statements maps an event type to the statements run for it, in
	// order, in one transaction. Parameters are :paths into the event
	// (:user.email); a statement naming :member.id runs once per member
	// id. Event types without statements are acknowledged and skipped.
	Statements map[string][]string `yaml:"statements"`
	// ProcessedTable records the ids of the events applied (created if
	// missing): a redelivered event is skipped.
	ProcessedTable string `yaml:"processed_table"`
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$`)

func (c *Config) processedTable() string {
	if c.ProcessedTable == "" {
		return "gatehouse_processed_events"
	}
	return c.ProcessedTable
}

// Validate reports every problem with its key path.
func (c *Config) Validate() []gateway.ConfigProblem {
	var ps []gateway.ConfigProblem
	add := func(path, format string, args ...any) {
		ps = append(ps, gateway.ConfigProblem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if !c.DSN.IsConfigured() {
		add("dsn", "is required: the app's PostgreSQL database, e.g. env:APP_DATABASE_URL")
	} else if c.DSN.IsSet() {
		if _, err := pgxpool.ParseConfig(c.DSN.Value()); err != nil {
			add("dsn", "is not a PostgreSQL connection string or URL")
		}
	}
	if len(c.Statements) == 0 {
		add("statements", "is required: at least one event type with its SQL statements")
	}
	types := make([]string, 0, len(c.Statements))
	for t := range c.Statements {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		if !gateway.Op(t).Known() {
			add("statements."+t, "is not an event type (user.created, user.updated, …, group.members_removed)")
			continue
		}
		for i, s := range c.Statements[t] {
			if _, err := parseStatement(s); err != nil {
				add(fmt.Sprintf("statements.%s[%d]", t, i), "%v", err)
			}
		}
	}
	if !identifier.MatchString(c.processedTable()) {
		add("processed_table", "%q is not a plain table name ([schema.]name)", c.ProcessedTable)
	}
	return ps
}

// Open connects (lazily: a database that is down at start-up delays
// delivery, not the gateway) and prepares the statements.
func (c *Config) Open(ctx context.Context, env gateway.AdapterEnv) (gateway.Adapter, error) {
	pc, err := pgxpool.ParseConfig(c.DSN.Value())
	if err != nil {
		return nil, errors.New("sqldb: dsn is not a PostgreSQL connection string")
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("sqldb: %w", err)
	}
	a := &adapter{pool: pool, id: env.ID, table: c.processedTable(), statements: map[gateway.Op][]statement{}}
	for t, list := range c.Statements {
		for _, s := range list {
			st, err := parseStatement(s)
			if err != nil {
				pool.Close()
				return nil, fmt.Errorf("sqldb: statements.%s: %w", t, err)
			}
			a.statements[gateway.Op(t)] = append(a.statements[gateway.Op(t)], st)
		}
	}
	return a, nil
}

type adapter struct {
	pool       *pgxpool.Pool
	id         string
	table      string
	statements map[gateway.Op][]statement

	mu    sync.Mutex // lanes deliver concurrently
	ready bool       // the processed-events table exists
}

func (a *adapter) ensureTable(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ready {
		return nil
	}
	_, err := a.pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+a.table+` (
		adapter text NOT NULL,
		event_id text NOT NULL,
		seq bigint NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (adapter, event_id))`)
	if err != nil {
		return classify(fmt.Errorf("create %s: %w", a.table, err))
	}
	a.ready = true
	return nil
}

// Deliver applies the event's statements and records its id, in one
// transaction; an id already recorded is a redelivery and changes nothing.
func (a *adapter) Deliver(ctx context.Context, e gateway.WireEvent) error {
	list := a.statements[e.Type]
	if len(list) == 0 {
		return nil
	}
	if err := a.ensureTable(ctx); err != nil {
		return err
	}
	doc, err := eventDoc(e)
	if err != nil {
		return fmt.Errorf("encode event: %v: %w", err, gateway.ErrPermanent)
	}
	return classify(pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO `+a.table+` (adapter, event_id, seq) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, a.id, e.ID, int64(e.Seq))
		if err != nil {
			return fmt.Errorf("record event %s: %w", e.ID, err)
		}
		if tag.RowsAffected() == 0 {
			return nil // applied before
		}
		for i, st := range list {
			members := []string{""}
			if st.perMember {
				members = e.MemberIDs
			}
			for _, m := range members {
				if _, err := tx.Exec(ctx, st.sql, st.values(doc, m)...); err != nil {
					return fmt.Errorf("statements.%s[%d]: %w", e.Type, i, err)
				}
			}
		}
		return nil
	}))
}

func (a *adapter) Close() error {
	a.pool.Close()
	return nil
}

// eventDoc is the event as the JSON object parameters are looked up in.
func eventDoc(e gateway.WireEvent) (map[string]any, error) {
	raw, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	return doc, dec.Decode(&doc)
}

// classify marks the database's refusals of the data itself as permanent
// (the same statement would fail again): data exceptions (class 22) and
// integrity violations (23), except a foreign key (23503), which may name
// a row whose own event is still on its way in another lane. Everything
// else is retried, the attempt limit still applying: connection trouble,
// deadlocks, and what an operator fixes (a missing table or column, a
// grant: class 42).
func classify(err error) error {
	if err == nil {
		return nil
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) && len(pg.Code) == 5 && pg.Code != "23503" {
		switch pg.Code[:2] {
		case "22", "23":
			return fmt.Errorf("%w: %w", err, gateway.ErrPermanent)
		}
	}
	return err
}

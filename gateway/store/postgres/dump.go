package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// batcher queues statements and sends them 500 at a time: an import of
// 100,000 users is a few hundred round trips, not 100,000.
type batcher struct {
	ctx   context.Context
	tx    pgx.Tx
	batch pgx.Batch
}

func (b *batcher) queue(sql string, args ...any) error {
	b.batch.Queue(sql, args...)
	if b.batch.Len() >= 500 {
		return b.flush()
	}
	return nil
}

func (b *batcher) flush() error {
	if b.batch.Len() == 0 {
		return nil
	}
	err := b.tx.SendBatch(b.ctx, &b.batch).Close()
	b.batch = pgx.Batch{}
	return err
}

// Import takes in another store's state (gatehouse store copy) in one
// transaction; the database must hold no organization yet. Indexes and
// the users' and groups' counters are built here; event and audit
// numbers, versions and cursors are kept.
func (s *Store) Import(ctx context.Context, items func(put func(gateway.DumpItem) error) error) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var orgs int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM gh_orgs`).Scan(&orgs); err != nil {
			return err
		}
		if orgs > 0 {
			return gateway.Errorf(gateway.ErrConflict, "the database already holds %d organizations: import into an empty one", orgs)
		}
		b := &batcher{ctx: ctx, tx: tx}
		users, groups, audit := map[gateway.OrgID]int64{}, map[gateway.OrgID]int64{}, map[gateway.OrgID]uint64{}
		err := items(func(it gateway.DumpItem) error {
			org := it.Org
			switch {
			case it.Registry != nil:
				raw, err := json.Marshal(it.Registry)
				if err != nil {
					return err
				}
				if err := b.queue(`INSERT INTO gh_orgs (id, doc) VALUES ($1, $2::json)`, it.Registry.ID, string(raw)); err != nil {
					return err
				}
				for _, d := range it.Registry.Domains {
					if err := b.queue(`INSERT INTO gh_org_domains (domain, org) VALUES ($1, $2)`, domainKey(d.Name), it.Registry.ID); err != nil {
						return err
					}
				}
			case it.User != nil:
				doc, err := document(it.User.Attributes)
				if err != nil {
					return err
				}
				users[org]++
				return b.queue(insertUser, userArgs(it.User, doc)...)
			case it.Group != nil:
				g := it.Group
				doc, err := document(g.Attributes)
				if err != nil {
					return err
				}
				groups[org]++
				if err := b.queue(`INSERT INTO gh_groups (org, id, name_key, display_name, external_id, source, created, modified, version, doc)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::json)`,
					g.Org, g.ID, fold(g.DisplayName), g.DisplayName, g.ExternalID, string(g.Source), nanos(g.Created), nanos(g.Modified), int64(g.Version), string(doc)); err != nil {
					return err
				}
				for _, m := range it.Members {
					if err := b.queue(`INSERT INTO gh_members (org, group_id, user_id, display) VALUES ($1, $2, $3, $4)`, org, g.ID, m.UserID, m.Display); err != nil {
						return err
					}
				}
			case it.Event != nil:
				e := *it.Event
				seq := e.Seq
				e.Seq = 0
				raw, err := json.Marshal(&e)
				if err != nil {
					return err
				}
				return b.queue(`INSERT INTO gh_events (org, seq, occurred, body) VALUES ($1, $2, $3, $4::json)`, org, int64(seq), e.OccurredAt, string(raw))
			case it.Cursor != nil:
				return b.queue(`INSERT INTO gh_cursors (org, consumer, seq) VALUES ($1, $2, $3)`, org, it.Cursor.Consumer, int64(it.Cursor.Seq))
			case it.DeadLetter != nil:
				dl := it.DeadLetter
				e := dl.Event
				e.Seq = 0
				raw, err := json.Marshal(&e)
				if err != nil {
					return err
				}
				return b.queue(`INSERT INTO gh_dead_letters (org, consumer, seq, attempts, last_error, at, held_behind, body)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8::json)`,
					org, dl.Consumer, int64(dl.Event.Seq), int32(dl.Attempts), dl.LastError, dl.At, int64(dl.HeldBehind), string(raw))
			case it.Session != nil:
				se := it.Session
				return b.queue(`INSERT INTO gh_sessions (org, id, user_id, protocol, created, last_seen, expires, idp_subject, idp_session)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
					org, se.ID, se.UserID, se.Protocol, se.Created, se.LastSeen, se.Expires, se.IdPSubject, se.IdPSession)
			case it.LastLogin != nil:
				return b.queue(`INSERT INTO gh_last_logins (org, user_id, at) VALUES ($1, $2, $3)`, org, it.LastLogin.UserID, it.LastLogin.At)
			case it.Key != nil:
				return b.queue(`INSERT INTO gh_keys (org, name, value) VALUES ($1, $2, $3)`, org, it.Key.Name, it.Key.Value)
			case it.Record != nil:
				r := it.Record
				return b.queue(`INSERT INTO gh_records (org, kind, id, version, value) VALUES ($1, $2, $3, $4, $5::json)`,
					org, r.Kind, r.ID, int64(r.Version), string(r.Value))
			case it.Audit != nil:
				e := *it.Audit
				seq := e.Seq
				e.Seq, e.Org = 0, org
				raw, err := json.Marshal(e)
				if err != nil {
					return err
				}
				audit[org] = max(audit[org], seq)
				return b.queue(`INSERT INTO gh_audit (org, seq, actor, target, entry) VALUES ($1, $2, $3, $4, $5::json)`,
					org, int64(seq), e.Actor.String(), e.Target, string(raw))
			case it.Ephemeral != nil:
				e := it.Ephemeral
				value := e.Value
				if value == nil {
					value = []byte{}
				}
				return b.queue(`INSERT INTO gh_ephemeral (org, ns, key, expires, value) VALUES ($1, $2, $3, $4, $5)`, org, e.Namespace, e.Key, e.Expires, value)
			case it.IDMap != nil:
				m := it.IDMap
				return b.queue(`INSERT INTO gh_id_maps (org, adapter, id, downstream_id) VALUES ($1, $2, $3, $4)`, org, m.Adapter, m.ID, m.DownstreamID)
			case it.LastSeq > 0:
				return b.queue(`INSERT INTO gh_counters (org, name, value) VALUES ($1, 'events', $2)`, org, int64(it.LastSeq))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for org, n := range users {
			if err := b.queue(`INSERT INTO gh_counters (org, name, value) VALUES ($1, 'users', $2)`, org, n); err != nil {
				return err
			}
		}
		for org, n := range groups {
			if err := b.queue(`INSERT INTO gh_counters (org, name, value) VALUES ($1, 'groups', $2)`, org, n); err != nil {
				return err
			}
		}
		for org, n := range audit {
			if err := b.queue(`INSERT INTO gh_counters (org, name, value) VALUES ($1, 'audit', $2)`, org, int64(n)); err != nil {
				return err
			}
		}
		return b.flush()
	})
	if err != nil {
		return fmt.Errorf("postgres: import: %w", unavailable(err))
	}
	return nil
}

// Export hands fn the whole state from one snapshot (a repeatable-read
// transaction), as gateway.Exporter describes: what gatehouse store copy
// compares with what it copied.
func (s *Store) Export(ctx context.Context, fn func(gateway.DumpItem) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		docs, err := queryStrings(ctx, tx, `SELECT doc::text FROM gh_orgs ORDER BY id`)
		if err != nil {
			return err
		}
		for _, raw := range docs {
			var o gateway.Organization
			if err := json.Unmarshal([]byte(raw), &o); err != nil {
				return err
			}
			if err := fn(gateway.DumpItem{Org: o.ID, Registry: &o}); err != nil {
				return err
			}
		}
		orgs, err := queryStrings(ctx, tx, `SELECT org FROM gh_counters UNION SELECT org FROM gh_records UNION SELECT org FROM gh_audit
			UNION SELECT org FROM gh_keys UNION SELECT org FROM gh_sessions UNION SELECT org FROM gh_id_maps UNION SELECT org FROM gh_users
			UNION SELECT org FROM gh_cursors UNION SELECT org FROM gh_last_logins UNION SELECT org FROM gh_ephemeral ORDER BY 1`)
		if err != nil {
			return err
		}
		for _, o := range orgs {
			if err := exportScope(ctx, tx, gateway.OrgID(o), fn); err != nil {
				return fmt.Errorf("organization %s: %w", o, err)
			}
		}
		return nil
	})
}

// each runs sql and hands every row to scan.
func each(ctx context.Context, tx pgx.Tx, sql string, org gateway.OrgID, scan func(pgx.Rows) error) error {
	rows, err := tx.Query(ctx, sql, org)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func exportScope(ctx context.Context, tx pgx.Tx, org gateway.OrgID, fn func(gateway.DumpItem) error) error {
	item := func(it gateway.DumpItem) error { it.Org = org; return fn(it) }
	rows, err := tx.Query(ctx, `SELECT `+userCols+`, doc FROM gh_users WHERE org = $1 ORDER BY id`, org)
	if err != nil {
		return err
	}
	users, err := collectUsers(rows, org, true)
	if err != nil {
		return err
	}
	for _, u := range users {
		if err := item(gateway.DumpItem{User: u}); err != nil {
			return err
		}
	}
	if rows, err = tx.Query(ctx, `SELECT `+groupCols+`, doc FROM gh_groups WHERE org = $1 ORDER BY id`, org); err != nil {
		return err
	}
	groups, err := collectGroups(rows, org)
	if err != nil {
		return err
	}
	for _, g := range groups {
		ms, err := members(ctx, tx, org, g.ID)
		if err != nil {
			return err
		}
		if err := item(gateway.DumpItem{Group: g, Members: ms}); err != nil {
			return err
		}
	}
	last, err := count(ctx, tx, org, "events")
	if err != nil {
		return err
	}
	if err := item(gateway.DumpItem{LastSeq: uint64(last)}); err != nil {
		return err
	}
	steps := []struct {
		sql  string
		scan func(pgx.Rows) error
	}{
		{`SELECT seq, body FROM gh_events WHERE org = $1 ORDER BY seq`, func(r pgx.Rows) error {
			var seq int64
			var body []byte
			if err := r.Scan(&seq, &body); err != nil {
				return err
			}
			e, err := decodeEvent(seq, body)
			if err != nil {
				return err
			}
			return item(gateway.DumpItem{Event: &e})
		}},
		{`SELECT consumer, seq FROM gh_cursors WHERE org = $1 ORDER BY consumer`, func(r pgx.Rows) error {
			var c gateway.DumpCursor
			var seq int64
			err := r.Scan(&c.Consumer, &seq)
			c.Seq = uint64(seq)
			return errOr(err, func() error { return item(gateway.DumpItem{Cursor: &c}) })
		}},
		{`SELECT consumer, seq, attempts, last_error, at, held_behind, body FROM gh_dead_letters WHERE org = $1 ORDER BY consumer, seq`, func(r pgx.Rows) error {
			var dl gateway.DumpDeadLetter
			var seq, behind int64
			var attempts int32
			var body []byte
			if err := r.Scan(&dl.Consumer, &seq, &attempts, &dl.LastError, &dl.At, &behind, &body); err != nil {
				return err
			}
			e, err := decodeEvent(seq, body)
			if err != nil {
				return err
			}
			dl.Event, dl.Attempts, dl.HeldBehind, dl.At = e, int(attempts), uint64(behind), dl.At.UTC()
			return item(gateway.DumpItem{DeadLetter: &dl})
		}},
		{`SELECT ` + sessionCols + ` FROM gh_sessions WHERE org = $1 ORDER BY id`, func(r pgx.Rows) error {
			se, err := scanSession(r, org)
			return errOr(err, func() error { return item(gateway.DumpItem{Session: &se}) })
		}},
		{`SELECT user_id, at FROM gh_last_logins WHERE org = $1 ORDER BY user_id`, func(r pgx.Rows) error {
			var l gateway.DumpLastLogin
			err := r.Scan(&l.UserID, &l.At)
			l.At = l.At.UTC()
			return errOr(err, func() error { return item(gateway.DumpItem{LastLogin: &l}) })
		}},
		{`SELECT name, value FROM gh_keys WHERE org = $1 ORDER BY name`, func(r pgx.Rows) error {
			var k gateway.DumpKey
			err := r.Scan(&k.Name, &k.Value)
			return errOr(err, func() error { return item(gateway.DumpItem{Key: &k}) })
		}},
		{`SELECT kind, id, version, value FROM gh_records WHERE org = $1 ORDER BY kind, id`, func(r pgx.Rows) error {
			var rec gateway.DumpRecord
			var version int64
			err := r.Scan(&rec.Kind, &rec.ID, &version, &rec.Value)
			rec.Version = uint64(version)
			return errOr(err, func() error { return item(gateway.DumpItem{Record: &rec}) })
		}},
		{`SELECT seq, entry FROM gh_audit WHERE org = $1 ORDER BY seq`, func(r pgx.Rows) error {
			var seq int64
			var raw []byte
			if err := r.Scan(&seq, &raw); err != nil {
				return err
			}
			var e gateway.AuditEntry
			if err := json.Unmarshal(raw, &e); err != nil {
				return err
			}
			e.Seq = uint64(seq)
			return item(gateway.DumpItem{Audit: &e})
		}},
		{`SELECT ns, key, expires, value FROM gh_ephemeral WHERE org = $1 AND expires > now() ORDER BY ns, key`, func(r pgx.Rows) error {
			var e gateway.DumpEphemeral
			err := r.Scan(&e.Namespace, &e.Key, &e.Expires, &e.Value)
			e.Expires = e.Expires.UTC()
			return errOr(err, func() error { return item(gateway.DumpItem{Ephemeral: &e}) })
		}},
		{`SELECT adapter, id, downstream_id FROM gh_id_maps WHERE org = $1 ORDER BY adapter, id`, func(r pgx.Rows) error {
			var m gateway.DumpIDMap
			err := r.Scan(&m.Adapter, &m.ID, &m.DownstreamID)
			return errOr(err, func() error { return item(gateway.DumpItem{IDMap: &m}) })
		}},
	}
	for _, st := range steps {
		if err := each(ctx, tx, st.sql, org, st.scan); err != nil {
			return err
		}
	}
	return nil
}

// errOr is err, or then's when err is nil.
func errOr(err error, then func() error) error {
	if err != nil {
		return err
	}
	return then()
}

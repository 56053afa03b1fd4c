package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/gateway"
)

type recordStore struct{ s *Store }

// OnRecordChange registers fn to hear of every record any replica writes
// (see gateway.ChangeFeed).
func (s *Store) OnRecordChange(fn func(org gateway.OrgID, kind string)) { s.signals.onRecordChange(fn) }

// notifyRecord tells every replica, at commit, that a record changed.
func notifyRecord(ctx context.Context, tx pgx.Tx, org gateway.OrgID, kind string) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, current_schema() || ' ' || $2)`, signalChannel, signalRecords+string(org)+":"+kind)
	return err
}

// Records is the store of administrative records.
func (s *Store) Records() gateway.RecordStore { return recordStore{s} }

func (rs recordStore) Get(ctx context.Context, org gateway.OrgID, kind, id string) (gateway.Record, error) {
	if err := checkOrg(org); err != nil {
		return gateway.Record{}, err
	}
	rec := gateway.Record{ID: id}
	var version int64
	err := rs.s.pool.QueryRow(ctx, `SELECT version, value FROM gh_records WHERE org = $1 AND kind = $2 AND id = $3`, org, kind, id).Scan(&version, &rec.Value)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return gateway.Record{}, gateway.Errorf(gateway.ErrNotFound, "no %s %q", kind, id)
	case err != nil:
		return gateway.Record{}, fmt.Errorf("postgres: read %s record: %w", kind, unavailable(err))
	}
	rec.Version = uint64(version)
	return rec, nil
}

func (rs recordStore) List(ctx context.Context, org gateway.OrgID, kind string) ([]gateway.Record, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	rows, err := rs.s.pool.Query(ctx, `SELECT id, version, value FROM gh_records WHERE org = $1 AND kind = $2 ORDER BY id`, org, kind)
	if err != nil {
		return nil, fmt.Errorf("postgres: list %s records: %w", kind, unavailable(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gateway.Record, error) {
		var rec gateway.Record
		var version int64
		err := r.Scan(&rec.ID, &version, &rec.Value)
		rec.Version = uint64(version)
		return rec, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list %s records: %w", kind, unavailable(err))
	}
	if len(out) == 0 {
		out = nil
	}
	return out, nil
}

// recordVersion reads a record's version, locked to the transaction's end.
func recordVersion(ctx context.Context, tx pgx.Tx, org gateway.OrgID, kind, id string) (uint64, bool, error) {
	var v int64
	err := tx.QueryRow(ctx, `SELECT version FROM gh_records WHERE org = $1 AND kind = $2 AND id = $3 FOR UPDATE`, org, kind, id).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return uint64(v), err == nil, err
}

func (rs recordStore) Put(ctx context.Context, org gateway.OrgID, kind, id string, ifVersion uint64, value []byte, jr gateway.Journal) (uint64, error) {
	if err := checkOrg(org); err != nil {
		return 0, err
	}
	if kind == "" || id == "" || strings.IndexByte(kind, 0) >= 0 {
		return 0, fmt.Errorf("postgres: put record: empty or invalid kind or id")
	}
	if !json.Valid(value) {
		return 0, fmt.Errorf("postgres: put %s record %q: value is not JSON", kind, id)
	}
	j, err := newJournal(org, jr.Events, jr.Audit)
	if err != nil {
		return 0, fmt.Errorf("postgres: put %s record: %w", kind, err)
	}
	err = rs.s.tx(ctx, func(tx pgx.Tx) error {
		if ifVersion == 0 {
			tag, err := tx.Exec(ctx, `INSERT INTO gh_records (org, kind, id, version, value) VALUES ($1, $2, $3, 1, $4::json)
				ON CONFLICT (org, kind, id) DO NOTHING`, org, kind, id, string(value))
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return gateway.Errorf(gateway.ErrConflict, "%s %q already exists", kind, id)
			}
			if err := notifyRecord(ctx, tx, org, kind); err != nil {
				return err
			}
			return j.write(ctx, tx)
		}
		have, exists, err := recordVersion(ctx, tx, org, kind, id)
		switch {
		case err != nil:
			return err
		case !exists:
			return gateway.Errorf(gateway.ErrNotFound, "no %s %q", kind, id)
		case have != ifVersion:
			return gateway.Errorf(gateway.ErrPreconditionFailed, "%s %q has changed (its version is %d): read it again and retry", kind, id, have)
		}
		if _, err := tx.Exec(ctx, `UPDATE gh_records SET version = $4, value = $5::json WHERE org = $1 AND kind = $2 AND id = $3`,
			org, kind, id, int64(ifVersion+1), string(value)); err != nil {
			return err
		}
		if err := notifyRecord(ctx, tx, org, kind); err != nil {
			return err
		}
		return j.write(ctx, tx)
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: put %s record: %w", kind, unavailable(err))
	}
	return ifVersion + 1, nil
}

func (rs recordStore) Delete(ctx context.Context, org gateway.OrgID, kind, id string, ifVersion uint64, jr gateway.Journal) error {
	if err := checkOrg(org); err != nil {
		return err
	}
	j, err := newJournal(org, jr.Events, jr.Audit)
	if err != nil {
		return fmt.Errorf("postgres: delete %s record: %w", kind, err)
	}
	err = rs.s.tx(ctx, func(tx pgx.Tx) error {
		have, exists, err := recordVersion(ctx, tx, org, kind, id)
		switch {
		case err != nil:
			return err
		case !exists:
			return gateway.Errorf(gateway.ErrNotFound, "no %s %q", kind, id)
		case ifVersion != 0 && have != ifVersion:
			return gateway.Errorf(gateway.ErrPreconditionFailed, "%s %q has changed (its version is %d): read it again and retry", kind, id, have)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM gh_records WHERE org = $1 AND kind = $2 AND id = $3`, org, kind, id); err != nil {
			return err
		}
		if err := notifyRecord(ctx, tx, org, kind); err != nil {
			return err
		}
		return j.write(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("postgres: delete %s record: %w", kind, unavailable(err))
	}
	return nil
}

type auditLog struct{ s *Store }

// Audit is the store of audit entries.
func (s *Store) Audit() gateway.AuditLog { return auditLog{s} }

func (al auditLog) Append(ctx context.Context, org gateway.OrgID, entries ...gateway.AuditEntry) error {
	if err := checkOrg(org); err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	j, err := newJournal(org, nil, entries)
	if err != nil {
		return fmt.Errorf("postgres: append audit: %w", err)
	}
	if err := al.s.tx(ctx, func(tx pgx.Tx) error { return j.write(ctx, tx) }); err != nil {
		return fmt.Errorf("postgres: append audit: %w", unavailable(err))
	}
	return nil
}

// List returns a page newest first; the filters are exact (an actor or
// target that another's is a prefix of is not it).
func (al auditLog) List(ctx context.Context, org gateway.OrgID, q gateway.AuditQuery) ([]gateway.AuditEntry, uint64, error) {
	if err := checkOrg(org); err != nil {
		return nil, 0, err
	}
	if q.Limit <= 0 {
		return nil, 0, nil
	}
	rows, err := al.s.pool.Query(ctx, `SELECT seq, entry FROM gh_audit WHERE org = $1
		AND ($2 = '' OR actor = $2) AND ($3 = '' OR target = $3) AND ($4 = 0 OR seq < $4)
		ORDER BY seq DESC LIMIT $5`, org, q.Actor, q.Target, int64(q.Before), q.Limit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: list audit: %w", unavailable(err))
	}
	defer rows.Close()
	var out []gateway.AuditEntry
	var next uint64
	for rows.Next() {
		var seq int64
		var raw []byte
		if err := rows.Scan(&seq, &raw); err != nil {
			return nil, 0, fmt.Errorf("postgres: list audit: %w", err)
		}
		if len(out) == q.Limit {
			next = uint64(seq) + 1
			break
		}
		var e gateway.AuditEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, 0, fmt.Errorf("postgres: audit entry %d: %w", seq, err)
		}
		e.Seq = uint64(seq)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("postgres: list audit: %w", unavailable(err))
	}
	return out, next, nil
}

type idMapStore struct{ s *Store }

// IDMaps is the store of adapters' downstream ids.
func (s *Store) IDMaps() gateway.IDMaps { return idMapStore{s} }

func (m idMapStore) Get(ctx context.Context, org gateway.OrgID, adapter, id string) (string, error) {
	if err := checkOrg(org); err != nil {
		return "", err
	}
	var out string
	err := m.s.pool.QueryRow(ctx, `SELECT downstream_id FROM gh_id_maps WHERE org = $1 AND adapter = $2 AND id = $3`, org, adapter, id).Scan(&out)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("postgres: read id map: %w", unavailable(err))
	}
	return out, nil
}

func (m idMapStore) Put(ctx context.Context, org gateway.OrgID, adapter, id, downstreamID string) error {
	if err := checkOrg(org); err != nil {
		return err
	}
	_, err := m.s.pool.Exec(ctx, `INSERT INTO gh_id_maps (org, adapter, id, downstream_id) VALUES ($1, $2, $3, $4)
		ON CONFLICT (org, adapter, id) DO UPDATE SET downstream_id = EXCLUDED.downstream_id`, org, adapter, id, downstreamID)
	if err != nil {
		return fmt.Errorf("postgres: write id map: %w", unavailable(err))
	}
	return nil
}

func (m idMapStore) Delete(ctx context.Context, org gateway.OrgID, adapter, id string) error {
	if err := checkOrg(org); err != nil {
		return err
	}
	if _, err := m.s.pool.Exec(ctx, `DELETE FROM gh_id_maps WHERE org = $1 AND adapter = $2 AND id = $3`, org, adapter, id); err != nil {
		return fmt.Errorf("postgres: delete id map entry: %w", unavailable(err))
	}
	return nil
}

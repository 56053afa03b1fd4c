package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/gateway"
)

type outboxStore struct{ s *Store }

// Outbox is the store of events and their delivery bookkeeping.
func (s *Store) Outbox() gateway.Outbox { return outboxStore{s} }

func decodeEvent(seq int64, body []byte) (gateway.Event, error) {
	var e gateway.Event
	if err := json.Unmarshal(body, &e); err != nil {
		return e, fmt.Errorf("event %d: %w", seq, err)
	}
	e.Seq = uint64(seq)
	return e, nil
}

func (o outboxStore) After(ctx context.Context, org gateway.OrgID, seq uint64, limit int) ([]gateway.Event, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	rows, err := o.s.pool.Query(ctx, `SELECT seq, body FROM gh_events WHERE org = $1 AND seq > $2 ORDER BY seq LIMIT $3`, org, int64(seq), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: read outbox: %w", unavailable(err))
	}
	defer rows.Close()
	var out []gateway.Event
	for rows.Next() {
		var n int64
		var body []byte
		if err := rows.Scan(&n, &body); err != nil {
			return nil, fmt.Errorf("postgres: read outbox: %w", err)
		}
		e, err := decodeEvent(n, body)
		if err != nil {
			return nil, fmt.Errorf("postgres: read outbox: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read outbox: %w", unavailable(err))
	}
	return out, nil
}

func (o outboxStore) Len(ctx context.Context, org gateway.OrgID) (int, error) {
	if err := checkOrg(org); err != nil {
		return 0, err
	}
	var n int64
	if err := o.s.pool.QueryRow(ctx, `SELECT count(*) FROM gh_events WHERE org = $1`, org).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: outbox length: %w", unavailable(err))
	}
	return int(n), nil
}

func (o outboxStore) LastSeq(ctx context.Context, org gateway.OrgID) (uint64, error) {
	if err := checkOrg(org); err != nil {
		return 0, err
	}
	n, err := count(ctx, o.s.pool, org, "events")
	if err != nil {
		return 0, fmt.Errorf("postgres: last event number: %w", unavailable(err))
	}
	return uint64(n), nil
}

func (o outboxStore) Cursor(ctx context.Context, org gateway.OrgID, consumer string) (uint64, error) {
	if err := checkOrg(org); err != nil {
		return 0, err
	}
	var seq int64
	err := o.s.pool.QueryRow(ctx, `SELECT seq FROM gh_cursors WHERE org = $1 AND consumer = $2`, org, consumer).Scan(&seq)
	if err == pgx.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: read cursor: %w", unavailable(err))
	}
	return uint64(seq), nil
}

func (o outboxStore) Ack(ctx context.Context, org gateway.OrgID, consumer string, seq uint64, add []gateway.DeadLetter, remove []uint64) error {
	if err := checkOrg(org); err != nil {
		return err
	}
	n := len(add)
	seqs, attempts, lastErrs, ats, behind, bodies := make([]int64, n), make([]int32, n), make([]string, n), make([]time.Time, n), make([]int64, n), make([]string, n)
	for i, dl := range add {
		ev := dl.Event
		ev.Seq = 0
		raw, err := json.Marshal(&ev)
		if err != nil {
			return fmt.Errorf("postgres: encode dead letter: %w", err)
		}
		seqs[i], attempts[i], lastErrs[i], ats[i], behind[i], bodies[i] = int64(dl.Event.Seq), int32(dl.Attempts), dl.LastError, dl.At, int64(dl.HeldBehind), string(raw)
	}
	removed := make([]int64, len(remove))
	for i, s := range remove {
		removed[i] = int64(s)
	}
	err := o.s.tx(ctx, func(tx pgx.Tx) error {
		// The cursor only moves forward.
		if _, err := tx.Exec(ctx, `INSERT INTO gh_cursors (org, consumer, seq) VALUES ($1, $2, $3)
			ON CONFLICT (org, consumer) DO UPDATE SET seq = greatest(gh_cursors.seq, EXCLUDED.seq)`, org, consumer, int64(seq)); err != nil {
			return err
		}
		if len(removed) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM gh_dead_letters WHERE org = $1 AND consumer = $2 AND seq = ANY($3)`, org, consumer, removed); err != nil {
				return err
			}
		}
		if n == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, `INSERT INTO gh_dead_letters (org, consumer, seq, attempts, last_error, at, held_behind, body)
			SELECT $1, $2, s, a, e, t, h, b::json FROM unnest($3::bigint[], $4::int[], $5::text[], $6::timestamptz[], $7::bigint[], $8::text[]) AS x(s, a, e, t, h, b)
			ON CONFLICT (org, consumer, seq) DO UPDATE SET attempts = EXCLUDED.attempts, last_error = EXCLUDED.last_error, at = EXCLUDED.at,
				held_behind = EXCLUDED.held_behind, body = EXCLUDED.body`,
			org, consumer, seqs, attempts, lastErrs, ats, behind, bodies)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: acknowledge: %w", unavailable(err))
	}
	return nil
}

func (o outboxStore) DeadLetters(ctx context.Context, org gateway.OrgID, consumer string) ([]gateway.DeadLetter, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	rows, err := o.s.pool.Query(ctx, `SELECT seq, attempts, last_error, at, held_behind, body FROM gh_dead_letters
		WHERE org = $1 AND consumer = $2 ORDER BY seq`, org, consumer)
	if err != nil {
		return nil, fmt.Errorf("postgres: read dead letters: %w", unavailable(err))
	}
	defer rows.Close()
	var out []gateway.DeadLetter
	for rows.Next() {
		var seq, behind int64
		var attempts int32
		var body []byte
		var dl gateway.DeadLetter
		if err := rows.Scan(&seq, &attempts, &dl.LastError, &dl.At, &behind, &body); err != nil {
			return nil, fmt.Errorf("postgres: read dead letters: %w", err)
		}
		if dl.Event, err = decodeEvent(seq, body); err != nil {
			return nil, fmt.Errorf("postgres: read dead letters: %w", err)
		}
		dl.Attempts, dl.HeldBehind, dl.At = int(attempts), uint64(behind), dl.At.UTC()
		out = append(out, dl)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read dead letters: %w", unavailable(err))
	}
	return out, nil
}

// Prune deletes the oldest events, up to upTo, recorded before before.
func (o outboxStore) Prune(ctx context.Context, org gateway.OrgID, upTo uint64, before time.Time, limit int) (int, error) {
	if err := checkOrg(org); err != nil || limit <= 0 {
		return 0, err
	}
	// Events are recorded in time order: the first one too recent ends
	// the run, as it does in the other backends.
	tag, err := o.s.pool.Exec(ctx, `DELETE FROM gh_events WHERE org = $1 AND seq IN (
		SELECT seq FROM gh_events WHERE org = $1 AND seq <= $2
		AND seq < coalesce((SELECT min(seq) FROM gh_events WHERE org = $1 AND seq <= $2 AND occurred >= $3), $2 + 1)
		ORDER BY seq LIMIT $4)`, org, int64(upTo), before, limit)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune outbox: %w", unavailable(err))
	}
	return int(tag.RowsAffected()), nil
}

// Changed is closed when the next events of org commit, on any replica
// sharing the database.
func (o outboxStore) Changed(org gateway.OrgID) <-chan struct{} { return o.s.signals.changed(org) }

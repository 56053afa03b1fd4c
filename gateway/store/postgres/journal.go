package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// journal is what a write records beside its record, in its transaction:
// events (numbered from the organization's event counter), audit entries
// (numbered from its audit counter) and the change in the number of users
// and groups. It is encoded before the transaction; write numbers and
// inserts it all in one statement, as the transaction's last step, so the
// counter rows it locks are held only until the commit that follows.
type journal struct {
	org    gateway.OrgID
	events []*gateway.Event // the callers': write stamps their Seq
	bodies []string
	times  []time.Time
	audit  []string
	actors []string
	target []string
	users  int64
	groups int64
	// touched: the write changed a user or a group (even without events:
	// a role change records none), so Changed(org) is signalled.
	touched bool
}

// newJournal encodes events and audit entries of org.
func newJournal(org gateway.OrgID, events []gateway.Event, audit []gateway.AuditEntry) (*journal, error) {
	j := &journal{org: org}
	if err := j.addEvents(events); err != nil {
		return nil, err
	}
	for _, e := range audit {
		e.Seq, e.Org = 0, org // the seq is the row's
		raw, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode audit entry: %w", err)
		}
		j.audit = append(j.audit, string(raw))
		j.actors = append(j.actors, e.Actor.String())
		j.target = append(j.target, e.Target)
	}
	return j, nil
}

// addEvents encodes more events (decided inside the transaction).
func (j *journal) addEvents(events []gateway.Event) error {
	for i := range events {
		if events[i].Org == "" {
			events[i].Org = j.org
		}
		events[i].Seq = 0 // the seq is the row's
		raw, err := json.Marshal(&events[i])
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		j.bodies = append(j.bodies, string(raw))
		j.times = append(j.times, events[i].OccurredAt)
		j.events = append(j.events, &events[i])
	}
	return nil
}

// write numbers and records the journal, and stamps the events with
// their numbers. The counters are bumped in name order, so two writes
// never wait on each other's counter rows in opposite orders.
func (j *journal) write(ctx context.Context, tx pgx.Tx) error {
	var names []string
	var deltas []int64
	for _, c := range []struct {
		name  string
		delta int64
	}{{"audit", int64(len(j.audit))}, {"events", int64(len(j.bodies))}, {"groups", j.groups}, {"groups_gen", abs(j.groups)},
		{"users", j.users}, {"users_gen", abs(j.users)}} {
		if c.delta != 0 {
			names, deltas = append(names, c.name), append(deltas, c.delta)
		}
	}
	if len(names) == 0 {
		if j.touched {
			return changedIn(ctx, tx, j.org)
		}
		return nil
	}
	rows, err := tx.Query(ctx, `
		WITH c AS (
			INSERT INTO gh_counters (org, name, value)
			SELECT $1, n, d FROM unnest($2::text[], $3::bigint[]) WITH ORDINALITY AS x(n, d, o) ORDER BY o
			ON CONFLICT (org, name) DO UPDATE SET value = gh_counters.value + EXCLUDED.value
			RETURNING name, value),
		ev AS (
			INSERT INTO gh_events (org, seq, occurred, body)
			SELECT $1, (SELECT value FROM c WHERE name = 'events') - $4 + o, t, b::json
			FROM unnest($5::timestamptz[], $6::text[]) WITH ORDINALITY AS x(t, b, o)),
		au AS (
			INSERT INTO gh_audit (org, seq, actor, target, entry)
			SELECT $1, (SELECT value FROM c WHERE name = 'audit') - $7 + o, a, tg, en::json
			FROM unnest($8::text[], $9::text[], $10::text[]) WITH ORDINALITY AS x(a, tg, en, o))
		SELECT name, value FROM c`,
		j.org, names, deltas, len(j.bodies), j.times, j.bodies, len(j.audit), j.actors, j.target, j.audit)
	if err != nil {
		return err
	}
	var last int64
	for rows.Next() {
		var name string
		var value int64
		if err := rows.Scan(&name, &value); err != nil {
			rows.Close()
			return err
		}
		if name == "events" {
			last = value
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(j.bodies) == 0 && !j.touched {
		return nil
	}
	if len(j.bodies) > 0 {
		first := uint64(last) - uint64(len(j.bodies)) + 1
		for i, e := range j.events {
			e.Seq = first + uint64(i)
		}
	}
	return changedIn(ctx, tx, j.org)
}

func abs(n int64) int64 { return max(n, -n) }

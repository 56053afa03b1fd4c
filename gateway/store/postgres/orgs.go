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

type orgStore struct{ s *Store }

// Orgs is the registry of organizations.
func (s *Store) Orgs() gateway.OrgStore { return orgStore{s} }

// domainKey is a domain as the registry compares it: lower case, without
// the root's trailing dot (example.com. is example.com).
func domainKey(name string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
}

func scanOrg(row pgx.Row, id gateway.OrgID) (*gateway.Organization, error) {
	var raw []byte
	if err := row.Scan(&raw); errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("Organization", string(id))
	} else if err != nil {
		return nil, err
	}
	var o gateway.Organization
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, fmt.Errorf("organization %q: %w", id, err)
	}
	return &o, nil
}

// putOrg writes o and claims its domains (after releasing the ones it
// held), and records the operator's audit entries.
func putOrg(ctx context.Context, tx pgx.Tx, o *gateway.Organization, create bool, j *journal) error {
	raw, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("encode organization: %w", err)
	}
	if create {
		tag, err := tx.Exec(ctx, `INSERT INTO gh_orgs (id, doc) VALUES ($1, $2::json) ON CONFLICT (id) DO NOTHING`, o.ID, string(raw))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return gateway.Errorf(gateway.ErrConflict, "an organization %q exists already", o.ID)
		}
	} else if _, err := tx.Exec(ctx, `UPDATE gh_orgs SET doc = $2::json WHERE id = $1`, o.ID, string(raw)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM gh_org_domains WHERE org = $1`, o.ID); err != nil {
		return err
	}
	for _, d := range o.Domains {
		var owner string
		err := tx.QueryRow(ctx, `INSERT INTO gh_org_domains (domain, org) VALUES ($1, $2)
			ON CONFLICT (domain) DO UPDATE SET org = gh_org_domains.org RETURNING org`, domainKey(d.Name), o.ID).Scan(&owner)
		if err != nil {
			return err
		}
		if owner != string(o.ID) {
			return gateway.Errorf(gateway.ErrConflict, "the domain %s belongs to organization %q", d.Name, owner)
		}
	}
	return j.write(ctx, tx)
}

func (r orgStore) Create(ctx context.Context, o *gateway.Organization, audit ...gateway.AuditEntry) error {
	if err := o.ID.Check(); err != nil {
		return fmt.Errorf("postgres: create organization: %w", err)
	}
	if o.Version != 1 {
		return fmt.Errorf("postgres: create organization: %w", unstamped("organization", string(o.ID), o.Version, 1))
	}
	j, err := newJournal(gateway.OperatorScope, nil, audit)
	if err != nil {
		return fmt.Errorf("postgres: create organization: %w", err)
	}
	if err := r.s.tx(ctx, func(tx pgx.Tx) error { return putOrg(ctx, tx, o, true, j) }); err != nil {
		return fmt.Errorf("postgres: create organization: %w", unavailable(err))
	}
	return nil
}

func (r orgStore) Get(ctx context.Context, id gateway.OrgID) (*gateway.Organization, error) {
	o, err := scanOrg(r.s.pool.QueryRow(ctx, `SELECT doc FROM gh_orgs WHERE id = $1`, id), id)
	if err != nil {
		return nil, fmt.Errorf("postgres: get organization: %w", unavailable(err))
	}
	return o, nil
}

func (r orgStore) List(ctx context.Context, after gateway.OrgID, limit int) ([]*gateway.Organization, int, error) {
	var total int64
	if err := r.s.pool.QueryRow(ctx, `SELECT count(*) FROM gh_orgs`).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("postgres: list organizations: %w", unavailable(err))
	}
	if limit <= 0 {
		return nil, int(total), nil
	}
	rows, err := r.s.pool.Query(ctx, `SELECT id, doc FROM gh_orgs WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: list organizations: %w", unavailable(err))
	}
	defer rows.Close()
	var out []*gateway.Organization
	for rows.Next() {
		var id string
		var raw []byte
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, 0, fmt.Errorf("postgres: list organizations: %w", err)
		}
		var o gateway.Organization
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil, 0, fmt.Errorf("postgres: organization %q: %w", id, err)
		}
		out = append(out, &o)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("postgres: list organizations: %w", unavailable(err))
	}
	return out, int(total), nil
}

func (r orgStore) Replace(ctx context.Context, o *gateway.Organization, ifVersion uint64, audit ...gateway.AuditEntry) error {
	if ifVersion == 0 || o.Version != ifVersion+1 {
		return fmt.Errorf("postgres: replace organization: %w", unstamped("organization", string(o.ID), o.Version, ifVersion+1))
	}
	j, err := newJournal(gateway.OperatorScope, nil, audit)
	if err != nil {
		return fmt.Errorf("postgres: replace organization: %w", err)
	}
	err = r.s.tx(ctx, func(tx pgx.Tx) error {
		old, err := scanOrg(tx.QueryRow(ctx, `SELECT doc FROM gh_orgs WHERE id = $1 FOR UPDATE`, o.ID), o.ID)
		if err != nil {
			return err
		}
		if old.Version != ifVersion {
			return preconditionFailed("Organization", string(o.ID), old.Version)
		}
		return putOrg(ctx, tx, o, false, j)
	})
	if err != nil {
		return fmt.Errorf("postgres: replace organization: %w", unavailable(err))
	}
	return nil
}

// scopedTables are the tables holding an organization's own data; the
// first ones are its outbox, which EraseData keeps (the event counter
// with it, so numbering goes on).
var (
	outboxTables = []string{"gh_events", "gh_cursors", "gh_dead_letters"}
	dataTables   = []string{"gh_members", "gh_users", "gh_groups", "gh_sessions", "gh_last_logins", "gh_records", "gh_audit",
		"gh_id_maps", "gh_keys", "gh_ephemeral"}
)

func eraseData(ctx context.Context, tx pgx.Tx, id gateway.OrgID) error {
	// Every replica drops what it keeps of the organization (its settings
	// and access model: records of every kind go) and wakes its caches.
	if err := notifyRecord(ctx, tx, id, ""); err != nil {
		return err
	}
	if err := changedIn(ctx, tx, id); err != nil {
		return err
	}
	for _, table := range dataTables {
		if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE org = $1`, id); err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
	}
	// The event numbering goes on, and so do the list generations (a
	// page remembered from before the erasure must never match after).
	_, err := tx.Exec(ctx, `DELETE FROM gh_counters WHERE org = $1 AND name NOT IN ('events', 'users_gen', 'groups_gen')`, id)
	return err
}

func (r orgStore) EraseData(ctx context.Context, id gateway.OrgID) error {
	if err := id.Check(); err != nil {
		return err
	}
	if err := r.s.tx(ctx, func(tx pgx.Tx) error { return eraseData(ctx, tx, id) }); err != nil {
		return fmt.Errorf("postgres: erase organization %s: %w", id, unavailable(err))
	}
	return nil
}

func (r orgStore) Delete(ctx context.Context, id gateway.OrgID, ifVersion uint64, audit ...gateway.AuditEntry) error {
	j, err := newJournal(gateway.OperatorScope, nil, audit)
	if err != nil {
		return fmt.Errorf("postgres: delete organization: %w", err)
	}
	err = r.s.tx(ctx, func(tx pgx.Tx) error {
		old, err := scanOrg(tx.QueryRow(ctx, `SELECT doc FROM gh_orgs WHERE id = $1 FOR UPDATE`, id), id)
		if err != nil {
			return err
		}
		if ifVersion != 0 && old.Version != ifVersion {
			return preconditionFailed("Organization", string(id), old.Version)
		}
		// The domains go with the registry row (ON DELETE CASCADE).
		if _, err := tx.Exec(ctx, `DELETE FROM gh_orgs WHERE id = $1`, id); err != nil {
			return err
		}
		if err := eraseData(ctx, tx, id); err != nil {
			return err
		}
		for _, table := range outboxTables {
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE org = $1`, id); err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM gh_counters WHERE org = $1`, id); err != nil {
			return err
		}
		return j.write(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("postgres: delete organization: %w", unavailable(err))
	}
	return nil
}

func (r orgStore) ByDomain(ctx context.Context, domain string) (gateway.OrgID, error) {
	var id string
	err := r.s.pool.QueryRow(ctx, `SELECT org FROM gh_org_domains WHERE domain = $1`, domainKey(domain)).Scan(&id)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("postgres: organization by domain: %w", unavailable(err))
	}
	return gateway.OrgID(id), nil
}

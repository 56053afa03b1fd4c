package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/gateway"
)

type keyStore struct{ s *Store }

// Keys is the store of the gateway's own key material.
func (s *Store) Keys() gateway.KeyStore { return keyStore{s} }

func (k keyStore) Get(ctx context.Context, org gateway.OrgID, name string) ([]byte, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	var v []byte
	err := k.s.pool.QueryRow(ctx, `SELECT value FROM gh_keys WHERE org = $1 AND name = $2`, org, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: read key: %w", unavailable(err))
	}
	return v, nil
}

// PutIfAbsent stores value unless a value is there, and returns the one
// stored: of replicas starting together, one key wins and all use it.
func (k keyStore) PutIfAbsent(ctx context.Context, org gateway.OrgID, name string, value []byte) ([]byte, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	var v []byte
	// DO UPDATE (to the same value) returns the row that won, even one a
	// racing replica committed after this statement began.
	err := k.s.pool.QueryRow(ctx, `INSERT INTO gh_keys (org, name, value) VALUES ($1, $2, $3)
		ON CONFLICT (org, name) DO UPDATE SET value = gh_keys.value RETURNING value`, org, name, value).Scan(&v)
	if err != nil {
		return nil, fmt.Errorf("postgres: store key: %w", unavailable(err))
	}
	return v, nil
}

type ephemeralStore struct{ s *Store }

// Ephemeral is the store of short-lived single-use values.
func (s *Store) Ephemeral() gateway.EphemeralStore { return ephemeralStore{s} }

func (e ephemeralStore) PutIfAbsent(ctx context.Context, org gateway.OrgID, ns, key string, value []byte, expires time.Time) (bool, error) {
	stored, _, err := e.PutIfAbsentAndTake(ctx, org, ns, key, value, expires, "", "")
	return stored, err
}

func (e ephemeralStore) Take(ctx context.Context, org gateway.OrgID, ns, key string) ([]byte, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	var v []byte
	var live bool
	err := e.s.pool.QueryRow(ctx, `DELETE FROM gh_ephemeral WHERE org = $1 AND ns = $2 AND key = $3 RETURNING value, expires > now()`,
		org, ns, key).Scan(&v, &live)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: take ephemeral value: %w", unavailable(err))
	}
	if !live {
		return nil, nil // expired: as good as absent (and now gone)
	}
	return v, nil
}

// PutIfAbsentAndTake stores a value unless a live one holds the key, and
// when it stored, takes another key's value, in one transaction.
func (e ephemeralStore) PutIfAbsentAndTake(ctx context.Context, org gateway.OrgID, putNS, putKey string, value []byte, expires time.Time,
	takeNS, takeKey string) (bool, []byte, error) {
	if err := checkOrg(org); err != nil {
		return false, nil, err
	}
	if value == nil {
		value = []byte{}
	}
	var stored bool
	var taken []byte
	err := e.s.tx(ctx, func(tx pgx.Tx) error {
		stored, taken = false, nil
		// A live value keeps the key; an expired one is replaced.
		tag, err := tx.Exec(ctx, `
			INSERT INTO gh_ephemeral (org, ns, key, expires, value) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (org, ns, key) DO UPDATE SET expires = EXCLUDED.expires, value = EXCLUDED.value
			WHERE gh_ephemeral.expires <= now()`, org, putNS, putKey, expires, value)
		if err != nil {
			return err
		}
		if stored = tag.RowsAffected() == 1; !stored || takeKey == "" {
			return nil
		}
		var live bool
		err = tx.QueryRow(ctx, `DELETE FROM gh_ephemeral WHERE org = $1 AND ns = $2 AND key = $3 RETURNING value, expires > now()`,
			org, takeNS, takeKey).Scan(&taken, &live)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err == nil && !live {
			taken = nil
		}
		return err
	})
	if err != nil {
		return false, nil, fmt.Errorf("postgres: put ephemeral value: %w", unavailable(err))
	}
	return stored, taken, nil
}

// Sweep deletes what expired before now.
func (e ephemeralStore) Sweep(ctx context.Context, org gateway.OrgID, now time.Time) (int, error) {
	if err := checkOrg(org); err != nil {
		return 0, err
	}
	tag, err := e.s.pool.Exec(ctx, `DELETE FROM gh_ephemeral WHERE org = $1 AND expires <= $2`, org, now)
	if err != nil {
		return 0, fmt.Errorf("postgres: sweep ephemeral values: %w", unavailable(err))
	}
	return int(tag.RowsAffected()), nil
}

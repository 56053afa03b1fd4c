package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/gateway"
)

type sessionStore struct{ s *Store }

// Sessions is the store of sign-in sessions.
func (s *Store) Sessions() gateway.SessionStore { return sessionStore{s} }

func sessionNotFound() error { return gateway.Errorf(gateway.ErrNotFound, "no such session") }

const sessionCols = `id, user_id, protocol, created, last_seen, expires, idp_subject, idp_session`

func scanSession(row pgx.Row, org gateway.OrgID) (gateway.Session, error) {
	se := gateway.Session{Org: org}
	err := row.Scan(&se.ID, &se.UserID, &se.Protocol, &se.Created, &se.LastSeen, &se.Expires, &se.IdPSubject, &se.IdPSession)
	se.Created, se.LastSeen, se.Expires = se.Created.UTC(), se.LastSeen.UTC(), se.Expires.UTC()
	return se, err
}

func (ss sessionStore) Create(ctx context.Context, se gateway.Session) error {
	if se.ID == "" || se.UserID == "" {
		return &gateway.Error{Code: gateway.ErrInternal, Message: "internal error", Err: fmt.Errorf("session without id or user")}
	}
	if err := checkOrg(se.Org); err != nil {
		return err
	}
	batch := &pgx.Batch{}
	batch.Queue(`INSERT INTO gh_sessions (org, id, user_id, protocol, created, last_seen, expires, idp_subject, idp_session) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (org, id) DO UPDATE SET user_id = EXCLUDED.user_id, protocol = EXCLUDED.protocol, created = EXCLUDED.created,
			last_seen = EXCLUDED.last_seen, expires = EXCLUDED.expires, idp_subject = EXCLUDED.idp_subject, idp_session = EXCLUDED.idp_session`,
		se.Org, se.ID, se.UserID, se.Protocol, se.Created, se.LastSeen, se.Expires, se.IdPSubject, se.IdPSession)
	batch.Queue(`INSERT INTO gh_last_logins (org, user_id, at) VALUES ($1, $2, $3)
		ON CONFLICT (org, user_id) DO UPDATE SET at = EXCLUDED.at`, se.Org, se.UserID, se.Created)
	err := ss.s.tx(ctx, func(tx pgx.Tx) error { return tx.SendBatch(ctx, batch).Close() })
	if err != nil {
		return fmt.Errorf("postgres: create session: %w", unavailable(err))
	}
	return nil
}

func (ss sessionStore) Get(ctx context.Context, org gateway.OrgID, id string) (gateway.Session, error) {
	if err := checkOrg(org); err != nil {
		return gateway.Session{}, err
	}
	se, err := scanSession(ss.s.pool.QueryRow(ctx, `SELECT `+sessionCols+` FROM gh_sessions WHERE org = $1 AND id = $2`, org, id), org)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return gateway.Session{}, sessionNotFound()
	case err != nil:
		return gateway.Session{}, fmt.Errorf("postgres: read session: %w", unavailable(err))
	}
	return se, nil
}

func (ss sessionStore) Touch(ctx context.Context, org gateway.OrgID, id string, at time.Time) error {
	if err := checkOrg(org); err != nil {
		return err
	}
	tag, err := ss.s.pool.Exec(ctx, `UPDATE gh_sessions SET last_seen = $3 WHERE org = $1 AND id = $2`, org, id, at)
	if err != nil {
		return fmt.Errorf("postgres: touch session: %w", unavailable(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: touch session: %w", sessionNotFound())
	}
	return nil
}

// end deletes sessions and, when it deleted any, signals Changed(org):
// a replica's session cache (the proxy's) drops what it kept at once.
func (ss sessionStore) end(ctx context.Context, what string, org gateway.OrgID, sql string, args ...any) (int, error) {
	if err := checkOrg(org); err != nil {
		return 0, err
	}
	n := 0
	err := ss.s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sql, append([]any{org}, args...)...)
		if err != nil {
			return err
		}
		if n = int(tag.RowsAffected()); n == 0 {
			return nil
		}
		return changedIn(ctx, tx, org)
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: %s: %w", what, unavailable(err))
	}
	return n, nil
}

func (ss sessionStore) Delete(ctx context.Context, org gateway.OrgID, id string) error {
	_, err := ss.end(ctx, "delete session", org, `DELETE FROM gh_sessions WHERE org = $1 AND id = $2`, id)
	return err
}

func (ss sessionStore) DeleteUser(ctx context.Context, org gateway.OrgID, userID string) (int, error) {
	return ss.end(ctx, "end user sessions", org, `DELETE FROM gh_sessions WHERE org = $1 AND user_id = $2`, userID)
}

func (ss sessionStore) DeleteAll(ctx context.Context, org gateway.OrgID) (int, error) {
	return ss.end(ctx, "end all sessions", org, `DELETE FROM gh_sessions WHERE org = $1`)
}

func (ss sessionStore) Expire(ctx context.Context, org gateway.OrgID, now, idleBefore time.Time) (int, error) {
	return ss.end(ctx, "expire sessions", org, `DELETE FROM gh_sessions WHERE org = $1 AND (expires <= $2 OR last_seen < $3)`, now, idleBefore)
}

func (ss sessionStore) EndIdP(ctx context.Context, org gateway.OrgID, subject, idpSession string) ([]gateway.Session, error) {
	if subject == "" && idpSession == "" {
		return nil, gateway.Errorf(gateway.ErrInvalid, "a logout names the IdP's subject or session")
	}
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	var ended []gateway.Session
	err := ss.s.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM gh_sessions WHERE org = $1
			AND ($2 = '' OR idp_subject = $2) AND ($3 = '' OR idp_session = $3)
			AND (idp_subject <> '' OR idp_session <> '') RETURNING `+sessionCols, org, subject, idpSession)
		if err != nil {
			return err
		}
		if ended, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (gateway.Session, error) { return scanSession(r, org) }); err != nil {
			return err
		}
		if len(ended) == 0 {
			return nil
		}
		return changedIn(ctx, tx, org)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: end IdP sessions: %w", unavailable(err))
	}
	return ended, nil
}

func (ss sessionStore) Count(ctx context.Context, org gateway.OrgID) (int, error) {
	if err := checkOrg(org); err != nil {
		return 0, err
	}
	var n int64
	if err := ss.s.pool.QueryRow(ctx, `SELECT count(*) FROM gh_sessions WHERE org = $1`, org).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count sessions: %w", unavailable(err))
	}
	return int(n), nil
}

func (ss sessionStore) ListUser(ctx context.Context, org gateway.OrgID, userID string) ([]gateway.Session, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	rows, err := ss.s.pool.Query(ctx, `SELECT `+sessionCols+` FROM gh_sessions WHERE org = $1 AND user_id = $2 ORDER BY id`, org, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: list sessions: %w", unavailable(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gateway.Session, error) { return scanSession(r, org) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list sessions: %w", unavailable(err))
	}
	if len(out) == 0 {
		out = nil
	}
	return out, nil
}

func (ss sessionStore) LastLogins(ctx context.Context, org gateway.OrgID, userIDs []string) (map[string]time.Time, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	rows, err := ss.s.pool.Query(ctx, `SELECT user_id, at FROM gh_last_logins WHERE org = $1 AND user_id = ANY($2)`, org, userIDs)
	if err != nil {
		return nil, fmt.Errorf("postgres: read last logins: %w", unavailable(err))
	}
	defer rows.Close()
	out := make(map[string]time.Time, len(userIDs))
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, fmt.Errorf("postgres: read last logins: %w", err)
		}
		out[id] = at.UTC()
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read last logins: %w", unavailable(err))
	}
	return out, nil
}

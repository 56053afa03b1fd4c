package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/gateway"
	namefold "github.com/gatehouse-id/gatehouse/gateway/fold"
	"github.com/gatehouse-id/gatehouse/gateway/store/internal/storekit"
)

type userStore struct{ s *Store }

// Users is the store of users.
func (s *Store) Users() gateway.UserStore { return userStore{s} }

// fold is the key of the unique name indexes (see package fold).
func fold(s string) string { return namefold.Key(s) }

// userHeader is what a user row holds besides its document; userCols
// names them in that order.
const userCols = `id, user_name, external_id, active, given_name, family_name, display_name, emails, source, pools, role, created, modified, version`

// nanos is t in Unix nanoseconds; the zero time (outside their range)
// is math.MinInt64.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// document is d as compact JSON (what the doc columns hold).
var document = storekit.Document

// scanUser reads a row of userCols, and the document when withDoc (the
// row's last column).
func scanUser(row pgx.Row, org gateway.OrgID, withDoc bool) (*gateway.User, error) {
	u := &gateway.User{Org: org}
	var source string
	var version, created, modified int64
	var doc []byte
	dest := []any{&u.ID, &u.UserName, &u.ExternalID, &u.Active, &u.GivenName, &u.FamilyName, &u.DisplayName, &u.Emails,
		&source, &u.Pools, &u.Role, &created, &modified, &version}
	if withDoc {
		dest = append(dest, &doc)
	}
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	u.Source, u.Version = gateway.Source(source), uint64(version)
	u.Created, u.Modified = fromNanos(created), fromNanos(modified)
	if len(u.Emails) == 0 {
		u.Emails = nil
	}
	if len(u.Pools) == 0 {
		u.Pools = nil
	}
	if withDoc {
		u.Attributes = gateway.DocumentFromJSON(doc)
	}
	return u, nil
}

// userArgs are the values of a user row, in the order of the insert and
// update statements below.
func userArgs(u *gateway.User, doc []byte) []any {
	emailKeys := make([]string, len(u.Emails))
	for i, e := range u.Emails {
		emailKeys[i] = fold(e)
	}
	emails, pools := u.Emails, u.Pools
	if emails == nil {
		emails = []string{}
	}
	if pools == nil {
		pools = []string{}
	}
	return []any{u.Org, u.ID, fold(u.UserName), u.UserName, u.ExternalID, u.Active, u.GivenName, u.FamilyName, u.DisplayName,
		emails, emailKeys, string(u.Source), pools, u.Role, nanos(u.Created), nanos(u.Modified), int64(u.Version), string(doc)}
}

const insertUser = `INSERT INTO gh_users (org, id, name_key, user_name, external_id, active, given_name, family_name, display_name,
	emails, email_keys, source, pools, role, created, modified, version, doc)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18::json)`

// updateUser writes a user; $19 is the version it must be at (0: any).
const updateUser = `UPDATE gh_users SET name_key = $3, user_name = $4, external_id = $5, active = $6, given_name = $7,
	family_name = $8, display_name = $9, emails = $10, email_keys = $11, source = $12, pools = $13, role = $14, created = $15,
	modified = $16, version = $17, doc = $18::json
	WHERE org = $1 AND id = $2 AND ($19 = 0 OR version = $19)`

// userWriteError turns a unique violation into the conflict it means.
func userWriteError(err error, u *gateway.User) error {
	switch constraint(err) {
	case "gh_users_pkey":
		return gateway.Errorf(gateway.ErrConflict, "user id %q already exists", u.ID)
	case "gh_users_name":
		return gateway.Errorf(gateway.ErrConflict, "userName %q is already taken (userName is unique and case-insensitive)", u.UserName)
	}
	return err
}

func (us userStore) Create(ctx context.Context, u *gateway.User, events []gateway.Event, audit ...gateway.AuditEntry) error {
	if u.Version != 1 || u.ID == "" {
		return fmt.Errorf("postgres: create user: %w", unstamped("user", u.ID, u.Version, 1))
	}
	if err := checkOrg(u.Org); err != nil {
		return err
	}
	doc, err := document(u.Attributes)
	if err != nil {
		return fmt.Errorf("postgres: create user: encode %q: %w", u.ID, err)
	}
	j, err := newJournal(u.Org, events, audit)
	if err != nil {
		return fmt.Errorf("postgres: create user: %w", err)
	}
	j.users, j.touched = 1, true
	err = us.s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, insertUser, userArgs(u, doc)...); err != nil {
			return userWriteError(err, u)
		}
		return j.write(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("postgres: create user: %w", unavailable(err))
	}
	return nil
}

// lockUser reads the user a write applies to, locked until the
// transaction ends, checking its version when ifVersion is not 0. An
// update locks FOR NO KEY UPDATE, which lets a group's new membership
// edge (its foreign key check) name the user meanwhile; a deletion locks
// FOR UPDATE.
func lockUser(ctx context.Context, tx pgx.Tx, org gateway.OrgID, id string, ifVersion uint64, deleting bool) (*gateway.User, error) {
	lock := "FOR NO KEY UPDATE"
	if deleting {
		lock = "FOR UPDATE"
	}
	u, err := scanUser(tx.QueryRow(ctx, `SELECT `+userCols+`, doc FROM gh_users WHERE org = $1 AND id = $2 `+lock, org, id), org, true)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, notFound("User", id)
	case err != nil:
		return nil, err
	case ifVersion != 0 && u.Version != ifVersion:
		return nil, preconditionFailed("User", id, u.Version)
	}
	return u, nil
}

func (us userStore) Replace(ctx context.Context, u *gateway.User, ifVersion uint64, events []gateway.Event, audit ...gateway.AuditEntry) error {
	if ifVersion == 0 || u.Version != ifVersion+1 || u.ID == "" {
		return fmt.Errorf("postgres: replace user: %w", unstamped("user", u.ID, u.Version, ifVersion+1))
	}
	if err := checkOrg(u.Org); err != nil {
		return err
	}
	doc, err := document(u.Attributes)
	if err != nil {
		return fmt.Errorf("postgres: replace user: encode %q: %w", u.ID, err)
	}
	j, err := newJournal(u.Org, events, audit)
	if err != nil {
		return fmt.Errorf("postgres: replace user: %w", err)
	}
	j.touched = true
	err = us.s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, updateUser, append(userArgs(u, doc), int64(ifVersion))...)
		if err != nil {
			return userWriteError(err, u)
		}
		if tag.RowsAffected() == 0 {
			var have int64
			if err := tx.QueryRow(ctx, `SELECT version FROM gh_users WHERE org = $1 AND id = $2`, u.Org, u.ID).Scan(&have); errors.Is(err, pgx.ErrNoRows) {
				return notFound("User", u.ID)
			} else if err != nil {
				return err
			}
			return preconditionFailed("User", u.ID, uint64(have))
		}
		return j.write(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("postgres: replace user: %w", unavailable(err))
	}
	return nil
}

func (us userStore) Get(ctx context.Context, org gateway.OrgID, id string) (*gateway.User, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	u, err := scanUser(us.s.pool.QueryRow(ctx, `SELECT `+userCols+`, doc FROM gh_users WHERE org = $1 AND id = $2`, org, id), org, true)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, notFound("User", id)
	case err != nil:
		return nil, fmt.Errorf("postgres: get user: %w", unavailable(err))
	}
	return u, nil
}

func (us userStore) GetMany(ctx context.Context, org gateway.OrgID, ids []string) ([]*gateway.User, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	rows, err := us.s.pool.Query(ctx, `SELECT `+userCols+`, doc FROM gh_users WHERE org = $1 AND id = ANY($2)`, org, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: get users: %w", unavailable(err))
	}
	byID, err := collectUsers(rows, org, true)
	if err != nil {
		return nil, fmt.Errorf("postgres: get users: %w", unavailable(err))
	}
	// In the order asked for, like the other backends.
	index := make(map[string]*gateway.User, len(byID))
	for _, u := range byID {
		index[u.ID] = u
	}
	out := make([]*gateway.User, 0, len(byID))
	for _, id := range ids {
		if u, ok := index[id]; ok {
			out = append(out, u)
		}
	}
	return out, nil
}

func collectUsers(rows pgx.Rows, org gateway.OrgID, withDoc bool) ([]*gateway.User, error) {
	defer rows.Close()
	var out []*gateway.User
	for rows.Next() {
		u, err := scanUser(rows, org, withDoc)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func (us userStore) Update(ctx context.Context, org gateway.OrgID, id string, ifVersion uint64, fn gateway.UserUpdateFunc) (*gateway.User, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	var result *gateway.User
	err := us.s.tx(ctx, func(tx pgx.Tx) error {
		old, err := lockUser(ctx, tx, org, id, ifVersion, false)
		if err != nil {
			return err
		}
		ch, err := fn(old.Clone()) // fn may keep or modify its copy
		if err != nil {
			return err
		}
		j, err := newJournal(org, ch.Events, ch.Audit)
		if err != nil {
			return err
		}
		if ch.Unchanged {
			result = old
			return j.write(ctx, tx)
		}
		nu := ch.User
		if nu == nil {
			return unstamped("user", id, 0, old.Version+1)
		}
		if err := checkStamped("user", id, org, old.Version, nu.ID, nu.Org, nu.Version); err != nil {
			return err
		}
		doc, err := document(nu.Attributes)
		if err != nil {
			return fmt.Errorf("encode %q: %w", id, err)
		}
		if _, err := tx.Exec(ctx, updateUser, append(userArgs(nu, doc), int64(0))...); err != nil {
			return userWriteError(err, nu)
		}
		result = nu
		j.touched = true
		return j.write(ctx, tx)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: update user: %w", unavailable(err))
	}
	return result, nil
}

func (us userStore) Delete(ctx context.Context, org gateway.OrgID, id string, ifVersion uint64, fn gateway.UserDeleteFunc) error {
	if err := checkOrg(org); err != nil {
		return err
	}
	err := us.s.tx(ctx, func(tx pgx.Tx) error {
		old, err := lockUser(ctx, tx, org, id, ifVersion, true)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+groupColsOf("g")+`, g.doc FROM gh_groups g JOIN gh_members m ON m.org = g.org AND m.group_id = g.id
			WHERE m.org = $1 AND m.user_id = $2 ORDER BY g.id FOR UPDATE OF g`, org, id)
		if err != nil {
			return err
		}
		groups, err := collectGroups(rows, org)
		if err != nil {
			return err
		}
		del, err := fn(old, groups)
		if err != nil {
			return err
		}
		// The groups the user leaves change: each comes back stamped.
		if err := storekit.CheckLeftGroups(org, id, groups, del.Groups); err != nil {
			return err
		}
		for _, g := range del.Groups {
			if err := writeGroup(ctx, tx, g); err != nil {
				return err
			}
		}
		j, err := newJournal(org, del.Events, del.Audit)
		if err != nil {
			return err
		}
		j.users, j.touched = -1, true
		// The membership edges go with the user (ON DELETE CASCADE).
		if _, err := tx.Exec(ctx, `DELETE FROM gh_users WHERE org = $1 AND id = $2`, org, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM gh_last_logins WHERE org = $1 AND user_id = $2`, org, id); err != nil {
			return err
		}
		return j.write(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("postgres: delete user: %w", unavailable(err))
	}
	return nil
}

func (us userStore) Lookup(ctx context.Context, org gateway.OrgID, index gateway.UserIndex, value string) ([]string, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	var q string
	switch index {
	case gateway.UserByUserName:
		q, value = `SELECT id FROM gh_users WHERE org = $1 AND name_key = $2`, fold(value)
	case gateway.UserByExternalID:
		q = `SELECT id FROM gh_users WHERE org = $1 AND external_id = $2 AND $2 <> '' ORDER BY id`
	case gateway.UserByEmail:
		q, value = `SELECT id FROM gh_users WHERE org = $1 AND email_keys @> ARRAY[$2::text] ORDER BY id`, fold(value)
	case gateway.UserByPool:
		q = `SELECT id FROM gh_users WHERE org = $1 AND pools @> ARRAY[$2::text] ORDER BY id`
	default:
		return nil, fmt.Errorf("postgres: lookup users: unknown index %q", index)
	}
	ids, err := queryStrings(ctx, us.s.pool, q, org, value)
	if err != nil {
		return nil, fmt.Errorf("postgres: lookup users: %w", unavailable(err))
	}
	return ids, nil
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func queryStrings(ctx context.Context, q querier, sql string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if len(out) == 0 {
		out = nil
	}
	return out, err
}

// count reads one of org's counters (users, groups).
func count(ctx context.Context, q querier, org gateway.OrgID, name string) (int, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT value FROM gh_counters WHERE org = $1 AND name = $2`, org, name).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return int(n), err
}

func (us userStore) List(ctx context.Context, org gateway.OrgID, offset, limit int) ([]*gateway.User, int, error) {
	if err := checkOrg(org); err != nil {
		return nil, 0, err
	}
	out := []*gateway.User{}
	total, err := us.s.page(ctx, org, "users", userCols+", doc", max(offset, 0), limit, func(rows pgx.Rows) (string, error) {
		u, err := scanUser(rows, org, true)
		if err != nil {
			return "", err
		}
		out = append(out, u)
		return u.ID, nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: list users: %w", unavailable(err))
	}
	return out, total, nil
}

// scanBatch is how many rows a scan reads per query: a scan holds no
// connection while its callback runs.
const scanBatch = 500

func (us userStore) Scan(ctx context.Context, org gateway.OrgID, after string, fn func(*gateway.User) bool) error {
	return us.scan(ctx, org, after, "", true, fn)
}

// ScanSummaries is Scan without the documents. With contains, rows whose
// document is all ASCII and lacks it in any case are left in the
// database (a document with other characters may fold into it, so it is
// read).
func (us userStore) ScanSummaries(ctx context.Context, org gateway.OrgID, after, contains string, fn func(*gateway.User) bool) error {
	return us.scan(ctx, org, after, contains, false, fn)
}

func (us userStore) scan(ctx context.Context, org gateway.OrgID, after, contains string, withDoc bool, fn func(*gateway.User) bool) error {
	if err := checkOrg(org); err != nil {
		return err
	}
	cols := userCols
	if withDoc {
		cols += ", doc"
	}
	for {
		rows, err := us.s.pool.Query(ctx, `SELECT `+cols+` FROM gh_users WHERE org = $1 AND id > $2
			AND ($3 = '' OR strpos(lower(doc::text), $3) > 0 OR octet_length(doc::text) <> char_length(doc::text))
			ORDER BY id LIMIT $4`, org, after, contains, scanBatch)
		if err != nil {
			return fmt.Errorf("postgres: scan users: %w", unavailable(err))
		}
		batch, err := collectUsers(rows, org, withDoc)
		if err != nil {
			return fmt.Errorf("postgres: scan users: %w", unavailable(err))
		}
		for _, u := range batch {
			if !fn(u) {
				return nil
			}
		}
		if len(batch) < scanBatch {
			return nil
		}
		after = batch[len(batch)-1].ID
	}
}

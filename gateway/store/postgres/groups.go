package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/store/internal/storekit"
)

type groupStore struct{ s *Store }

// Groups is the store of groups and their membership edges.
func (s *Store) Groups() gateway.GroupStore { return groupStore{s} }

const groupCols = `id, display_name, external_id, source, created, modified, version`

// groupColsOf is groupCols qualified by a table alias.
func groupColsOf(alias string) string {
	cols := strings.Split(groupCols, ", ")
	for i := range cols {
		cols[i] = alias + "." + cols[i]
	}
	return strings.Join(cols, ", ")
}

// scanGroup reads a row of groupCols and the document.
func scanGroup(row pgx.Row, org gateway.OrgID) (*gateway.Group, error) {
	g := &gateway.Group{Org: org}
	var source string
	var version, created, modified int64
	var doc []byte
	if err := row.Scan(&g.ID, &g.DisplayName, &g.ExternalID, &source, &created, &modified, &version, &doc); err != nil {
		return nil, err
	}
	g.Source, g.Version = gateway.Source(source), uint64(version)
	g.Created, g.Modified = fromNanos(created), fromNanos(modified)
	g.Attributes = gateway.DocumentFromJSON(doc)
	return g, nil
}

func collectGroups(rows pgx.Rows, org gateway.OrgID) ([]*gateway.Group, error) {
	defer rows.Close()
	var out []*gateway.Group
	for rows.Next() {
		g, err := scanGroup(rows, org)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

func groupWriteError(err error, g *gateway.Group) error {
	switch constraint(err) {
	case "gh_groups_pkey":
		return gateway.Errorf(gateway.ErrConflict, "group id %q already exists", g.ID)
	case "gh_groups_name":
		return gateway.Errorf(gateway.ErrConflict, "a group named %q already exists (displayName is unique and case-insensitive)", g.DisplayName)
	}
	return err
}

// writeGroup writes a changed group over the stored one.
func writeGroup(ctx context.Context, tx pgx.Tx, g *gateway.Group) error {
	doc, err := document(g.Attributes)
	if err != nil {
		return fmt.Errorf("encode group %q: %w", g.ID, err)
	}
	_, err = tx.Exec(ctx, `UPDATE gh_groups SET name_key = $3, display_name = $4, external_id = $5, source = $6, created = $7,
		modified = $8, version = $9, doc = $10::json WHERE org = $1 AND id = $2`,
		g.Org, g.ID, fold(g.DisplayName), g.DisplayName, g.ExternalID, string(g.Source), nanos(g.Created), nanos(g.Modified), int64(g.Version), string(doc))
	return groupWriteError(err, g)
}

// missingUsers returns the member ids that name no user, sorted.
func missingUsers(ctx context.Context, tx pgx.Tx, org gateway.OrgID, ms []gateway.Member) ([]string, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.UserID
	}
	missing, err := queryStrings(ctx, tx, `SELECT DISTINCT x FROM unnest($2::text[]) AS x
		WHERE NOT EXISTS (SELECT 1 FROM gh_users WHERE org = $1 AND id = x)`, org, ids)
	sort.Strings(missing)
	return missing, err
}

var unknownMembers = storekit.UnknownMembers

// putEdges writes membership edges; an existing edge gets the new
// display. A member deleted meanwhile (on any replica) fails the write
// on the foreign key, as one that was never there does.
func putEdges(ctx context.Context, tx pgx.Tx, org gateway.OrgID, groupID string, ms []gateway.Member) error {
	missing, err := missingUsers(ctx, tx, org, ms)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return unknownMembers(missing)
	}
	if len(ms) == 0 {
		return nil
	}
	users, displays := make([]string, len(ms)), make([]string, len(ms))
	for i, m := range ms {
		users[i], displays[i] = m.UserID, m.Display
	}
	_, err = tx.Exec(ctx, `INSERT INTO gh_members (org, group_id, user_id, display)
		SELECT DISTINCT ON (u) $1, $2, u, d FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS x(u, d, o) ORDER BY u, o DESC
		ON CONFLICT (org, group_id, user_id) DO UPDATE SET display = EXCLUDED.display`, org, groupID, users, displays)
	if foreignKey(err) {
		return gateway.Errorf(gateway.ErrInvalid, "members name a user that was just deleted (provision the users first, or leave them out)")
	}
	return err
}

func (gs groupStore) Create(ctx context.Context, g *gateway.Group, ms []gateway.Member, events []gateway.Event) error {
	if g.Version != 1 || g.ID == "" {
		return fmt.Errorf("postgres: create group: %w", unstamped("group", g.ID, g.Version, 1))
	}
	if err := checkOrg(g.Org); err != nil {
		return err
	}
	doc, err := document(g.Attributes)
	if err != nil {
		return fmt.Errorf("postgres: create group: encode %q: %w", g.ID, err)
	}
	j, err := newJournal(g.Org, events, nil)
	if err != nil {
		return fmt.Errorf("postgres: create group: %w", err)
	}
	j.groups, j.touched = 1, true
	err = gs.s.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO gh_groups (org, id, name_key, display_name, external_id, source, created, modified, version, doc)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::json)`,
			g.Org, g.ID, fold(g.DisplayName), g.DisplayName, g.ExternalID, string(g.Source), nanos(g.Created), nanos(g.Modified), int64(g.Version), string(doc))
		if err != nil {
			return groupWriteError(err, g)
		}
		if err := putEdges(ctx, tx, g.Org, g.ID, ms); err != nil {
			return err
		}
		return j.write(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("postgres: create group: %w", unavailable(err))
	}
	return nil
}

func (gs groupStore) Get(ctx context.Context, org gateway.OrgID, id string) (*gateway.Group, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	g, err := scanGroup(gs.s.pool.QueryRow(ctx, `SELECT `+groupCols+`, doc FROM gh_groups WHERE org = $1 AND id = $2`, org, id), org)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, notFound("Group", id)
	case err != nil:
		return nil, fmt.Errorf("postgres: get group: %w", unavailable(err))
	}
	return g, nil
}

func (gs groupStore) GetMany(ctx context.Context, org gateway.OrgID, ids []string) ([]*gateway.Group, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	rows, err := gs.s.pool.Query(ctx, `SELECT `+groupCols+`, doc FROM gh_groups WHERE org = $1 AND id = ANY($2)`, org, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: get groups: %w", unavailable(err))
	}
	found, err := collectGroups(rows, org)
	if err != nil {
		return nil, fmt.Errorf("postgres: get groups: %w", unavailable(err))
	}
	index := make(map[string]*gateway.Group, len(found))
	for _, g := range found {
		index[g.ID] = g
	}
	out := make([]*gateway.Group, 0, len(found))
	for _, id := range ids {
		if g, ok := index[id]; ok {
			out = append(out, g)
		}
	}
	return out, nil
}

func members(ctx context.Context, q querier, org gateway.OrgID, groupID string) ([]gateway.Member, error) {
	rows, err := q.Query(ctx, `SELECT user_id, display FROM gh_members WHERE org = $1 AND group_id = $2 ORDER BY user_id`, org, groupID)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gateway.Member, error) {
		var m gateway.Member
		err := r.Scan(&m.UserID, &m.Display)
		return m, err
	})
	if len(out) == 0 {
		out = nil
	}
	return out, err
}

func (gs groupStore) Members(ctx context.Context, org gateway.OrgID, id string) ([]gateway.Member, error) {
	_, ms, err := gs.GetWithMembers(ctx, org, id)
	return ms, err
}

// GetWithMembers reads a group and its members in one snapshot.
func (gs groupStore) GetWithMembers(ctx context.Context, org gateway.OrgID, id string) (*gateway.Group, []gateway.Member, error) {
	if err := checkOrg(org); err != nil {
		return nil, nil, err
	}
	var g *gateway.Group
	var ms []gateway.Member
	err := pgx.BeginTxFunc(ctx, gs.s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		g, err = scanGroup(tx.QueryRow(ctx, `SELECT `+groupCols+`, doc FROM gh_groups WHERE org = $1 AND id = $2`, org, id), org)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("Group", id)
		}
		if err != nil {
			return err
		}
		ms, err = members(ctx, tx, org, id)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: get group: %w", unavailable(err))
	}
	return g, ms, nil
}

func (gs groupStore) Update(ctx context.Context, org gateway.OrgID, id string, ifVersion uint64, fn gateway.GroupUpdateFunc) (*gateway.Group, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	var result *gateway.Group
	err := gs.s.tx(ctx, func(tx pgx.Tx) error {
		old, err := lockGroup(ctx, tx, org, id, ifVersion)
		if err != nil {
			return err
		}
		ch, err := fn(old.Clone())
		if err != nil {
			return err
		}
		j, err := newJournal(org, ch.Events, nil)
		if err != nil {
			return err
		}
		if ch.Unchanged {
			result = old
			return j.write(ctx, tx)
		}
		ng := ch.Group
		if ng == nil {
			return unstamped("group", id, 0, old.Version+1)
		}
		if err := checkStamped("group", id, org, old.Version, ng.ID, ng.Org, ng.Version); err != nil {
			return err
		}
		if err := writeGroup(ctx, tx, ng); err != nil {
			return err
		}
		if err := putEdges(ctx, tx, org, id, ch.Put); err != nil {
			return err
		}
		if len(ch.Remove) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM gh_members WHERE org = $1 AND group_id = $2 AND user_id = ANY($3)`, org, id, ch.Remove); err != nil {
				return err
			}
		}
		result = ng
		j.touched = true
		return j.write(ctx, tx)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: update group: %w", unavailable(err))
	}
	return result, nil
}

func lockGroup(ctx context.Context, tx pgx.Tx, org gateway.OrgID, id string, ifVersion uint64) (*gateway.Group, error) {
	g, err := scanGroup(tx.QueryRow(ctx, `SELECT `+groupCols+`, doc FROM gh_groups WHERE org = $1 AND id = $2 FOR NO KEY UPDATE`, org, id), org)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, notFound("Group", id)
	case err != nil:
		return nil, err
	case ifVersion != 0 && g.Version != ifVersion:
		return nil, preconditionFailed("Group", id, g.Version)
	}
	return g, nil
}

func (gs groupStore) Delete(ctx context.Context, org gateway.OrgID, id string, ifVersion uint64, fn gateway.GroupDeleteFunc) error {
	if err := checkOrg(org); err != nil {
		return err
	}
	err := gs.s.tx(ctx, func(tx pgx.Tx) error {
		old, err := lockGroup(ctx, tx, org, id, ifVersion)
		if err != nil {
			return err
		}
		ms, err := members(ctx, tx, org, id)
		if err != nil {
			return err
		}
		events, err := fn(old, ms)
		if err != nil {
			return err
		}
		j, err := newJournal(org, events, nil)
		if err != nil {
			return err
		}
		j.groups, j.touched = -1, true
		if _, err := tx.Exec(ctx, `DELETE FROM gh_groups WHERE org = $1 AND id = $2`, org, id); err != nil {
			return err
		}
		return j.write(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("postgres: delete group: %w", unavailable(err))
	}
	return nil
}

func (gs groupStore) Lookup(ctx context.Context, org gateway.OrgID, index gateway.GroupIndex, value string) ([]string, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	var q string
	switch index {
	case gateway.GroupByDisplayName:
		q, value = `SELECT id FROM gh_groups WHERE org = $1 AND name_key = $2`, fold(value)
	case gateway.GroupByExternalID:
		q = `SELECT id FROM gh_groups WHERE org = $1 AND external_id = $2 AND $2 <> '' ORDER BY id`
	case gateway.GroupByMember:
		q = `SELECT group_id FROM gh_members WHERE org = $1 AND user_id = $2 ORDER BY group_id`
	default:
		return nil, fmt.Errorf("postgres: lookup groups: unknown index %q", index)
	}
	ids, err := queryStrings(ctx, gs.s.pool, q, org, value)
	if err != nil {
		return nil, fmt.Errorf("postgres: lookup groups: %w", unavailable(err))
	}
	return ids, nil
}

func (gs groupStore) List(ctx context.Context, org gateway.OrgID, offset, limit int) ([]*gateway.Group, int, error) {
	if err := checkOrg(org); err != nil {
		return nil, 0, err
	}
	out := []*gateway.Group{}
	total, err := gs.s.page(ctx, org, "groups", groupCols+", doc", max(offset, 0), limit, func(rows pgx.Rows) (string, error) {
		g, err := scanGroup(rows, org)
		if err != nil {
			return "", err
		}
		out = append(out, g)
		return g.ID, nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: list groups: %w", unavailable(err))
	}
	return out, total, nil
}

func (gs groupStore) Scan(ctx context.Context, org gateway.OrgID, fn func(*gateway.Group) bool) error {
	if err := checkOrg(org); err != nil {
		return err
	}
	after := ""
	for {
		rows, err := gs.s.pool.Query(ctx, `SELECT `+groupCols+`, doc FROM gh_groups WHERE org = $1 AND id > $2 ORDER BY id LIMIT $3`, org, after, scanBatch)
		if err != nil {
			return fmt.Errorf("postgres: scan groups: %w", unavailable(err))
		}
		batch, err := collectGroups(rows, org)
		if err != nil {
			return fmt.Errorf("postgres: scan groups: %w", unavailable(err))
		}
		for _, g := range batch {
			if !fn(g) {
				return nil
			}
		}
		if len(batch) < scanBatch {
			return nil
		}
		after = batch[len(batch)-1].ID
	}
}

func (gs groupStore) Memberships(ctx context.Context, org gateway.OrgID, userIDs []string) (map[string][]gateway.GroupRef, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	out := map[string][]gateway.GroupRef{}
	rows, err := gs.s.pool.Query(ctx, `SELECT m.user_id, g.id, g.display_name FROM gh_members m JOIN gh_groups g ON g.org = m.org AND g.id = m.group_id
		WHERE m.org = $1 AND m.user_id = ANY($2) ORDER BY m.user_id, g.id`, org, userIDs)
	if err != nil {
		return nil, fmt.Errorf("postgres: memberships: %w", unavailable(err))
	}
	defer rows.Close()
	for rows.Next() {
		var uid string
		var ref gateway.GroupRef
		if err := rows.Scan(&uid, &ref.ID, &ref.DisplayName); err != nil {
			return nil, fmt.Errorf("postgres: memberships: %w", err)
		}
		out[uid] = append(out[uid], ref)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: memberships: %w", unavailable(err))
	}
	return out, nil
}

package postgres

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// A list page at a deep startIndex is OFFSET n, which walks n index
// entries (100,000 users: 100 ms a page). The pager remembers the id found
// at some positions, so a page starts from the nearest bookmark at or
// before its offset and skips at most bookmarkEvery rows. Sequential
// paging (how IdPs import) then costs one index probe per page.
//
// Positions move when records are added or removed: every create and
// delete bumps the organization's <kind>_gen counter in its transaction,
// a bookmark is used only by a read that sees the generation it was taken
// at (read in the page's own statement, so in the same snapshot), and the
// bookmarked id must still be there.
type pager struct {
	mu   sync.Mutex
	sets map[string]*bookmarks // by org + table
}

type bookmarks struct {
	gen   int64
	marks map[int]string // position → id
}

const (
	bookmarkEvery = 512
	maxBookmarks  = 4096
)

func (p *pager) nearest(set string, gen int64, offset int) (int, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	bm := p.sets[set]
	if bm == nil || bm.gen != gen {
		return 0, ""
	}
	best, id := 0, ""
	for pos, k := range bm.marks {
		if pos <= offset && pos >= best && k != "" {
			best, id = pos, k
		}
	}
	return best, id
}

func (p *pager) remember(set string, gen int64, marks map[int]string) {
	if len(marks) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sets == nil {
		p.sets = map[string]*bookmarks{}
	}
	bm := p.sets[set]
	if bm == nil || bm.gen != gen {
		if bm != nil && bm.gen > gen {
			return // a newer generation is cached already
		}
		bm = &bookmarks{gen: gen, marks: map[int]string{}}
		p.sets[set] = bm
	}
	if len(bm.marks) > maxBookmarks {
		bm.marks = map[int]string{}
	}
	for pos, k := range marks {
		bm.marks[pos] = k
	}
}

// generation reads a table's generation as the pager sees it (0 when the
// organization has none yet).
func (p *pager) generation(ctx context.Context, q querier, org gateway.OrgID, table string) (int64, error) {
	n, err := count(ctx, q, org, table+"_gen")
	return int64(n), err
}

// page reads limit rows of table (users or groups) after skipping offset,
// in id order, with cols (the id first), handing each to scan; it returns
// the table's count for the page's snapshot.
func (s *Store) page(ctx context.Context, org gateway.OrgID, table, cols string, offset, limit int, scan func(pgx.Rows) (string, error)) (int, error) {
	set := string(org) + "\x00" + table
	total := 0
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		if total, err = count(ctx, tx, org, table); err != nil || limit <= 0 {
			return err
		}
		gen, err := s.pager.generation(ctx, tx, org, table)
		if err != nil {
			return err
		}
		pos, start := s.pager.nearest(set, gen, offset)
		learned := map[int]string{}
		if start != "" {
			var present bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM gh_`+table+` WHERE org = $1 AND id = $2)`, org, start).Scan(&present); err != nil {
				return err
			}
			if !present { // cannot happen within a generation; be safe
				pos, start = 0, ""
			}
		}
		if offset-pos > bookmarkEvery {
			// Learn a bookmark every bookmarkEvery ids on the way (ids
			// only: an index-only scan), for this page and the next.
			rows, err := tx.Query(ctx, `SELECT n, id FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM gh_`+table+`
				WHERE org = $1 AND id >= $2 ORDER BY id LIMIT $3) s WHERE n % $4 = 0`, org, start, offset-pos+1, bookmarkEvery)
			if err != nil {
				return err
			}
			for rows.Next() {
				var n int64
				var id string
				if err := rows.Scan(&n, &id); err != nil {
					rows.Close()
					return err
				}
				learned[pos+int(n)] = id
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for at, id := range learned {
				if at <= offset && at > pos {
					pos, start = at, id
				}
			}
		}
		rows, err := tx.Query(ctx, `SELECT `+cols+` FROM gh_`+table+` WHERE org = $1 AND id >= $2 ORDER BY id OFFSET $3 LIMIT $4`,
			org, start, offset-pos, limit+1)
		if err != nil {
			return err
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			if n == limit { // the next page's first row
				vals, err := rows.Values()
				if err != nil {
					return err
				}
				if id, ok := vals[0].(string); ok {
					learned[offset+n] = id
				}
				break
			}
			id, err := scan(rows)
			if err != nil {
				return err
			}
			if n == 0 {
				learned[offset] = id
			}
			n++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		s.pager.remember(set, gen, learned)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("page %s: %w", table, err)
	}
	return total, nil
}

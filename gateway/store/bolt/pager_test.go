package bolt

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// TestPagingWithBookmarksStaysExact pages at random offsets while users are
// created and deleted between pages, and compares every page with the
// true id order: a stale bookmark would shift a page.
func TestPagingWithBookmarksStaysExact(t *testing.T) {
	s := openTest(t, "")
	s.pager.every = 7 // bookmark often, to exercise it
	ctx := context.Background()
	var ids []string
	for i := range 300 {
		ids = append(ids, mustCreate(t, s, newUser(fmt.Sprintf("p%03d@x", i))).ID)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		switch round % 10 {
		case 3: // delete one
			i := rng.IntN(len(ids))
			if err := s.Users().Delete(ctx, org, ids[i], 0, func(*gateway.User, []*gateway.Group) (gateway.UserDeletion, error) {
				return gateway.UserDeletion{}, nil
			}); err != nil {
				t.Fatal(err)
			}
			ids = slices.Delete(ids, i, i+1)
		case 7: // add one
			ids = append(ids, mustCreate(t, s, newUser(fmt.Sprintf("q%03d@x", round))).ID)
		}
		want := slices.Sorted(slices.Values(ids))
		offset, limit := rng.IntN(len(want)+5), 1+rng.IntN(40)
		page, total, err := s.Users().List(ctx, org, offset, limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, u := range page {
			got = append(got, u.ID)
		}
		exp := want[min(offset, len(want)):min(offset+limit, len(want))]
		if total != len(want) || !slices.Equal(got, exp) {
			t.Fatalf("round %d offset %d limit %d: got %v, want %v (total %d/%d)", round, offset, limit, got, exp, total, len(want))
		}
	}
}

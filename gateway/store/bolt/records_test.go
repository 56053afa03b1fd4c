package bolt

import (
	"bytes"
	"context"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

func TestPoolIndex(t *testing.T) {
	path := t.TempDir() + "/pools.db"
	s := openTest(t, path)
	ctx := context.Background()
	u := newUser("ada@example.com")
	u.Pools = []string{"default", "support"}
	mustCreate(t, s, u)
	lookup := func(s *Store, pool string) []string {
		ids, err := s.Users().Lookup(ctx, org, gateway.UserByPool, pool)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	if !slices.Equal(lookup(s, "support"), []string{u.ID}) || !slices.Equal(lookup(s, "default"), []string{u.ID}) {
		t.Fatal("a new user is not indexed under its pools")
	}
	if _, err := s.Users().Update(ctx, org, u.ID, 0, func(old *gateway.User) (gateway.UserChange, error) {
		old.Pools, old.Version = []string{"sales"}, old.Version+1
		return gateway.UserChange{User: old}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(lookup(s, "support")) != 0 || !slices.Equal(lookup(s, "sales"), []string{u.ID}) {
		t.Fatal("a pool change does not move the index entries")
	}
	checkConsistency(t, s)

	// A schema version 2 file gets its pool index built at open.
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketTenants).Bucket([]byte(org)).DeleteBucket(bUserPool); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyVersion, u64(2))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := openTest(t, path)
	if !slices.Equal(lookup(s2, "sales"), []string{u.ID}) {
		t.Fatal("the pool index was not built for a version 2 file")
	}
}

// TestScanSummariesContains: the search's first cut skips only users that
// cannot match; folded non-ASCII names are kept for the real match.
func TestScanSummariesContains(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	mk := func(name, given string) *gateway.User {
		u := newUser(name, name)
		u.GivenName = given
		u.Attributes = gateway.NewDocument(map[string]any{"userName": name, "name": map[string]any{"givenName": given}})
		return mustCreate(t, s, u)
	}
	ada := mk("ada@example.com", "Ada")
	strasse := mk("s@example.com", "Straße")
	bob := mk("bob@example.com", "Bob")
	for _, u := range []*gateway.User{ada, strasse} {
		v := func() []byte {
			var out []byte
			_ = s.db.View(func(tx *bolt.Tx) error {
				out = bytes.Clone(tx.Bucket(bucketTenants).Bucket([]byte(org)).Bucket(bUsers).Get([]byte(u.ID)))
				return nil
			})
			return out
		}()
		_, want, _ := decodeUserHeader(v, org)
		if got, ok := userDocument(v); !ok || !bytes.Equal(got, want) {
			t.Fatalf("userDocument of %s: %q, want %q", u.UserName, got, want)
		}
	}
	// The non-ASCII record is never ruled out (folding could make ASCII of
	// it); the ASCII ones pass only when they hold the text in some case.
	cases := map[string][]string{
		"ada":     {ada.ID, strasse.ID},
		"example": {ada.ID, strasse.ID, bob.ID},
		"strasse": {strasse.ID},
		"bob":     {strasse.ID, bob.ID},
		"zzz":     {strasse.ID},
	}
	for q, want := range cases {
		var got []string
		if err := s.Users().ScanSummaries(ctx, org, "", q, func(u *gateway.User) bool {
			got = append(got, u.ID)
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%q: %v passed the first cut, want %v", q, got, want)
		}
	}
}

package bolt

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

func TestRecords(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	r := s.Records()
	audit := func(action string) gateway.Journal {
		return gateway.Journal{Audit: []gateway.AuditEntry{{Time: time.Now(), Actor: gateway.Actor{Kind: gateway.ActorToken, ID: "t1"}, Action: action, Target: "pool:a"}}}
	}
	v, err := r.Put(ctx, tenant, "pool", "a", 0, []byte(`{"name":"A"}`), audit("pool.create"))
	if err != nil || v != 1 {
		t.Fatalf("create: %d %v", v, err)
	}
	steps := []struct {
		name      string
		id        string
		ifVersion uint64
		want      gateway.ErrorCode
	}{
		{"create over an existing id", "a", 0, gateway.ErrConflict},
		{"stale version", "a", 7, gateway.ErrPreconditionFailed},
		{"update of a missing record", "zz", 1, gateway.ErrNotFound},
	}
	for _, st := range steps {
		if _, err := r.Put(ctx, tenant, "pool", st.id, st.ifVersion, []byte(`{}`), audit("refused")); code(err) != st.want {
			t.Errorf("%s: %v, want %s", st.name, err, st.want)
		}
	}
	if _, err := r.Put(ctx, tenant, "pool", "b", 0, []byte(`not json`), gateway.Journal{}); err == nil {
		t.Error("a value that is not JSON was stored")
	}
	if v, err = r.Put(ctx, tenant, "pool", "a", 1, []byte(`{"name":"A2"}`), audit("pool.rename")); err != nil || v != 2 {
		t.Fatalf("update: %d %v", v, err)
	}
	if _, err := r.Put(ctx, tenant, "other", "a", 0, []byte(`{}`), gateway.Journal{}); err != nil {
		t.Fatalf("kinds are separate: %v", err)
	}
	got, err := r.Get(ctx, tenant, "pool", "a")
	if err != nil || got.Version != 2 || string(got.Value) != `{"name":"A2"}` {
		t.Fatalf("get: %+v %v", got, err)
	}
	list, err := r.List(ctx, tenant, "pool")
	if err != nil || len(list) != 1 || list[0].ID != "a" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := r.Delete(ctx, tenant, "pool", "a", 1, audit("refused")); code(err) != gateway.ErrPreconditionFailed {
		t.Fatalf("delete at a stale version: %v", err)
	}
	if err := r.Delete(ctx, tenant, "pool", "a", 2, audit("pool.delete")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx, tenant, "pool", "a"); code(err) != gateway.ErrNotFound {
		t.Fatalf("deleted record: %v", err)
	}
	// Refused writes leave no audit entry; the others do, in the same
	// transaction.
	entries, _, err := s.Audit().List(ctx, tenant, gateway.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
	}
	if want := []string{"pool.delete", "pool.rename", "pool.create"}; !slices.Equal(actions, want) {
		t.Fatalf("audit = %v, want %v", actions, want)
	}
}

func TestAuditPaging(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	for i := range 25 {
		e := gateway.AuditEntry{Time: time.Now(), Actor: gateway.Actor{Kind: gateway.ActorSession, ID: fmt.Sprintf("m%d", i%2)},
			Action: "user.role", Target: fmt.Sprintf("user:u%d", i%5)}
		if err := s.Audit().Append(ctx, tenant, e); err != nil {
			t.Fatal(err)
		}
	}
	// A prefix of another actor's id must not leak into the filter.
	if err := s.Audit().Append(ctx, tenant, gateway.AuditEntry{Actor: gateway.Actor{Kind: gateway.ActorSession, ID: "m1x"}, Target: "user:u1x"}); err != nil {
		t.Fatal(err)
	}
	pages := func(q gateway.AuditQuery) [][]uint64 {
		var out [][]uint64
		for {
			entries, next, err := s.Audit().List(ctx, tenant, q)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []uint64
			for _, e := range entries {
				seqs = append(seqs, e.Seq)
				if q.Actor != "" && e.Actor.String() != q.Actor || q.Target != "" && e.Target != q.Target {
					t.Fatalf("entry %d does not match %+v: %+v", e.Seq, q, e)
				}
			}
			out = append(out, seqs)
			if next == 0 {
				return out
			}
			q.Before = next
		}
	}
	cases := []struct {
		q    gateway.AuditQuery
		want [][]uint64
	}{
		{gateway.AuditQuery{Limit: 10}, [][]uint64{{26, 25, 24, 23, 22, 21, 20, 19, 18, 17}, {16, 15, 14, 13, 12, 11, 10, 9, 8, 7}, {6, 5, 4, 3, 2, 1}}},
		{gateway.AuditQuery{Limit: 5, Actor: "session:m1"}, [][]uint64{{24, 22, 20, 18, 16}, {14, 12, 10, 8, 6}, {4, 2}}},
		{gateway.AuditQuery{Limit: 3, Target: "user:u1"}, [][]uint64{{22, 17, 12}, {7, 2}}},
		{gateway.AuditQuery{Limit: 10, Target: "user:u1", Actor: "session:m0"}, [][]uint64{{17, 7}}},
		{gateway.AuditQuery{Limit: 10, Actor: "session:nobody"}, [][]uint64{nil}},
	}
	for _, c := range cases {
		if got := pages(c.q); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%+v: pages %v, want %v", c.q, got, c.want)
		}
	}
}

func TestPoolIndex(t *testing.T) {
	path := t.TempDir() + "/pools.db"
	s := openTest(t, path)
	ctx := context.Background()
	u := newUser("ada@example.com")
	u.Pools = []string{"default", "support"}
	mustCreate(t, s, u)
	lookup := func(s *Store, pool string) []string {
		ids, err := s.Users().Lookup(ctx, tenant, gateway.UserByPool, pool)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	if !slices.Equal(lookup(s, "support"), []string{u.ID}) || !slices.Equal(lookup(s, "default"), []string{u.ID}) {
		t.Fatal("a new user is not indexed under its pools")
	}
	if _, err := s.Users().Update(ctx, tenant, u.ID, 0, func(old *gateway.User) (gateway.UserChange, error) {
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
		if err := tx.Bucket(bucketTenants).Bucket([]byte(tenant)).DeleteBucket(bUserPool); err != nil {
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

// TestPutIfAbsentAndTake: the put and the take happen together or not at
// all: a key already there leaves the other value in place.
func TestPutIfAbsentAndTake(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	e := s.Ephemeral()
	later := time.Now().Add(time.Hour)
	if _, err := e.PutIfAbsent(ctx, tenant, "req", "r1", []byte("return=/x"), later); err != nil {
		t.Fatal(err)
	}
	stored, taken, err := e.PutIfAbsentAndTake(ctx, tenant, "replay", "a1", nil, later, "req", "r1")
	if err != nil || !stored || string(taken) != "return=/x" {
		t.Fatalf("first: %v %q %v", stored, taken, err)
	}
	if _, err := e.PutIfAbsent(ctx, tenant, "req", "r2", []byte("return=/y"), later); err != nil {
		t.Fatal(err)
	}
	stored, taken, err = e.PutIfAbsentAndTake(ctx, tenant, "replay", "a1", nil, later, "req", "r2")
	if err != nil || stored || taken != nil {
		t.Fatalf("a replay: %v %q %v", stored, taken, err)
	}
	if v, _ := e.Take(ctx, tenant, "req", "r2"); string(v) != "return=/y" {
		t.Fatalf("a replay took the other request: %q", v)
	}
	if stored, taken, err = e.PutIfAbsentAndTake(ctx, tenant, "replay", "a2", nil, later, "req", ""); err != nil || !stored || taken != nil {
		t.Fatalf("nothing to take: %v %q %v", stored, taken, err)
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
				out = bytes.Clone(tx.Bucket(bucketTenants).Bucket([]byte(tenant)).Bucket(bUsers).Get([]byte(u.ID)))
				return nil
			})
			return out
		}()
		_, want, _ := decodeUserHeader(v)
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
		if err := s.Users().ScanSummaries(ctx, tenant, "", q, func(u *gateway.User) bool {
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

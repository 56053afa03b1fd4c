package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

func testRecords(t *testing.T, s gateway.Store) {
	r := s.Records()
	journal := func(action string) gateway.Journal {
		return gateway.Journal{Audit: []gateway.AuditEntry{{Time: time.Now(), Actor: gateway.Actor{Kind: gateway.ActorToken, ID: "t1"}, Action: action, Target: "pool:a"}}}
	}
	v, err := r.Put(ctx(), orgA, "pool", "a", 0, []byte(`{"name":"A"}`), journal("pool.create"))
	if err != nil || v != 1 {
		t.Fatalf("create: %d %v", v, err)
	}
	for _, st := range []struct {
		name      string
		id        string
		ifVersion uint64
		want      gateway.ErrorCode
	}{
		{"create over an existing id", "a", 0, gateway.ErrConflict},
		{"stale version", "a", 7, gateway.ErrPreconditionFailed},
		{"update of a missing record", "zz", 1, gateway.ErrNotFound},
	} {
		if _, err := r.Put(ctx(), orgA, "pool", st.id, st.ifVersion, []byte(`{}`), journal("refused")); code(err) != st.want {
			t.Errorf("%s: %v, want %s", st.name, err, st.want)
		}
	}
	if _, err := r.Put(ctx(), orgA, "pool", "b", 0, []byte(`not json`), gateway.Journal{}); err == nil {
		t.Error("a value that is not JSON was stored")
	}
	if v, err = r.Put(ctx(), orgA, "pool", "a", 1, []byte(`{"name":"A2"}`), journal("pool.rename")); err != nil || v != 2 {
		t.Fatalf("update: %d %v", v, err)
	}
	if _, err := r.Put(ctx(), orgA, "other", "a", 0, []byte(`{}`), gateway.Journal{}); err != nil {
		t.Fatalf("kinds are separate: %v", err)
	}
	for _, id := range []string{"c", "b"} {
		if _, err := r.Put(ctx(), orgA, "pool", id, 0, []byte(`{}`), gateway.Journal{}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.Get(ctx(), orgA, "pool", "a")
	if err != nil || got.Version != 2 || string(got.Value) != `{"name":"A2"}` || got.ID != "a" {
		t.Fatalf("get: %+v %v", got, err)
	}
	list, err := r.List(ctx(), orgA, "pool")
	var listed []string
	for _, rec := range list {
		listed = append(listed, rec.ID)
	}
	if err != nil || !slices.Equal(listed, []string{"a", "b", "c"}) {
		t.Fatalf("list in id order: %v %v", listed, err)
	}
	if err := r.Delete(ctx(), orgA, "pool", "a", 1, journal("refused")); code(err) != gateway.ErrPreconditionFailed {
		t.Fatalf("delete at a stale version: %v", err)
	}
	if err := r.Delete(ctx(), orgA, "pool", "a", 2, journal("pool.delete")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx(), orgA, "pool", "a"); code(err) != gateway.ErrNotFound {
		t.Fatalf("a deleted record: %v", err)
	}
	if err := r.Delete(ctx(), orgA, "pool", "b", 0, gateway.Journal{}); err != nil {
		t.Fatalf("delete at any version: %v", err)
	}
	// Refused writes leave no audit entry; the others do, in the same
	// transaction. A record write's events are recorded with it.
	if got, want := auditActions(t, s, orgA), []string{"pool.delete", "pool.rename", "pool.create"}; !slices.Equal(got, want) {
		t.Fatalf("audit %v, want %v", got, want)
	}
	seq := lastSeq(t, s, orgA)
	if _, err := r.Put(ctx(), orgA, "invitation", "i1", 0, []byte(`{}`), gateway.Journal{Events: ev(gateway.OpInvitationCreated)}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Put(ctx(), orgA, "invitation", "i1", 0, []byte(`{}`), gateway.Journal{Events: ev(gateway.OpInvitationCreated)}); code(err) != gateway.ErrConflict {
		t.Fatal(err)
	}
	if n := lastSeq(t, s, orgA); n != seq+1 {
		t.Fatalf("a record's events: last seq %d, want %d", n, seq+1)
	}
}

func testAuditPaging(t *testing.T, s gateway.Store) {
	for i := range 25 {
		e := gateway.AuditEntry{Time: time.Now(), Actor: gateway.Actor{Kind: gateway.ActorSession, ID: fmt.Sprintf("m%d", i%2)},
			Action: "user.role", Target: fmt.Sprintf("user:u%d", i%5)}
		if err := s.Audit().Append(ctx(), orgA, e); err != nil {
			t.Fatal(err)
		}
	}
	// An id that another's is a prefix of must not leak into the filter.
	if err := s.Audit().Append(ctx(), orgA, gateway.AuditEntry{Actor: gateway.Actor{Kind: gateway.ActorSession, ID: "m1x"}, Target: "user:u1x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Audit().Append(ctx(), orgB, gateway.AuditEntry{Actor: gateway.Actor{Kind: gateway.ActorSession, ID: "m1"}, Target: "user:u1"}); err != nil {
		t.Fatal(err)
	}
	pages := func(q gateway.AuditQuery) [][]uint64 {
		var out [][]uint64
		for {
			entries, next, err := s.Audit().List(ctx(), orgA, q)
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
	for _, c := range []struct {
		q    gateway.AuditQuery
		want [][]uint64
	}{
		{gateway.AuditQuery{Limit: 10}, [][]uint64{{26, 25, 24, 23, 22, 21, 20, 19, 18, 17}, {16, 15, 14, 13, 12, 11, 10, 9, 8, 7}, {6, 5, 4, 3, 2, 1}}},
		{gateway.AuditQuery{Limit: 5, Actor: "session:m1"}, [][]uint64{{24, 22, 20, 18, 16}, {14, 12, 10, 8, 6}, {4, 2}}},
		{gateway.AuditQuery{Limit: 3, Target: "user:u1"}, [][]uint64{{22, 17, 12}, {7, 2}}},
		{gateway.AuditQuery{Limit: 10, Target: "user:u1", Actor: "session:m0"}, [][]uint64{{17, 7}}},
		{gateway.AuditQuery{Limit: 10, Actor: "session:nobody"}, [][]uint64{nil}},
	} {
		if got := pages(c.q); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%+v: pages %v, want %v", c.q, got, c.want)
		}
	}
	if entries, _, _ := s.Audit().List(ctx(), orgB, gateway.AuditQuery{Limit: 10}); len(entries) != 1 || entries[0].Seq != 1 || entries[0].Org != orgB {
		t.Fatalf("org B's audit log: %+v", entries)
	}
}

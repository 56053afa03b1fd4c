package bolt

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

const tenant = gateway.DefaultTenant

func openTest(t testing.TB, path string) *Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "test.db")
	}
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var idSeq struct {
	sync.Mutex
	n int
}

func nextID(prefix string) string {
	idSeq.Lock()
	defer idSeq.Unlock()
	idSeq.n++
	return fmt.Sprintf("%s-%06d", prefix, idSeq.n)
}

func newUser(name string, emails ...string) *gateway.User {
	return &gateway.User{ID: nextID("u"), Tenant: tenant, UserName: name, Active: true, Emails: emails, ExternalID: "ext-" + name,
		Version: 1, Attributes: gateway.NewDocument(map[string]any{"userName": name})}
}

func ev(op gateway.Op) []gateway.Event {
	return []gateway.Event{{ID: nextID("e"), Op: op, OccurredAt: time.Now()}}
}

func code(err error) gateway.ErrorCode { return gateway.ErrorCodeOf(err) }

func mustCreate(t *testing.T, s *Store, u *gateway.User) *gateway.User {
	t.Helper()
	if err := s.Users().Create(context.Background(), u, ev(gateway.OpUserCreated)); err != nil {
		t.Fatal(err)
	}
	return u
}

// checkConsistency walks every bucket and asserts that every index entry
// and edge points at an existing record, and that every record's index
// entries exist.
func checkConsistency(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		tb := tx.Bucket(bucketTenants).Bucket([]byte(tenant))
		if tb == nil {
			return nil
		}
		users, groups := tb.Bucket(bUsers), tb.Bucket(bGroups)
		second := func(k []byte) string { return string(k[bytes.IndexByte(k, 0)+1:]) }
		first := func(k []byte) string { return string(k[:bytes.IndexByte(k, 0)]) }
		check := func(bucket []byte, target *bolt.Bucket, id func(k, v []byte) string) {
			_ = tb.Bucket(bucket).ForEach(func(k, v []byte) error {
				if target.Get([]byte(id(k, v))) == nil {
					t.Errorf("%s entry %q points to missing record %q", bucket, k, id(k, v))
				}
				return nil
			})
		}
		check(bUserName, users, func(k, v []byte) string { return string(v) })
		check(bUserExtID, users, func(k, v []byte) string { return second(k) })
		check(bUserEmail, users, func(k, v []byte) string { return second(k) })
		check(bGroupName, groups, func(k, v []byte) string { return string(v) })
		check(bGroupExtID, groups, func(k, v []byte) string { return second(k) })
		check(bGroupUser, groups, func(k, v []byte) string { return first(k) })
		check(bGroupUser, users, func(k, v []byte) string { return second(k) })
		check(bUserGroup, users, func(k, v []byte) string { return first(k) })
		check(bUserGroup, groups, func(k, v []byte) string { return second(k) })
		// Edges exist in both directions.
		_ = tb.Bucket(bGroupUser).ForEach(func(k, _ []byte) error {
			if tb.Bucket(bUserGroup).Get(pair(second(k), first(k))) == nil {
				t.Errorf("edge %q has no reverse", k)
			}
			return nil
		})
		nUsers := 0
		_ = users.ForEach(func(k, v []byte) error {
			nUsers++
			u, err := decodeUser(v)
			if err != nil {
				t.Errorf("user %q: %v", k, err)
				return nil
			}
			if got := tb.Bucket(bUserName).Get([]byte(fold(u.UserName))); string(got) != u.ID {
				t.Errorf("user %s: userName index has %q", u.ID, got)
			}
			for _, e := range u.Emails {
				if tb.Bucket(bUserEmail).Get(pair(fold(e), u.ID)) == nil {
					t.Errorf("user %s: email %s not indexed", u.ID, e)
				}
			}
			return nil
		})
		if counter(tb, counterUsers) != nUsers || tb.Bucket(bUserName).Stats().KeyN != nUsers {
			t.Errorf("users: counter %d, records %d, userName index %d", counter(tb, counterUsers), nUsers, tb.Bucket(bUserName).Stats().KeyN)
		}
		nGroups := groups.Stats().KeyN
		if counter(tb, counterGroups) != nGroups || tb.Bucket(bGroupName).Stats().KeyN != nGroups {
			t.Errorf("groups: counter %d, records %d", counter(tb, counterGroups), nGroups)
		}
		if counter(tb, counterOutbox) != tb.Bucket(bOutbox).Stats().KeyN {
			t.Errorf("outbox counter %d, entries %d", counter(tb, counterOutbox), tb.Bucket(bOutbox).Stats().KeyN)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestUniqueUserNameUnderConcurrency(t *testing.T) {
	s := openTest(t, "")
	const n = 50
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := "Same@Example.com"
			if i%3 == 0 {
				name = strings.ToUpper(name)
			} else if i%3 == 1 {
				name = strings.ToLower(name)
			}
			errs[i] = s.Users().Create(context.Background(), newUser(name), ev(gateway.OpUserCreated))
		}()
	}
	// Distinct names at the same time all succeed.
	distinct := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			distinct[i] = s.Users().Create(context.Background(), newUser(fmt.Sprintf("user%d@x", i)), ev(gateway.OpUserCreated))
		}()
	}
	wg.Wait()
	ok, conflicts := 0, 0
	for _, err := range errs {
		switch code(err) {
		case "":
			ok++
		case gateway.ErrConflict:
			conflicts++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || conflicts != n-1 {
		t.Fatalf("%d created, %d conflicts", ok, conflicts)
	}
	for _, err := range distinct {
		if err != nil {
			t.Errorf("distinct create: %v", err)
		}
	}
	if n, _ := s.Outbox().Len(context.Background(), tenant); n != 51 {
		t.Errorf("outbox holds %d events, want 51", n)
	}
	checkConsistency(t, s)
}

func TestRestartKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	u := newUser("ada@x", "ada@x")
	if err := s.Users().Create(ctx, u, ev(gateway.OpUserCreated)); err != nil {
		t.Fatal(err)
	}
	g := &gateway.Group{ID: nextID("g"), Tenant: tenant, DisplayName: "Eng", Version: 1}
	if err := s.Groups().Create(ctx, g, []gateway.Member{{UserID: u.ID, Display: "Ada"}}, ev(gateway.OpGroupCreated)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, path)
	got, err := s2.Users().Get(ctx, tenant, u.ID)
	if err != nil || got.UserName != "ada@x" || got.Version != 1 {
		t.Fatalf("user after restart: %+v %v", got, err)
	}
	ms, err := s2.Groups().Members(ctx, tenant, g.ID)
	if err != nil || len(ms) != 1 || ms[0] != (gateway.Member{UserID: u.ID, Display: "Ada"}) {
		t.Fatalf("members after restart: %v %v", ms, err)
	}
	if err := s2.Users().Create(ctx, newUser("bob@x"), ev(gateway.OpUserCreated)); err != nil {
		t.Fatal(err)
	}
	evs, err := s2.Outbox().After(ctx, tenant, 0, 10)
	if err != nil || len(evs) != 3 || evs[0].Seq != 1 || evs[1].Seq != 2 || evs[2].Seq != 3 || evs[0].Tenant != tenant {
		t.Fatalf("outbox after restart: %+v %v", evs, err)
	}
	if after, _ := s2.Outbox().After(ctx, tenant, 2, 10); len(after) != 1 || after[0].Op != gateway.OpUserCreated {
		t.Fatalf("After(2) = %+v", after)
	}
	checkConsistency(t, s2)
}

func TestIndexesFollowUpdatesAndDeletes(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	u := mustCreate(t, s, newUser("Old@x", "old@x", "other@x"))
	other := mustCreate(t, s, newUser("taken@x"))
	rename := func(name string, emails ...string) gateway.UserUpdateFunc {
		return func(old *gateway.User) (gateway.UserChange, error) {
			old.UserName, old.Emails, old.ExternalID = name, emails, "ext-"+name
			old.Version++
			return gateway.UserChange{User: old, Events: ev(gateway.OpUserUpdated)}, nil
		}
	}
	// Renaming onto another user's name (any case) conflicts, changes nothing.
	if _, err := s.Users().Update(ctx, tenant, u.ID, 0, rename("TAKEN@x")); code(err) != gateway.ErrConflict {
		t.Fatalf("rename onto taken name: %v", err)
	}
	// A case-only rename of oneself is fine.
	if _, err := s.Users().Update(ctx, tenant, u.ID, 0, rename("OLD@X", "old@x")); err != nil {
		t.Fatal(err)
	}
	nu, err := s.Users().Update(ctx, tenant, u.ID, 0, rename("new@x", "new@x"))
	if err != nil || nu.Version != 3 {
		t.Fatalf("rename: %+v %v", nu, err)
	}
	look := func(idx gateway.UserIndex, v string) []string {
		ids, err := s.Users().Lookup(ctx, tenant, idx, v)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	if ids := look(gateway.UserByUserName, "old@x"); len(ids) != 0 {
		t.Errorf("old userName still indexed: %v", ids)
	}
	if ids := look(gateway.UserByUserName, "NEW@X"); !slices.Equal(ids, []string{u.ID}) {
		t.Errorf("new userName lookup = %v", ids)
	}
	if ids := look(gateway.UserByEmail, "other@x"); len(ids) != 0 {
		t.Errorf("dropped email still indexed: %v", ids)
	}
	if ids := look(gateway.UserByExternalID, "ext-new@x"); !slices.Equal(ids, []string{u.ID}) {
		t.Errorf("externalId lookup = %v", ids)
	}
	// The old name is free again.
	mustCreate(t, s, newUser("old@x"))

	g := &gateway.Group{ID: nextID("g"), Tenant: tenant, DisplayName: "Eng", Version: 1}
	if err := s.Groups().Create(ctx, g, []gateway.Member{{UserID: u.ID}, {UserID: other.ID}}, ev(gateway.OpGroupCreated)); err != nil {
		t.Fatal(err)
	}
	// Groups the user leaves must come back stamped.
	err = s.Users().Delete(ctx, tenant, u.ID, 0, func(old *gateway.User, groups []*gateway.Group) (gateway.UserDeletion, error) {
		return gateway.UserDeletion{Events: ev(gateway.OpUserDeleted)}, nil
	})
	if code(err) != gateway.ErrInternal {
		t.Fatalf("delete without stamping the groups left: %v", err)
	}
	var gotGroups []string
	err = s.Users().Delete(ctx, tenant, u.ID, 0, func(old *gateway.User, groups []*gateway.Group) (gateway.UserDeletion, error) {
		del := gateway.UserDeletion{Events: ev(gateway.OpUserDeleted)}
		for _, g := range groups {
			gotGroups = append(gotGroups, g.ID)
			ng := g.Clone()
			ng.Version++
			del.Groups = append(del.Groups, ng)
		}
		return del, nil
	})
	if err != nil || !slices.Equal(gotGroups, []string{g.ID}) {
		t.Fatalf("delete: groups %v, %v", gotGroups, err)
	}
	if left, _ := s.Groups().Get(ctx, tenant, g.ID); left.Version != 2 {
		t.Fatalf("a group the user left keeps version %d", left.Version)
	}
	if _, err := s.Users().Get(ctx, tenant, u.ID); code(err) != gateway.ErrNotFound {
		t.Fatalf("get after delete: %v", err)
	}
	if ms, _ := s.Groups().Members(ctx, tenant, g.ID); len(ms) != 1 || ms[0].UserID != other.ID {
		t.Fatalf("members after user delete: %v", ms)
	}
	if ids, _ := s.Groups().Lookup(ctx, tenant, gateway.GroupByMember, u.ID); len(ids) != 0 {
		t.Fatalf("reverse edges after user delete: %v", ids)
	}
	checkConsistency(t, s)
}

func TestFailedWritesChangeNothing(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	u := mustCreate(t, s, newUser("ada@x"))
	n0, _ := s.Outbox().Len(ctx, tenant)
	cases := []struct {
		name    string
		version uint64
		fn      gateway.UserUpdateFunc
		want    gateway.ErrorCode
	}{
		{"stale version", 7, func(old *gateway.User) (gateway.UserChange, error) {
			old.UserName = "x"
			old.Version++
			return gateway.UserChange{User: old, Events: ev(gateway.OpUserUpdated)}, nil
		}, gateway.ErrPreconditionFailed},
		{"fn fails", 0, func(old *gateway.User) (gateway.UserChange, error) {
			return gateway.UserChange{}, gateway.Errorf(gateway.ErrInvalid, "no")
		}, gateway.ErrInvalid},
		{"not stamped", 0, func(old *gateway.User) (gateway.UserChange, error) {
			old.UserName = "x"
			return gateway.UserChange{User: old, Events: ev(gateway.OpUserUpdated)}, nil
		}, gateway.ErrInternal},
		{"stamped twice", 0, func(old *gateway.User) (gateway.UserChange, error) {
			old.Version += 2
			return gateway.UserChange{User: old}, nil
		}, gateway.ErrInternal},
		{"another user's id", 0, func(old *gateway.User) (gateway.UserChange, error) {
			old.ID, old.Version = "someone-else", old.Version+1
			return gateway.UserChange{User: old}, nil
		}, gateway.ErrInternal},
		{"no record and not unchanged", 0, func(old *gateway.User) (gateway.UserChange, error) {
			return gateway.UserChange{}, nil
		}, gateway.ErrInternal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Users().Update(ctx, tenant, u.ID, tc.version, tc.fn); code(err) != tc.want {
				t.Fatalf("err = %v, want %s", err, tc.want)
			}
		})
	}
	if _, err := s.Users().Update(ctx, tenant, "nope", 0, cases[0].fn); code(err) != gateway.ErrNotFound {
		t.Fatalf("update missing: %v", err)
	}
	if err := s.Users().Delete(ctx, tenant, u.ID, 9, func(*gateway.User, []*gateway.Group) (gateway.UserDeletion, error) {
		return gateway.UserDeletion{}, nil
	}); code(err) != gateway.ErrPreconditionFailed {
		t.Fatalf("delete stale: %v", err)
	}
	got, _ := s.Users().Get(ctx, tenant, u.ID)
	if got.UserName != "ada@x" || got.Version != 1 {
		t.Fatalf("user changed: %+v", got)
	}
	if err := s.Users().Create(ctx, &gateway.User{ID: nextID("u"), Tenant: tenant, UserName: "v0@x"}, nil); code(err) != gateway.ErrInternal {
		t.Fatalf("create of an unstamped user: %v", err)
	}
	// An update that says Unchanged writes nothing: same version.
	same, err := s.Users().Update(ctx, tenant, u.ID, 1, func(old *gateway.User) (gateway.UserChange, error) {
		old.UserName = "ignored"
		return gateway.UserChange{User: old, Unchanged: true}, nil
	})
	if err != nil || same.Version != 1 || same.UserName != "ada@x" {
		t.Fatalf("no-op update: %+v %v", same, err)
	}
	if n, _ := s.Outbox().Len(ctx, tenant); n != n0 {
		t.Fatalf("outbox grew from %d to %d", n0, n)
	}
	// Unchanged with events: the events are recorded, the record is not
	// touched (an invitation, say, records an event about a user).
	same, err = s.Users().Update(ctx, tenant, u.ID, 0, func(old *gateway.User) (gateway.UserChange, error) {
		return gateway.UserChange{Unchanged: true, Events: ev(gateway.OpInvitationCreated)}, nil
	})
	if err != nil || same.Version != 1 {
		t.Fatalf("events without a change: %+v %v", same, err)
	}
	if n, _ := s.Outbox().Len(ctx, tenant); n != n0+1 {
		t.Fatalf("outbox %d, want %d", n, n0+1)
	}
	// A change without events (a login, a role change) is still a change.
	changed, err := s.Users().Update(ctx, tenant, u.ID, 1, func(old *gateway.User) (gateway.UserChange, error) {
		old.Role, old.Version = "manager", old.Version+1
		return gateway.UserChange{User: old}, nil
	})
	if err != nil || changed.Version != 2 || changed.Role != "manager" {
		t.Fatalf("change without events: %+v %v", changed, err)
	}
	if got, _ := s.Users().Get(ctx, tenant, u.ID); got.Version != 2 || got.Role != "manager" {
		t.Fatalf("stored: %+v", got)
	}
	checkConsistency(t, s)
}

func TestGroupMembership(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	a, b, c := mustCreate(t, s, newUser("a@x")), mustCreate(t, s, newUser("b@x")), mustCreate(t, s, newUser("c@x"))
	g := &gateway.Group{ID: nextID("g"), Tenant: tenant, DisplayName: "Eng", ExternalID: "grp-1", Version: 1}
	// Unknown members: nothing written.
	err := s.Groups().Create(ctx, g, []gateway.Member{{UserID: a.ID}, {UserID: "ghost"}}, ev(gateway.OpGroupCreated))
	if code(err) != gateway.ErrInvalid || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("create with unknown member: %v", err)
	}
	if _, err := s.Groups().Get(ctx, tenant, g.ID); code(err) != gateway.ErrNotFound {
		t.Fatalf("group written despite error: %v", err)
	}
	if err := s.Groups().Create(ctx, g, []gateway.Member{{UserID: a.ID, Display: "A"}, {UserID: b.ID}}, ev(gateway.OpGroupCreated)); err != nil {
		t.Fatal(err)
	}
	dup := &gateway.Group{ID: nextID("g"), Tenant: tenant, DisplayName: "ENG", Version: 1}
	if err := s.Groups().Create(ctx, dup, nil, ev(gateway.OpGroupCreated)); code(err) != gateway.ErrConflict {
		t.Fatalf("duplicate displayName: %v", err)
	}
	// Replace a with c, rename.
	ng, err := s.Groups().Update(ctx, tenant, g.ID, 1, func(old *gateway.Group) (gateway.GroupChange, error) {
		old.DisplayName, old.Version = "Engineering", old.Version+1
		return gateway.GroupChange{Group: old, Put: []gateway.Member{{UserID: c.ID, Display: "C"}}, Remove: []string{a.ID}, Events: ev(gateway.OpGroupUpdated)}, nil
	})
	if err != nil || ng.Version != 2 || ng.DisplayName != "Engineering" {
		t.Fatalf("update: %+v %v", ng, err)
	}
	_, withMembers, err := s.Groups().GetWithMembers(ctx, tenant, g.ID)
	if err != nil || len(withMembers) != 2 {
		t.Fatalf("GetWithMembers: %v %v", withMembers, err)
	}
	got, _ := s.Groups().Members(ctx, tenant, g.ID)
	var ids []string
	for _, m := range got {
		ids = append(ids, m.UserID)
	}
	if !slices.Equal(ids, sorted(b.ID, c.ID)) {
		t.Fatalf("members = %v", ids)
	}
	if ids, _ := s.Groups().Lookup(ctx, tenant, gateway.GroupByMember, a.ID); len(ids) != 0 {
		t.Fatalf("a still in group: %v", ids)
	}
	if ids, _ := s.Groups().Lookup(ctx, tenant, gateway.GroupByDisplayName, "engineering"); !slices.Equal(ids, []string{g.ID}) {
		t.Fatalf("renamed lookup: %v", ids)
	}
	if ids, _ := s.Groups().Lookup(ctx, tenant, gateway.GroupByDisplayName, "eng"); len(ids) != 0 {
		t.Fatalf("old name still indexed: %v", ids)
	}
	// Unknown member on update: nothing changes.
	if _, err := s.Groups().Update(ctx, tenant, g.ID, 0, func(old *gateway.Group) (gateway.GroupChange, error) {
		old.Version++
		return gateway.GroupChange{Group: old, Put: []gateway.Member{{UserID: "ghost"}}, Events: ev(gateway.OpGroupMembersAdded)}, nil
	}); code(err) != gateway.ErrInvalid {
		t.Fatalf("update with unknown member: %v", err)
	}
	if err := s.Groups().Delete(ctx, tenant, g.ID, 0, func(*gateway.Group, []gateway.Member) ([]gateway.Event, error) {
		return ev(gateway.OpGroupDeleted), nil
	}); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.Groups().Lookup(ctx, tenant, gateway.GroupByMember, b.ID); len(ids) != 0 {
		t.Fatalf("edges left after group delete: %v", ids)
	}
	checkConsistency(t, s)
}

func TestListAndScan(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	var ids []string
	for i := range 25 {
		ids = append(ids, mustCreate(t, s, newUser(fmt.Sprintf("u%02d@x", i))).ID)
	}
	var seen []string
	for off := 0; off < 30; off += 10 {
		page, total, err := s.Users().List(ctx, tenant, off, 10)
		if err != nil || total != 25 {
			t.Fatalf("list: %d %v", total, err)
		}
		for _, u := range page {
			seen = append(seen, u.ID)
		}
	}
	if !slices.Equal(seen, sorted(ids...)) {
		t.Fatalf("paged ids %v", seen)
	}
	if page, total, _ := s.Users().List(ctx, tenant, 0, 0); len(page) != 0 || total != 25 {
		t.Fatalf("limit 0: %d %d", len(page), total)
	}
	n := 0
	_ = s.Users().Scan(ctx, tenant, "", func(*gateway.User) bool { n++; return n < 5 })
	if n != 5 {
		t.Fatalf("scan stopped after %d", n)
	}
	// Unknown tenant: empty, not an error.
	if page, total, err := s.Users().List(ctx, "other-org", 0, 10); err != nil || total != 0 || len(page) != 0 {
		t.Fatalf("unknown tenant: %v %v %v", page, total, err)
	}
	if _, err := s.Users().Get(ctx, "other-org", ids[0]); code(err) != gateway.ErrNotFound {
		t.Fatalf("tenant isolation: %v", err)
	}
}

func TestSchemaVersionMismatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyVersion, u64(99)) })
	s.Close()
	if _, err := Open(path, Options{NoSync: true}); err == nil || !strings.Contains(err.Error(), "schema version 99") {
		t.Fatalf("open with version 99: %v", err)
	}
}

func sorted(ids ...string) []string {
	s := slices.Clone(ids)
	slices.Sort(s)
	return s
}

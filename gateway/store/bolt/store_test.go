package bolt

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/conformance/storetest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

const org = gateway.DefaultOrg

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
	return &gateway.User{ID: nextID("u"), Org: org, UserName: name, Active: true, Emails: emails, ExternalID: "ext-" + name,
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
		return tx.Bucket(bucketTenants).ForEach(func(name, _ []byte) error {
			checkTenantConsistency(t, tx.Bucket(bucketTenants).Bucket(name))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func checkTenantConsistency(t *testing.T, tb *bolt.Bucket) {
	t.Helper()
	err := func() error {
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
			u, err := decodeUser(v, org)
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
	}()
	if err != nil {
		t.Fatal(err)
	}
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
	g := &gateway.Group{ID: nextID("g"), Org: org, DisplayName: "Eng", Version: 1}
	if err := s.Groups().Create(ctx, g, []gateway.Member{{UserID: u.ID, Display: "Ada"}}, ev(gateway.OpGroupCreated)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, path)
	got, err := s2.Users().Get(ctx, org, u.ID)
	if err != nil || got.UserName != "ada@x" || got.Version != 1 {
		t.Fatalf("user after restart: %+v %v", got, err)
	}
	ms, err := s2.Groups().Members(ctx, org, g.ID)
	if err != nil || len(ms) != 1 || ms[0] != (gateway.Member{UserID: u.ID, Display: "Ada"}) {
		t.Fatalf("members after restart: %v %v", ms, err)
	}
	if err := s2.Users().Create(ctx, newUser("bob@x"), ev(gateway.OpUserCreated)); err != nil {
		t.Fatal(err)
	}
	evs, err := s2.Outbox().After(ctx, org, 0, 10)
	if err != nil || len(evs) != 3 || evs[0].Seq != 1 || evs[1].Seq != 2 || evs[2].Seq != 3 || evs[0].Org != org {
		t.Fatalf("outbox after restart: %+v %v", evs, err)
	}
	if after, _ := s2.Outbox().After(ctx, org, 2, 10); len(after) != 1 || after[0].Op != gateway.OpUserCreated {
		t.Fatalf("After(2) = %+v", after)
	}
	checkConsistency(t, s2)
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

// TestConformance runs the store contract every backend keeps, each
// subtest on a new file, checking the file's own consistency (every index
// entry and edge points at a record, counters agree) after each.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) gateway.Store {
		s := openTest(t, "")
		t.Cleanup(func() { checkConsistency(t, s) })
		return s
	})
}

// TestSharedConformance: bbolt is opened by one process only (its file
// lock), so the two "openers" of the shared contract are one handle.
func TestSharedConformance(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (gateway.Store, gateway.Store) {
		s := openTest(t, "")
		return s, s
	})
}

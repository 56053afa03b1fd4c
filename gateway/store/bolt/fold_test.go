package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// TestNamesAreUniqueUnderFullCaseFolding: userName and group displayName
// uniqueness cannot be dodged with ß/SS, ligatures, or another Unicode
// normalisation form of the same text.
func TestNamesAreUniqueUnderFullCaseFolding(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	pairs := [][2]string{
		{"straße@example.com", "STRASSE@example.com"},
		{"ﬀion@example.com", "ffion@example.com"},
		{"caf\u00e9@example.com", "cafe\u0301@example.com"},
	}
	for _, p := range pairs {
		first := mustCreate(t, s, newUser(p[0]))
		if err := s.Users().Create(ctx, newUser(p[1]), ev(gateway.OpUserCreated)); code(err) != gateway.ErrConflict {
			t.Errorf("%q after %q: %v, want a conflict", p[1], p[0], err)
		}
		if ids, _ := s.Users().Lookup(ctx, tenant, gateway.UserByUserName, p[1]); !slices.Equal(ids, []string{first.ID}) {
			t.Errorf("lookup %q = %v, want %s", p[1], ids, first.ID)
		}
		g := &gateway.Group{ID: nextID("g"), Tenant: tenant, DisplayName: p[0], Version: 1}
		if err := s.Groups().Create(ctx, g, nil, nil); err != nil {
			t.Fatal(err)
		}
		dup := &gateway.Group{ID: nextID("g"), Tenant: tenant, DisplayName: p[1], Version: 1}
		if err := s.Groups().Create(ctx, dup, nil, nil); code(err) != gateway.ErrConflict {
			t.Errorf("group %q after %q: %v, want a conflict", p[1], p[0], err)
		}
	}
	// Email look-ups use the same key as filters compare with.
	withEmail := mustCreate(t, s, newUser("mail@example.com", "groß@example.com"))
	if ids, _ := s.Users().Lookup(ctx, tenant, gateway.UserByEmail, "GROSS@EXAMPLE.COM"); !slices.Equal(ids, []string{withEmail.ID}) {
		t.Errorf("email lookup under folding = %v", ids)
	}
	checkConsistency(t, s)
}

// TestMigrateVersion1NameIndexes: a version 1 file (ToLower keys) is
// re-keyed at open; names that fold together keep one entry (the older
// record's) and the conflict is reported.
func TestMigrateVersion1NameIndexes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	older := mustCreate(t, s, newUser("Straße@example.com"))
	plain := mustCreate(t, s, newUser("Ada@Example.com"))
	g := &gateway.Group{ID: nextID("g"), Tenant: tenant, DisplayName: "Ingeniería", Version: 1}
	if err := s.Groups().Create(context.Background(), g, nil, nil); err != nil {
		t.Fatal(err)
	}
	// What version 1 could hold: a second user whose name differs only
	// under full folding, and ToLower index keys.
	newer := newUser("STRASSE@example.com")
	err = s.db.Update(func(tx *bolt.Tx) error {
		tb := tx.Bucket(bucketTenants).Bucket([]byte(tenant))
		if err := putUser(tb, newer); err != nil {
			return err
		}
		if err := addCounter(tb, counterUsers, 1); err != nil {
			return err
		}
		for _, b := range [][]byte{bUserName, bGroupName} {
			if err := tb.DeleteBucket(b); err != nil {
				return err
			}
			if _, err := tb.CreateBucket(b); err != nil {
				return err
			}
		}
		for _, u := range []*gateway.User{older, plain, newer} {
			if err := tb.Bucket(bUserName).Put([]byte(strings.ToLower(u.UserName)), []byte(u.ID)); err != nil {
				return err
			}
		}
		if err := tb.Bucket(bGroupName).Put([]byte(strings.ToLower(g.DisplayName)), []byte(g.ID)); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyVersion, u64(1))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2 := openTest(t, path)
	notes := s2.Notes()
	if len(notes) != 1 || !strings.Contains(notes[0], older.ID) || !strings.Contains(notes[0], newer.ID) || !strings.Contains(notes[0], "case folding") {
		t.Fatalf("migration notes: %q", notes)
	}
	ctx := context.Background()
	for name, want := range map[string]string{"strasse@EXAMPLE.com": older.ID, "straße@example.com": older.ID, "ada@example.com": plain.ID} {
		if ids, _ := s2.Users().Lookup(ctx, tenant, gateway.UserByUserName, name); !slices.Equal(ids, []string{want}) {
			t.Errorf("lookup %q after migration = %v, want %s", name, ids, want)
		}
	}
	if ids, _ := s2.Groups().Lookup(ctx, tenant, gateway.GroupByDisplayName, "INGENIERÍA"); !slices.Equal(ids, []string{g.ID}) {
		t.Errorf("group lookup after migration = %v", ids)
	}
	if got, err := s2.Users().Get(ctx, tenant, newer.ID); err != nil || got.UserName != "STRASSE@example.com" {
		t.Errorf("the record that lost its index entry stays readable: %v %v", got, err)
	}
	// The record without the entry can change and go without taking the
	// name from the one that owns it, and the name stays unique.
	if _, err := s2.Users().Update(ctx, tenant, newer.ID, 0, func(old *gateway.User) (gateway.UserChange, error) {
		old.Emails, old.ExternalID, old.Version = []string{"other@example.com"}, "moved", old.Version+1
		return gateway.UserChange{User: old}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s2.Users().Delete(ctx, tenant, newer.ID, 0, func(*gateway.User, []*gateway.Group) (gateway.UserDeletion, error) {
		return gateway.UserDeletion{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s2.Users().Lookup(ctx, tenant, gateway.UserByUserName, "STRASSE@example.com"); !slices.Equal(ids, []string{older.ID}) {
		t.Fatalf("after the other record went, the name's owner lost its entry: %v", ids)
	}
	if err := s2.Users().Create(ctx, newUser("strasse@EXAMPLE.com"), nil); code(err) != gateway.ErrConflict {
		t.Fatalf("the name must stay unique: %v", err)
	}
	var version uint64
	_ = s2.db.View(func(tx *bolt.Tx) error { version = u64From(tx.Bucket(bucketMeta).Get(keyVersion)); return nil })
	if version != SchemaVersion {
		t.Fatalf("schema version after migration: %d", version)
	}
	s2.Close()
	s3 := openTest(t, path)
	if len(s3.Notes()) != 0 {
		t.Fatalf("a migrated file is not migrated again: %q", s3.Notes())
	}
}

func u64From(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

func TestSessions(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	for i, user := range []string{"u1", "u1", "u2"} {
		se := gateway.Session{ID: fmt.Sprintf("s%d", i), Tenant: tenant, UserID: user, Protocol: "saml", Created: at, LastSeen: at, Expires: at.Add(time.Duration(i+1) * time.Hour)}
		if err := s.Sessions().Create(ctx, se); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.Sessions().Get(ctx, tenant, "s1"); err != nil || got.UserID != "u1" || !got.Expires.Equal(at.Add(2*time.Hour)) {
		t.Fatalf("get: %+v %v", got, err)
	}
	if err := s.Sessions().Touch(ctx, tenant, "s2", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Sessions().DeleteUser(ctx, tenant, "u1"); err != nil || n != 2 {
		t.Fatalf("delete user: %d %v", n, err)
	}
	if _, err := s.Sessions().Get(ctx, tenant, "s0"); code(err) != gateway.ErrNotFound {
		t.Fatalf("a deleted user's session: %v", err)
	}
	// s2 expires at +3h; idle before +30s ends it too (touched at +1m: not idle).
	if n, _ := s.Sessions().Expire(ctx, tenant, at.Add(2*time.Hour), at.Add(30*time.Second)); n != 0 {
		t.Fatalf("expired %d, want 0", n)
	}
	if n, _ := s.Sessions().Expire(ctx, tenant, at.Add(3*time.Hour), at); n != 1 {
		t.Fatalf("expired %d, want 1", n)
	}
	if n, _ := s.Sessions().Count(ctx, tenant); n != 0 {
		t.Fatalf("count %d", n)
	}
}

func TestEphemeral(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	e := s.Ephemeral()
	soon := time.Now().Add(time.Hour)
	if ok, err := e.PutIfAbsent(ctx, tenant, "replay", "a1", nil, soon); !ok || err != nil {
		t.Fatalf("first put: %v %v", ok, err)
	}
	if ok, _ := e.PutIfAbsent(ctx, tenant, "replay", "a1", nil, soon); ok {
		t.Fatal("a second put of a live key succeeded (a replay would pass)")
	}
	if ok, _ := e.PutIfAbsent(ctx, tenant, "other", "a1", nil, soon); !ok {
		t.Fatal("namespaces are separate")
	}
	if ok, _ := e.PutIfAbsent(ctx, tenant, "replay", "old", nil, time.Now().Add(-time.Second)); !ok {
		t.Fatal("put of an already expired value")
	}
	if ok, _ := e.PutIfAbsent(ctx, tenant, "replay", "old", nil, soon); !ok {
		t.Fatal("an expired key blocks a new value")
	}
	if _, err := e.PutIfAbsent(ctx, tenant, "req", "r1", []byte("return=/x"), soon); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.Take(ctx, tenant, "req", "r1"); string(v) != "return=/x" {
		t.Fatalf("take: %q", v)
	}
	if v, _ := e.Take(ctx, tenant, "req", "r1"); v != nil {
		t.Fatal("a value was taken twice")
	}
	_, _ = e.PutIfAbsent(ctx, tenant, "req", "gone", []byte("x"), time.Now().Add(-time.Minute))
	if v, _ := e.Take(ctx, tenant, "req", "gone"); v != nil {
		t.Fatal("an expired value was taken")
	}
	if n, _ := e.Sweep(ctx, tenant, time.Now().Add(2*time.Hour)); n != 3 {
		t.Fatalf("swept %d, want 3", n)
	}
}

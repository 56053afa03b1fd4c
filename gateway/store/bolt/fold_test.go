package bolt

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

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
	g := &gateway.Group{ID: nextID("g"), Org: org, DisplayName: "Ingeniería", Version: 1}
	if err := s.Groups().Create(context.Background(), g, nil, nil); err != nil {
		t.Fatal(err)
	}
	// What version 1 could hold: a second user whose name differs only
	// under full folding, and ToLower index keys.
	newer := newUser("STRASSE@example.com")
	err = s.db.Update(func(tx *bolt.Tx) error {
		tb := tx.Bucket(bucketTenants).Bucket([]byte(org))
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
		if ids, _ := s2.Users().Lookup(ctx, org, gateway.UserByUserName, name); !slices.Equal(ids, []string{want}) {
			t.Errorf("lookup %q after migration = %v, want %s", name, ids, want)
		}
	}
	if ids, _ := s2.Groups().Lookup(ctx, org, gateway.GroupByDisplayName, "INGENIERÍA"); !slices.Equal(ids, []string{g.ID}) {
		t.Errorf("group lookup after migration = %v", ids)
	}
	if got, err := s2.Users().Get(ctx, org, newer.ID); err != nil || got.UserName != "STRASSE@example.com" {
		t.Errorf("the record that lost its index entry stays readable: %v %v", got, err)
	}
	// The record without the entry can change and go without taking the
	// name from the one that owns it, and the name stays unique.
	if _, err := s2.Users().Update(ctx, org, newer.ID, 0, func(old *gateway.User) (gateway.UserChange, error) {
		old.Emails, old.ExternalID, old.Version = []string{"other@example.com"}, "moved", old.Version+1
		return gateway.UserChange{User: old}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s2.Users().Delete(ctx, org, newer.ID, 0, func(*gateway.User, []*gateway.Group) (gateway.UserDeletion, error) {
		return gateway.UserDeletion{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s2.Users().Lookup(ctx, org, gateway.UserByUserName, "STRASSE@example.com"); !slices.Equal(ids, []string{older.ID}) {
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

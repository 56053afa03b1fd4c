package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// Export hands fn the whole state, in one read transaction (a consistent
// snapshot): the registry, then each scope (every organization's, and the
// operator's audit) with its users, groups and members, events and their
// last number, cursors, dead letters, sessions, last logins, keys,
// records, audit entries and id maps. Indexes are left out: they are the
// importer's to build.
func (s *Store) Export(ctx context.Context, fn func(gateway.DumpItem) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketOrgs); b != nil {
			err := b.ForEach(func(k, v []byte) error {
				var o gateway.Organization
				if err := json.Unmarshal(v, &o); err != nil {
					return fmt.Errorf("organization %q: %w", k, err)
				}
				return fn(gateway.DumpItem{Org: o.ID, Registry: &o})
			})
			if err != nil {
				return err
			}
		}
		return tx.Bucket(bucketTenants).ForEachBucket(func(name []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			org := gateway.OrgID(bytes.Clone(name))
			return exportScope(tx.Bucket(bucketTenants).Bucket(name), org, fn)
		})
	})
}

func exportScope(tb *bolt.Bucket, org gateway.OrgID, fn func(gateway.DumpItem) error) error {
	item := func(it gateway.DumpItem) error { it.Org = org; return fn(it) }
	if err := forEach(tb, bUsers, func(k, v []byte) error {
		u, err := decodeUser(v, org)
		if err != nil {
			return fmt.Errorf("user %q: %w", k, err)
		}
		return item(gateway.DumpItem{User: u})
	}); err != nil {
		return err
	}
	if err := forEach(tb, bGroups, func(k, v []byte) error {
		g, err := decodeGroup(v)
		if err != nil {
			return fmt.Errorf("group %q: %w", k, err)
		}
		return item(gateway.DumpItem{Group: g, Members: members(tb, g.ID)})
	}); err != nil {
		return err
	}
	var lastSeq uint64
	if ob := tb.Bucket(bOutbox); ob != nil {
		lastSeq = ob.Sequence()
	}
	if err := item(gateway.DumpItem{LastSeq: lastSeq}); err != nil {
		return err
	}
	if err := forEach(tb, bOutbox, func(k, v []byte) error {
		e, err := decodeEvent(binary.BigEndian.Uint64(k), v)
		if err != nil {
			return err
		}
		return item(gateway.DumpItem{Event: &e})
	}); err != nil {
		return err
	}
	if err := forEach(tb, bCursors, func(k, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("cursor %q: %w", k, errCorrupt)
		}
		return item(gateway.DumpItem{Cursor: &gateway.DumpCursor{Consumer: string(k), Seq: binary.BigEndian.Uint64(v)}})
	}); err != nil {
		return err
	}
	if err := forEach(tb, bDeadLetters, func(k, v []byte) error {
		consumer, seq, ok := bytes.Cut(k, []byte{0})
		if !ok || len(seq) != 8 {
			return fmt.Errorf("dead letter key %q: %w", k, errCorrupt)
		}
		dl, err := decodeDeadLetter(binary.BigEndian.Uint64(seq), v)
		if err != nil {
			return err
		}
		return item(gateway.DumpItem{DeadLetter: &gateway.DumpDeadLetter{Consumer: string(consumer), DeadLetter: dl}})
	}); err != nil {
		return err
	}
	if err := forEach(tb, bSessions, func(k, v []byte) error {
		se, err := decodeSession(org, string(k), v)
		if err != nil {
			return fmt.Errorf("session: %w", err)
		}
		return item(gateway.DumpItem{Session: &se})
	}); err != nil {
		return err
	}
	if err := forEach(tb, bLastLogin, func(k, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("last login of %q: %w", k, errCorrupt)
		}
		at := time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
		return item(gateway.DumpItem{LastLogin: &gateway.DumpLastLogin{UserID: string(k), At: at}})
	}); err != nil {
		return err
	}
	if err := forEach(tb, bKeys, func(k, v []byte) error {
		return item(gateway.DumpItem{Key: &gateway.DumpKey{Name: string(k), Value: bytes.Clone(v)}})
	}); err != nil {
		return err
	}
	if err := forEach(tb, bRecords, func(k, v []byte) error {
		kind, id, ok := bytes.Cut(k, []byte{0})
		if !ok {
			return fmt.Errorf("record key %q: %w", k, errCorrupt)
		}
		rec, err := decodeRecord(string(id), v)
		if err != nil {
			return err
		}
		return item(gateway.DumpItem{Record: &gateway.DumpRecord{Kind: string(kind), Record: rec}})
	}); err != nil {
		return err
	}
	if err := forEach(tb, bAudit, func(k, v []byte) error {
		var e gateway.AuditEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("audit entry %x: %w", k, err)
		}
		e.Seq = binary.BigEndian.Uint64(k)
		return item(gateway.DumpItem{Audit: &e})
	}); err != nil {
		return err
	}
	now := time.Now()
	if err := forEach(tb, bEphemeral, func(k, v []byte) error {
		ns, key, ok := bytes.Cut(k, []byte{0})
		exp, value, valid := ephemeralValue(v)
		if !ok || !valid || !now.Before(exp) {
			return nil // expired (or unreadable): as good as absent
		}
		return item(gateway.DumpItem{Ephemeral: &gateway.DumpEphemeral{Namespace: string(ns), Key: string(key), Expires: exp.UTC(), Value: bytes.Clone(value)}})
	}); err != nil {
		return err
	}
	return forEach(tb, bIDMaps, func(k, v []byte) error {
		rest, downstream := k, string(v)
		adapter, id, ok := bytes.Cut(rest, []byte{0})
		if !ok {
			return fmt.Errorf("id map key %q: %w", k, errCorrupt)
		}
		return item(gateway.DumpItem{IDMap: &gateway.DumpIDMap{Adapter: string(adapter), ID: string(id), DownstreamID: downstream}})
	})
}

// forEach visits a bucket of the scope, if it has it (older layouts lack
// some).
func forEach(tb *bolt.Bucket, name []byte, fn func(k, v []byte) error) error {
	b := tb.Bucket(name)
	if b == nil {
		return nil
	}
	return b.ForEach(fn)
}

// Backup writes a consistent copy of the database file while the gateway
// serves (one read transaction: writers go on meanwhile) to the writer
// start returns, told first how many bytes the copy has.
func (s *Store) Backup(start func(size int64) io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(start(tx.Size()))
		return err
	})
	return n, err
}

// Verify reads every page of the file (bbolt's own consistency check): a
// backup that opens may still be damaged in its middle.
func (s *Store) Verify() error {
	return s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("the file is damaged: %w", err)
		}
		return nil
	})
}

package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// auditLog keeps audit entries: audit holds seq → JSON entry, and two
// indexes (actor 0x00 seq, target 0x00 seq) serve the filtered pages.
type auditLog struct{ s *Store }

// appendAudit records entries inside a write transaction.
func appendAudit(tb *bolt.Bucket, org gateway.OrgID, entries []gateway.AuditEntry) error {
	b := tb.Bucket(bAudit)
	for _, e := range entries {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		e.Seq, e.Org = seq, org
		v, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode audit entry: %w", err)
		}
		if err := b.Put(u64(seq), v); err != nil {
			return err
		}
		if err := tb.Bucket(bAuditActor).Put(append(pair(e.Actor.String(), ""), u64(seq)...), nil); err != nil {
			return err
		}
		if e.Target != "" {
			if err := tb.Bucket(bAuditTarget).Put(append(pair(e.Target, ""), u64(seq)...), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func (al auditLog) Append(ctx context.Context, org gateway.OrgID, entries ...gateway.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := al.s.write(ctx, org, func(tb *bolt.Bucket) error { return appendAudit(tb, org, entries) }); err != nil {
		return fmt.Errorf("bolt: append audit: %w", err)
	}
	return nil
}

func (al auditLog) List(ctx context.Context, org gateway.OrgID, q gateway.AuditQuery) ([]gateway.AuditEntry, uint64, error) {
	if q.Limit <= 0 {
		return nil, 0, nil
	}
	var (
		out  []gateway.AuditEntry
		next uint64
	)
	err := al.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		entries := tb.Bucket(bAudit)
		// Walk seqs newest first: the whole log, or one index's prefix.
		var (
			c      *bolt.Cursor
			prefix []byte
		)
		switch {
		case q.Actor != "":
			c, prefix = tb.Bucket(bAuditActor).Cursor(), pair(q.Actor, "")
		case q.Target != "":
			c, prefix = tb.Bucket(bAuditTarget).Cursor(), pair(q.Target, "")
		default:
			c = entries.Cursor()
		}
		start := append(bytes.Clone(prefix), u64(q.Before)...)
		if q.Before == 0 {
			start = append(bytes.Clone(prefix), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
		}
		k, _ := c.Seek(start)
		if k == nil {
			k, _ = c.Last()
		}
		for ; k != nil; k, _ = c.Prev() {
			if !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+8 {
				if bytes.Compare(k, prefix) < 0 {
					break
				}
				continue
			}
			seq := binary.BigEndian.Uint64(k[len(prefix):])
			if q.Before != 0 && seq >= q.Before {
				continue
			}
			if len(out) == q.Limit {
				next = seq + 1
				break
			}
			var e gateway.AuditEntry
			if err := json.Unmarshal(entries.Get(u64(seq)), &e); err != nil {
				return fmt.Errorf("audit entry %d: %w", seq, err)
			}
			if q.Target != "" && e.Target != q.Target || q.Actor != "" && e.Actor.String() != q.Actor {
				continue
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("bolt: list audit: %w", err)
	}
	return out, next, nil
}

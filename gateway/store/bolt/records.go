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

// recordStore keeps administrative records: kind 0x00 id → version
// (uint64 big-endian) + JSON value.
type recordStore struct{ s *Store }

func recordKey(kind, id string) []byte { return pair(kind, id) }

func decodeRecord(id string, v []byte) (gateway.Record, error) {
	if len(v) < 8 {
		return gateway.Record{}, errCorrupt
	}
	return gateway.Record{ID: id, Version: binary.BigEndian.Uint64(v), Value: bytes.Clone(v[8:])}, nil
}

func (rs recordStore) Get(ctx context.Context, org gateway.OrgID, kind, id string) (gateway.Record, error) {
	var rec gateway.Record
	found := false
	err := rs.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		v := tb.Bucket(bRecords).Get(recordKey(kind, id))
		if v == nil {
			return nil
		}
		found = true
		var err error
		rec, err = decodeRecord(id, v)
		return err
	})
	switch {
	case err != nil:
		return rec, fmt.Errorf("bolt: read %s record: %w", kind, err)
	case !found:
		return rec, gateway.Errorf(gateway.ErrNotFound, "no %s %q", kind, id)
	}
	return rec, nil
}

func (rs recordStore) List(ctx context.Context, org gateway.OrgID, kind string) ([]gateway.Record, error) {
	var out []gateway.Record
	err := rs.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		p := recordKey(kind, "")
		c := tb.Bucket(bRecords).Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			rec, err := decodeRecord(string(k[len(p):]), v)
			if err != nil {
				return err
			}
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list %s records: %w", kind, err)
	}
	return out, nil
}

// current checks ifVersion against the stored record (0: must not exist
// for Put, anything for Delete).
func currentRecord(b *bolt.Bucket, kind, id string) (uint64, bool) {
	v := b.Get(recordKey(kind, id))
	if len(v) < 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

func (rs recordStore) Put(ctx context.Context, org gateway.OrgID, kind, id string, ifVersion uint64, value []byte, j gateway.Journal) (uint64, error) {
	if kind == "" || id == "" || bytes.IndexByte([]byte(kind), 0) >= 0 {
		return 0, fmt.Errorf("bolt: put record: empty or invalid kind or id")
	}
	if !json.Valid(value) {
		return 0, fmt.Errorf("bolt: put %s record %q: value is not JSON", kind, id)
	}
	err := rs.s.write(ctx, org, func(tb *bolt.Bucket) error {
		b := tb.Bucket(bRecords)
		have, exists := currentRecord(b, kind, id)
		switch {
		case ifVersion == 0 && exists:
			return gateway.Errorf(gateway.ErrConflict, "%s %q already exists", kind, id)
		case ifVersion != 0 && !exists:
			return gateway.Errorf(gateway.ErrNotFound, "no %s %q", kind, id)
		case ifVersion != 0 && have != ifVersion:
			return gateway.Errorf(gateway.ErrPreconditionFailed, "%s %q has changed (its version is %d): read it again and retry", kind, id, have)
		}
		v := make([]byte, 8, 8+len(value))
		binary.BigEndian.PutUint64(v, ifVersion+1)
		if err := b.Put(recordKey(kind, id), append(v, value...)); err != nil {
			return err
		}
		if err := appendAudit(tb, org, j.Audit); err != nil {
			return err
		}
		return appendEvents(tb, org, j.Events)
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: put %s record: %w", kind, err)
	}
	return ifVersion + 1, nil
}

func (rs recordStore) Delete(ctx context.Context, org gateway.OrgID, kind, id string, ifVersion uint64, j gateway.Journal) error {
	err := rs.s.write(ctx, org, func(tb *bolt.Bucket) error {
		b := tb.Bucket(bRecords)
		have, exists := currentRecord(b, kind, id)
		switch {
		case !exists:
			return gateway.Errorf(gateway.ErrNotFound, "no %s %q", kind, id)
		case ifVersion != 0 && have != ifVersion:
			return gateway.Errorf(gateway.ErrPreconditionFailed, "%s %q has changed (its version is %d): read it again and retry", kind, id, have)
		}
		if err := b.Delete(recordKey(kind, id)); err != nil {
			return err
		}
		if err := appendAudit(tb, org, j.Audit); err != nil {
			return err
		}
		return appendEvents(tb, org, j.Events)
	})
	if err != nil {
		return fmt.Errorf("bolt: delete %s record: %w", kind, err)
	}
	return nil
}

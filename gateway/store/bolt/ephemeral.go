package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// ephemeralStore keeps short-lived single-use values.
type ephemeralStore struct{ s *Store }

func ephemeralValue(v []byte) (time.Time, []byte, bool) {
	if len(v) < 8 {
		return time.Time{}, nil, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v[:8]))), v[8:], true
}

func (e ephemeralStore) PutIfAbsent(ctx context.Context, org gateway.OrgID, ns, key string, value []byte, expires time.Time) (bool, error) {
	stored, _, err := e.PutIfAbsentAndTake(ctx, org, ns, key, value, expires, "", "")
	return stored, err
}

func (e ephemeralStore) Take(ctx context.Context, org gateway.OrgID, ns, key string) ([]byte, error) {
	var out []byte
	now := time.Now()
	err := e.s.write(ctx, org, func(tb *bolt.Bucket) error {
		var err error
		out, err = takeEphemeral(tb.Bucket(bEphemeral), pair(ns, key), now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: take ephemeral value: %w", err)
	}
	return out, nil
}

func (e ephemeralStore) PutIfAbsentAndTake(ctx context.Context, org gateway.OrgID, putNS, putKey string, value []byte, expires time.Time, takeNS, takeKey string) (bool, []byte, error) {
	var (
		stored bool
		taken  []byte
	)
	now := time.Now()
	err := e.s.write(ctx, org, func(tb *bolt.Bucket) error {
		stored, taken = false, nil
		b := tb.Bucket(bEphemeral)
		k := pair(putNS, putKey)
		if v := b.Get(k); v != nil {
			if exp, _, ok := ephemeralValue(v); ok && now.Before(exp) {
				return nil
			}
		}
		rec := make([]byte, 8, 8+len(value))
		binary.BigEndian.PutUint64(rec, uint64(expires.UnixNano()))
		if err := b.Put(k, append(rec, value...)); err != nil {
			return err
		}
		stored = true
		if takeKey == "" {
			return nil
		}
		var err error
		taken, err = takeEphemeral(b, pair(takeNS, takeKey), now)
		return err
	})
	if err != nil {
		return false, nil, fmt.Errorf("bolt: store ephemeral value: %w", err)
	}
	return stored, taken, nil
}

// takeEphemeral deletes a value and returns it unless it expired.
func takeEphemeral(b *bolt.Bucket, k []byte, now time.Time) ([]byte, error) {
	v := b.Get(k)
	if v == nil {
		return nil, nil
	}
	var out []byte
	if exp, val, ok := ephemeralValue(v); ok && now.Before(exp) {
		out = bytes.Clone(val)
	}
	return out, b.Delete(k)
}

func (e ephemeralStore) Sweep(ctx context.Context, org gateway.OrgID, now time.Time) (int, error) {
	var stale [][]byte
	err := e.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		return tb.Bucket(bEphemeral).ForEach(func(k, v []byte) error {
			if exp, _, ok := ephemeralValue(v); !ok || !now.Before(exp) {
				stale = append(stale, bytes.Clone(k))
			}
			return nil
		})
	})
	if err != nil || len(stale) == 0 {
		return 0, err
	}
	// In bounded writes, so that sign-ins are not held up behind one
	// long transaction; each key is checked again, as it may have been
	// stored anew since the scan.
	deleted := 0
	for len(stale) > 0 {
		batch := stale[:min(len(stale), sweepBatch)]
		stale = stale[len(batch):]
		n := 0
		err = e.s.write(ctx, org, func(tb *bolt.Bucket) error {
			n = 0
			b := tb.Bucket(bEphemeral)
			for _, k := range batch {
				v := b.Get(k)
				if v == nil {
					continue
				}
				if exp, _, ok := ephemeralValue(v); ok && now.Before(exp) {
					continue
				}
				if err := b.Delete(k); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return deleted, fmt.Errorf("bolt: sweep ephemeral values: %w", err)
		}
		deleted += n
	}
	return deleted, nil
}

// sweepBatch bounds the deletions of one sweep transaction.
const sweepBatch = 5000

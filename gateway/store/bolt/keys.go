package bolt

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// keyStore keeps the gateway's key material.
type keyStore struct{ s *Store }

func (k keyStore) Get(ctx context.Context, org gateway.OrgID, name string) ([]byte, error) {
	var out []byte
	err := k.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb != nil {
			out = bytes.Clone(tb.Bucket(bKeys).Get([]byte(name)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: read key: %w", err)
	}
	return out, nil
}

func (k keyStore) PutIfAbsent(ctx context.Context, org gateway.OrgID, name string, value []byte) ([]byte, error) {
	var out []byte
	err := k.s.write(ctx, org, func(tb *bolt.Bucket) error {
		b := tb.Bucket(bKeys)
		if v := b.Get([]byte(name)); v != nil {
			out = bytes.Clone(v)
			return nil
		}
		out = value
		return b.Put([]byte(name), value)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: store key: %w", err)
	}
	return out, nil
}

package bolt

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// idMapStore keeps adapters' downstream ids.
type idMapStore struct{ s *Store }

func (m idMapStore) Get(ctx context.Context, org gateway.OrgID, adapter, id string) (string, error) {
	var out string
	err := m.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		if b := tb.Bucket(bIDMaps); b != nil {
			out = string(b.Get(pair(adapter, id)))
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("bolt: read id map: %w", err)
	}
	return out, nil
}

func (m idMapStore) Put(ctx context.Context, org gateway.OrgID, adapter, id, downstreamID string) error {
	err := m.s.write(ctx, org, func(tb *bolt.Bucket) error {
		return tb.Bucket(bIDMaps).Put(pair(adapter, id), []byte(downstreamID))
	})
	if err != nil {
		return fmt.Errorf("bolt: write id map: %w", err)
	}
	return nil
}

func (m idMapStore) Delete(ctx context.Context, org gateway.OrgID, adapter, id string) error {
	err := m.s.write(ctx, org, func(tb *bolt.Bucket) error {
		return tb.Bucket(bIDMaps).Delete(pair(adapter, id))
	})
	if err != nil {
		return fmt.Errorf("bolt: delete id map entry: %w", err)
	}
	return nil
}

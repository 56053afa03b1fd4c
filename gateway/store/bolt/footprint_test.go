package bolt

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"testing"
	"time"

	"github.com/google/uuid"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// TestFootprint reports how much space 100,000 users (and their creation
// events) take, bucket by bucket. Opt-in, it takes ~15 s:
//
//	GHTEST_FOOTPRINT=1 go test ./gateway/store/bolt -run Footprint -v
func TestFootprint(t *testing.T) {
	if os.Getenv("GHTEST_FOOTPRINT") == "" {
		t.Skip("set GHTEST_FOOTPRINT=1")
	}
	path := filepath.Join(t.TempDir(), "s.db")
	s, _ := Open(path, Options{NoSync: true})
	ctx := context.Background()
	doc := map[string]any{"userName": "x", "name": map[string]any{"givenName": "Load", "familyName": "123"}, "emails": []any{map[string]any{"primary": true, "value": "load1@example.com", "type": "work"}}, "displayName": "Load 123", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7", "active": true}
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 100000; i += 32 {
				u := &gateway.User{ID: provisionID(), Org: "default", UserName: fmt.Sprintf("load%d@example.com", i), ExternalID: "00ujl29u0le5T6Aj10h7", Emails: []string{fmt.Sprintf("load%d@example.com", i)}, Active: true, Attributes: gateway.NewDocument(doc), Created: time.Now(), Modified: time.Now()}
				snap := *u
				if err := s.Users().Create(ctx, u, []gateway.Event{{ID: "e", Op: gateway.OpUserCreated, User: &snap}}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	_ = s.db.View(func(tx *bolt.Tx) error {
		tb := tx.Bucket(bucketTenants).Bucket([]byte("default"))
		for _, n := range tenantBuckets {
			st := tb.Bucket(n).Stats()
			t.Logf("%-24s keys %7d leafAlloc %6.1f MiB leafInuse %6.1f MiB branch %5.1f MiB", n, st.KeyN, float64(st.LeafAlloc)/(1<<20), float64(st.LeafInuse)/(1<<20), float64(st.BranchAlloc)/(1<<20))
		}
		return nil
	})
	s.Close()
	fi, _ := os.Stat(path)
	t.Logf("file %.1f MiB", float64(fi.Size())/(1<<20))
}

func provisionID() string { return uuid.Must(uuid.NewV7()).String() }

package provision_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
)

type stepClock struct{ at time.Time }

func (c *stepClock) Now() time.Time { return c.at }

// TestLastSCIMRequest: an organization's last SCIM request is recorded
// to the minute (one write a minute, not one per request), per
// organization.
func TestLastSCIMRequest(t *testing.T) {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "p.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clock := &stepClock{at: time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)}
	svc := provision.New(store, clock, provision.Policy{Method: gateway.SourceSCIM, DefaultPool: "default", DefaultRole: "user"})
	ctx := context.Background()
	const acme, beta gateway.OrgID = "acme", "beta"
	start := clock.at
	for _, step := range []struct {
		after time.Duration
		want  time.Time
	}{
		{0, start},
		{30 * time.Second, start}, // within the minute: not written again
		{61 * time.Second, start.Add(91 * time.Second)},
	} {
		clock.at = clock.at.Add(step.after)
		if err := svc.NoteSCIMRequest(ctx, acme); err != nil {
			t.Fatal(err)
		}
		if got, err := svc.LastSCIMRequest(ctx, acme); err != nil || !got.Equal(step.want) {
			t.Fatalf("after %s: %v %v, want %v", step.after, got, err, step.want)
		}
	}
	if got, err := svc.LastSCIMRequest(ctx, beta); err != nil || !got.IsZero() {
		t.Fatalf("another organization's: %v %v", got, err)
	}
}

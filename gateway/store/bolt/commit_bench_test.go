package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// BenchmarkDurableCreate measures the write path below the protocol: a
// user with its indexes and event, fsync on, eight writers at once (the
// load test's c=8), reporting what a commit costs and how many writes
// share it. With -benchtime=Nx, N creates:
//
//	go test ./gateway/store/bolt -run XXX -bench DurableCreate -benchtime=20000x
func BenchmarkDurableCreate(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	doc := map[string]any{"userName": "x", "name": map[string]any{"givenName": "Load", "familyName": "123"},
		"emails": []any{map[string]any{"primary": true, "value": "load1@example.com", "type": "work"}}, "displayName": "Load 123", "active": true}
	var n atomic.Int64
	before := s.CommitStats()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			u := &gateway.User{ID: provisionID(), Org: gateway.DefaultOrg, UserName: fmt.Sprintf("load%d@example.com", i), ExternalID: fmt.Sprintf("ext%d", i),
				Emails: []string{fmt.Sprintf("load%d@example.com", i)}, Active: true, Pools: []string{"default"}, Version: 1,
				Attributes: gateway.NewDocument(doc), Created: time.Now(), Modified: time.Now()}
			snap := *u
			if err := s.Users().Create(ctx, u, []gateway.Event{{ID: provisionID(), Op: gateway.OpUserCreated, User: &snap, OccurredAt: time.Now()}}); err != nil {
				b.Error(err)
			}
		}
	})
	b.StopTimer()
	st := s.CommitStats()
	commits := float64(st.Commits - before.Commits)
	b.ReportMetric(float64(st.Writes-before.Writes)/commits, "writes/commit")
	b.ReportMetric(float64((st.Time-before.Time).Microseconds())/commits, "µs/commit")
}

package conformance

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkLargeGroupPatch: one PATCH adding 10,000 members to a group,
// of users that do not exist (refused with 400 after the whole request is
// evaluated) and of users that do (applied), each with a small POST /Users
// sent while it runs; the POST's latency is reported.
//
//	go test ./conformance -run XXX -bench LargeGroupPatch -benchtime 3x
func BenchmarkLargeGroupPatch(b *testing.B) {
	const n = 10000
	t := &testing.T{}
	g := startGateway(t, b.TempDir(), "GATEHOUSE_LOG_LEVEL=error", "GATEHOUSE_SCIM_MAX_BODY_BYTES=4194304", unshared)
	ids := make([]string, n)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				ids[i] = g.call("POST", "/Users", oktaUser(fmt.Sprintf("member%d@example.com", i), "M", "B")).str("id")
			}
		})
	}
	wg.Wait()
	members := func(unknown bool) string {
		var sb strings.Builder
		for i, id := range ids {
			if i > 0 {
				sb.WriteByte(',')
			}
			if unknown {
				id = fmt.Sprintf("00000000-0000-7000-8000-%012d", i)
			}
			sb.WriteString(`{"value":"` + id + `"}`)
		}
		return `{` + patchOp + `,"Operations":[{"op":"add","path":"members","value":[` + sb.String() + `]}]}`
	}
	for _, unknown := range []bool{true, false} {
		name, want := "known", 204
		if unknown {
			name, want = "unknown", 400
		}
		body := members(unknown)
		b.Run(name, func(b *testing.B) {
			var small time.Duration
			for i := 0; b.Loop(); i++ {
				gid := g.call("POST", "/Groups", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"big-%s-%d"}`, name, i)).str("id")
				done := make(chan struct{})
				go func() {
					defer close(done)
					time.Sleep(50 * time.Millisecond) // while the large PATCH is being applied
					t0 := time.Now()
					g.callNoFatal("POST", "/Users", oktaUser(fmt.Sprintf("small-%s-%d@example.com", name, i), "S", "M"))
					small += time.Since(t0)
				}()
				if st := g.callNoFatal("PATCH", "/Groups/"+gid, body); st != want {
					b.Fatalf("PATCH: %d, want %d", st, want)
				}
				<-done
			}
			b.ReportMetric(float64(small.Microseconds())/1000/float64(b.N), "ms/concurrent-POST")
		})
	}
	g.stop()
}

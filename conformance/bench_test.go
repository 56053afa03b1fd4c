package conformance

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkSCIM measures the SCIM hot paths through real HTTP on loopback
// against an in-process gateway with a durable (fsync) store:
//
//	go test ./conformance -run XXX -bench SCIM -benchtime 5s
func BenchmarkSCIM(b *testing.B) {
	for _, users := range []int{1000} {
		t := &testing.T{}
		g := startGateway(t, b.TempDir(), "GATEHOUSE_STORE_FSYNC=true", "GATEHOUSE_LOG_LEVEL=error", unshared)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		do := func(b *testing.B, method, path, body string, want int) {
			req, _ := http.NewRequest(method, g.base+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+testToken)
			if body != "" {
				req.Header.Set("Content-Type", "application/scim+json")
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				b.Errorf("%s %s: %d", method, path, resp.StatusCode)
			}
		}
		var ids []string
		for i := range users {
			r := g.call("POST", "/Users", oktaUser(fmt.Sprintf("bench%d@example.com", i), "Bench", fmt.Sprint(i)))
			ids = append(ids, r.str("id"))
		}
		var n atomic.Int64
		b.Run(fmt.Sprintf("lookup/users=%d", users), func(b *testing.B) {
			b.SetParallelism(8) // 16 goroutines on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(7919) % int64(users)
					do(b, "GET", fmt.Sprintf("/Users?filter=userName+eq+%%22BENCH%d@example.com%%22", i), "", 200)
				}
			})
		})
		b.Run(fmt.Sprintf("list100/users=%d", users), func(b *testing.B) {
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					start := n.Add(100)%int64(users-100) + 1
					do(b, "GET", fmt.Sprintf("/Users?startIndex=%d&count=100", start), "", 200)
				}
			})
		})
		b.Run(fmt.Sprintf("patch/users=%d", users), func(b *testing.B) {
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := n.Add(1)
					do(b, "PATCH", "/Users/"+ids[k%int64(users)], fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":%v}}]}`, k%2 == 0), 200)
				}
			})
		})
		b.Run("create", func(b *testing.B) {
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					do(b, "POST", "/Users", oktaUser(fmt.Sprintf("new%d@example.com", n.Add(1)), "N", "U"), 201)
				}
			})
		})
		g.stop()
	}
}

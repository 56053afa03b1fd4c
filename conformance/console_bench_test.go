package conformance

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

// BenchmarkConsoleUserList measures the console's user list at 100,000
// users (GHTEST_BENCH_USERS to change it): a page of 50 rendered through
// real HTTP, unfiltered, filtered by role (1 user in 100 is a manager)
// and by a search that matches one user only (the whole directory is
// scanned). ms/page is the request's round trip on loopback: the
// server's time plus a fraction of a millisecond:
//
//	go test ./conformance -run XXX -bench ConsoleUserList -benchtime 50x
func BenchmarkConsoleUserList(b *testing.B) {
	n := envInt("GHTEST_BENCH_USERS", 100000)
	t := &testing.T{}
	g := startGateway(t, b.TempDir(), "GATEHOUSE_PROVISIONING_METHOD=manual", "GATEHOUSE_LOG_LEVEL=error")
	svc := provision.New(g.app.Store(), nil, provision.Policy{Method: gateway.SourceManual, DefaultPool: "default", DefaultRole: "user"})
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				role := "user"
				if i%100 == 0 {
					role = "manager"
				}
				email := fmt.Sprintf("person%06d@example.com", i)
				if _, err := svc.CreateUser(context.Background(), provision.Meta{Org: gateway.DefaultOrg, Source: gateway.SourceManual},
					&gateway.User{UserName: email, Active: true, GivenName: "Person", FamilyName: fmt.Sprint(i), Emails: []string{email}, Role: role}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.Logf("%d users created in %s", n, time.Since(start).Round(time.Millisecond))
	cookie, _ := sessionAs(t, g, "mia@example.com", "manager")
	client := &http.Client{}
	for _, c := range []struct{ name, query string }{
		{"first-page", ""},
		{"role-filter", "?role=manager"},
		{"search-one", fmt.Sprintf("?q=person%06d", n-7)},
	} {
		b.Run(c.name, func(b *testing.B) {
			var server time.Duration
			for b.Loop() {
				req, _ := http.NewRequest("GET", "http://"+g.app.MainAddr()+"/gatehouse/console/users"+c.query, nil)
				req.AddCookie(cookie)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				server += time.Since(t0)
				if resp.StatusCode != 200 {
					b.Fatalf("%d", resp.StatusCode)
				}
			}
			b.ReportMetric(float64(server.Microseconds())/1000/float64(b.N), "ms/page")
		})
	}
}

package conformance

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/conformance/pgtest"
)

// TestPostgresRestartUnderLoad: PostgreSQL stopped and started again
// under SCIM load (a crash-like immediate stop): while it is away SCIM
// answers 503 with Retry-After and /readyz says not ready, never a 500;
// the gateway recovers by itself, and every write it acknowledged is
// there and delivered to the app.
func TestPostgresRestartUnderLoad(t *testing.T) {
	pg := pgtest.Start(t)
	hook := newHookReceiver(t)
	g := startGateway(t, "", append([]string{"GATEHOUSE_STORE_TYPE=postgres", "GATEHOUSE_STORE_POSTGRES_DSN=" + pg.DSN,
		"GATEHOUSE_STORE_POSTGRES_STATEMENT_TIMEOUT=2s", unshared}, webhookEnv(hook.srv.URL)...)...)
	ready := func() int {
		resp, err := http.Get("http://" + g.app.OpsAddr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	var mu sync.Mutex
	acked := map[string]bool{}
	statuses := map[int]int{}
	noRetryAfter := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("load%d-%d@example.com", w, i)
				req, _ := http.NewRequest("POST", g.base+"/Users", stringsReader(userJSON(name)))
				req.Header.Set("Authorization", "Bearer "+testToken)
				req.Header.Set("Content-Type", "application/scim+json")
				resp, err := g.client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++
				if resp.StatusCode == 201 {
					acked[name] = true
				}
				if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
					noRetryAfter++
				}
				mu.Unlock()
				if resp.StatusCode == 503 {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(time.Second)
	pg.Stop("immediate")
	pg.WaitDown()
	deadline := time.Now().Add(5 * time.Second)
	for ready() == 200 {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still says ready with the database down")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	pg.Start()
	back := time.Now()
	deadline = time.Now().Add(20 * time.Second)
	for ready() != 200 {
		if time.Now().After(deadline) {
			t.Fatal("/readyz did not come back after the database did")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("ready again %v after the database", time.Since(back).Round(time.Millisecond))
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("answers: %v", statuses)
	if statuses[503] == 0 || statuses[201] == 0 {
		t.Fatalf("the load did not span the outage: %v", statuses)
	}
	for code, n := range statuses {
		if code != 201 && code != 503 {
			t.Errorf("%d answers %d: with the database away SCIM answers 503, never anything else", n, code)
		}
	}
	if noRetryAfter > 0 {
		t.Errorf("%d answers 503 without Retry-After", noRetryAfter)
	}
	// Every acknowledged write is there, and reaches the app.
	n := int(g.call("GET", "/Users?count=0", "").must(t, 200).get("totalResults").(float64))
	if n < len(acked) {
		t.Fatalf("%d users stored, %d acknowledged: acknowledged writes were lost", n, len(acked))
	}
	eventually(t, "every acknowledged user delivered", func() bool {
		got := map[string]bool{}
		for _, e := range hook.events() {
			if e.User != nil {
				got[e.User.UserName] = true
			}
		}
		for name := range acked {
			if !got[name] {
				return false
			}
		}
		return true
	})
}

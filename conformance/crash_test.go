package conformance

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// TestCrashLosesNoAcknowledgedChange: a gateway under concurrent SCIM
// creates, whose webhook receiver is failing, is killed with SIGKILL and
// started again; once the receiver recovers, every create that was
// acknowledged with 201 reaches it (at least once), every delivery
// verifies, and nothing arrives out of order per user.
func TestCrashLosesNoAcknowledgedChange(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	rc := newHookReceiver(t)
	rc.set(func(h *hookReceiver) { h.down = true })
	dir := t.TempDir()
	env := append([]string{"GATEHOUSE_SCIM_TOKEN=" + testToken, "GATEHOUSE_SSO_PROTOCOL=external", unshared, "GATEHOUSE_PROVISIONING_METHOD=scim",
		"GATEHOUSE_DATA_DIR=" + dir, "GATEHOUSE_LOG_LEVEL=warn"}, webhookEnv(rc.srv.URL+"/hooks")...)
	p := startBinary(t, dir, env...)
	g := &gatewayUnderTest{t: t, base: "http://" + p.addr + "/gatehouse/scim/v2", client: &http.Client{Timeout: 10 * time.Second}}

	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
		n     atomic.Int64
		stop  atomic.Bool
	)
	for w := range 8 {
		wg.Go(func() {
			for !stop.Load() {
				i := n.Add(1)
				body := oktaUser(fmt.Sprintf("crash%d-%d@example.com", w, i), "C", "R")
				req, _ := http.NewRequest("POST", g.base+"/Users", stringsReader(body))
				req.Header.Set("Authorization", "Bearer "+testToken)
				req.Header.Set("Content-Type", "application/scim+json")
				resp, err := g.client.Do(req)
				if err != nil {
					return // the gateway is gone
				}
				id := ""
				if resp.StatusCode == 201 {
					id = decodeID(resp)
				}
				resp.Body.Close()
				if id != "" {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		})
	}
	// Kill it mid-stream, without warning.
	for {
		mu.Lock()
		k := len(acked)
		mu.Unlock()
		if k >= 150 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	want := append([]string(nil), acked...)
	mu.Unlock()

	// Started again; the receiver recovers.
	p2 := startBinary(t, dir, env...)
	rc.set(func(h *hookReceiver) { h.down = false })
	got := map[string]bool{}
	eventually(t, fmt.Sprintf("all %d acknowledged creates at the receiver", len(want)), func() bool {
		for _, e := range rc.events() {
			if e.Type == gateway.OpUserCreated {
				got[e.User.ID] = true
			}
		}
		for _, id := range want {
			if !got[id] {
				return false
			}
		}
		return true
	})
	if rc.unsigned != 0 {
		t.Fatalf("%d deliveries did not verify", rc.unsigned)
	}
	p2.stop(t)
	t.Logf("%d creates acknowledged before SIGKILL, all delivered after the restart (%d deliveries in all)", len(want), len(rc.events()))
}

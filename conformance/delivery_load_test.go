package conformance

import (
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// TestDeliveryLoad is the bounded load run of delivery (skipped unless
// GHTEST_LOAD=1): the real binary with a webhook adapter to a local
// receiver that verifies every signature.
//
//	GHTEST_LOAD=1 GHTEST_LOAD_PIN=1 taskset -c 1 \
//	  go test ./conformance -run TestDeliveryLoad -v -timeout 20m
//
// It reports: durable SCIM creates at c=8 with delivery running against
// the same load on a gateway without a downstream; delivery throughput;
// and how long after a 60 s outage, with 10,000 events queued, the lag is
// back to zero.
func TestDeliveryLoad(t *testing.T) {
	if os.Getenv("GHTEST_LOAD") != "1" {
		t.Skip("set GHTEST_LOAD=1 to run the delivery load test")
	}
	var wrapper []string
	if os.Getenv("GHTEST_LOAD_PIN") == "1" {
		wrapper = []string{"taskset", "-c", "0"}
	}
	seconds := time.Duration(envInt("GHTEST_LOAD_SECONDS", 8)) * time.Second
	outage := time.Duration(envInt("GHTEST_LOAD_OUTAGE_SECONDS", 60)) * time.Second
	queued := envInt("GHTEST_LOAD_QUEUED", 10000)
	base := []string{"GATEHOUSE_SCIM_TOKEN=" + testToken, "GATEHOUSE_SSO_PROTOCOL=external", unshared,
		"GATEHOUSE_PROVISIONING_METHOD=scim", "GATEHOUSE_LOG_LEVEL=warn", "GATEHOUSE_DATA_DIR=data"}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	creates := func(p *process, name string, c int) loadResult {
		var n atomic.Int64
		return run(t, name, c, seconds, func(int) (bool, error) {
			g := &gatewayUnderTest{t: t, base: "http://" + p.addr + "/gatehouse/scim/v2", client: client}
			if st := g.callNoFatal("POST", "/Users", oktaUser(fmt.Sprintf("%s-%d@example.com", name[:4], n.Add(1)), "L", "D")); st != 201 {
				return true, fmt.Errorf("status %d", st)
			}
			return true, nil
		})
	}

	// Baseline: no downstream.
	p0 := startBinaryWrapped(t, t.TempDir(), wrapper, base...)
	baseline := creates(p0, "POST /Users, directory only (c=8)", 8)
	t.Log(baseline)
	p0.stop(t)

	rc := newHookReceiver(t)
	p := startBinaryWrapped(t, t.TempDir(), wrapper, append(base, webhookEnv(rc.srv.URL+"/hooks")...)...)
	with := creates(p, "POST /Users, webhook delivering (c=8)", 8)
	t.Log(with)
	eventually(t, "delivery to catch up", func() bool { return len(rc.events()) == with.n })
	t.Logf("SCIM create throughput with delivery running: %.0f%% of the baseline", 100*float64(with.n)/float64(max(baseline.n, 1)))

	// Outage: the receiver is down while events queue, then recovers.
	rc.set(func(h *hookReceiver) { h.down = true })
	downAt := time.Now()
	before := len(rc.events())
	g := &gatewayUnderTest{t: t, base: "http://" + p.addr + "/gatehouse/scim/v2", client: client}
	sem := make(chan struct{}, 16)
	var failed atomic.Int64
	for i := range queued {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			if g.callNoFatal("POST", "/Users", oktaUser(fmt.Sprintf("queued-%d@example.com", i), "Q", "D")) != 201 {
				failed.Add(1)
			}
		}()
	}
	for range cap(sem) {
		sem <- struct{}{}
	}
	if failed.Load() > 0 {
		t.Fatalf("%d creates failed during the outage", failed.Load())
	}
	t.Logf("%d events queued in %v while the receiver was down", queued, time.Since(downAt).Round(time.Millisecond))
	time.Sleep(time.Until(downAt.Add(outage)))
	rc.set(func(h *hookReceiver) { h.down = false })
	up := time.Now()
	eventually(t, "the queued events", func() bool { return len(rc.events()) >= before+queued })
	took := time.Since(up)
	t.Logf("after a %v outage with %d events queued, lag back to zero %v after recovery: %.0f events/s delivered (signed, verified)",
		outage, queued, took.Round(time.Millisecond), float64(queued)/took.Seconds())
	t.Logf("gateway RSS %.1f MiB", rssMiB(t, "http://"+p.opsAddr+"/metrics"))
	p.stop(t)
}

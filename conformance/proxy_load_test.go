package conformance

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
)

// TestProxyLoad measures what the gateway adds in front of an app: a
// signed-in request (session and user read, identity headers, a signed
// JWT, the reverse proxy) against a trivial upstream, compared with the
// upstream alone in the same run: closed-loop throughput at 32 workers,
// and latency at a steady 500 req/s. Skipped unless GHTEST_LOAD=1:
//
//	GHTEST_LOAD=1 GHTEST_LOAD_SECONDS=5 go test ./conformance -run TestProxyLoad -v
func TestProxyLoad(t *testing.T) {
	if os.Getenv("GHTEST_LOAD") != "1" {
		t.Skip("set GHTEST_LOAD=1 to run the load test")
	}
	seconds := time.Duration(envInt("GHTEST_LOAD_SECONDS", 5)) * time.Second
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer upstream.Close()
	g := startGateway(t, t.TempDir(), "GATEHOUSE_UPSTREAM_URL="+upstream.URL, "GATEHOUSE_PUBLIC_URL=http://127.0.0.1",
		"GATEHOUSE_LOG_LEVEL=warn", "GATEHOUSE_STORE_FSYNC=true")
	cookie := signedInCookie(t, g)
	measureProxy(t, "http://"+g.app.MainAddr()+"/page", upstream.URL+"/page", []*http.Cookie{cookie}, seconds)
}

// TestProxyLoadBinary is TestProxyLoad against the real binary (its own
// heap, its own GC), signed in through a real SAML IdP; with
// GHTEST_LOAD_PIN=1 the gateway runs on core 0; GHTEST_LOAD_ENV adds
// variables to its environment (e.g. the PostgreSQL store's):
//
//	GHTEST_LOAD=1 GHTEST_LOAD_PIN=1 taskset -c 1 go test ./conformance -run TestProxyLoadBinary -v
func TestProxyLoadBinary(t *testing.T) {
	if os.Getenv("GHTEST_LOAD") != "1" {
		t.Skip("set GHTEST_LOAD=1 to run the load test")
	}
	seconds := time.Duration(envInt("GHTEST_LOAD_SECONDS", 5)) * time.Second
	var wrapper []string
	if os.Getenv("GHTEST_LOAD_PIN") == "1" {
		wrapper = []string{"taskset", "-c", "0"}
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer upstream.Close()
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	addr := freeAddr(t)
	dir := t.TempDir()
	mdFile := filepath.Join(dir, "idp.xml")
	if err := os.WriteFile(mdFile, idp.Metadata(t), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append([]string{"GATEHOUSE_LISTEN=" + addr, "GATEHOUSE_PUBLIC_URL=http://" + addr,
		"GATEHOUSE_SSO_PROTOCOL=saml", "GATEHOUSE_SSO_SAML_IDP_METADATA_FILE=" + mdFile, "GATEHOUSE_PROVISIONING_METHOD=jit",
		"GATEHOUSE_UPSTREAM_URL=" + upstream.URL, "GATEHOUSE_LOG_LEVEL=warn", "GATEHOUSE_DATA_DIR=data"},
		strings.Fields(os.Getenv("GHTEST_LOAD_ENV"))...)
	p := startBinaryWrapped(t, dir, wrapper, env...)
	root := "http://" + addr
	idp.RegisterSP(t, "gatehouse", root+"/gatehouse/saml/metadata", false)
	browser := samlidptest.Browser(nil)
	acs, form := samlidptest.SignIn(t, browser, root+"/page")
	resp, err := browser.PostForm(acs, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	rootURL, _ := url.Parse(root)
	measureProxy(t, root+"/page", upstream.URL+"/page", browser.Jar.Cookies(rootURL), seconds)
	metrics := "http://" + p.opsAddr + "/metrics"
	t.Logf("gateway RSS %.0f MiB, heap in use %.1f MiB", rssMiB(t, metrics), metricValue(t, metrics, "go_memstats_heap_inuse_bytes")/(1<<20))
}

// measureProxy compares signed-in requests through the gateway with the
// upstream alone: closed loop at 32 workers, then a steady 500 req/s.
func measureProxy(t *testing.T, gatewayURL, upstreamURL string, cookies []*http.Cookie, seconds time.Duration) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	get := func(url string) error {
		req, _ := http.NewRequest("GET", url, nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	if err := get(gatewayURL); err != nil {
		t.Fatalf("signed-in request through the gateway: %v", err)
	}
	targets := []struct{ name, url string }{{"upstream alone", upstreamURL}, {"through gateway", gatewayURL}}
	for _, target := range targets {
		t.Log(run(t, "c=32 "+target.name, 32, seconds, func(int) (bool, error) { return true, get(target.url) }))
	}
	for _, target := range targets {
		t.Log(paced(t, "500/s "+target.name, 500, seconds, func() error { return get(target.url) }))
	}
}

// paced issues op at a steady rate (open loop: a slow answer does not
// slow the sender) and reports the latency of each.
func paced(t *testing.T, name string, perSecond int, d time.Duration, op func() error) loadResult {
	t.Helper()
	var (
		mu   sync.Mutex
		lats []time.Duration
		errs int
		wg   sync.WaitGroup
		err1 error
	)
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(perSecond))
	defer tick.Stop()
	for time.Since(start) < d {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			err := op()
			lat := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			lats = append(lats, lat)
			if err != nil {
				errs++
				if err1 == nil {
					err1 = err
				}
			}
		}()
	}
	wg.Wait()
	res := loadResult{name: name, n: len(lats), errs: errs, elapsed: time.Since(start), firstErr: err1}
	slices.Sort(lats)
	if len(lats) > 0 {
		res.p50, res.p99, res.max = lats[len(lats)/2], lats[len(lats)*99/100], lats[len(lats)-1]
	}
	if errs > 0 {
		t.Errorf("%s: %d errors, first: %v", name, errs, err1)
	}
	return res
}

package conformance

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/oidcoptest"
	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
)

// TestOrganizationsSignInMemory measures the gateway's memory with many
// organizations that have SSO configured (four in five SAML, one OIDC),
// before their sign-ins are built and once each has been used, and shows
// that sso.cached_orgs bounds what stays built. Skipped unless
// GHTEST_LOAD=1:
//
//	GHTEST_LOAD=1 GHTEST_ORGS_SSO=1000 GHTEST_SSO_CACHED=1000 go test ./conformance -run TestOrganizationsSignInMemory -v -timeout 30m
func TestOrganizationsSignInMemory(t *testing.T) {
	if os.Getenv("GHTEST_LOAD") != "1" {
		t.Skip("set GHTEST_LOAD=1 to run the load test")
	}
	orgs := envInt("GHTEST_ORGS_SSO", 1000)
	cached := envInt("GHTEST_SSO_CACHED", 1000)
	addr := freeAddr(t)
	root := "http://" + addr
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	op := oidcoptest.Start(t, root+"/unused")
	p := startBinary(t, t.TempDir(), "GATEHOUSE_LISTEN="+addr, "GATEHOUSE_PUBLIC_URL="+root, "GATEHOUSE_ADMIN_TOKEN="+adminToken,
		"GATEHOUSE_SSO_PROTOCOL=external", "GATEHOUSE_PROVISIONING_METHOD=manual", "GATEHOUSE_STORE_FSYNC=false", "GATEHOUSE_LOG_LEVEL=warn",
		fmt.Sprintf("GATEHOUSE_SSO_CACHED_ORGS=%d", cached), "GATEHOUSE_SSO_LOGIN_RATE=0", "GATEHOUSE_OPS_PPROF=true")
	metrics := "http://" + p.opsAddr + "/metrics"
	operator := bearer(adminToken)
	metadata, _ := json.Marshal(string(idp.Metadata(t)))
	saml := `{"sso":{"protocol":"saml","saml":{"idp_metadata_xml":` + string(metadata) + `}}}`
	oidc := `{"sso":{"protocol":"oidc","oidc":{"issuer":"` + op.Issuer + `","client_id":"` + oidcoptest.ClientID + `","client_secret":"` + oidcoptest.ClientSecret + `"}}}`
	name := func(i int) string { return fmt.Sprintf("org-%05d", i) }
	each := func(what string, fn func(i int)) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		work := make(chan int)
		for range runtime.GOMAXPROCS(0) * 2 {
			wg.Go(func() {
				for i := range work {
					fn(i)
				}
			})
		}
		for i := range orgs {
			work <- i
		}
		close(work)
		wg.Wait()
		t.Logf("%s for %d organizations: %s", what, orgs, time.Since(start).Round(time.Millisecond))
		return time.Since(start)
	}
	rss := func() float64 { return rssMiB(t, metrics) }
	// memory is the gateway's after a collection (ops_pprof's heap
	// profile with gc=1 runs one): RSS, live heap, goroutines.
	memory := func() string {
		saveProfile(t, "http://"+p.opsAddr+"/debug/pprof/heap?gc=1", os.DevNull)
		return fmt.Sprintf("RSS %.1f MiB (%s), heap in use %.1f MiB, %.0f goroutines", rss(), procStatus(p.cmd.Process.Pid, "RssAnon", "RssFile"),
			metricValue(t, metrics, "go_memstats_heap_inuse_bytes")/(1<<20), metricValue(t, metrics, "go_goroutines"))
	}
	t.Logf("at start: %s", memory())
	each("created", func(i int) {
		adminAt(t, root, "POST", "/orgs", `{"id":"`+name(i)+`"}`, operator).must(t, 201)
	})
	each("SSO configured (each checked: its SP or RP built once, then dropped)", func(i int) {
		body := saml
		if i%5 == 4 {
			body = oidc
		}
		adminAt(t, root, "PUT", "/orgs/"+name(i)+"/identity", body, operator).must(t, 200)
	})
	heapBefore := func() float64 {
		_ = memory()
		return metricValue(t, metrics, "go_memstats_heap_inuse_bytes") / (1 << 20)
	}()
	t.Logf("%d organizations configured, no sign-in built (built: %.0f): %s", orgs, metricValue(t, metrics, "gatehouse_sso_orgs_built"), memory())
	if dir := os.Getenv("GHTEST_LOAD_PROFILE"); dir != "" {
		saveProfile(t, "http://"+p.opsAddr+"/debug/pprof/heap", dir+"/orgs-sso-heap.pprof")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	took := each("every organization's sign-in started once (built)", func(i int) {
		resp, err := client.Get(root + "/gatehouse/o/" + name(i) + "/login")
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Errorf("%s's sign-in: %d", name(i), resp.StatusCode)
		}
	})
	built := metricValue(t, metrics, "gatehouse_sso_orgs_built")
	t.Logf("every sign-in used once, %.0f built (sso.cached_orgs %d): %s; %.1f ms per first sign-in", built, cached, memory(), took.Seconds()*1000/float64(orgs))
	t.Logf("live heap per built organization: %.1f KiB", (metricValue(t, metrics, "go_memstats_heap_inuse_bytes")/(1<<20)-heapBefore)*1024/built)
	if built > float64(cached) {
		t.Fatalf("%.0f organizations built, past sso.cached_orgs=%d", built, cached)
	}
}

// saveProfile saves a profile the gateway serves (ops_pprof) to path.
func saveProfile(t *testing.T, url, path string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if path != os.DevNull {
		t.Logf("profile saved to %s", path)
	}
}

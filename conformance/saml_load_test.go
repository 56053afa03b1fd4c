package conformance

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
)

// TestSAMLLoginLoad measures the assertion consumer: a signed response
// posted to the ACS is parsed, verified, checked against its request and
// the replay cache, taken through the login funnel and turned into a
// session, all on a durable (fsync) store. The responses are made by a
// real samlidp beforehand (the IdP's signing is not the gateway's cost).
// Skipped unless GHTEST_LOAD=1:
//
//	GHTEST_LOAD=1 GHTEST_LOAD_LOGINS=4000 go test ./conformance -run TestSAMLLoginLoad -v
func TestSAMLLoginLoad(t *testing.T) {
	if os.Getenv("GHTEST_LOAD") != "1" {
		t.Skip("set GHTEST_LOAD=1 to run the load test")
	}
	logins := envInt("GHTEST_LOAD_LOGINS", 4000)
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	_, root := startSAMLGateway(t, idp, t.TempDir(), "GATEHOUSE_PROVISIONING_METHOD=jit", "GATEHOUSE_SSO_LOGIN_RATE=0",
		"GATEHOUSE_STORE_FSYNC="+envOr("GHTEST_LOAD_FSYNC", "true"), "GATEHOUSE_LOG_LEVEL=warn")
	addr := strings.TrimPrefix(root, "http://")

	// One IdP session, shared by every browser.
	signedIn := samlidptest.Browser(nil)
	resp, err := signedIn.PostForm(idp.URL+"/login", url.Values{"user": {samlidptest.User}, "password": {samlidptest.Password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	idpURL, _ := url.Parse(idp.URL)
	idpSession := signedIn.Jar.Cookies(idpURL)

	type pendingLogin struct {
		browser *http.Client
		acs     string
		form    url.Values
	}
	prepared := make([]pendingLogin, logins)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < logins; i += 4 {
				b := samlidptest.Browser(func(r *http.Request) bool { return r.URL.Host == addr && r.URL.Path != "/gatehouse/saml/login" })
				b.Jar.SetCookies(idpURL, idpSession)
				acs, form := samlidptest.SignIn(t, b, root+"/gatehouse/login?return=/")
				prepared[i] = pendingLogin{b, acs, form}
			}
		}()
	}
	wg.Wait()

	// The first half at one worker, the second at eight.
	half := len(prepared) / 2
	for _, phase := range []struct {
		workers int
		batch   []pendingLogin
	}{{1, prepared[:half]}, {8, prepared[half:]}} {
		var next atomic.Int64
		res := run(t, fmt.Sprintf("saml acs c=%d", phase.workers), phase.workers, 0, func(int) (bool, error) {
			i := next.Add(1) - 1
			if i >= int64(len(phase.batch)) {
				return false, nil
			}
			p := phase.batch[i]
			resp, err := p.browser.PostForm(p.acs, p.form)
			if err != nil {
				return true, err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound {
				return true, fmt.Errorf("ACS: %d", resp.StatusCode)
			}
			return true, nil
		})
		t.Log(res)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

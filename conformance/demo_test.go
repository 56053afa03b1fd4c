package conformance

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/conformance/oidcoptest"
	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/app"
	"github.com/gatehouse-id/gatehouse/gateway/demo"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
)

// syncBuffer is a bytes.Buffer safe for the demo's writer and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoJourney runs `gatehouse demo` as a person would: open the
// printed URL, sign in at the embedded IdP as grace, and see the sample
// app greet her with the identity the gateway forwarded.
func TestDemoJourney(t *testing.T) {
	for _, sso := range []string{"saml", "oidc"} {
		t.Run(sso, func(t *testing.T) { testDemoJourney(t, sso) })
	}
}

// startDemo runs `gatehouse demo` in data_dir until stop is called, and
// returns what it printed once it printed the URL to open.
func startDemo(t *testing.T, dataDir, method, sso string) (out *syncBuffer, url string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out = &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- app.Demo(ctx, "", []string{"GATEHOUSE_LISTEN=127.0.0.1:0", "GATEHOUSE_OPS_LISTEN=127.0.0.1:0",
			"GATEHOUSE_DATA_DIR=" + dataDir, "GATEHOUSE_STORE_FSYNC=false"}, method, sso, out, io.Discard)
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo stopped with %v", err)
		}
	}
	t.Cleanup(stop)
	open := regexp.MustCompile(`Open in a browser : (\S+)`)
	for deadline := time.Now().Add(20 * time.Second); url == ""; {
		// Everything is printed once it says how to stop.
		if m := open.FindStringSubmatch(out.String()); m != nil && strings.Contains(out.String(), "Press Ctrl-C to stop.") {
			url = m[1]
			break
		}
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("demo ended: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo printed no URL:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out, url, stop
}

func testDemoJourney(t *testing.T, sso string) {
	out, url, stop := startDemo(t, t.TempDir(), "jit", sso)
	defer stop()
	var resp *http.Response
	var err error
	if sso == "saml" {
		browser := samlidptest.Browser(nil)
		acs, form := samlidptest.SignInAs(t, browser, url+"welcome", "grace", "demo")
		resp, err = browser.PostForm(acs, form)
	} else {
		issuer := regexp.MustCompile(`demo OIDC IdP, (\S+)\)`).FindStringSubmatch(out.String())
		if issuer == nil {
			t.Fatalf("no OP URL printed:\n%s", out.String())
		}
		browser := samlidptest.Browser(func(r *http.Request) bool { return r.URL.Path == "/gatehouse/oidc/callback" })
		back := (&oidcoptest.OP{OP: &demo.OP{Issuer: issuer[1]}}).SignInAs(t, browser, url+"welcome", "grace", "demo")
		browser.CheckRedirect = nil
		resp, err = browser.Get(back.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<span id="name">Grace Hopper</span>`) ||
		!strings.Contains(page, `<dd id="email">grace@example.com</dd>`) || !strings.Contains(page, "X-Gatehouse-Assertion present") ||
		!strings.Contains(page, "<dd>/welcome</dd>") || !strings.Contains(page, `<dd id="groups">Engineering</dd>`) {
		t.Fatalf("sample app page (%d at %s):\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	// The console: Ada, a manager in the demo, signs in to it.
	console := regexp.MustCompile(`Console\s+: (\S+)`).FindStringSubmatch(out.String())
	if console == nil || sso != "saml" {
		if console == nil {
			t.Fatalf("no console URL printed:\n%s", out.String())
		}
		return
	}
	browser := samlidptest.Browser(nil)
	acs, form := samlidptest.SignInAs(t, browser, console[1]+"/users", "ada", "demo")
	if resp, err = browser.PostForm(acs, form); err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<h1>Users</h1>") || !strings.Contains(string(body), "grace@example.com") {
		t.Fatalf("the console for Ada (%d at %s):\n%.600s", resp.StatusCode, resp.Request.URL, body)
	}
}

// TestDemoSCIMTokenWorks: `demo --method scim` prints a token and a curl
// that work, also when a token rotated in an earlier run (the console,
// the admin API) superseded the run's own.
func TestDemoSCIMTokenWorks(t *testing.T) {
	dir := t.TempDir()
	provisionAda := func(out *syncBuffer) int {
		t.Helper()
		token := regexp.MustCompile(`Authorization: Bearer (\S+)"`).FindStringSubmatch(out.String())
		base := regexp.MustCompile(`SCIM base URL\s+: (\S+)`).FindStringSubmatch(out.String())
		if token == nil || base == nil {
			t.Fatalf("no curl printed:\n%s", out.String())
		}
		req, _ := http.NewRequest("POST", base[1]+"/Users", strings.NewReader(
			`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com","active":true}`))
		req.Header.Set("Authorization", "Bearer "+token[1])
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	out, _, stop := startDemo(t, dir, "scim", "saml")
	if status := provisionAda(out); status != http.StatusCreated {
		t.Fatalf("the first run's curl: %d\n%s", status, out.String())
	}
	stop()
	// Between runs, a manager rotates the SCIM token (and keeps it).
	st, err := bolt.Open(filepath.Join(dir, app.DBFile), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	svc := provision.New(st, nil, provision.Policy{Method: gateway.SourceSCIM, DefaultPool: "default", DefaultRole: "user"})
	if _, _, err := svc.RotateSCIMToken(context.Background(), gateway.DefaultOrg, gateway.Actor{Kind: gateway.ActorToken, ID: "t"}, "", 0); err != nil {
		t.Fatal(err)
	}
	st.Close()
	out, _, _ = startDemo(t, dir, "scim", "saml")
	if status := provisionAda(out); status != http.StatusConflict { // Ada exists from the first run: the token was accepted
		t.Fatalf("the second run's curl after a rotation: %d (want 409: authenticated, Ada exists)\n%s", status, out.String())
	}
	if !strings.Contains(out.String(), "rotated") {
		t.Fatalf("the demo does not say it replaced the rotated token:\n%s", out.String())
	}
}

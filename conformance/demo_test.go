package conformance

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/conformance/oidcoptest"
	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway/app"
	"github.com/gatehouse-id/gatehouse/gateway/demo"
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

func testDemoJourney(t *testing.T, sso string) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- app.Demo(ctx, "", []string{"GATEHOUSE_LISTEN=127.0.0.1:0", "GATEHOUSE_OPS_LISTEN=127.0.0.1:0",
			"GATEHOUSE_DATA_DIR=" + t.TempDir(), "GATEHOUSE_STORE_FSYNC=false"}, "jit", sso, out, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo stopped with %v", err)
		}
	}()
	open := regexp.MustCompile(`Open in a browser : (\S+)`)
	var url string
	for deadline := time.Now().Add(20 * time.Second); url == ""; {
		if m := open.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("demo ended: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo printed no URL:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
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

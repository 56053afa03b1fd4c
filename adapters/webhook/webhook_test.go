package webhook

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/gatehouse-id/gatehouse/gateway"
)

var testSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

func TestValidate(t *testing.T) {
	short := "whsec_" + base64.StdEncoding.EncodeToString([]byte("short"))
	cases := []struct {
		name  string
		cfg   Config
		paths []string
	}{
		{"valid", Config{URL: "https://app.example/hooks", Secret: gateway.NewSecret(testSecret)}, nil},
		{"valid http and reference", Config{URL: "http://app:3000/hooks", Secret: gateway.ParseSecret("env:HOOK_SECRET")}, nil},
		{"empty", Config{}, []string{"url", "secret"}},
		{"relative url", Config{URL: "/hooks", Secret: gateway.NewSecret(testSecret)}, []string{"url"}},
		{"ftp", Config{URL: "ftp://x/y", Secret: gateway.NewSecret(testSecret)}, []string{"url"}},
		{"credentials in url", Config{URL: "https://u:p@x/y", Secret: gateway.NewSecret(testSecret)}, []string{"url"}},
		{"no whsec_ prefix", Config{URL: "https://x/y", Secret: gateway.NewSecret("plain")}, []string{"secret"}},
		{"not base64", Config{URL: "https://x/y", Secret: gateway.NewSecret("whsec_***")}, []string{"secret"}},
		{"short key", Config{URL: "https://x/y", Secret: gateway.NewSecret(short)}, []string{"secret"}},
		{"reserved header", Config{URL: "https://x/y", Secret: gateway.NewSecret(testSecret), Headers: map[string]string{"Webhook-Signature": "x"}}, []string{"headers.Webhook-Signature"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, p := range tc.cfg.Validate() {
				got = append(got, p.Path)
			}
			if strings.Join(got, ",") != strings.Join(tc.paths, ",") {
				t.Fatalf("problems at %v, want %v", got, tc.paths)
			}
		})
	}
}

// receiver is a real HTTP endpoint that verifies each request with the
// Standard Webhooks library and answers what the test asks.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	answer func(r *http.Request) (int, http.Header)
	got    []gateway.WireEvent
	bad    int // requests that failed verification
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t}
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if err := wh.Verify(body, r.Header); err != nil {
			rc.bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		status, h := http.StatusNoContent, http.Header{}
		if rc.answer != nil {
			status, h = rc.answer(r)
		}
		for k, v := range h {
			w.Header()[k] = v
		}
		if status < 300 {
			var e gateway.WireEvent
			if err := json.Unmarshal(body, &e); err != nil {
				t.Errorf("body is not an event: %v", err)
			}
			rc.got = append(rc.got, e)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func open(t *testing.T, cfg Config) gateway.Adapter {
	t.Helper()
	a, err := cfg.Open(context.Background(), gateway.AdapterEnv{ID: "hook"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func event() gateway.WireEvent {
	return gateway.WireEvent{Contract: gateway.EventContract, ID: "01a2-event", Type: gateway.OpUserCreated, Seq: 7, Org: "default",
		Source: gateway.SourceSCIM, Time: time.Now().UTC(), User: &gateway.WireUser{ID: "u1", UserName: "ada@example.com", Active: true, Version: 1}}
}

func TestDeliverSignsAsStandardWebhooks(t *testing.T) {
	rc := newReceiver(t)
	var headers http.Header
	rc.answer = func(r *http.Request) (int, http.Header) { headers = r.Header.Clone(); return 200, nil }
	a := open(t, Config{URL: rc.srv.URL + "/hooks?token=abc", Secret: gateway.NewSecret(testSecret), Headers: map[string]string{"X-Route": "gatehouse"}})
	if err := a.Deliver(context.Background(), event()); err != nil {
		t.Fatal(err)
	}
	if rc.bad != 0 || len(rc.got) != 1 || rc.got[0].ID != "01a2-event" || rc.got[0].User.UserName != "ada@example.com" {
		t.Fatalf("receiver: bad=%d got=%+v", rc.bad, rc.got)
	}
	if headers.Get("webhook-id") != "01a2-event" || headers.Get("Content-Type") != "application/json" || headers.Get("X-Route") != "gatehouse" {
		t.Fatalf("headers: %v", headers)
	}
	// A receiver with another secret refuses it: the signature is real.
	other := open(t, Config{URL: rc.srv.URL, Secret: gateway.NewSecret("whsec_" + base64.StdEncoding.EncodeToString([]byte("another-key-another-key-1234")))})
	if err := other.Deliver(context.Background(), event()); err == nil || !errors.Is(err, gateway.ErrPermanent) || rc.bad != 1 {
		t.Fatalf("wrong key: %v (bad=%d)", err, rc.bad)
	}
}

func TestDeliverClassifiesAnswers(t *testing.T) {
	rc := newReceiver(t)
	a := open(t, Config{URL: rc.srv.URL + "/hooks?token=secret-in-query", Secret: gateway.NewSecret(testSecret)})
	cases := []struct {
		status     int
		header     http.Header
		permanent  bool
		retryAfter time.Duration
	}{
		{200, nil, false, -1},
		{202, nil, false, -1},
		{400, nil, true, 0},
		{404, nil, true, 0},
		{410, nil, true, 0},
		{301, http.Header{"Location": {"https://elsewhere.example/"}}, true, 0},
		{408, nil, false, 0},
		{409, nil, false, 0},
		{425, nil, false, 0},
		{429, http.Header{"Retry-After": {"7"}}, false, 7 * time.Second},
		{503, http.Header{"Retry-After": {time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)}}, false, 80 * time.Second},
		{500, nil, false, 0},
	}
	for _, tc := range cases {
		rc.answer = func(*http.Request) (int, http.Header) { return tc.status, tc.header }
		err := a.Deliver(context.Background(), event())
		if tc.retryAfter < 0 {
			if err != nil {
				t.Errorf("%d: %v, want delivered", tc.status, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%d: delivered, want a failure", tc.status)
			continue
		}
		if strings.Contains(err.Error(), "secret-in-query") {
			t.Errorf("%d: the error carries the URL's query: %v", tc.status, err)
		}
		if got := errors.Is(err, gateway.ErrPermanent); got != tc.permanent {
			t.Errorf("%d: permanent=%v, want %v (%v)", tc.status, got, tc.permanent, err)
		}
		var ra *gateway.RetryAfterError
		if tc.retryAfter > 0 && (!errors.As(err, &ra) || ra.After < tc.retryAfter || ra.After > tc.retryAfter+15*time.Second) {
			t.Errorf("%d: Retry-After not honoured: %v", tc.status, err)
		}
	}
	// A receiver that is not there is retried, not a dead letter.
	down := open(t, Config{URL: "http://127.0.0.1:1/hooks?token=SUPERSECRET", Secret: gateway.NewSecret(testSecret)})
	err := down.Deliver(context.Background(), event())
	if err == nil || errors.Is(err, gateway.ErrPermanent) {
		t.Fatalf("connection refused: %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), "SUPERSECRET") {
		t.Fatalf("a network error carries the URL's query: %v", err)
	}
}

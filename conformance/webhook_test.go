package conformance

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/app"
)

var hookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("conformance-webhook-signing-key!!"))

// hookReceiver is the app's side: a real HTTP endpoint that verifies every
// request with the Standard Webhooks library before looking at it.
type hookReceiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	down     bool
	reject   func(gateway.WireEvent) bool // answer 422 (permanent)
	refuse   func(gateway.WireEvent) bool // answer 503 (retried)
	got      []gateway.WireEvent
	ids      map[string]int // deliveries per event id
	unsigned int
}

func newHookReceiver(t *testing.T) *hookReceiver {
	wh, err := standardwebhooks.NewWebhook(hookSecret)
	if err != nil {
		t.Fatal(err)
	}
	h := &hookReceiver{ids: map[string]int{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err := wh.Verify(body, r.Header); err != nil {
			h.unsigned++
			http.Error(w, "signature", http.StatusUnauthorized)
			return
		}
		if h.down {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		var e gateway.WireEvent
		if err := json.Unmarshal(body, &e); err != nil {
			http.Error(w, "not an event", http.StatusBadRequest)
			return
		}
		if h.refuse != nil && h.refuse(e) {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		if h.reject != nil && h.reject(e) {
			http.Error(w, "unprocessable user", http.StatusUnprocessableEntity)
			return
		}
		h.got = append(h.got, e)
		h.ids[e.ID]++
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) set(f func(h *hookReceiver)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h)
}

func (h *hookReceiver) events() []gateway.WireEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]gateway.WireEvent(nil), h.got...)
}

func webhookEnv(url string) []string {
	return []string{
		`GATEHOUSE_ADAPTERS=[{"id":"app-hook","type":"webhook","config":{"url":"` + url + `","secret":"env:HOOK_SECRET"}}]`,
		"HOOK_SECRET=" + hookSecret,
		"GATEHOUSE_DELIVERY_BACKOFF_MIN=5ms", "GATEHOUSE_DELIVERY_BACKOFF_MAX=50ms", "GATEHOUSE_DELIVERY_LANES=" + lanesForTest(),
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// outboxCLI runs `gatehouse outbox …` in-process against the gateway's
// operations listener, as an operator would on the same host.
func outboxCLI(t *testing.T, g *gatewayUnderTest, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	code := app.Main(append([]string{"outbox"}, args...), []string{"GATEHOUSE_OPS_LISTEN=" + g.app.OpsAddr(), "GATEHOUSE_DATA_DIR=" + g.dataDir}, &out, &errOut, "test")
	if code != 0 {
		t.Fatalf("gatehouse outbox %v: exit %d: %s", args, code, errOut.String())
	}
	return out.String()
}

// TestWebhookDeliveryEndToEnd: SCIM changes reach a real receiver signed
// as Standard Webhooks specifies; while the receiver is down nothing is
// lost and order per user is kept; a permanent refusal becomes a dead
// letter that the operator sees and replays once the receiver is fixed.
func TestWebhookDeliveryEndToEnd(t *testing.T) {
	rc := newHookReceiver(t)
	g := startGateway(t, "", webhookEnv(rc.srv.URL+"/hooks/gatehouse")...)

	ids := map[string]string{}
	create := func(name string) {
		ids[name] = g.call("POST", "/Users", oktaUser(name, "U", "Ser")).must(t, 201).str("id")
	}
	create("first@example.com")
	eventually(t, "the first event", func() bool { return len(rc.events()) == 1 })
	if got := rc.events()[0]; got.Type != gateway.OpUserCreated || got.User.UserName != "first@example.com" || got.Contract != gateway.EventContract {
		t.Fatalf("delivered %+v", got)
	}

	// The receiver goes down; SCIM keeps answering; nothing is lost.
	rc.set(func(h *hookReceiver) { h.down = true })
	for i := range 15 {
		create(fmt.Sprintf("user%d@example.com", i))
		g.call("PATCH", "/Users/"+ids[fmt.Sprintf("user%d@example.com", i)], `{`+patchOp+`,"Operations":[{"op":"replace","path":"active","value":false}]}`).must(t, 200)
	}
	if resp, err := http.Get("http://" + g.app.OpsAddr() + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz while the receiver is down: %v %v", resp, err)
	}
	rc.set(func(h *hookReceiver) { h.down = false })
	eventually(t, "every event after the outage", func() bool { return len(rc.events()) == 31 })
	last := map[string]uint64{}
	for _, e := range rc.events() {
		if e.Seq <= last[e.User.ID] {
			t.Fatalf("event %d of %s arrived after %d", e.Seq, e.User.ID, last[e.User.ID])
		}
		last[e.User.ID] = e.Seq
	}
	if rc.unsigned != 0 {
		t.Fatalf("%d deliveries failed signature verification", rc.unsigned)
	}

	// A permanent refusal: a dead letter, and the user's next event waits
	// behind it while other users flow.
	bad := ids["user3@example.com"]
	rc.set(func(h *hookReceiver) {
		h.reject = func(e gateway.WireEvent) bool { return e.User != nil && e.User.ID == bad }
	})
	g.call("PATCH", "/Users/"+bad, `{`+patchOp+`,"Operations":[{"op":"replace","path":"displayName","value":"One"}]}`).must(t, 200)
	g.call("PATCH", "/Users/"+bad, `{`+patchOp+`,"Operations":[{"op":"replace","path":"displayName","value":"Two"}]}`).must(t, 200)
	create("after@example.com")
	eventually(t, "the other user's event", func() bool {
		got := rc.events()
		return got[len(got)-1].User.UserName == "after@example.com"
	})
	eventually(t, "two dead letters in the CLI", func() bool {
		return strings.Count(outboxCLI(t, g, "dead-letters", "--adapter", "app-hook"), "user:"+bad) == 2
	})
	listing := outboxCLI(t, g, "dead-letters", "--adapter", "app-hook")
	if !strings.Contains(listing, "422") || !strings.Contains(listing, "held back behind") {
		t.Fatalf("dead letters:\n%s", listing)
	}
	if st := outboxCLI(t, g, "status"); !strings.Contains(st, "app-hook") {
		t.Fatalf("status:\n%s", st)
	}

	// Fixed: the replay delivers both, in order.
	rc.set(func(h *hookReceiver) { h.reject = nil })
	if out := outboxCLI(t, g, "replay", "--adapter", "app-hook"); !strings.Contains(out, "2 dead letter(s)") {
		t.Fatalf("replay: %s", out)
	}
	eventually(t, "the replayed events", func() bool {
		var names []string
		for _, e := range rc.events() {
			if e.User.ID == bad && e.Type == gateway.OpUserUpdated {
				names = append(names, e.User.DisplayName)
			}
		}
		return len(names) == 2 && names[0] == "One" && names[1] == "Two"
	})
	eventually(t, "no dead letters left", func() bool {
		return strings.Count(outboxCLI(t, g, "dead-letters", "--adapter", "app-hook"), "\n") == 1 // the header
	})
	if n, _ := g.app.Store().Outbox().Cursor(context.Background(), gateway.DefaultOrg, "app-hook"); n == 0 {
		t.Fatal("the cursor was never written")
	}
}

// TestOutboxEndpointsRefuseOtherHosts: the operations API is for the
// host's own operator.
func TestOutboxEndpointsRefuseOtherHosts(t *testing.T) {
	g := startGateway(t, "")
	req := httptest.NewRequest("GET", "/outbox/status", nil)
	req.RemoteAddr = "203.0.113.7:51000"
	w := httptest.NewRecorder()
	g.app.OpsHandler().ServeHTTP(w, req)
	if w.Code != http.StatusForbidden {
		t.Fatalf("a remote client got %d", w.Code)
	}
	req.RemoteAddr = "127.0.0.1:51000"
	w = httptest.NewRecorder()
	g.app.OpsHandler().ServeHTTP(w, req)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"adapter":"directory"`) {
		t.Fatalf("loopback: %d %s", w.Code, w.Body)
	}
}

// TestOutboxEndpointsNeedTheOpsToken: on loopback too (a pod's app
// container shares it), dead letters and replay need the token the
// gateway wrote to data_dir, readable by its user only.
func TestOutboxEndpointsNeedTheOpsToken(t *testing.T) {
	g := startGateway(t, "")
	path := filepath.Join(g.dataDir, app.OpsTokenFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	token := strings.TrimSpace(string(raw))
	for _, tc := range []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/outbox/dead-letters?adapter=directory", "", http.StatusUnauthorized},
		{"POST", "/outbox/replay?adapter=directory", "", http.StatusUnauthorized},
		{"POST", "/outbox/replay?adapter=directory", "Bearer wrong", http.StatusUnauthorized},
		{"POST", "/outbox/replay?adapter=directory", "Bearer " + testToken, http.StatusUnauthorized},
		{"GET", "/outbox/dead-letters?adapter=directory", "Bearer " + token, http.StatusOK},
		{"POST", "/outbox/replay?adapter=directory", "Bearer " + token, http.StatusOK},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		req.RemoteAddr = "127.0.0.1:51000"
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		w := httptest.NewRecorder()
		g.app.OpsHandler().ServeHTTP(w, req)
		if w.Code != tc.want {
			t.Errorf("%s %s with %q: %d, want %d (%s)", tc.method, tc.path, tc.auth, w.Code, tc.want, w.Body)
		}
	}
	// The CLI, run with the gateway's configuration, finds the token.
	if out := outboxCLI(t, g, "replay", "--adapter", "directory"); !strings.HasPrefix(out, "0 dead letter(s) of directory scheduled") {
		t.Fatalf("outbox replay: %q", out)
	}
	// Without access to the data_dir it says what is missing.
	var out, errOut bytes.Buffer
	code := app.Main([]string{"outbox", "dead-letters", "--adapter", "directory"},
		[]string{"GATEHOUSE_OPS_LISTEN=" + g.app.OpsAddr(), "GATEHOUSE_DATA_DIR=" + t.TempDir()}, &out, &errOut, "test")
	if code == 0 || !strings.Contains(errOut.String(), app.OpsTokenFile) {
		t.Fatalf("without the token: exit %d: %s", code, errOut.String())
	}
}

// TestAdapterConfigProblems: every adapter's invalid settings are reported
// by check-config with their key paths, with the other problems.
func TestAdapterConfigProblems(t *testing.T) {
	var out, errOut bytes.Buffer
	env := []string{
		`GATEHOUSE_ADAPTERS=[{"id":"hook","type":"webhook","config":{"url":"ftp://x","secret":"env:NOT_SET_ANYWHERE"}},` +
			`{"id":"hook","type":"carrier-pigeon"},{"type":"webhook","config":{"url":"https://x","secret":"whsec_c2hvcnQ=","colour":"red"}},` +
			`{"id":"acme-hook","type":"webhook","config":{"url":"https://x","secret":"whsec_c2hvcnQ="},"orgs":["acme","Not An Org"]}]`,
		"GATEHOUSE_SCIM_MAX_RESULTS=0",
	}
	code := app.Main([]string{"check-config"}, env, &out, &errOut, "test")
	if code != 1 {
		t.Fatalf("check-config exit %d", code)
	}
	for _, want := range []string{
		"adapters[0].config.url: \"ftp://x\" must be an absolute http or https URL",
		"adapters[0].config.secret: references environment variable NOT_SET_ANYWHERE",
		"adapters[1].id: \"hook\" is also the id of adapters[0]",
		"adapters[1].type: unknown adapter type \"carrier-pigeon\"",
		"adapters[2].id: is required",
		"adapters[2].config: ",
		"colour",
		"adapters[3].orgs[1]: organization id \"Not An Org\" is not a slug",
		"scim.max_results",
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("check-config output lacks %q:\n%s", want, errOut.String())
		}
	}
	if strings.Contains(out.String()+errOut.String(), "c2hvcnQ") {
		t.Errorf("check-config printed an adapter secret:\n%s", out.String())
	}
}

func lanesForTest() string {
	if v := os.Getenv("GHTEST_LANES"); v != "" {
		return v
	}
	return "4"
}

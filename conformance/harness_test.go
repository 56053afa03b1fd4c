package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/config"
	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/app"
)

const testToken = "conformance-token-7Qd2"

// gatewayUnderTest is a real Gatehouse listening on 127.0.0.1 with its own
// bbolt file.
type gatewayUnderTest struct {
	t       *testing.T
	app     *app.App
	dataDir string
	base    string // SCIM base URL
	client  *http.Client
	stop    func() // shut down now (restart tests)
}

// unshared lifts the per-organization SCIM share: load runs and
// benchmarks measure the gateway, not the share.
const unshared = "GATEHOUSE_SCIM_ORG_REQUESTS_PER_SECOND=0"

// startGateway starts a SCIM-enabled gateway. extraEnv entries override
// the defaults (GATEHOUSE_* variables).
func startGateway(t *testing.T, dataDir string, extraEnv ...string) *gatewayUnderTest {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	env := []string{
		"GATEHOUSE_LISTEN=127.0.0.1:0",
		"GATEHOUSE_OPS_LISTEN=127.0.0.1:0",
		"GATEHOUSE_DATA_DIR=" + dataDir,
		"GATEHOUSE_SCIM_TOKEN=" + testToken,
		"GATEHOUSE_SSO_PROTOCOL=external",
		"GATEHOUSE_PROVISIONING_METHOD=scim",
		"GATEHOUSE_PUBLIC_URL=https://app.example.test",
		"GATEHOUSE_STORE_FSYNC=false",
	}
	env = append(env, storeEnv(t, dataDir)...)
	cfg, err := config.Load("", mergeEnv(env, extraEnv))
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	a, err := app.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("new gateway: %v", err)
	}
	if err := a.Start(); err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	g := &gatewayUnderTest{
		t: t, app: a, dataDir: dataDir,
		base:   "http://" + a.MainAddr() + cfg.PathPrefix + "/scim/v2",
		client: &http.Client{},
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = a.Shutdown(context.Background())
		}
	})
	g.stop = func() { stopped = true; _ = a.Shutdown(context.Background()) }
	return g
}

// storeEnv chooses the store of a gateway under test: bbolt in dataDir,
// or with GHTEST_STORE=postgres (CI runs the suite both ways) a
// PostgreSQL schema of its own, named after dataDir so that a restart on
// the same dataDir finds the same data.
func storeEnv(t *testing.T, dataDir string) []string {
	t.Helper()
	if os.Getenv("GHTEST_STORE") != "postgres" {
		return nil
	}
	sum := sha256.Sum256([]byte(dataDir))
	dsn, schema := pgSchema(t, "t_"+hex.EncodeToString(sum[:8]))
	return []string{"GATEHOUSE_STORE_TYPE=postgres", "GATEHOUSE_STORE_POSTGRES_DSN=" + dsn, "GATEHOUSE_STORE_POSTGRES_SCHEMA=" + schema}
}

// pgSchema names a PostgreSQL schema for a test's gateways (name, or a
// fresh one when name is ""), dropped when the test ends, and the DSN of
// the server it lives on.
func pgSchema(t *testing.T, name string) (dsn, schema string) {
	t.Helper()
	dsn = pgDSN(t)
	schema = name
	if schema == "" {
		schema = fmt.Sprintf("t_%d", time.Now().UnixNano())
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if conn, err := pgx.Connect(ctx, dsn); err == nil {
			_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			conn.Close(ctx)
		}
	})
	return dsn, schema
}

// onBolt skips a test of bbolt's own file (crash recovery, its size) when
// the suite runs on PostgreSQL.
func onBolt(t *testing.T) {
	t.Helper()
	if os.Getenv("GHTEST_STORE") == "postgres" {
		t.Skip("tests bbolt's file; the suite runs on PostgreSQL (GHTEST_STORE=postgres)")
	}
}

func mergeEnv(base, extra []string) []string {
	keys := map[string]bool{}
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		keys[k] = true
	}
	var out []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if !keys[k] {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// response is one HTTP exchange's outcome.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// call sends a SCIM request with the test token. body may be "" or JSON.
func (g *gatewayUnderTest) call(method, path, body string, headers ...string) response {
	g.t.Helper()
	return g.callAuth("Bearer "+testToken, method, path, body, headers...)
}

func (g *gatewayUnderTest) callAuth(auth, method, path, body string, headers ...string) response {
	g.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.base+path, rd)
	if err != nil {
		g.t.Fatalf("build request %s %s: %v", method, path, err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			g.t.Fatalf("%s %s: response is not a JSON object (%d): %s", method, path, resp.StatusCode, raw)
		}
	}
	return r
}

// must asserts the status and returns the response for more checks.
func (r response) must(t *testing.T, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.status, status, r.raw)
	}
	return r
}

// scimError asserts a SCIM error body with the given status and scimType
// ("" = no scimType required).
func (r response) scimError(t *testing.T, status int, scimType string) response {
	t.Helper()
	r.must(t, status)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/scim+json") {
		t.Errorf("error Content-Type = %q, want application/scim+json", ct)
	}
	if got := fmt.Sprint(r.body["schemas"]); got != "[urn:ietf:params:scim:api:messages:2.0:Error]" {
		t.Errorf("error schemas = %s, want the SCIM Error URN; body %s", got, r.raw)
	}
	if s, _ := r.body["status"].(string); s != fmt.Sprint(status) {
		t.Errorf("error status = %#v, want the string %q", r.body["status"], fmt.Sprint(status))
	}
	if d, _ := r.body["detail"].(string); d == "" {
		t.Errorf("error has no detail: %s", r.raw)
	}
	if scimType != "" {
		if got, _ := r.body["scimType"].(string); got != scimType {
			t.Errorf("scimType = %q, want %q; body %s", got, scimType, r.raw)
		}
	}
	return r
}

// str walks a dotted path through maps and list indexes ("emails.0.value").
func (r response) get(path string) any {
	var cur any = r.body
	for _, p := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

func (r response) str(path string) string { s, _ := r.get(path).(string); return s }

func (r response) num(t *testing.T, path string) int {
	t.Helper()
	f, ok := r.get(path).(float64)
	if !ok {
		t.Fatalf("%s is %#v, want a JSON number; body %s", path, r.get(path), r.raw)
	}
	if f != float64(int(f)) {
		t.Fatalf("%s = %v, want an integer", path, f)
	}
	return int(f)
}

// events returns every event recorded in the outbox so far.
func (g *gatewayUnderTest) events() []gateway.Event {
	g.t.Helper()
	evs, err := g.app.Store().Outbox().After(context.Background(), gateway.DefaultOrg, 0, 1_000_000)
	if err != nil {
		g.t.Fatalf("read outbox: %v", err)
	}
	return evs
}

func (g *gatewayUnderTest) outboxLen() int {
	g.t.Helper()
	n, err := g.app.Store().Outbox().Len(context.Background(), gateway.DefaultOrg)
	if err != nil {
		g.t.Fatalf("outbox len: %v", err)
	}
	return n
}

// opsSince lists the ops of events recorded after the first n.
func (g *gatewayUnderTest) opsSince(n int) []string {
	evs := g.events()
	var ops []string
	for _, e := range evs[n:] {
		ops = append(ops, string(e.Op))
	}
	return ops
}

func jsonString(v string) string { b, _ := json.Marshal(v); return string(b) }

// callNoFatal sends a request from any goroutine and returns its status
// (0 when it could not be sent).
func (g *gatewayUnderTest) callNoFatal(method, path, body string) int {
	req, err := http.NewRequest(method, g.base+path, strings.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := g.client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

// decodeID reads the id of a SCIM resource response.
func decodeID(resp *http.Response) string {
	var v struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return v.ID
}

// page is an HTML page as a browser got it.
type page struct {
	status int
	body   string
	url    string // where it ended, after redirects
}

// getPage GETs url with c (following redirects as c does).
func getPage(t *testing.T, c *http.Client, url string) page {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, body: string(b), url: resp.Request.URL.String()}
}

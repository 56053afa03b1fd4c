package conformance

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestOperationsListener: health, readiness and Prometheus metrics that
// count SCIM requests by resource, method and status.
func TestOperationsListener(t *testing.T) {
	g := startGateway(t, "")
	if r := g.call("GET", "/Users", "").must(t, 200); len(r.header.Get("X-Request-Id")) < 16 {
		t.Errorf("no generated request id: %q", r.header.Get("X-Request-Id"))
	}
	if r := g.callAuth("", "GET", "/Users", "", "X-Request-Id", "proxy-id-42").must(t, 401); r.header.Get("X-Request-Id") != "proxy-id-42" {
		t.Errorf("a proxy's request id must be echoed, got %q", r.header.Get("X-Request-Id"))
	}
	if r := g.call("GET", "/Users/x", "", "X-Request-Id", "bad id <script>"); r.header.Get("X-Request-Id") == "bad id <script>" {
		t.Error("an unsafe request id must be replaced")
	}
	ops := "http://" + g.app.OpsAddr()
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		body := httpGet(t, ops+path, 200)
		if !strings.Contains(body, want) {
			t.Errorf("%s: %q", path, body)
		}
	}
	body := httpGet(t, ops+"/metrics", 200)
	for _, want := range []string{
		`gatehouse_scim_requests_total{method="GET",resource="Users",status="200"} 1`,
		`gatehouse_scim_requests_total{method="GET",resource="Users",status="401"} 1`,
		`gatehouse_scim_request_duration_seconds_bucket{method="GET",resource="Users"`,
		`gatehouse_scim_auth_failures_total 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, testToken) {
		t.Error("metrics contain the SCIM token")
	}
}

func httpGet(t *testing.T, url string, status int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("GET %s = %d: %s", url, resp.StatusCode, b)
	}
	return string(b)
}

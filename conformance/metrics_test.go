package conformance

import (
	"fmt"
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
		`gatehouse_scim_last_success_timestamp_seconds{org="default"} 1.`, // a Unix time, set by the 200 alone
		`gatehouse_build_info{goversion="go1.`,
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

// TestMetricSeriesStayBounded: neither an unauthenticated client nor an
// authenticated one can create new time series with made-up methods and
// paths: every label takes its value from a fixed set.
func TestMetricSeriesStayBounded(t *testing.T) {
	// Hundreds of wrong tokens: without the throttle, so that each reaches
	// the same labels as the primed ones (429 is one more fixed value).
	g := startGateway(t, "", "GATEHOUSE_SCIM_AUTH_FAILURES_PER_MINUTE=0")
	ops := "http://" + g.app.OpsAddr() + "/metrics"
	series := func() map[string]bool {
		out := map[string]bool{}
		for _, line := range strings.Split(httpGet(t, ops, 200), "\n") {
			if strings.HasPrefix(line, "gatehouse_scim_requests_total{") {
				name, _, _ := strings.Cut(line, "} ")
				out[name] = true
			}
		}
		return out
	}
	// Prime every series an ordinary client reaches.
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
	for _, m := range methods {
		for _, auth := range []string{"Bearer " + testToken, ""} {
			g.callAuth(auth, m, "/Users", "")
			g.callAuth(auth, m, "/Nope", "")
		}
	}
	before := series()
	for i := range 200 {
		method := fmt.Sprintf("X%dMETHOD", i)
		path := fmt.Sprintf("/Random%d/%d", i, i*7)
		for _, auth := range []string{"Bearer " + testToken, "", "Bearer wrong"} {
			g.callAuth(auth, method, path, "")
			g.callAuth(auth, methods[i%len(methods)], path, "")
		}
	}
	after := series()
	var added []string
	for s := range after {
		if !before[s] {
			added = append(added, s)
		}
	}
	// Unknown methods may add one "other" series per resource and status,
	// never one per request.
	if len(added) > 6 {
		t.Fatalf("random methods and paths created %d new series: %v", len(added), added)
	}
	for _, s := range added {
		if !strings.Contains(s, `method="other"`) {
			t.Errorf("unexpected new series %s", s)
		}
	}
}

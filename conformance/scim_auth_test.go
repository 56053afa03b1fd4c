package conformance

import (
	"strconv"
	"strings"
	"testing"
)

// TestSCIMWrongTokenThrottled: a client that keeps presenting a wrong
// token gets 429 with Retry-After after scim.auth_failures_per_minute
// failures, counted, while the right token, even from the same address,
// is served at once (Okta retries on 429; a fixed token must not wait).
func TestSCIMWrongTokenThrottled(t *testing.T) {
	g := startGateway(t, "", "GATEHOUSE_SCIM_AUTH_FAILURES_PER_MINUTE=5")
	for i := range 5 {
		g.callAuth("Bearer wrong-token-guess-"+strconv.Itoa(i), "GET", "/Users", "").scimError(t, 401, "")
	}
	for range 3 {
		r := g.callAuth("Bearer wrong-token-again", "GET", "/Users", "").scimError(t, 429, "")
		secs, err := strconv.Atoi(r.header.Get("Retry-After"))
		if err != nil || secs < 1 || secs > 60 {
			t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
		}
		if !strings.Contains(r.body["detail"].(string), "wrong token") {
			t.Fatalf("detail %q", r.body["detail"])
		}
	}
	// No token at all is a failure like a wrong one.
	g.callAuth("", "GET", "/Users", "").scimError(t, 429, "")
	// The right token is never slowed.
	for range 10 {
		g.call("GET", "/Users", "").must(t, 200)
	}
	g.call("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"throttle@example.com"}`).must(t, 201)
	metrics := httpGet(t, "http://"+g.app.OpsAddr()+"/metrics", 200)
	if !strings.Contains(metrics, "gatehouse_scim_auth_throttled_total 4") {
		t.Fatal("gatehouse_scim_auth_throttled_total is not 4")
	}
}

package conformance

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestReplicaLoad is the bounded load run of the stores side by side: the
// real binary, one replica on bbolt or one or more on PostgreSQL (the
// database on the same machine), SCIM create, filter, PATCH and a list
// page at c=8 spread round robin over the replicas, each for a fixed
// time; it reports ops/s, p50 and p99, and each replica's RSS. Skipped
// unless GHTEST_LOAD=1:
//
//	GHTEST_LOAD=1 GHTEST_LOAD_STORE=postgres GHTEST_LOAD_REPLICAS=3 \
//	  GHTEST_LOAD_USERS=10000 GHTEST_LOAD_SECONDS=10 \
//	  go test ./conformance -run TestReplicaLoad -v -timeout 30m
func TestReplicaLoad(t *testing.T) {
	if os.Getenv("GHTEST_LOAD") != "1" {
		t.Skip("set GHTEST_LOAD=1 to run the load test")
	}
	users := envInt("GHTEST_LOAD_USERS", 10000)
	seconds := time.Duration(envInt("GHTEST_LOAD_SECONDS", 10)) * time.Second
	replicas := envInt("GHTEST_LOAD_REPLICAS", 1)
	store := os.Getenv("GHTEST_LOAD_STORE")
	env := []string{"GATEHOUSE_SCIM_TOKEN=" + testToken, "GATEHOUSE_SSO_PROTOCOL=external", unshared,
		"GATEHOUSE_PROVISIONING_METHOD=scim", "GATEHOUSE_LOG_LEVEL=warn", "GATEHOUSE_DATA_DIR=data"}
	switch store {
	case "postgres":
		dsn, schema := pgSchema(t, "")
		env = append(env, "GATEHOUSE_STORE_TYPE=postgres", "GATEHOUSE_STORE_POSTGRES_DSN="+dsn, "GATEHOUSE_STORE_POSTGRES_SCHEMA="+schema)
	case "", "bolt":
		if replicas != 1 {
			t.Fatal("bbolt runs one replica")
		}
	default:
		t.Fatalf("GHTEST_LOAD_STORE %q: bolt or postgres", store)
	}
	var ps []*process
	for range replicas {
		ps = append(ps, startBinary(t, t.TempDir(), env...))
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	var rr atomic.Uint64
	base := func() string { return "http://" + ps[rr.Add(1)%uint64(len(ps))].addr + "/gatehouse/scim/v2" }
	do := func(method, path, body string, want int) (string, error) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, base()+path, rd)
		req.Header.Set("Authorization", "Bearer "+testToken)
		if body != "" {
			req.Header.Set("Content-Type", "application/scim+json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			return "", fmt.Errorf("%s %s: status %d, want %d", method, path, resp.StatusCode, want)
		}
		return string(b), nil
	}
	var next atomic.Int64
	ids := make([]string, users)
	seed := run(t, fmt.Sprintf("seed POST /Users (c=32, %d users)", users), 32, 0, func(int) (bool, error) {
		i := next.Add(1) - 1
		if i >= int64(users) {
			return false, nil
		}
		body, err := do("POST", "/Users", oktaUser(fmt.Sprintf("load%d@example.com", i), "Load", fmt.Sprint(i)), 201)
		if err == nil {
			_, rest, _ := strings.Cut(body, `"id":"`)
			ids[i] = rest[:strings.IndexByte(rest, '"')]
		}
		return true, err
	})
	t.Log(seed)
	label := fmt.Sprintf("%s x%d, %d users", map[string]string{"": "bolt"}[store]+store, replicas, users)
	var flip atomic.Int64
	for _, sc := range []struct {
		name string
		op   func() error
	}{
		{"POST /Users", func() error {
			_, err := do("POST", "/Users", oktaUser(fmt.Sprintf("w%d@example.com", next.Add(1)), "W", "L"), 201)
			return err
		}},
		{"GET filter userName eq", func() error {
			_, err := do("GET", fmt.Sprintf("/Users?filter=userName+eq+%%22LOAD%d@example.com%%22", next.Add(7919)%int64(users)), "", 200)
			return err
		}},
		{"PATCH displayName", func() error {
			n := flip.Add(1)
			_, err := do("PATCH", "/Users/"+ids[n%int64(users)], fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"D%d"}]}`, n), 200)
			return err
		}},
		{"GET list page of 100", func() error {
			_, err := do("GET", fmt.Sprintf("/Users?startIndex=%d&count=100", next.Add(100)%int64(max(users-100, 1))+1), "", 200)
			return err
		}},
	} {
		t.Logf("%s  [%s]", run(t, sc.name+" (c=8)", 8, seconds, func(int) (bool, error) { return true, sc.op() }), label)
	}
	for i, p := range ps {
		t.Logf("replica %d RSS %.1f MiB", i, rssMiB(t, "http://"+p.opsAddr+"/metrics"))
	}
}

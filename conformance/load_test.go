package conformance

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoad is the bounded load run: the real binary (fsync on) on
// loopback, driven over HTTP. It is skipped unless GHTEST_LOAD=1:
//
//	GHTEST_LOAD=1 GHTEST_LOAD_USERS=100000 GHTEST_LOAD_SECONDS=10 \
//	  go test ./conformance -run TestLoad -v -timeout 30m
//
// The write-latency scenarios pin the gateway to core 0 and expect the
// load generator on core 1, so that the two do not share a core:
//
//	GHTEST_LOAD=1 GHTEST_LOAD_PIN=1 taskset -c 1 \
//	  go test ./conformance -run TestLoad -v -timeout 30m
//
// Each scenario runs for a fixed time (bounded) and reports ops/s, p50 and
// p99; the gateway's RSS is read from its own /metrics at the end. With
// GHTEST_LOAD_PROFILE=DIR the gateway's CPU profile of each c=8 write
// scenario is saved there (go tool pprof DIR/create-c8.pprof).
func TestLoad(t *testing.T) {
	if os.Getenv("GHTEST_LOAD") != "1" {
		t.Skip("set GHTEST_LOAD=1 to run the load test")
	}
	users := envInt("GHTEST_LOAD_USERS", 1000)
	seconds := time.Duration(envInt("GHTEST_LOAD_SECONDS", 5)) * time.Second
	var wrapper []string
	if os.Getenv("GHTEST_LOAD_PIN") == "1" {
		wrapper = []string{"taskset", "-c", "0"}
	}
	env := []string{"GATEHOUSE_SCIM_TOKEN=" + testToken, "GATEHOUSE_SSO_PROTOCOL=external", unshared,
		"GATEHOUSE_PROVISIONING_METHOD=scim", "GATEHOUSE_LOG_LEVEL=warn", "GATEHOUSE_DATA_DIR=data"}
	// GHTEST_LOAD_ENV adds variables to the gateway's environment (e.g.
	// "GOGC=200 GATEHOUSE_LOG_LEVEL=info").
	env = append(env, strings.Fields(os.Getenv("GHTEST_LOAD_ENV"))...)
	var rc *hookReceiver
	if os.Getenv("GHTEST_LOAD_DELIVERY") == "1" {
		// Every change delivered to a webhook receiver, and delivered
		// events pruned after a second: the file should stop growing.
		rc = newHookReceiver(t)
		env = append(append(env, webhookEnv(rc.srv.URL+"/hooks")...), "GATEHOUSE_DELIVERY_RETENTION=1s")
	}
	profileDir := os.Getenv("GHTEST_LOAD_PROFILE")
	if profileDir != "" {
		env = append(env, "GATEHOUSE_OPS_PPROF=true")
	}
	p := startBinaryWrapped(t, t.TempDir(), wrapper, env...)
	// profile records the gateway's CPU for the first d of a scenario.
	profile := func(name string, d time.Duration) func() {
		if profileDir == "" {
			return func() {}
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.opsAddr, int(d.Seconds())))
			if err != nil {
				t.Logf("profile %s: %v", name, err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			_ = os.WriteFile(filepath.Join(profileDir, name+".pprof"), b, 0o644)
		}()
		return func() { <-done }
	}
	base := "http://" + p.addr + "/gatehouse/scim/v2"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	do := func(method, url, body string, want int) error {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, url, rd)
		req.Header.Set("Authorization", "Bearer "+testToken)
		if body != "" {
			req.Header.Set("Content-Type", "application/scim+json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("%s %s: status %d, want %d", method, url, resp.StatusCode, want)
		}
		return nil
	}

	// Seed: creates at concurrency 32 until `users` exist (this is also the
	// durable create measurement).
	var next atomic.Int64
	ids := make([]string, users)
	seed := run(t, "POST /Users (fsync, c=32)", 32, 0, func(int) (bool, error) {
		i := next.Add(1) - 1
		if i >= int64(users) {
			return false, nil
		}
		return true, do("POST", base+"/Users", oktaUser(fmt.Sprintf("load%d@example.com", i), "Load", strconv.FormatInt(i, 10)), 201)
	})
	_ = ids
	t.Log(seed)
	t.Logf("gateway RSS after seeding %d users: %.1f MiB (%s)", users, rssMiB(t, "http://"+p.opsAddr+"/metrics"), procStatus(p.cmd.Process.Pid, "RssAnon", "RssFile"))

	lookups := run(t, "GET filter userName eq (c=16)", 16, seconds, func(w int) (bool, error) {
		i := next.Add(7919) % int64(users)
		return true, do("GET", base+"/Users?filter="+strings.ReplaceAll(fmt.Sprintf(`userName+eq+"LOAD%d@example.com"`, i), `"`, "%22"), "", 200)
	})
	t.Log(lookups)
	t.Logf("  RSS now %.1f MiB (%s)", rssMiB(t, "http://"+p.opsAddr+"/metrics"), procStatus(p.cmd.Process.Pid, "RssAnon", "RssFile"))

	list := run(t, "GET list page of 100 (c=16)", 16, seconds, func(int) (bool, error) {
		start := next.Add(100)%int64(max(users-100, 1)) + 1
		return true, do("GET", fmt.Sprintf("%s/Users?startIndex=%d&count=100", base, start), "", 200)
	})
	t.Log(list)
	t.Logf("  RSS now %.1f MiB (%s)", rssMiB(t, "http://"+p.opsAddr+"/metrics"), procStatus(p.cmd.Process.Pid, "RssAnon", "RssFile"))

	// PATCH deactivate/reactivate by id: fetch ids via one list walk.
	var all []string
	for start := 1; start <= users; start += 200 {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/Users?startIndex=%d&count=200&attributes=id", base, start), nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, part := range strings.Split(string(b), `"id":"`)[1:] {
			all = append(all, part[:strings.IndexByte(part, '"')])
		}
	}
	var flip atomic.Int64
	patchRun := run(t, "PATCH active=false/true (fsync, c=32)", 32, seconds, func(int) (bool, error) {
		n := flip.Add(1)
		id := all[n%int64(len(all))]
		return true, do("PATCH", base+"/Users/"+id, fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":%v}}]}`, (n/int64(len(all)))%2 == 1), 200)
	})
	t.Log(patchRun)
	t.Logf("  RSS now %.1f MiB (%s)", rssMiB(t, "http://"+p.opsAddr+"/metrics"), procStatus(p.cmd.Process.Pid, "RssAnon", "RssFile"))

	// Durable write latency: creates and PATCHes at c=8 and c=1, with the
	// gateway's CPU time per request (from its own process metrics).
	metricsURL := "http://" + p.opsAddr + "/metrics"
	for _, c := range []int{8, 1} {
		cpu0 := cpuSeconds(t, metricsURL)
		commits := commitCounter(t, metricsURL)
		wait := profile(fmt.Sprintf("create-c%d", c), seconds-time.Second)
		res := run(t, fmt.Sprintf("POST /Users (fsync, c=%d)", c), c, seconds, func(int) (bool, error) {
			i := next.Add(1)
			return true, do("POST", base+"/Users", oktaUser(fmt.Sprintf("write%d@example.com", i), "W", "L"), 201)
		})
		wait()
		t.Logf("%s  cpu %.3f ms/req  %s", res, 1000*(cpuSeconds(t, metricsURL)-cpu0)/float64(max(res.n, 1)), commits.since(t, metricsURL))
		cpu0 = cpuSeconds(t, metricsURL)
		commits = commitCounter(t, metricsURL)
		wait = profile(fmt.Sprintf("patch-c%d", c), seconds-time.Second)
		res = run(t, fmt.Sprintf("PATCH displayName (fsync, c=%d)", c), c, seconds, func(int) (bool, error) {
			n := flip.Add(1)
			return true, do("PATCH", base+"/Users/"+all[n%int64(len(all))], fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"D%d"}]}`, n), 200)
		})
		wait()
		t.Logf("%s  cpu %.3f ms/req  %s", res, 1000*(cpuSeconds(t, metricsURL)-cpu0)/float64(max(res.n, 1)), commits.since(t, metricsURL))
	}

	if rc != nil {
		metricsURL := "http://" + p.opsAddr + "/metrics"
		eventually(t, "delivery to catch up", func() bool {
			return metricValue(t, metricsURL, `gatehouse_outbox_lag_events{adapter="app-hook"}`) == 0
		})
		fileBefore := fileMiB(filepath.Join(p.cmd.Dir, "data", "gatehouse.db"))
		time.Sleep(70 * time.Second) // past the retention and a prune round
		status := httpGet(t, "http://"+p.opsAddr+"/outbox/status", 200)
		t.Logf("delivered %d events to the receiver; after pruning: %s; file %.1f MiB before, %.1f MiB after",
			len(rc.events()), strings.TrimSpace(status), fileBefore, fileMiB(filepath.Join(p.cmd.Dir, "data", "gatehouse.db")))
		// More writes must reuse the freed pages, not grow the file.
		fileThen := fileMiB(filepath.Join(p.cmd.Dir, "data", "gatehouse.db"))
		more := run(t, "PATCH active (fsync, c=32) after pruning", 32, seconds, func(int) (bool, error) {
			n := flip.Add(1)
			id := all[n%int64(len(all))]
			return true, do("PATCH", base+"/Users/"+id, fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":%v}}]}`, n%2 == 1), 200)
		})
		t.Log(more)
		eventually(t, "delivery to catch up again", func() bool {
			return metricValue(t, metricsURL, `gatehouse_outbox_lag_events{adapter="app-hook"}`) == 0
		})
		time.Sleep(70 * time.Second)
		t.Logf("file %.1f MiB before those %d writes and their pruning, %.1f MiB after", fileThen, more.n, fileMiB(filepath.Join(p.cmd.Dir, "data", "gatehouse.db")))
	}

	t.Logf("gateway RSS with %d users: %.1f MiB (%s); database file %.1f MiB", users, rssMiB(t, "http://"+p.opsAddr+"/metrics"),
		procStatus(p.cmd.Process.Pid, "RssAnon", "RssFile"), fileMiB(filepath.Join(p.cmd.Dir, "data", "gatehouse.db")))
	p.stop(t)
}

type loadResult struct {
	name          string
	n, errs       int
	elapsed       time.Duration
	p50, p99, max time.Duration
	firstErr      error
}

func (r loadResult) String() string {
	return fmt.Sprintf("%-40s %8d ops %8.0f ops/s  p50 %7.2fms  p99 %7.2fms  max %7.2fms  errors %d %v",
		r.name, r.n, float64(r.n)/r.elapsed.Seconds(), ms(r.p50), ms(r.p99), ms(r.max), r.errs, r.firstErr)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// run calls op from `workers` goroutines until op says stop or `d` passes
// (d == 0: until op says stop), recording each call's latency.
func run(t *testing.T, name string, workers int, d time.Duration, op func(worker int) (bool, error)) loadResult {
	t.Helper()
	var (
		mu       sync.Mutex
		lats     []time.Duration
		errs     int
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			for d == 0 || time.Now().Before(deadline) {
				t0 := time.Now()
				more, err := op(w)
				if !more {
					break
				}
				local = append(local, time.Since(t0))
				if err != nil {
					mu.Lock()
					errs++
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res := loadResult{name: name, n: len(lats), errs: errs, elapsed: time.Since(start), firstErr: firstErr}
	if len(lats) > 0 {
		slices.Sort(lats)
		res.p50 = lats[len(lats)/2]
		res.p99 = lats[len(lats)*99/100]
		res.max = lats[len(lats)-1]
	}
	if errs > 0 {
		t.Errorf("%s: %d errors, first: %v", name, errs, firstErr)
	}
	return res
}

func rssMiB(t *testing.T, metricsURL string) float64 {
	return metricValue(t, metricsURL, "process_resident_memory_bytes") / (1 << 20)
}

// metricValue reads one unlabelled sample from the gateway's /metrics.
func metricValue(t *testing.T, metricsURL, name string) float64 {
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// cpuSeconds reads the gateway's process_cpu_seconds_total.
func cpuSeconds(t *testing.T, metricsURL string) float64 {
	return metricValue(t, metricsURL, "process_cpu_seconds_total")
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// procStatus reads memory lines of /proc/PID/status (Linux).
func procStatus(pid int, keys ...string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "no /proc"
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, k := range keys {
			if strings.HasPrefix(line, k+":") {
				out = append(out, strings.Join(strings.Fields(line), " "))
			}
		}
	}
	return strings.Join(out, ", ")
}

func fileMiB(path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(fi.Size()) / (1 << 20)
}

// commitCount is the store's group-commit counters at one moment.
type commitCount struct{ commits, writes, seconds float64 }

func commitCounter(t *testing.T, metricsURL string) commitCount {
	return commitCount{metricValue(t, metricsURL, "gatehouse_store_commits_total"),
		metricValue(t, metricsURL, "gatehouse_store_committed_writes_total"), metricValue(t, metricsURL, "gatehouse_store_commit_seconds_total")}
}

// since says how the commits went since c: writes per commit and the
// time a commit took.
func (c commitCount) since(t *testing.T, metricsURL string) string {
	now := commitCounter(t, metricsURL)
	n := max(now.commits-c.commits, 1)
	return fmt.Sprintf("commits %.0f, %.1f writes each, %.2f ms each", n, (now.writes-c.writes)/n, 1000*(now.seconds-c.seconds)/n)
}

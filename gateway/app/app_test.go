package app

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/config"
	"github.com/gatehouse-id/gatehouse/gateway"
)

func testConfig(t *testing.T, extra ...string) *config.Config {
	t.Helper()
	env := append([]string{
		"GATEHOUSE_LISTEN=127.0.0.1:0",
		"GATEHOUSE_OPS_LISTEN=127.0.0.1:0",
		"GATEHOUSE_DATA_DIR=" + t.TempDir(),
		"GATEHOUSE_SCIM_TOKEN=app-test-token-0123456789",
		"GATEHOUSE_SSO_PROTOCOL=external",
		"GATEHOUSE_PROVISIONING_METHOD=scim",
		"GATEHOUSE_STORE_FSYNC=false",
	}, extra...)
	cfg, err := config.Load("", env)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startApp(t *testing.T, cfg *config.Config) *App {
	t.Helper()
	a, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	return a
}

// orderProbe is a worker that records, when stopped, whether the servers
// still accept connections and whether the store still answers.
type orderProbe struct {
	addr          string
	store         gateway.Store
	serverRefused bool
	storeErr      error
	stopped       bool
}

func (p *orderProbe) Stop(ctx context.Context) error {
	p.stopped = true
	conn, err := net.DialTimeout("tcp", p.addr, time.Second)
	selfConnect := false
	if err == nil {
		// A dial to a closed port in the ephemeral range can connect to
		// itself (TCP simultaneous open): no server is listening then.
		selfConnect = conn.LocalAddr().String() == conn.RemoteAddr().String()
		conn.Close()
	}
	p.serverRefused = err != nil || selfConnect
	_, p.storeErr = p.store.Outbox().Len(ctx, gateway.DefaultOrg)
	return nil
}

// TestShutdownOrder: servers stop first, then workers (with the store
// still open), then the store.
func TestShutdownOrder(t *testing.T) {
	a := startApp(t, testConfig(t))
	probe := &orderProbe{addr: a.MainAddr(), store: a.Store()}
	a.workers = append(a.workers, probe)
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !probe.stopped || !probe.serverRefused {
		t.Fatalf("workers must stop after the servers: stopped=%v refused=%v", probe.stopped, probe.serverRefused)
	}
	if probe.storeErr != nil {
		t.Fatalf("workers must stop before the store: %v", probe.storeErr)
	}
	_, err := a.Store().Outbox().Len(context.Background(), gateway.DefaultOrg)
	if gateway.ErrorCodeOf(err) != gateway.ErrUnavailable {
		t.Fatalf("a closed store answers ErrUnavailable, got %v", err)
	}
}

// TestListenersShareTimeouts: the operations listener has the same
// timeouts as the main one, so idle keep-alive connections end.
func TestListenersShareTimeouts(t *testing.T) {
	a := startApp(t, testConfig(t))
	defer a.Shutdown(context.Background())
	for name, s := range map[string]*http.Server{"main": a.main, "ops": a.ops} {
		if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 {
			t.Errorf("%s listener lacks a timeout: %+v", name, s)
		}
	}
	if a.ops.IdleTimeout != a.main.IdleTimeout || a.ops.ReadTimeout != a.main.ReadTimeout {
		t.Error("the listeners' timeouts differ")
	}
}

func runCLI(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(args, env, &out, &errOut, "dev")
	return code, out.String(), errOut.String()
}

func TestCommandLine(t *testing.T) {
	cases := []struct {
		args     []string
		code     int
		contains []string
	}{
		{[]string{"--help"}, 0, []string{"serve", "check-config", "healthcheck", "GATEHOUSE_SCIM_TOKEN", "scim.token", "GATEHOUSE_STORE_OPEN_TIMEOUT"}},
		{[]string{"-h"}, 0, []string{"Available Commands", "GATEHOUSE_LISTEN"}},
		{[]string{"help"}, 0, []string{"Available Commands", "GATEHOUSE_LISTEN"}},
		{[]string{"help", "serve"}, 0, []string{"gatehouse serve", "GATEHOUSE_PUBLIC_URL"}},
		{[]string{"serve", "--help"}, 0, []string{"gatehouse serve", "--config", "GATEHOUSE_PUBLIC_URL"}},
		{[]string{"check-config", "-h"}, 0, []string{"gatehouse check-config", "GATEHOUSE_SCIM_TOKEN"}},
		{[]string{"--version"}, 0, []string{"gatehouse "}},
		{[]string{"version"}, 0, []string{"gatehouse "}},
		{[]string{}, 2, []string{"Available Commands"}},
		{[]string{"frobnicate"}, 2, []string{`unknown command "frobnicate"`, "gatehouse --help"}},
		{[]string{"serve", "--no-such-flag"}, 2, []string{"unknown flag: --no-such-flag"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, nil, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			for _, want := range tc.contains {
				if !strings.Contains(out+errOut, want) {
					t.Errorf("output lacks %q:\n%s%s", want, out, errOut)
				}
			}
		})
	}
}

func TestCheckConfigShowsWarnings(t *testing.T) {
	code, out, errOut := runCLI(t, []string{"GATEHOUSE_PORT_8080_TCP=tcp://10.0.0.1:8080", "GATEHOUSE_LOG_LEVL=debug"}, "check-config")
	if code != 0 {
		t.Fatalf("warnings alone must not fail check-config: %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"warning: GATEHOUSE_LOG_LEVL matches no configuration key and is ignored; did you mean GATEHOUSE_LOG_LEVEL?", "warning: GATEHOUSE_PORT_8080_TCP", "configuration is valid"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("check-config output lacks %q:\n%s", want, errOut)
		}
	}
}

func TestHealthcheckCommand(t *testing.T) {
	a := startApp(t, testConfig(t))
	env := []string{"GATEHOUSE_OPS_LISTEN=" + a.OpsAddr()}
	if code, out, errOut := runCLI(t, env, "healthcheck"); code != 0 {
		t.Fatalf("healthy gateway: exit %d %s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, env, "healthcheck", "--ready"); code != 0 {
		t.Fatalf("ready gateway: exit %d %s%s", code, out, errOut)
	}
	_, port, _ := net.SplitHostPort(a.OpsAddr())
	if code, _, errOut := runCLI(t, []string{"GATEHOUSE_OPS_LISTEN=:" + port}, "healthcheck"); code != 0 {
		t.Fatalf("a wildcard ops_listen means this host: %s", errOut)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, env, "healthcheck")
	if code != 1 || !strings.Contains(errOut, "unhealthy") {
		t.Fatalf("stopped gateway: exit %d, %s", code, errOut)
	}
}

func TestBuildVersion(t *testing.T) {
	if got := BuildVersion("v1.2.3"); !strings.HasPrefix(got, "v1.2.3") {
		t.Errorf("linked version wins: %q", got)
	}
	if got := BuildVersion("v1.2.3 (commit 0123456789ab)"); got != "v1.2.3 (commit 0123456789ab)" {
		t.Errorf("a linked commit is kept: %q", got)
	}
	if got := BuildVersion("dev"); got == "" {
		t.Error("empty fallback version")
	}
}

func TestRedactLinkPaths(t *testing.T) {
	redact := redactLinkPaths("/gatehouse")
	for in, want := range map[string]string{
		"/gatehouse/invite/abc.def":               "/gatehouse/invite/[REDACTED]",
		"/gatehouse/invite/abc.def/accept":        "/gatehouse/invite/[REDACTED]/accept",
		"/gatehouse/o/acme/invite/abc.def/signin": "/gatehouse/o/acme/invite/[REDACTED]/signin",
		"/gatehouse/setup/link/abc.def":           "/gatehouse/setup/link/[REDACTED]",
		"/gatehouse/o/acme/setup/link/abc.def":    "/gatehouse/o/acme/setup/link/[REDACTED]",
		"/gatehouse/o/acme/setup/test/done":       "/gatehouse/o/acme/setup/test/done",
		"/gatehouse/o/invite/invite/x":            "/gatehouse/o/invite/invite/[REDACTED]",
		"/gatehouse/users":                        "/gatehouse/users",
		"/gatehouse/o/acme/users":                 "/gatehouse/o/acme/users",
		"/other/invite/abc":                       "/other/invite/abc",
	} {
		if got := redact(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

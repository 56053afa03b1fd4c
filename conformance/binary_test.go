package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// builtBinary compiles gatehouse once per test process.
var buildOnce struct {
	sync.Once
	path string
	err  error
}

func gatehouseBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gatehouse-bin")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "gatehouse")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, "..").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// process is a running gatehouse binary.
type process struct {
	cmd           *exec.Cmd
	logs          *bytes.Buffer
	addr, opsAddr string
	done          chan error
}

// startBinary runs `gatehouse serve` in dir with the given environment (on
// top of listen addresses it picks) and waits until /readyz answers.
func startBinary(t testing.TB, dir string, env ...string) *process {
	t.Helper()
	return startBinaryWrapped(t, dir, nil, env...)
}

// startBinaryWrapped runs the binary under a wrapper command (e.g.
// taskset -c 0 to pin it to one core for a load run).
func startBinaryWrapped(t testing.TB, dir string, wrapper []string, env ...string) *process {
	t.Helper()
	p := &process{addr: freeAddr(t), opsAddr: freeAddr(t), logs: &bytes.Buffer{}, done: make(chan error, 1)}
	args := append(append([]string{}, wrapper...), gatehouseBinary(t), "serve")
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Dir = dir
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"GATEHOUSE_LISTEN=" + p.addr, "GATEHOUSE_OPS_LISTEN=" + p.opsAddr}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + p.opsAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("gatehouse exited early: %v\n%s", err, p.logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("gatehouse not ready in time:\n%s", p.logs)
	return nil
}

// stop sends SIGTERM and requires a clean exit.
func (p *process) stop(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("gatehouse exited with %v after SIGTERM:\n%s", err, p.logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("gatehouse did not stop after SIGTERM:\n%s", p.logs)
	}
}

// TestBinaryServeWithThreeSettings: `gatehouse serve` with only the token,
// sso.protocol=external and provisioning.method=scim is a working SCIM
// server whose data survives a restart; it shuts down cleanly on SIGTERM
// and never logs the token or a password.
func TestBinaryServeWithThreeSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	env := []string{"GATEHOUSE_SCIM_TOKEN=" + testToken, "GATEHOUSE_SSO_PROTOCOL=external", "GATEHOUSE_PROVISIONING_METHOD=scim",
		// What Kubernetes injects for a Service named gatehouse: ignored
		// with a warning, never a reason to refuse to start.
		"GATEHOUSE_SERVICE_HOST=10.96.0.12", "GATEHOUSE_SERVICE_PORT=8080", "GATEHOUSE_PORT=tcp://10.96.0.12:8080",
		"GATEHOUSE_PORT_8080_TCP=tcp://10.96.0.12:8080", "GATEHOUSE_PORT_8080_TCP_ADDR=10.96.0.12"}
	// data_dir defaults to ./gatehouse-data relative to the working dir.
	p := startBinary(t, dir, env...)
	g := &gatewayUnderTest{t: t, base: "http://" + p.addr + "/gatehouse/scim/v2", client: http.DefaultClient}
	id := g.call("POST", "/Users", oktaUser("ada@example.com", "Ada", "Lovelace")).must(t, 201).str("id")
	p.stop(t)
	if _, err := os.Stat(filepath.Join(dir, "gatehouse-data", "gatehouse.db")); err != nil {
		t.Fatalf("default data_dir not used: %v", err)
	}
	p2 := startBinary(t, dir, env...)
	g.base = "http://" + p2.addr + "/gatehouse/scim/v2"
	if r := g.call("GET", "/Users/"+id, "").must(t, 200); r.str("userName") != "ada@example.com" {
		t.Fatalf("after restart: %s", r.raw)
	}
	p2.stop(t)
	logs := p.logs.String() + p2.logs.String()
	for _, secret := range []string{testToken, "1mz050nq"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain a secret %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, `GATEHOUSE_PORT_8080_TCP_ADDR matches no configuration key and is ignored`) || !strings.Contains(logs, `"level":"WARN"`) {
		t.Errorf("unknown GATEHOUSE_ variables must be logged as warnings:\n%s", logs)
	}
	if !strings.Contains(logs, `"msg":"http request"`) || !strings.Contains(logs, `"request_id"`) {
		t.Errorf("expected structured access logs with request ids:\n%s", logs)
	}
}

// runBinary runs gatehouse with args to completion and returns its exit
// code and combined output.
func runBinary(t *testing.T, dir string, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(gatehouseBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("run %v: %v", args, err)
	return 0, ""
}

// TestBinaryRefusesDamagedOrLockedDatabase: a truncated or empty
// gatehouse.db, or one another Gatehouse holds, stops serve with exit 1 and
// a sentence that says what is wrong and what to do: no stack trace, and
// never a silently empty directory.
func TestBinaryRefusesDamagedOrLockedDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	env := []string{"GATEHOUSE_SCIM_TOKEN=" + testToken, "GATEHOUSE_SSO_PROTOCOL=external", "GATEHOUSE_PROVISIONING_METHOD=scim",
		"GATEHOUSE_DATA_DIR=" + dir, "GATEHOUSE_STORE_OPEN_TIMEOUT=300ms"}
	p := startBinary(t, dir, env...)
	g := &gatewayUnderTest{t: t, base: "http://" + p.addr + "/gatehouse/scim/v2", client: http.DefaultClient}
	for i := range 50 {
		g.call("POST", "/Users", oktaUser(fmt.Sprintf("user%d@example.com", i), "A", "B")).must(t, 201)
	}
	// A second gateway on the same data_dir while the first runs.
	code, out := runBinary(t, dir, append(env, "GATEHOUSE_LISTEN="+freeAddr(t), "GATEHOUSE_OPS_LISTEN="+freeAddr(t)), "serve")
	if code != 1 || !strings.Contains(out, "locked by another process") || !strings.Contains(out, filepath.Join(dir, "gatehouse.db")) {
		t.Fatalf("second gateway on a held file: exit %d\n%s", code, out)
	}
	p.stop(t)

	db := filepath.Join(dir, "gatehouse.db")
	raw, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"truncated": raw[:len(raw)/3], "empty": {}} {
		if err := os.WriteFile(db, content, 0o600); err != nil {
			t.Fatal(err)
		}
		code, out := runBinary(t, dir, append(env, "GATEHOUSE_LISTEN="+freeAddr(t), "GATEHOUSE_OPS_LISTEN="+freeAddr(t)), "serve")
		if code != 1 {
			t.Fatalf("%s file: exit %d, want 1\n%s", name, code, out)
		}
		for _, want := range []string{"is damaged", "backup"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s file: output lacks %q:\n%s", name, want, out)
			}
		}
		for _, trace := range []string{"goroutine ", "panic:", ".go:"} {
			if strings.Contains(out, trace) {
				t.Errorf("%s file: output has a stack trace (%q):\n%s", name, trace, out)
			}
		}
		if after, _ := os.ReadFile(db); len(after) != len(content) {
			t.Errorf("%s file was modified", name)
		}
	}
}

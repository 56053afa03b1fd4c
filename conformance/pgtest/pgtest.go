// Package pgtest starts a PostgreSQL cluster of a test's own, in a
// temporary directory, with Debian's initdb and pg_ctl: a test that stops
// or restarts the database never disturbs another (the shared server .ci/run
// starts stays up).
package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a running (or stopped) PostgreSQL of the test's own.
type Cluster struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	// DSN reaches the cluster's postgres database as the gatehouse
	// superuser (trust authentication on 127.0.0.1).
	DSN string
}

// Start initializes a cluster and starts it; it is stopped and removed
// when the test ends. Without Debian's PostgreSQL binaries the test
// skips, unless GHTEST_PG_REQUIRED=1 (CI), where that is a failure.
func Start(t *testing.T) *Cluster {
	t.Helper()
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		if os.Getenv("GHTEST_PG_REQUIRED") == "1" {
			t.Fatal("PostgreSQL is required (GHTEST_PG_REQUIRED=1) but Debian's initdb is not installed")
		}
		t.Skip("no /usr/lib/postgresql/*/bin/initdb: install Debian's postgresql (.ci/run does) to run this test")
	}
	c := &Cluster{t: t, bin: filepath.Dir(matches[len(matches)-1])}
	parent, err := os.MkdirTemp("", "gatehouse-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(parent) })
	c.dir = filepath.Join(parent, "data")
	if os.Getuid() == 0 {
		// PostgreSQL refuses to run as root: the postgres user owns it.
		pg, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		if err := os.Chown(parent, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	c.port = freePort(t)
	c.run("initdb", "-D", c.dir, "-U", "gatehouse", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8")
	c.DSN = fmt.Sprintf("postgres://gatehouse@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	c.Start()
	t.Cleanup(func() { c.pgctl("stop", "-m", "immediate") })
	return c
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// run runs one of the cluster's binaries (as postgres when we are root).
func (c *Cluster) run(name string, args ...string) {
	c.t.Helper()
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if os.Getuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func (c *Cluster) pgctl(args ...string) {
	c.t.Helper()
	c.run("pg_ctl", append([]string{"-D", c.dir, "-w", "-t", "30", "-l", filepath.Join(filepath.Dir(c.dir), "log")}, args...)...)
}

// Start starts the cluster (again), listening on 127.0.0.1 only, and
// waits until it accepts connections.
func (c *Cluster) Start() {
	c.t.Helper()
	c.pgctl("start", "-o", fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off", c.port, filepath.Dir(c.dir)))
}

// Stop stops the cluster: fast shuts down cleanly, immediate as a crash
// would (recovery at the next start).
func (c *Cluster) Stop(mode string) {
	c.t.Helper()
	c.pgctl("stop", "-m", mode)
}

// WaitDown waits until nothing accepts connections on the port.
func (c *Cluster) WaitDown() {
	for range 100 {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", c.port), 100*time.Millisecond)
		if err != nil {
			return
		}
		conn.Close()
		time.Sleep(50 * time.Millisecond)
	}
}

package conformance

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-id/gatehouse/gateway/app"
)

// TestBackupWhileServingAndRestore: gatehouse backup copies the running
// gateway's bbolt file while SCIM writes go on; the copy opens, and
// restored in place of the file (the gateway stopped) it holds every user
// acknowledged before the backup began; a file that is not a store is
// refused and changes nothing; a damaged store is replaced all the same.
func TestBackupWhileServingAndRestore(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, dir, "GATEHOUSE_STORE_TYPE=bolt")
	for i := range 50 {
		g.call("POST", "/Users", userJSON(fmt.Sprintf("before%d@example.com", i))).must(t, 201)
	}
	cli := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := app.Main(args, []string{"GATEHOUSE_OPS_LISTEN=" + g.app.OpsAddr(), "GATEHOUSE_DATA_DIR=" + dir}, &out, &errOut, "test")
		return code, out.String(), errOut.String()
	}
	// Writers go on during the backup.
	var during atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if g.callNoFatal("POST", "/Users", userJSON(fmt.Sprintf("during%d-%d@example.com", w, i))) == 201 {
					during.Add(1)
				}
			}
		})
	}
	backup := filepath.Join(t.TempDir(), "gatehouse-backup.db")
	code, out, errOut := cli("backup", backup)
	close(stop)
	wg.Wait()
	if code != 0 || !strings.HasPrefix(out, "backed up ") {
		t.Fatalf("backup: exit %d: %s %s", code, out, errOut)
	}
	total := 50 + int(during.Load())

	// Restore refuses while the gateway runs, and refuses a file that is
	// not a store.
	if code, _, errOut := cli("restore", backup); code == 0 || !strings.Contains(errOut, "stop the gateway first") {
		t.Fatalf("restore while the gateway runs: exit %d: %s", code, errOut)
	}
	g.stop()
	junk := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(junk, []byte(strings.Repeat("not a store ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := cli("restore", junk); code == 0 || !strings.Contains(errOut, "does not open as a Gatehouse store") {
		t.Fatalf("restore of a file that is not a store: exit %d: %s", code, errOut)
	}
	// The live file is damaged (the usual reason to restore): restore
	// sets it aside all the same.
	if err := os.Truncate(filepath.Join(dir, app.DBFile), 0); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := cli("restore", backup); code != 0 || !strings.Contains(out, "kept the replaced store") {
		t.Fatalf("restore over a damaged store: exit %d: %s %s", code, out, errOut)
	}
	r := startGateway(t, dir, "GATEHOUSE_STORE_TYPE=bolt")
	n := int(r.call("GET", "/Users?count=0", "").must(t, 200).get("totalResults").(float64))
	if n < 50 || n > total {
		t.Fatalf("the restored store holds %d users; want the 50 from before the backup and at most the %d ever acknowledged", n, total)
	}
	r.call("GET", `/Users?filter=userName+eq+%22before49@example.com%22`, "").must(t, 200)
	t.Logf("backup taken while %d users were written; it holds %d of %d", during.Load(), n, total)
}

package conformance

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/config"
	"github.com/gatehouse-id/gatehouse/gateway/app"
)

// TestREADMEDocumentsEveryConfigKey keeps the README's configuration
// reference true: every key and its environment variable must appear.
func TestREADMEDocumentsEveryConfigKey(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, k := range config.Reference() {
		if !strings.Contains(readme, "`"+k.Path+"`") || !strings.Contains(readme, "`"+k.Env+"`") {
			t.Errorf("README does not document %s (%s): %s", k.Path, k.Env, k.Description)
		}
	}
}

// TestREADMEAdapterExamplesAreValid: each adapter's configuration example
// in the README passes check-config as it is.
func TestREADMEAdapterExamplesAreValid(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, heading := range []string{"### `webhook`", "### `sqldb`", "### `rest`"} {
		i := strings.Index(readme, heading)
		if i < 0 {
			t.Fatalf("README has no %s section", heading)
		}
		_, rest, ok := strings.Cut(readme[i:], "```yaml\n")
		example, _, ok2 := strings.Cut(rest, "```")
		if !ok || !ok2 {
			t.Fatalf("%s has no YAML example", heading)
		}
		path := filepath.Join(t.TempDir(), "gatehouse.yaml")
		if err := os.WriteFile(path, []byte(example), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		env := []string{"HOOK_SECRET=" + hookSecret, "APP_DATABASE_URL=postgres://app:pw@127.0.0.1:5432/app", "APP_API_TOKEN=Bearer x"}
		if code := app.Main([]string{"check-config", "--config", path}, env, &out, &errOut, "test"); code != 0 {
			t.Errorf("%s example: check-config exit %d:\n%s", heading, code, errOut.String())
		}
	}
}

package conformance

import (
	"os"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/config"
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

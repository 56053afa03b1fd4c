package conformance

import (
	"os"
	"strings"
	"testing"
)

// TestPackaging: the repository ships a license, keeps local state out of
// image builds, and the image declares a health check the distroless base
// can run (the binary's own healthcheck command).
func TestPackaging(t *testing.T) {
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile("../" + name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return string(b)
	}
	if l := read("LICENSE"); !strings.Contains(l, "Apache License") || !strings.Contains(l, "Version 2.0") {
		t.Error("LICENSE is not the Apache License 2.0")
	}
	ignore := read(".dockerignore")
	for _, want := range []string{".git", "gatehouse-data/", "gatehouse-demo/", "*.db"} {
		if !strings.Contains(ignore, want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
	if df := read("Dockerfile"); !strings.Contains(df, `HEALTHCHECK`) || !strings.Contains(df, `"healthcheck"`) {
		t.Error("Dockerfile declares no HEALTHCHECK running `gatehouse healthcheck`")
	}
}

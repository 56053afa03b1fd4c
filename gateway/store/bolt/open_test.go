package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOpenRefusesDamagedFiles: a truncated, empty or garbage file is
// refused with a DamagedError that says how to recover, never a panic, and
// never silently turned into a new empty directory.
func TestOpenRefusesDamagedFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	s, err := Open(good, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1500 {
		mustCreate(t, s, newUser(fmt.Sprintf("user%05d@example.com", i)))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":           {},
		"truncated half":  raw[:len(raw)/2],
		"truncated 3 pgs": raw[:3*4096],
		"one page":        raw[:4096],
		"a few bytes":     raw[:100],
		"garbage":         []byte(strings.Repeat("not a database ", 1000)),
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gatehouse.db")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path, Options{NoSync: true, Timeout: time.Second})
			if err == nil {
				s.Close()
				t.Fatal("a damaged file was opened")
			}
			var damaged *DamagedError
			if !errors.As(err, &damaged) {
				t.Fatalf("want a DamagedError, got %T: %v", err, err)
			}
			for _, want := range []string{path + " is damaged", "backup", "will not start"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
			after, _ := os.ReadFile(path)
			if len(after) != len(content) {
				t.Errorf("the damaged file was changed: %d bytes, was %d", len(after), len(content))
			}
		})
	}
}

// TestOpenLockedByAnotherProcess: a second opener of the same file is told
// who holds it rather than getting bbolt's bare "timeout".
func TestOpenLockedByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	first := openTest(t, path)
	_ = first
	_, err := Open(path, Options{NoSync: true, Timeout: 100 * time.Millisecond})
	if err == nil {
		t.Fatal("opened a file another store holds")
	}
	for _, want := range []string{path, "locked by another process", "another Gatehouse", "store.open_timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	// The holder is unaffected.
	if _, err := first.Users().Lookup(context.Background(), org, "userName", "x"); err != nil {
		t.Fatal(err)
	}
}

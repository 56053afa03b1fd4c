package oidc

import (
	"testing"
	"time"
)

// TestLogoutKeyGuard: a logout token signed with a key the OP was seen
// using is always looked at; one with an unknown key at most every
// unknownKeyRetry (each try may make the library fetch the OP's keys).
func TestLogoutKeyGuard(t *testing.T) {
	var g logoutKeyGuard
	g.verified("op-key-1")
	t0 := time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC)
	for _, step := range []struct {
		kid  string
		at   time.Duration
		want bool
	}{
		{"op-key-1", 0, true},
		{"random-1", 0, true},               // the first unknown key is tried
		{"random-2", time.Second, false},    // the next within 30 s is not
		{"op-key-1", 2 * time.Second, true}, // known keys always are
		{"", 3 * time.Second, false},        // nor a token without a kid
		{"op-key-2", unknownKeyRetry, true}, // after 30 s, a rotated key is tried
		{"random-3", unknownKeyRetry + time.Second, false},
	} {
		if got := g.mayTry(step.kid, t0.Add(step.at)); got != step.want {
			t.Fatalf("kid %q at +%v: %v, want %v", step.kid, step.at, got, step.want)
		}
	}
}

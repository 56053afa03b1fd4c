package httpx

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBearer(t *testing.T) {
	b := NewBearer("s3cret-token-0123456789")
	cases := map[string]bool{
		"Bearer s3cret-token-0123456789":   true,
		"bearer s3cret-token-0123456789":   true,
		"BEARER  s3cret-token-0123456789 ": true,
		"Bearer s3cret-token-012345678":    false,
		"Bearer s3cret-token-01234567890":  false,
		"Basic s3cret-token-0123456789":    false,
		"s3cret-token-0123456789":          false,
		"Bearer ":                          false,
		"":                                 false,
	}
	for h, want := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		if got := b.Check(r); got != want {
			t.Errorf("%q: %v, want %v", h, got, want)
		}
	}
	empty := NewBearer("")
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer ")
	if empty.Check(r) {
		t.Error("an unset token matches an empty one")
	}
}

func TestAccessLogRedacting(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	h := AccessLogRedacting(log, func(p string) string { return strings.Replace(p, "secret-token", "[REDACTED]", 1) },
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/gatehouse/invite/secret-token", nil))
	if strings.Contains(logs.String(), "secret-token") || !strings.Contains(logs.String(), "/gatehouse/invite/[REDACTED]") {
		t.Fatalf("access log: %s", logs.String())
	}
}

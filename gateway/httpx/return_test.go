package httpx

import "testing"

func TestSafeReturn(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "/",
		"/app?x=1":          "/app?x=1",
		"//evil.example/":   "/",
		"https://evil/":     "/",
		"/\\evil.example":   "/",
		"javascript:alert":  "/",
		"/ok\r\nSet-Cookie": "/",
		"relative":          "/",
	} {
		if got := SafeReturn(in); got != want {
			t.Errorf("SafeReturn(%q) = %q, want %q", in, got, want)
		}
	}
}

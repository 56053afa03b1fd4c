package httpx

import (
	"net/http/httptest"
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

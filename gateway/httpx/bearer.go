package httpx

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Bearer checks an "Authorization: Bearer <token>" header against one
// token. Only the token's SHA-256 is kept, and the comparison is in
// constant time over the hashes, so neither the token's bytes nor its
// length leak through timing.
type Bearer struct {
	hash [sha256.Size]byte
	set  bool
}

// NewBearer keeps the hash of token; an empty token matches nothing.
func NewBearer(token string) Bearer {
	if token == "" {
		return Bearer{}
	}
	return Bearer{hash: sha256.Sum256([]byte(token)), set: true}
}

// Check reports whether r carries the token.
func (b Bearer) Check(r *http.Request) bool {
	token, ok := BearerToken(r)
	if !b.set || !ok {
		return false
	}
	got := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], b.hash[:]) == 1
}

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header (scheme in any case, surrounding spaces trimmed).
func BearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	token := strings.TrimSpace(h[len(prefix):])
	return token, token != ""
}

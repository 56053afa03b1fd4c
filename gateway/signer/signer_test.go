package signer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/signer"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func openStore(t *testing.T, path string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jwks(t *testing.T, s *signer.Signer) jose.JSONWebKeySet {
	t.Helper()
	w := httptest.NewRecorder()
	s.JWKS().ServeHTTP(w, httptest.NewRequest("GET", "/.well-known/jwks.json", nil))
	body, _ := io.ReadAll(w.Body)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("JWKS: %v: %s", err, body)
	}
	if strings.Contains(string(body), `"d"`) {
		t.Fatal("the JWKS publishes the private key")
	}
	return set
}

func verify(t *testing.T, token string, set jose.JSONWebKeySet, at time.Time) (signer.Claims, error) {
	t.Helper()
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return signer.Claims{}, err
	}
	var c signer.Claims
	if err := parsed.Claims(set, &c); err != nil {
		return c, err
	}
	return c, c.Claims.ValidateWithLeeway(jwt.Expected{Issuer: "https://app.example.com/gatehouse", AnyAudience: jwt.Audience{"https://app.example.com"}, Time: at}, 0)
}

func TestIdentityTokenVerifiesWithTheJWKS(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.db")
	store := openStore(t, path)
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	opts := signer.Options{Org: gateway.DefaultOrg, Store: store, Issuer: "https://app.example.com/gatehouse", Audience: "https://app.example.com", Clock: fixedClock{now}}
	s, err := signer.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	u := &gateway.User{ID: "u-1", UserName: "ada@example.com", Emails: []string{"ada@example.com"}, GivenName: "Ada", FamilyName: "Lovelace",
		Role: "manager", Pools: []string{"default"}, Source: gateway.SourceJIT}
	access := []gateway.Access{{Pool: "default", Role: "debugger", Permissions: []string{"agents.debug", "agents.read"}}}
	token, err := s.Sign(u, []string{"Eng"}, "", access)
	if err != nil {
		t.Fatal(err)
	}
	set := jwks(t, s)
	c, err := verify(t, token, set, now.Add(30*time.Second))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if c.Subject != "u-1" || c.Email != "ada@example.com" || c.Name != "Ada Lovelace" || c.Role != "manager" || len(c.Groups) != 1 || c.ID == "" ||
		len(c.Access) != 1 || c.Access[0].Role != "debugger" || len(c.Access[0].Permissions) != 2 {
		t.Fatalf("claims: %+v", c)
	}
	if _, err := verify(t, token, set, now.Add(61*time.Second)); err == nil {
		t.Fatal("a token past its 60 s lifetime verified")
	}
	// Tampered payload.
	parts := strings.Split(token, ".")
	parts[1] = strings.TrimRight(parts[1], "A") + "B"
	if _, err := verify(t, strings.Join(parts, "."), set, now); err == nil {
		t.Fatal("a tampered token verified")
	}
	// alg=none and HS256 are not accepted.
	for _, header := range []string{`{"alg":"none","typ":"JWT"}`, `{"alg":"HS256","typ":"JWT"}`} {
		forged := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + parts[1] + "."
		if _, err := verify(t, forged, set, now); err == nil {
			t.Fatalf("a token with %s verified", header)
		}
	}
	// The key survives a restart: same kid, old tokens still verify.
	store.Close()
	store2 := openStore(t, path)
	defer store2.Close()
	opts.Store = store2
	s2, err := signer.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if s2.KeyID() != s.KeyID() {
		t.Fatal("a restart made a new signing key")
	}
	if _, err := verify(t, token, jwks(t, s2), now); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	// Another gateway's key does not verify this one's tokens.
	other := openStore(t, filepath.Join(t.TempDir(), "other.db"))
	defer other.Close()
	opts.Store = other
	s3, err := signer.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify(t, token, jwks(t, s3), now); err == nil {
		t.Fatal("another key verified the token")
	}
}

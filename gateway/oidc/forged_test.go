package oidc_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// forger is an OpenID provider that mints whatever ID token a case asks
// for: no real OP issues forged tokens, so this one stands in for an
// attacker who controls the token response (or a broken IdP).
type forger struct {
	srv   *httptest.Server
	key   *rsa.PrivateKey
	mu    sync.Mutex
	nonce string
	mint  func(f *forger, claims map[string]any) string
}

func newForger(t *testing.T) *forger {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &forger{key: key}
	mux := http.NewServeMux()
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	base := f.srv.URL
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": base, "authorization_endpoint": base + "/auth",
			"token_endpoint": base + "/token", "jwks_uri": base + "/keys", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /auth", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f.mu.Lock()
		f.nonce = q.Get("nonce")
		f.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code=c0de&state="+q.Get("state"), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		claims := map[string]any{"iss": base, "sub": "u1", "aud": "gatehouse", "exp": time.Now().Add(time.Minute).Unix(),
			"iat": time.Now().Unix(), "nonce": f.nonce, "email": "root@example.com", "email_verified": true}
		mint := f.mint
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 60, "id_token": mint(f, claims)})
	})
	return f
}

func (f *forger) sign(t *testing.T, alg jose.SignatureAlgorithm, key any, claims map[string]any) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

// TestForgedIDTokens: tokens a real OP would never issue are refused;
// the well-formed one from the same forger is accepted, so the refusals
// are the checks at work and not a broken harness.
func TestForgedIDTokens(t *testing.T) {
	f := newForger(t)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	b64 := base64.RawURLEncoding.EncodeToString
	cases := []struct {
		name   string
		mint   func(f *forger, c map[string]any) string
		accept bool
	}{
		{"well-formed RS256 (control)", func(f *forger, c map[string]any) string { return f.sign(t, jose.RS256, f.key, c) }, true},
		{"alg none", func(f *forger, c map[string]any) string {
			p, _ := json.Marshal(c)
			return b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(p) + "."
		}, false},
		{"HS256 keyed with the client secret", func(f *forger, c map[string]any) string {
			return f.sign(t, jose.HS256, []byte("s3cret-s3cret-s3cret-s3cret-s3cret"), c)
		}, false},
		{"PS256 (not in RS256/ES256)", func(f *forger, c map[string]any) string { return f.sign(t, jose.PS256, f.key, c) }, false},
		{"signed by a key the issuer does not publish", func(f *forger, c map[string]any) string { return f.sign(t, jose.RS256, other, c) }, false},
		{"another audience", func(f *forger, c map[string]any) string {
			c["aud"] = "someone-else"
			return f.sign(t, jose.RS256, f.key, c)
		}, false},
		{"another issuer", func(f *forger, c map[string]any) string {
			c["iss"] = "https://evil.example"
			return f.sign(t, jose.RS256, f.key, c)
		}, false},
		{"no nonce", func(f *forger, c map[string]any) string { delete(c, "nonce"); return f.sign(t, jose.RS256, f.key, c) }, false},
		{"another nonce", func(f *forger, c map[string]any) string {
			c["nonce"] = "replayed"
			return f.sign(t, jose.RS256, f.key, c)
		}, false},
		{"expired", func(f *forger, c map[string]any) string {
			c["exp"] = time.Now().Add(-time.Hour).Unix()
			return f.sign(t, jose.RS256, f.key, c)
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, f.srv.URL)
			f.mu.Lock()
			f.mint = tc.mint
			f.mu.Unlock()
			c := browser()
			// Login, the forger's /auth, and back: the browser stops at
			// the redirect to the callback.
			resp := get(t, c, e.url+"/gatehouse/oidc/login")
			back, err := resp.Location()
			if resp.StatusCode != http.StatusFound || err != nil || back.Path != "/gatehouse/oidc/callback" {
				t.Fatalf("login: %d %v", resp.StatusCode, back)
			}
			resp = get(t, c, back.String())
			if tc.accept {
				if resp.StatusCode != http.StatusFound || e.out.count() != 1 {
					t.Fatalf("control token refused: %d %v", resp.StatusCode, e.out.failures)
				}
				return
			}
			if resp.StatusCode != http.StatusForbidden || e.out.count() != 0 || e.out.lastFailure() != "invalid_token" {
				t.Fatalf("forged token: %d, %d sign-ins, %v", resp.StatusCode, e.out.count(), e.out.failures)
			}
		})
	}
}

// Package signer issues the short-lived identity token the proxy hands the
// app (X-Gatehouse-Assertion): a JWT signed with ES256 by a key the
// gateway generates on first start and keeps in its store, verifiable
// with the JWKS it publishes. Signing uses go-jose.
package signer

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// keyName is the store's name of the current signing key.
const keyName = "identity-token-es256"

// Options configures a Signer.
type Options struct {
	Store    gateway.Store
	Org      gateway.OrgID
	Issuer   string        // iss: the gateway's public URL and path prefix
	Audience string        // aud: the app
	Lifetime time.Duration // exp - iat (default 60s)
	Clock    gateway.Clock
}

// Signer signs identity tokens.
type Signer struct {
	opts   Options
	key    *ecdsa.PrivateKey
	kid    string
	signer jose.Signer
	jwks   []byte
}

// New loads the signing key from the store, generating and storing it on
// first start.
func New(ctx context.Context, opts Options) (*Signer, error) {
	if err := opts.Org.Check(); err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = 60 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = gateway.SystemClock{}
	}
	der, err := opts.Store.Keys().Get(ctx, opts.Org, keyName)
	if err != nil {
		return nil, err
	}
	if der == nil {
		fresh, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("signer: generate key: %w", err)
		}
		if der, err = x509.MarshalPKCS8PrivateKey(fresh); err != nil {
			return nil, fmt.Errorf("signer: encode key: %w", err)
		}
		if der, err = opts.Store.Keys().PutIfAbsent(ctx, opts.Org, keyName, der); err != nil {
			return nil, err
		}
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signer: stored key: %w", err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("signer: the stored key is not an ECDSA P-256 key")
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(pub)
	kid := base64.RawURLEncoding.EncodeToString(sum[:12]) // a thumbprint: stable for the key
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}}})
	if err != nil {
		return nil, err
	}
	return &Signer{opts: opts, key: key, kid: kid, signer: sig, jwks: jwks}, nil
}

// Claims is what the identity token says about the signed-in user.
type Claims struct {
	jwt.Claims
	// Org is the organization the person belongs to: the app must never
	// guess it from the email.
	Org    string   `json:"org"`
	Email  string   `json:"email,omitempty"`
	Name   string   `json:"name,omitempty"`
	Groups []string `json:"groups,omitempty"`
	// GroupsURL, set when the groups were too many for the headers, is
	// where the app reads them (GET with this token as the bearer); the
	// token then carries none.
	GroupsURL string   `json:"groups_url,omitempty"`
	Role      string   `json:"role,omitempty"`
	Pools     []string `json:"pools,omitempty"`
	Source    string   `json:"source,omitempty"`
	// Access is, per pool the person is in, the role they hold there and
	// its permissions: what they may do in the app.
	Access []gateway.Access `json:"access"`
}

// Sign issues a token for u, valid for the configured lifetime; with a
// groupsURL the groups are not in it but there.
func (s *Signer) Sign(u *gateway.User, groups []string, groupsURL string, access []gateway.Access) (string, error) {
	now := s.opts.Clock.Now()
	var jti [12]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	c := Claims{
		Claims: jwt.Claims{
			Issuer: s.opts.Issuer, Subject: u.ID, Audience: jwt.Audience{s.opts.Audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Second)),
			Expiry: jwt.NewNumericDate(now.Add(s.opts.Lifetime)), ID: base64.RawURLEncoding.EncodeToString(jti[:]),
		},
		Org: string(u.Org), Email: u.PrimaryEmail(), Name: displayName(u), Groups: groups, GroupsURL: groupsURL, Role: u.Role, Pools: u.Pools, Source: string(u.Source),
		Access: access,
	}
	if groupsURL != "" {
		c.Groups = nil
	}
	if c.Access == nil {
		c.Access = []gateway.Access{}
	}
	if c.Email == "" {
		c.Email = u.UserName
	}
	return jwt.Signed(s.signer).Claims(c).Serialize()
}

// Verify checks a token this signer issued (signature, issuer, audience,
// lifetime) and returns its claims.
func (s *Signer) Verify(token string) (*Claims, error) {
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, err
	}
	var c Claims
	if err := tok.Claims(&s.key.PublicKey, &c); err != nil {
		return nil, err
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: s.opts.Issuer, AnyAudience: jwt.Audience{s.opts.Audience}, Time: s.opts.Clock.Now()}, 5*time.Second); err != nil {
		return nil, err
	}
	return &c, nil
}

func displayName(u *gateway.User) string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	if u.GivenName != "" || u.FamilyName != "" {
		return u.GivenName + " " + u.FamilyName
	}
	return u.UserName
}

// KeyID is the current key's id (the JWT header's kid).
func (s *Signer) KeyID() string { return s.kid }

// JWKS serves the public keys ({path_prefix}/.well-known/jwks.json).
func (s *Signer) JWKS() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(s.jwks)
	})
}

package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// AssertionTrust lets a SCIM client authenticate by a signed JWT instead
// of a secret (RFC 7523 §2.2, private_key_jwt): the IdP signs an assertion
// with keys it publishes at JWKSURL, and the token endpoint takes it for
// the client when its issuer, subject and audience are these. Entra's
// workload identity federation sends such assertions (iss: the tenant,
// sub: its service principal).
type AssertionTrust struct {
	Issuer   string `json:"issuer"`
	Subject  string `json:"subject"`
	JWKSURL  string `json:"jwks_url"`
	Audience string `json:"audience,omitempty"` // default: the token endpoint's URL
}

// ClientAssertionType is the form's client_assertion_type for a JWT.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// jwksCache keeps the key sets fetched for assertions, by URL.
type jwksCache struct {
	mu    sync.Mutex
	fetch func(ctx context.Context, url string) ([]byte, error)
	sets  map[string]cachedKeys
}

type cachedKeys struct {
	set     jose.JSONWebKeySet
	fetched time.Time
}

// SetJWKSFetcher sets how key sets are fetched for client assertions (an
// HTTPS GET, bounded; without it assertions are refused).
func (s *Service) SetJWKSFetcher(fetch func(ctx context.Context, url string) ([]byte, error)) {
	s.jwks.mu.Lock()
	defer s.jwks.mu.Unlock()
	s.jwks.fetch = fetch
}

// keys returns url's key set, fetched again when older than five minutes
// or when fresh is asked (a key the cached set lacks) and the last fetch
// is at least 30 s old.
func (c *jwksCache) keys(ctx context.Context, url string, now time.Time, fresh bool) (jose.JSONWebKeySet, error) {
	c.mu.Lock()
	cached, ok := c.sets[url]
	fetch := c.fetch
	c.mu.Unlock()
	if ok && now.Sub(cached.fetched) < 5*time.Minute && (!fresh || now.Sub(cached.fetched) < 30*time.Second) {
		return cached.set, nil
	}
	if fetch == nil {
		return jose.JSONWebKeySet{}, gateway.Errorf(gateway.ErrUnavailable, "no key fetcher")
	}
	raw, err := fetch(ctx, url)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("the key set at %s: %w", url, err)
	}
	c.mu.Lock()
	if c.sets == nil {
		c.sets = map[string]cachedKeys{}
	}
	c.sets[url] = cachedKeys{set: set, fetched: now}
	c.mu.Unlock()
	return set, nil
}

// assertionAlgorithms are the signatures an assertion may carry (never
// none, never a MAC: the client holds no secret of ours).
var assertionAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// IssueSCIMAccessTokenByAssertion exchanges a client's signed assertion
// for an access token: the client must trust the assertion's issuer and
// subject, the signature must verify with the issuer's published keys,
// the audience must be the token endpoint (endpoint) or the client's
// configured one, it must not have expired, and its jti is used once.
func (s *Service) IssueSCIMAccessTokenByAssertion(ctx context.Context, org gateway.OrgID, clientID, assertion, endpoint string, ttl time.Duration) (string, time.Duration, error) {
	if clientID == "" || assertion == "" || len(assertion) > 16<<10 {
		return "", 0, ErrInvalidClient
	}
	c, _, err := s.scimClient(ctx, org, clientID)
	if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
		return "", 0, ErrInvalidClient
	}
	if err != nil {
		return "", 0, err
	}
	trust := c.Assertion
	if trust == nil {
		return "", 0, ErrInvalidClient
	}
	tok, err := jwt.ParseSigned(assertion, assertionAlgorithms)
	if err != nil {
		return "", 0, ErrInvalidClient
	}
	now := s.clock.Now()
	var claims jwt.Claims
	verified := false
	for _, fresh := range []bool{false, true} {
		keys, err := s.jwks.keys(ctx, trust.JWKSURL, now, fresh)
		if err != nil {
			return "", 0, gateway.Errorf(gateway.ErrUnavailable, "the client's keys cannot be read right now")
		}
		if tok.Claims(keys, &claims) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return "", 0, ErrInvalidClient
	}
	audience := trust.Audience
	if audience == "" {
		audience = endpoint
	}
	if claims.Expiry == nil || claims.ID == "" ||
		claims.ValidateWithLeeway(jwt.Expected{Issuer: trust.Issuer, Subject: trust.Subject, AnyAudience: jwt.Audience{audience}, Time: now}, time.Minute) != nil ||
		claims.Expiry.Time().Sub(now) > time.Hour {
		return "", 0, ErrInvalidClient
	}
	// Used once: a replayed assertion buys nothing.
	first, err := s.store.Ephemeral().PutIfAbsent(ctx, org, "client-assertion", clientID+" "+claims.ID, nil, claims.Expiry.Time().Add(time.Minute))
	if err != nil {
		return "", 0, err
	}
	if !first {
		return "", 0, ErrInvalidClient
	}
	if ttl <= 0 {
		ttl = defaultAccessTokenTL
	}
	return s.issueAccessToken(ctx, org, c.ID, assertionSecretID, now, now.Add(ttl))
}

// assertionSecretID stands for "authenticated by assertion" in an access
// token: it is valid while the client trusts assertions.
const assertionSecretID = "assertion"

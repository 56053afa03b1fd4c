package provision

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// SCIM clients authenticate an IdP by OAuth 2.0 client credentials (RFC
// 6749 §4.4), beside the long-lived bearer token: Entra's gallery takes
// no other kind. A client has one or more secrets, each with an expiry
// (two at once during a rotation); a secret buys, at the token endpoint,
// a short-lived access token that SCIM accepts as its bearer token for the
// client's organization only.
//
// Access tokens are not stored: "ghs.<org>.<client>.<secret>.<exp>.<mac>",
// the MAC an HMAC-SHA256 under the organization's key (created once, in the
// store). SCIM checks the MAC and expiry, then reads the client's record,
// as it reads the bearer token's: deleting a client, or one of its
// secrets, refuses its tokens at once, on every replica.
const (
	kindSCIMClient       = "scim-client"
	accessTokenPrefix    = "ghs."
	oauthKeyName         = "scim-oauth-hmac"
	defaultSecretTTL     = 365 * 24 * time.Hour
	maxSecretTTL         = 3 * 365 * 24 * time.Hour
	defaultAccessTokenTL = time.Hour
)

// SCIMClient is a client as managers see it: never a secret, only each
// secret's id and expiry.
type SCIMClient struct {
	ID        string         `json:"client_id"`
	Name      string         `json:"name"`
	Created   time.Time      `json:"created"`
	CreatedBy gateway.Actor  `json:"created_by"`
	Secrets   []ClientSecret `json:"secrets"`
	// Assertion, when set, lets the client authenticate by a signed JWT
	// (private_key_jwt) instead of a secret.
	Assertion *AssertionTrust `json:"assertion,omitempty"`
}

// ClientSecret is one secret of a client.
type ClientSecret struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Hash    string    `json:"hash,omitempty"` // hex SHA-256; never shown
}

// scimClientKeys caches each organization's HMAC key (created once, never
// changed).
type scimClientKeys struct{ m sync.Map }

func (c SCIMClient) public() SCIMClient {
	c.Secrets = slices.Clone(c.Secrets)
	for i := range c.Secrets {
		c.Secrets[i].Hash = ""
	}
	return c
}

func randomID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func secretTTL(ttl time.Duration) (time.Duration, error) {
	switch {
	case ttl == 0:
		return defaultSecretTTL, nil
	case ttl < time.Hour || ttl > maxSecretTTL:
		return 0, gateway.Errorf(gateway.ErrInvalid, "a client secret lives between 1h and 3 years (26280h), not %s", ttl)
	}
	return ttl, nil
}

func (s *Service) scimClient(ctx context.Context, org gateway.OrgID, id string) (SCIMClient, uint64, error) {
	rec, err := s.store.Records().Get(ctx, org, kindSCIMClient, id)
	if err != nil {
		return SCIMClient{}, 0, err
	}
	var c SCIMClient
	if err := json.Unmarshal(rec.Value, &c); err != nil {
		return SCIMClient{}, 0, fmt.Errorf("scim client record %q: %w", id, err)
	}
	return c, rec.Version, nil
}

// CreateSCIMClient makes a client with one secret, returned this once;
// or, with trust, one that authenticates by signed assertions and has no
// secret ("" returned).
func (s *Service) CreateSCIMClient(ctx context.Context, org gateway.OrgID, actor gateway.Actor, requestID, name string, ttl time.Duration, trust *AssertionTrust) (SCIMClient, string, error) {
	if n := strings.TrimSpace(name); n == "" || len(n) > 100 {
		return SCIMClient{}, "", gateway.Errorf(gateway.ErrInvalid, "a SCIM client needs a name of 1 to 100 characters (which IdP uses it)")
	}
	now := s.clock.Now()
	c := SCIMClient{ID: randomID("scim_"), Name: name, Created: now, CreatedBy: actor, Secrets: []ClientSecret{}}
	secret := ""
	if trust != nil {
		if err := checkTrust(trust); err != nil {
			return SCIMClient{}, "", err
		}
		c.Assertion = trust
	} else {
		ttl, err := secretTTL(ttl)
		if err != nil {
			return SCIMClient{}, "", err
		}
		secret = NewToken()
		c.Secrets = append(c.Secrets, ClientSecret{ID: randomID("sec_"), Created: now, Expires: now.Add(ttl), Hash: hashToken(secret)})
	}
	raw, _ := json.Marshal(c)
	if _, err := s.store.Records().Put(ctx, org, kindSCIMClient, c.ID, 0, raw,
		s.audited(actor, requestID, "scim_client.create", "scim_client:"+c.ID, nil, c.public())); err != nil {
		return SCIMClient{}, "", err
	}
	return c.public(), secret, nil
}

// SCIMClients lists the organization's clients.
func (s *Service) SCIMClients(ctx context.Context, org gateway.OrgID) ([]SCIMClient, error) {
	recs, err := s.store.Records().List(ctx, org, kindSCIMClient)
	if err != nil {
		return nil, err
	}
	out := make([]SCIMClient, 0, len(recs))
	for _, rec := range recs {
		var c SCIMClient
		if err := json.Unmarshal(rec.Value, &c); err != nil {
			return nil, fmt.Errorf("scim client record %q: %w", rec.ID, err)
		}
		out = append(out, c.public())
	}
	return out, nil
}

// AddSCIMClientSecret gives a client one more secret (a rotation: the old
// ones keep working until they expire or are removed).
func (s *Service) AddSCIMClientSecret(ctx context.Context, org gateway.OrgID, actor gateway.Actor, requestID, id string, ttl time.Duration) (ClientSecret, string, error) {
	ttl, err := secretTTL(ttl)
	if err != nil {
		return ClientSecret{}, "", err
	}
	secret := NewToken()
	var added ClientSecret
	err = s.updateSCIMClient(ctx, org, actor, requestID, id, "scim_client.secret_add", func(c *SCIMClient) error {
		if len(c.Secrets) >= 5 {
			return gateway.Errorf(gateway.ErrConflict, "the client has 5 secrets: remove one before adding another")
		}
		now := s.clock.Now()
		added = ClientSecret{ID: randomID("sec_"), Created: now, Expires: now.Add(ttl), Hash: hashToken(secret)}
		c.Secrets = append(c.Secrets, added)
		return nil
	})
	added.Hash = ""
	return added, secret, err
}

// RemoveSCIMClientSecret removes one secret: it buys no token from now on,
// and the tokens it bought are refused.
func (s *Service) RemoveSCIMClientSecret(ctx context.Context, org gateway.OrgID, actor gateway.Actor, requestID, id, secretID string) error {
	return s.updateSCIMClient(ctx, org, actor, requestID, id, "scim_client.secret_remove", func(c *SCIMClient) error {
		i := slices.IndexFunc(c.Secrets, func(sc ClientSecret) bool { return sc.ID == secretID })
		if i < 0 {
			return gateway.Errorf(gateway.ErrNotFound, "the client has no secret %q", secretID)
		}
		c.Secrets = slices.Delete(c.Secrets, i, i+1)
		return nil
	})
}

func (s *Service) updateSCIMClient(ctx context.Context, org gateway.OrgID, actor gateway.Actor, requestID, id, action string, change func(*SCIMClient) error) error {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		c, version, err := s.scimClient(ctx, org, id)
		if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
			return gateway.Errorf(gateway.ErrNotFound, "there is no SCIM client %q", id)
		}
		if err != nil {
			return err
		}
		before := c.public()
		if err := change(&c); err != nil {
			return err
		}
		raw, _ := json.Marshal(c)
		_, err = s.store.Records().Put(ctx, org, kindSCIMClient, id, version, raw, s.audited(actor, requestID, action, "scim_client:"+id, before, c.public()))
		if gateway.ErrorCodeOf(err) == gateway.ErrPreconditionFailed {
			continue
		}
		return err
	}
	return gateway.Errorf(gateway.ErrConflict, "the SCIM client %q kept changing; try again", id)
}

// DeleteSCIMClient deletes a client: its secrets buy nothing more and its
// tokens are refused at once.
func (s *Service) DeleteSCIMClient(ctx context.Context, org gateway.OrgID, actor gateway.Actor, requestID, id string) error {
	err := s.store.Records().Delete(ctx, org, kindSCIMClient, id, 0,
		s.audited(actor, requestID, "scim_client.delete", "scim_client:"+id, map[string]string{"client_id": id}, nil))
	if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
		return gateway.Errorf(gateway.ErrNotFound, "there is no SCIM client %q", id)
	}
	return err
}

// ErrInvalidClient is the token endpoint's invalid_client (RFC 6749
// §5.2): no such client, or no live secret that matches; which one is
// never said.
var ErrInvalidClient = gateway.Errorf(gateway.ErrForbidden, "client authentication failed")

// IssueSCIMAccessToken exchanges a client's id and secret for an access
// token valid ttl (0: one hour) at the organization's SCIM endpoint.
func (s *Service) IssueSCIMAccessToken(ctx context.Context, org gateway.OrgID, clientID, secret string, ttl time.Duration) (string, time.Duration, error) {
	if ttl <= 0 {
		ttl = defaultAccessTokenTL
	}
	if clientID == "" || secret == "" || len(clientID) > 64 || strings.ContainsAny(clientID, ".") {
		return "", 0, ErrInvalidClient
	}
	c, _, err := s.scimClient(ctx, org, clientID)
	if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
		return "", 0, ErrInvalidClient
	}
	if err != nil {
		return "", 0, err
	}
	now := s.clock.Now()
	h := hashToken(secret)
	var matched *ClientSecret
	for i := range c.Secrets { // every one compared: the time says nothing of which matched
		if equalHash(h, c.Secrets[i].Hash) && now.Before(c.Secrets[i].Expires) {
			matched = &c.Secrets[i]
		}
	}
	if matched == nil {
		return "", 0, ErrInvalidClient
	}
	exp := now.Add(ttl)
	if exp.After(matched.Expires) { // a token outlives no secret
		exp = matched.Expires
	}
	return s.issueAccessToken(ctx, org, c.ID, matched.ID, now, exp)
}

// issueAccessToken makes the access token of a client authenticated by
// secretID (or by assertion), valid until exp.
func (s *Service) issueAccessToken(ctx context.Context, org gateway.OrgID, clientID, secretID string, now, exp time.Time) (string, time.Duration, error) {
	key, err := s.oauthKey(ctx, org)
	if err != nil {
		return "", 0, err
	}
	body := accessTokenPrefix + string(org) + "." + clientID + "." + secretID + "." + strconv.FormatInt(exp.Unix(), 10)
	return body + "." + mac(key, body), exp.Sub(now).Round(time.Second), nil
}

// checkTrust says what is wrong with an assertion trust.
func checkTrust(t *AssertionTrust) error {
	if t.Issuer == "" || t.Subject == "" {
		return gateway.Errorf(gateway.ErrInvalid, "assertion: the issuer and subject of the IdP's assertions are both needed")
	}
	u, err := url.Parse(t.JWKSURL)
	if err != nil || u.Host == "" || u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return gateway.Errorf(gateway.ErrInvalid, "assertion: jwks_url must be the https URL where the IdP publishes its signing keys")
	}
	return nil
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

func mac(key []byte, body string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// oauthKey is the organization's key for access tokens: made once by
// whichever replica asks first, kept in memory after.
func (s *Service) oauthKey(ctx context.Context, org gateway.OrgID) ([]byte, error) {
	if k, ok := s.clientKeys.m.Load(org); ok {
		return k.([]byte), nil
	}
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh)
	key, err := s.store.Keys().PutIfAbsent(ctx, org, oauthKeyName, fresh)
	if err != nil {
		return nil, err
	}
	s.clientKeys.m.Store(org, key)
	return key, nil
}

// checkAccessToken reports whether token is a live access token of one
// of org's clients, bought with a secret it still has.
func (s *Service) checkAccessToken(ctx context.Context, org gateway.OrgID, token string) (bool, error) {
	rest, ok := strings.CutPrefix(token, accessTokenPrefix)
	if !ok {
		return false, nil
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 5 || gateway.OrgID(parts[0]) != org {
		return false, nil
	}
	exp, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil || !s.clock.Now().Before(time.Unix(exp, 0)) {
		return false, nil
	}
	key, err := s.oauthKey(ctx, org)
	if err != nil {
		return false, err
	}
	body := token[:len(token)-len(parts[4])-1]
	if !hmac.Equal([]byte(mac(key, body)), []byte(parts[4])) {
		return false, nil
	}
	c, _, err := s.scimClient(ctx, org, parts[1])
	if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
		return false, nil // the client was deleted
	}
	if err != nil {
		return false, err
	}
	if parts[2] == assertionSecretID {
		return c.Assertion != nil, nil
	}
	return slices.ContainsFunc(c.Secrets, func(sc ClientSecret) bool { return sc.ID == parts[2] }), nil
}

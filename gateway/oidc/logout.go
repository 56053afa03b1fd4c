package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
)

// Logout, both ways (OpenID Connect Back-Channel Logout 1.0 and
// RP-Initiated Logout 1.0):
//
//	POST {prefix}/oidc/backchannel-logout  the OP's logout_token ends the sessions of its sub/sid
//	GET  {prefix}/oidc/logged-out          where the OP sends the browser back after an RP-initiated logout

const (
	backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"
	logoutReplayNS   = "oidc-logout-token"
	// logoutTokenLife bounds how far ahead a logout token may expire and
	// how old (iat) it may be: it is sent the moment the OP decides.
	logoutTokenLife = 10 * time.Minute
	logoutSkew      = time.Minute
	maxLogoutToken  = 16 << 10
)

// logoutClaims is a logout token's payload.
type logoutClaims struct {
	Issuer    string          `json:"iss"`
	Subject   string          `json:"sub"`
	Audience  zoidc.Audience  `json:"aud"`
	IssuedAt  *zoidc.Time     `json:"iat"`
	Expiry    *zoidc.Time     `json:"exp"`
	JWTID     string          `json:"jti"`
	SessionID string          `json:"sid"`
	Events    json.RawMessage `json:"events"`
	Nonce     *json.RawMessage
}

// UnmarshalJSON reads the claims and notes a nonce (which a logout token
// must not carry: it would then be an ID token).
func (c *logoutClaims) UnmarshalJSON(b []byte) error {
	type plain logoutClaims
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	if err := json.Unmarshal(b, (*plain)(c)); err != nil {
		return err
	}
	if n, ok := all["nonce"]; ok {
		c.Nonce = &n
	}
	return nil
}

// verifyLogoutToken checks a logout token as the specification's §2.6
// says: signed by the OP (the algorithms ID tokens may use), iss the
// OP, aud our client id, iat recent and exp ahead (bounded), sub or sid,
// the back-channel logout event, no nonce, and its jti seen once.
func (o *RP) verifyLogoutToken(ctx context.Context, relying rp.RelyingParty, raw string) (*logoutClaims, error) {
	if raw == "" || len(raw) > maxLogoutToken {
		return nil, errors.New("no logout_token, or one too large")
	}
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return nil, fmt.Errorf("not a signed JWT of RS256 or ES256: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("not one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	if !o.logoutKeys.mayTry(kid, time.Now()) {
		return nil, fmt.Errorf("key %q is not the OP's (its keys were fetched less than %v ago)", kid, unknownKeyRetry)
	}
	payload, err := relying.IDTokenVerifier().KeySet.VerifySignature(ctx, jws)
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	o.logoutKeys.verified(kid)
	var c logoutClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	now := time.Now()
	var events map[string]json.RawMessage
	switch {
	case c.Issuer != relying.Issuer():
		return nil, fmt.Errorf("issuer %q is not the OP's", c.Issuer)
	case !slices.Contains([]string(c.Audience), o.opts.ClientID):
		return nil, errors.New("the audience is not this client")
	case c.IssuedAt == nil || c.IssuedAt.AsTime().After(now.Add(logoutSkew)) || now.Sub(c.IssuedAt.AsTime()) > logoutTokenLife:
		return nil, errors.New("iat is missing, in the future or too old")
	case c.Expiry == nil || !c.Expiry.AsTime().Add(logoutSkew).After(now) || c.Expiry.AsTime().Sub(now) > logoutTokenLife:
		return nil, errors.New("exp is missing, past or too far ahead")
	case c.JWTID == "":
		return nil, errors.New("no jti")
	case c.Subject == "" && c.SessionID == "":
		return nil, errors.New("neither sub nor sid")
	case c.Nonce != nil:
		return nil, errors.New("a nonce: this is not a logout token")
	case json.Unmarshal(c.Events, &events) != nil || events[backchannelEvent] == nil || events[backchannelEvent][0] != '{':
		return nil, errors.New("no back-channel logout event")
	}
	first, err := o.opts.Store.Ephemeral().PutIfAbsent(ctx, o.opts.Org, logoutReplayNS, c.Issuer+" "+c.JWTID, nil, c.Expiry.AsTime().Add(logoutSkew))
	if err != nil {
		return nil, errStore
	}
	if !first {
		return nil, fmt.Errorf("jti %s was already used", c.JWTID)
	}
	return &c, nil
}

var errStore = errors.New("the store cannot record the logout token")

// unknownKeyRetry is how often a logout token signed with a key not seen
// yet may make the gateway fetch the OP's keys: the library fetches them
// for every unknown kid, and the endpoint answers anyone.
const unknownKeyRetry = 30 * time.Second

// logoutKeyGuard knows the key ids the OP signed with (ID tokens at
// sign-in, logout tokens), and when a token with another one was last
// tried.
type logoutKeyGuard struct {
	mu    sync.Mutex
	known map[string]bool
	tried time.Time
}

// mayTry reports whether a token signed with kid is looked at: a known
// key always; an unknown one at most every unknownKeyRetry (an OP's
// rotated key verifies at the first try after that).
func (g *logoutKeyGuard) mayTry(kid string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.known[kid] {
		return true
	}
	if now.Sub(g.tried) < unknownKeyRetry {
		return false
	}
	g.tried = now
	return true
}

func (g *logoutKeyGuard) verified(kid string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.known == nil {
		g.known = map[string]bool{}
	}
	if len(g.known) < 64 {
		g.known[kid] = true
	}
}

// backchannelLogout ends the sessions a logout token names. The answer
// is what the specification asks: 200 with no-store, or 400 with an
// OAuth error; a refused token changes nothing.
func (o *RP) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, maxLogoutToken+1024)
	if err := r.ParseForm(); err != nil {
		o.logoutError(w, r, http.StatusBadRequest, "invalid_request", "the body is not a form with a logout_token", err)
		return
	}
	relying, err := o.relyingParty(r.Context())
	if err != nil {
		o.logoutError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "the OP's keys cannot be read right now", err)
		return
	}
	c, err := o.verifyLogoutToken(r.Context(), relying, r.PostForm.Get("logout_token"))
	if errors.Is(err, errStore) {
		o.logoutError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "the logout cannot be recorded right now; send it again", err)
		return
	}
	if err != nil {
		o.opts.Refused("oidc")
		o.logoutError(w, r, http.StatusBadRequest, "invalid_request", "the logout_token is not valid", err)
		return
	}
	if _, err := o.opts.Logout(r.Context(), gateway.IdPLogout{Protocol: "oidc", Issuer: c.Issuer, Subject: c.Subject,
		Session: c.SessionID, RequestID: httpx.RequestID(r.Context())}, received); err != nil {
		o.logoutError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "the sessions cannot be ended right now; send the logout again", err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (o *RP) logoutError(w http.ResponseWriter, r *http.Request, status int, code, description string, err error) {
	o.opts.Logger.WarnContext(r.Context(), "oidc: back-channel logout refused", "error", err)
	httpx.WriteJSON(w, status, "application/json", map[string]string{"error": code, "error_description": description})
}

// SignOutAtIdP sends the browser to the OP's end_session_endpoint (with
// the session's ID token as its hint, and our client id) to sign out
// there too, and back to logged-out; false when the OP has none.
func (o *RP) SignOutAtIdP(w http.ResponseWriter, r *http.Request, se gateway.Session, idToken string) bool {
	relying, err := o.relyingParty(r.Context())
	if err != nil || relying.GetEndSessionEndpoint() == "" {
		return false
	}
	to, err := url.Parse(relying.GetEndSessionEndpoint())
	if err != nil {
		return false
	}
	q := to.Query()
	if idToken != "" {
		q.Set("id_token_hint", idToken)
	}
	q.Set("client_id", o.opts.ClientID)
	q.Set("post_logout_redirect_uri", o.loggedOutURL())
	to.RawQuery = q.Encode()
	http.Redirect(w, r, to.String(), http.StatusSeeOther)
	return true
}

func (o *RP) loggedOutURL() string {
	return o.opts.PublicURL + o.opts.PathPrefix + "/oidc/logged-out"
}

// loggedOut is where the OP sends the browser after signing out there.
func (o *RP) loggedOut(w http.ResponseWriter, r *http.Request) {
	o.opts.SignedOut(w, r, "You are signed out of this application and of your identity provider.")
}

// Package oidc is Gatehouse's OpenID Connect relying party, on
// github.com/zitadel/oidc/v3: authorization code with PKCE (S256), state
// and nonce kept server-side, single-use and bound to the browser by a
// cookie, and the ID token verified (issuer, audience, expiry, RS256 or
// ES256 only, nonce). A verified token becomes a gateway.Identity handed
// to the login funnel.
package oidc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/client"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/login"
)

// Options configures the relying party.
type Options struct {
	Store        gateway.Store
	Org          gateway.OrgID
	PublicURL    string // scheme://host[:port]
	PathPrefix   string
	Issuer       string
	ClientID     string
	ClientSecret string
	// Claim names (default: the preset's; generic: email, given_name,
	// family_name, groups).
	EmailClaim, GivenNameClaim, FamilyNameClaim, GroupsClaim string
	// Preset is the IdP's (its claim names, how its emails are trusted);
	// the zero value is generic.
	Preset     gateway.IdPPreset
	HTTPClient *http.Client
	// Complete continues with a verified identity and the intent the
	// sign-in started with (the login funnel).
	Complete func(w http.ResponseWriter, r *http.Request, id gateway.Identity, in login.Intent)
	// Fail shows a sign-in error page; reason is a fixed word.
	Fail func(w http.ResponseWriter, r *http.Request, status int, reason, message string)
	// The funnel's logout hooks (for the protocol's logout endpoints).
	login.LogoutHooks
	Logger *slog.Logger
}

// RP is the relying party.
type RP struct {
	opts     Options
	redirect string

	mu sync.Mutex
	rp rp.RelyingParty // built at the first sign-in that reaches the issuer

	logoutKeys logoutKeyGuard
}

const (
	requestNS = "oidc-request"
	// stateCookie prefixes one cookie per sign-in in flight, named after
	// its state, so that several tabs signing in at once each complete.
	stateCookie    = httpx.CookiePrefix + "oidc_state_"
	requestTimeout = 10 * time.Minute
)

// New makes the relying party. It does not contact the issuer: an issuer
// that is down at start-up does not stop the gateway; sign-in says so
// until it is back.
func New(opts Options) (*RP, error) {
	if err := opts.Org.Check(); err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	if opts.Preset.Name == "" {
		opts.Preset, _ = gateway.Preset(gateway.PresetGeneric)
	}
	for _, d := range []struct {
		v   *string
		def string
	}{{&opts.EmailClaim, opts.Preset.OIDCEmail}, {&opts.GivenNameClaim, opts.Preset.OIDCGivenName},
		{&opts.FamilyNameClaim, opts.Preset.OIDCFamilyName}, {&opts.GroupsClaim, opts.Preset.OIDCGroups}} {
		if *d.v == "" {
			*d.v = d.def
		}
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	opts.LogoutHooks = opts.LogoutHooks.OrDefaults()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Issuer == "" || opts.ClientID == "" {
		return nil, errors.New("oidc: issuer and client id are required")
	}
	return &RP{opts: opts, redirect: strings.TrimRight(opts.PublicURL, "/") + opts.PathPrefix + "/oidc/callback"}, nil
}

type nonceKey struct{}

// relyingParty discovers the issuer once; a failure is retried at the
// next sign-in.
func (o *RP) relyingParty(ctx context.Context) (rp.RelyingParty, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.rp != nil {
		return o.rp, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	relying, err := rp.NewRelyingPartyOIDC(ctx, o.opts.Issuer, o.opts.ClientID, o.opts.ClientSecret, o.redirect,
		[]string{zoidc.ScopeOpenID, zoidc.ScopeEmail, zoidc.ScopeProfile},
		rp.WithHTTPClient(o.opts.HTTPClient),
		rp.WithVerifierOpts(
			rp.WithSupportedSigningAlgorithms("RS256", "ES256"),
			rp.WithNonce(func(ctx context.Context) string {
				if n, ok := ctx.Value(nonceKey{}).(string); ok && n != "" {
					return n
				}
				return "\x00no nonce expected" // never matches: a token must carry ours
			}),
		))
	if err != nil {
		return nil, err
	}
	o.rp = relying
	o.learnKeyIDs(ctx)
	return relying, nil
}

// learnKeyIDs notes the key ids the OP publishes now, so that its
// logout tokens are looked at before anyone signed in through this
// process (best effort: a failure leaves them to be learnt at sign-in).
func (o *RP) learnKeyIDs(ctx context.Context) {
	disc, err := client.Discover(ctx, o.opts.Issuer, o.opts.HTTPClient)
	if err != nil || disc.JwksURI == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, disc.JwksURI, nil)
	if err != nil {
		return
	}
	resp, err := o.opts.HTTPClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set) != nil {
		return
	}
	for _, k := range set.Keys {
		if k.Use == "" || k.Use == "sig" {
			o.logoutKeys.verified(k.KeyID)
		}
	}
}

// Mount adds the endpoints under {prefix}/oidc.
func (o *RP) Mount(mux *http.ServeMux) {
	p := o.opts.PathPrefix + "/oidc"
	mux.HandleFunc("GET "+p+"/login", o.login)
	mux.HandleFunc("GET "+p+"/callback", o.callback)
	mux.HandleFunc("POST "+p+"/backchannel-logout", o.backchannelLogout)
	mux.HandleFunc("GET "+p+"/logged-out", o.loggedOut)
}

// pending is a sign-in in flight, with what it is for.
type pending struct {
	Verifier string       `json:"verifier"`
	Nonce    string       `json:"nonce"`
	Intent   login.Intent `json:"intent"`
	Return   string       `json:"return,omitempty"` // a sign-in stored before intents were
}

func (p pending) intent() login.Intent {
	if p.Intent.Kind == "" {
		return login.Plain(p.Return)
	}
	return p.Intent
}

// stateCookie prefixes the cookies of sign-ins in flight; over https
// they are __Host- cookies (Path=/, no Domain), which a sibling subdomain
// cannot plant.
func (o *RP) stateCookie() string {
	if o.secure() {
		return "__Host-" + stateCookie
	}
	return stateCookie
}

func (o *RP) stateCookiePath() string {
	if o.secure() {
		return "/"
	}
	return o.opts.PathPrefix + "/oidc"
}

func (o *RP) secure() bool { return strings.HasPrefix(o.opts.PublicURL, "https://") }

// login starts a plain sign-in that returns to ?return.
func (o *RP) login(w http.ResponseWriter, r *http.Request) {
	o.Start(w, r, login.Plain(r.URL.Query().Get("return")))
}

// Start starts a sign-in for in: state, PKCE verifier, nonce and the
// intent are kept server-side (single use, ten minutes), the state bound
// to this browser by a cookie.
func (o *RP) Start(w http.ResponseWriter, r *http.Request, in login.Intent) {
	relying, err := o.relyingParty(r.Context())
	if err != nil {
		o.opts.Logger.WarnContext(r.Context(), "oidc: issuer unreachable", "issuer", o.opts.Issuer, "error", err)
		o.opts.Fail(w, r, http.StatusServiceUnavailable, "idp_unavailable",
			fmt.Sprintf("The identity provider (%s) cannot be reached right now, so sign-in is not possible. Try again in a few minutes; if it persists, an administrator should check sso.oidc.issuer.", o.opts.Issuer))
		return
	}
	state, p := oauth2.GenerateVerifier(), pending{Verifier: oauth2.GenerateVerifier(), Nonce: oauth2.GenerateVerifier(), Intent: in}
	val, _ := json.Marshal(p)
	if _, err := o.opts.Store.Ephemeral().PutIfAbsent(r.Context(), o.opts.Org, requestNS, state, val, time.Now().Add(requestTimeout)); err != nil {
		o.opts.Fail(w, r, http.StatusServiceUnavailable, "store", "The sign-in cannot start right now; try again shortly.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: o.stateCookie() + state, Value: "1", Path: o.stateCookiePath(), MaxAge: int(requestTimeout.Seconds()),
		HttpOnly: true, Secure: o.secure(), SameSite: http.SameSiteLaxMode}) // the IdP's redirect back is a top-level GET
	to := rp.AuthURL(state, relying, rp.WithCodeChallenge(zoidc.NewSHACodeChallenge(p.Verifier)),
		rp.AuthURLOpt(rp.WithURLParam("nonce", p.Nonce)))
	http.Redirect(w, r, to, http.StatusFound)
}

var (
	errorCode  = regexp.MustCompile(`^[a-z_]{1,64}$`)
	validState = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`) // what oauth2.GenerateVerifier makes
)

func (o *RP) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if !validState.MatchString(state) {
		o.refuse(w, r, "invalid_state", errors.New("the answer carries no state of ours"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: o.stateCookie() + state, Path: o.stateCookiePath(), MaxAge: -1, HttpOnly: true, Secure: o.secure()})
	if c, err := r.Cookie(o.stateCookie() + state); err != nil || c.Value != "1" {
		o.refuse(w, r, "invalid_state", errors.New("the answer does not belong to a sign-in started in this browser"))
		return
	}
	raw, err := o.opts.Store.Ephemeral().Take(r.Context(), o.opts.Org, requestNS, state)
	if err != nil || raw == nil {
		o.refuse(w, r, "invalid_state", errors.New("the sign-in was already completed or has expired"))
		return
	}
	var p pending
	if err := json.Unmarshal(raw, &p); err != nil {
		o.refuse(w, r, "invalid_state", err)
		return
	}
	if e := q.Get("error"); e != "" {
		if !errorCode.MatchString(e) {
			e = "an error"
		}
		o.refuse(w, r, "idp_error", fmt.Errorf("the identity provider answered %s", e))
		return
	}
	relying, err := o.relyingParty(r.Context())
	if err != nil {
		o.opts.Fail(w, r, http.StatusServiceUnavailable, "idp_unavailable", "The identity provider cannot be reached right now; try again in a few minutes.")
		return
	}
	ctx := context.WithValue(r.Context(), nonceKey{}, p.Nonce)
	tokens, err := rp.CodeExchange[*zoidc.IDTokenClaims](ctx, q.Get("code"), relying, rp.WithCodeVerifier(p.Verifier))
	if err != nil {
		o.refuse(w, r, "invalid_token", err)
		return
	}
	id, err := o.identity(tokens.IDTokenClaims, tokens.IDToken)
	if err != nil {
		o.refuse(w, r, "no_email", err)
		return
	}
	id.IDToken = tokens.IDToken
	if jws, err := jose.ParseSigned(tokens.IDToken, []jose.SignatureAlgorithm{jose.RS256, jose.ES256}); err == nil && len(jws.Signatures) == 1 {
		o.logoutKeys.verified(jws.Signatures[0].Header.KeyID) // the OP's key: its logout tokens are looked at
	}
	o.opts.Complete(w, r, id, p.intent())
}

func (o *RP) refuse(w http.ResponseWriter, r *http.Request, reason string, err error) {
	o.opts.Logger.WarnContext(r.Context(), "oidc: sign-in refused", "reason", reason, "error", err)
	o.opts.Fail(w, r, http.StatusForbidden, reason,
		"The sign-in was refused ("+reason+"). Start again from the application; if it keeps failing, your administrator can find the details in the gateway's log.")
}

// identity reads the person from the verified ID token's claims (raw is
// the token, to tell a claim absent from one false).
func (o *RP) identity(c *zoidc.IDTokenClaims, raw string) (gateway.Identity, error) {
	claims := map[string]json.RawMessage{}
	if parts := strings.Split(raw, "."); len(parts) == 3 {
		if payload, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			_ = json.Unmarshal(payload, &claims)
		}
	}
	str := func(name string) string {
		var v string
		if json.Unmarshal(claims[name], &v) != nil {
			return ""
		}
		return strings.TrimSpace(v)
	}
	id := gateway.Identity{Protocol: "oidc", Issuer: c.Issuer, Subject: c.Subject, SessionID: c.SessionID,
		Email: str(o.opts.EmailClaim), GivenName: str(o.opts.GivenNameClaim), FamilyName: str(o.opts.FamilyNameClaim),
		Raw: rawClaims(claims)}
	fromFallback := false
	if id.Email == "" && o.opts.Preset.OIDCEmailFallback != "" {
		id.Email, fromFallback = str(o.opts.Preset.OIDCEmailFallback), true
	}
	// How far the address is trusted: email_verified true, or the IdP's
	// verified-domain claim, proves it; false never signs in; absent (or
	// an address from the fallback claim), only at the organization's
	// verified domains.
	var verified, ownsDomain bool
	_, stated := claims["email_verified"]
	if stated {
		verified = bool(c.EmailVerified)
	}
	if name := o.opts.Preset.VerifiedDomainClaim; name != "" {
		var b bool
		if json.Unmarshal(claims[name], &b) == nil && b {
			ownsDomain = true
		} else if str(name) == "1" || strings.EqualFold(str(name), "true") {
			ownsDomain = true
		}
	}
	switch {
	case stated && !verified:
		// The IdP says it did not verify the address: never trusted.
	case fromFallback:
		id.EmailAtVerifiedDomain = true
	case verified || ownsDomain:
		id.EmailVerified = true
	default: // not stated
		id.EmailAtVerifiedDomain = true
	}
	if names, ok := c.Claims["_claim_names"].(map[string]any); ok && names[o.opts.GroupsClaim] != nil {
		// Too many groups for the token (Entra's overage, past 200): the
		// memberships stay as they are (SCIM brings them).
		id.GroupsOverage = true
	} else if gs, ok := c.Claims[o.opts.GroupsClaim].([]any); ok {
		id.Groups = make([]string, 0, len(gs))
		for _, g := range gs {
			if s, ok := g.(string); ok {
				id.Groups = append(id.Groups, s)
			}
		}
	}
	if !strings.Contains(id.Email, "@") {
		return id, fmt.Errorf("no email address in the ID token (claim %q); request the email scope", o.opts.EmailClaim)
	}
	return id, nil
}

// rawClaims are the token's claims as a test sign-in shows them: each as
// strings (a list's items, or the JSON of anything else), bounded.
func rawClaims(claims map[string]json.RawMessage) map[string][]string {
	out := make(map[string][]string, len(claims))
	for name, v := range claims {
		if len(out) >= 64 {
			break
		}
		var s string
		var list []any
		switch {
		case json.Unmarshal(v, &s) == nil:
			out[name] = []string{s}
		case json.Unmarshal(v, &list) == nil:
			for i, item := range list {
				if i >= 50 {
					break
				}
				if s, ok := item.(string); ok {
					out[name] = append(out[name], s)
				} else {
					b, _ := json.Marshal(item)
					out[name] = append(out[name], string(b))
				}
			}
		default:
			out[name] = []string{string(v)}
		}
	}
	return out
}

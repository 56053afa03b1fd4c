// Package session keeps the gateway's own browser sessions: server-side in
// the store, an opaque random token in a cookie (__Host- prefixed,
// Secure, HttpOnly, SameSite=Lax), idle and absolute timeouts, a new token
// at every login, and no session outliving its user's deactivation.
//
// A session belongs to one organization, named in its token
// ("<org>.<random>"; a token without one is the default organization's,
// as before organizations). The name only says where to look: the store
// keeps the hash of the whole token under that organization, so a token
// edited to name another organization is found nowhere.
package session

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
)

// Cookie names. Browsers accept a __Host- cookie only when it is Secure,
// so plain-http development on loopback uses the bare name.
const (
	CookieSecure = "__Host-" + httpx.CookiePrefix + "session"
	CookiePlain  = httpx.CookiePrefix + "session"
)

// Options configures a Manager.
type Options struct {
	Store gateway.Store
	// LegacyOrg is the organization of tokens that name none (issued
	// before sessions carried their organization).
	LegacyOrg  gateway.OrgID
	Idle       time.Duration // ends after this long without a request (default 8h)
	Absolute   time.Duration // ends this long after login whatever the activity (default 24h)
	Secure     bool          // the public URL is https: Secure, __Host- cookie
	TouchEvery time.Duration // activity is written at most this often (default 1m)
	Clock      gateway.Clock
	// CSRFKey keys the anti-CSRF tokens bound to each session (32 random
	// bytes, kept in the store so that tokens survive a restart). Without
	// it no CSRF token is valid.
	CSRFKey []byte
	// CacheTTL is how long Cached may answer from memory (0: never); see
	// cache.
	CacheTTL time.Duration
}

// Manager starts, reads and ends sessions.
type Manager struct {
	opts  Options
	cache cache
}

// New builds a Manager.
func New(opts Options) *Manager {
	if err := opts.LegacyOrg.Check(); err != nil {
		panic("session.New: " + err.Error()) // the wiring names the organization; none is assumed
	}
	if opts.Idle <= 0 {
		opts.Idle = 8 * time.Hour
	}
	if opts.Absolute <= 0 {
		opts.Absolute = 24 * time.Hour
	}
	if opts.TouchEvery <= 0 {
		opts.TouchEvery = time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = gateway.SystemClock{}
	}
	return &Manager{opts: opts}
}

func (m *Manager) cookieName() string {
	if m.opts.Secure {
		return CookieSecure
	}
	return CookiePlain
}

// hash is the store's id of a token: the token itself is never stored.
func hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// tokenOrg is the organization a cookie token names, and false when it
// names none that could exist.
func (m *Manager) tokenOrg(token string) (gateway.OrgID, bool) {
	if token == "" {
		return "", false
	}
	org, _, found := strings.Cut(token, ".")
	if !found {
		return m.opts.LegacyOrg, true
	}
	return gateway.OrgID(org), gateway.OrgID(org).Check() == nil
}

// browserSession is the organization and store id of the browser's
// session token, if it has one.
func (m *Manager) browserSession(r *http.Request) (gateway.OrgID, string, bool) {
	c, err := r.Cookie(m.cookieName())
	if err != nil {
		return "", "", false
	}
	org, ok := m.tokenOrg(c.Value)
	return org, hash(c.Value), ok
}

// endBrowserSession deletes the session the browser's cookie names, if it
// exists: a cookie naming a made-up organization writes nothing there.
func (m *Manager) endBrowserSession(ctx context.Context, r *http.Request) error {
	org, id, ok := m.browserSession(r)
	if !ok {
		return nil
	}
	if _, err := m.opts.Store.Sessions().Get(ctx, org, id); gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
		return nil
	} else if err != nil {
		return err
	}
	m.cache.forget(id)
	return m.opts.Store.Sessions().Delete(ctx, org, id)
}

// Start begins a session in org for a user who just signed in. Any
// session the browser already had ends, in whichever organization (a new
// token at every login: no fixation; a browser is signed in to one
// organization at a time).
func (m *Manager) Start(ctx context.Context, w http.ResponseWriter, r *http.Request, org gateway.OrgID, userID, protocol string) (gateway.Session, error) {
	return m.StartSignIn(ctx, w, r, org, userID, gateway.Identity{Protocol: protocol})
}

// StartSignIn is Start for a sign-in at an IdP: the session keeps who
// the IdP signed in and its session (id.Subject, id.SessionID), which
// the IdP's logout names. A value no store can index (longer than 1 KiB,
// not UTF-8, holding a NUL) is not kept: that session then ends only by
// a logout naming the other, or the person.
func (m *Manager) StartSignIn(ctx context.Context, w http.ResponseWriter, r *http.Request, org gateway.OrgID, userID string, id gateway.Identity) (gateway.Session, error) {
	if err := org.Check(); err != nil {
		return gateway.Session{}, err
	}
	_ = m.endBrowserSession(ctx, r) // the old session may be gone already
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return gateway.Session{}, err
	}
	token := string(org) + "." + base64.RawURLEncoding.EncodeToString(raw[:])
	now := m.opts.Clock.Now()
	se := gateway.Session{ID: hash(token), Org: org, UserID: userID, Protocol: id.Protocol,
		Created: now, LastSeen: now, Expires: now.Add(m.opts.Absolute),
		IdPSubject: IdPValue(id.Subject), IdPSession: IdPValue(id.SessionID)}
	if err := m.opts.Store.Sessions().Create(ctx, se); err != nil {
		return gateway.Session{}, err
	}
	if id.IDToken != "" {
		if _, err := m.opts.Store.Ephemeral().PutIfAbsent(ctx, org, idTokenNS, se.ID, []byte(id.IDToken), se.Expires); err != nil {
			return gateway.Session{}, err
		}
	}
	http.SetCookie(w, &http.Cookie{
		Name: m.cookieName(), Value: token, Path: "/", Expires: se.Expires,
		Secure: m.opts.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	return se, nil
}

// idTokenNS keeps each OIDC session's ID token (its logout's hint).
const idTokenNS = gateway.IDTokenNamespace

// TakeIDToken returns the ID token a session signed in with (once; ""
// when none was kept), for the IdP's logout.
func (m *Manager) TakeIDToken(ctx context.Context, se gateway.Session) string {
	raw, err := m.opts.Store.Ephemeral().Take(ctx, se.Org, idTokenNS, se.ID)
	if err != nil {
		return ""
	}
	return string(raw)
}

// IdPValue is v when a store can keep and index it as an IdP's subject
// or session, and "" otherwise.
func IdPValue(v string) string {
	if len(v) > 1024 || !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
		return ""
	}
	return v
}

// errSignedOut is what every way of not having a valid session looks
// like to the caller; the reason stays in the gateway.
var errSignedOut = gateway.Errorf(gateway.ErrNotFound, "not signed in")

// Current returns the request's session (its Org is the organization the
// person signed in to) and its user. A session past its idle or absolute
// end, or whose user is deactivated or gone, is ended and reported as not
// signed in.
func (m *Manager) Current(ctx context.Context, r *http.Request) (gateway.Session, *gateway.User, error) {
	org, id, ok := m.browserSession(r)
	if !ok {
		return gateway.Session{}, nil, errSignedOut
	}
	sessions := m.opts.Store.Sessions()
	se, err := sessions.Get(ctx, org, id)
	if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
		return se, nil, errSignedOut
	}
	if err != nil {
		return se, nil, err
	}
	now := m.opts.Clock.Now()
	if !now.Before(se.Expires) || now.Sub(se.LastSeen) >= m.opts.Idle {
		_ = sessions.Delete(ctx, org, se.ID)
		return se, nil, errSignedOut
	}
	u, err := m.opts.Store.Users().Get(ctx, org, se.UserID)
	if gateway.ErrorCodeOf(err) == gateway.ErrNotFound || err == nil && !u.Active {
		_, _ = sessions.DeleteUser(ctx, org, se.UserID)
		return se, nil, errSignedOut
	}
	if err != nil {
		return se, nil, err
	}
	if now.Sub(se.LastSeen) >= m.opts.TouchEvery {
		if err := sessions.Touch(ctx, org, se.ID, now); err == nil {
			se.LastSeen = now
		}
	}
	return se, u, nil
}

// End signs the browser out: the session is deleted and the cookie
// cleared.
func (m *Manager) End(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	if err := m.endBrowserSession(ctx, r); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: m.cookieName(), Value: "", Path: "/", MaxAge: -1,
		Secure: m.opts.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return nil
}

// SignedOut reports whether err means the request has no valid session.
func SignedOut(err error) bool { return err == errSignedOut }

// CSRFToken is the anti-CSRF token of a session: an HMAC of the session's
// id, so it needs no storage, differs per session and dies with it. Forms
// and cookie-authenticated API calls carry it; a cross-site page cannot
// read it.
func (m *Manager) CSRFToken(se gateway.Session) string {
	if len(m.opts.CSRFKey) == 0 || se.ID == "" {
		return ""
	}
	mac := hmac.New(sha256.New, m.opts.CSRFKey)
	mac.Write([]byte("gatehouse-csrf\x00" + string(se.Org) + "\x00" + se.ID))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// ValidCSRF reports whether token is the session's anti-CSRF token
// (compared in constant time).
func (m *Manager) ValidCSRF(se gateway.Session, token string) bool {
	want := m.CSRFToken(se)
	return want != "" && token != "" && hmac.Equal([]byte(token), []byte(want))
}

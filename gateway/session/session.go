// Package session keeps the gateway's own browser sessions: server-side in
// the store, an opaque random token in a cookie (__Host- prefixed,
// Secure, HttpOnly, SameSite=Lax), idle and absolute timeouts, a new token
// at every login, and no session outliving its user's deactivation.
package session

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"time"

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
	Store      gateway.Store
	Org        gateway.OrgID
	Idle       time.Duration // ends after this long without a request (default 8h)
	Absolute   time.Duration // ends this long after login whatever the activity (default 24h)
	Secure     bool          // the public URL is https: Secure, __Host- cookie
	TouchEvery time.Duration // activity is written at most this often (default 1m)
	Clock      gateway.Clock
	// CSRFKey keys the anti-CSRF tokens bound to each session (32 random
	// bytes, kept in the store so that tokens survive a restart). Without
	// it no CSRF token is valid.
	CSRFKey []byte
}

// Manager starts, reads and ends sessions.
type Manager struct{ opts Options }

// New builds a Manager.
func New(opts Options) *Manager {
	if err := opts.Org.Check(); err != nil {
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

// Start begins a session for a user who just signed in. Any session the
// browser already had ends (a new token at every login: no fixation).
func (m *Manager) Start(ctx context.Context, w http.ResponseWriter, r *http.Request, userID, protocol string) (gateway.Session, error) {
	if c, err := r.Cookie(m.cookieName()); err == nil && c.Value != "" {
		_ = m.opts.Store.Sessions().Delete(ctx, m.opts.Org, hash(c.Value))
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return gateway.Session{}, err
	}
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	now := m.opts.Clock.Now()
	se := gateway.Session{ID: hash(token), Org: m.opts.Org, UserID: userID, Protocol: protocol,
		Created: now, LastSeen: now, Expires: now.Add(m.opts.Absolute)}
	if err := m.opts.Store.Sessions().Create(ctx, se); err != nil {
		return gateway.Session{}, err
	}
	http.SetCookie(w, &http.Cookie{
		Name: m.cookieName(), Value: token, Path: "/", Expires: se.Expires,
		Secure: m.opts.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	return se, nil
}

// errSignedOut is what every way of not having a valid session looks
// like to the caller; the reason stays in the gateway.
var errSignedOut = gateway.Errorf(gateway.ErrNotFound, "not signed in")

// Current returns the request's session and its user. A session past its
// idle or absolute end, or whose user is deactivated or gone, is ended and
// reported as not signed in.
func (m *Manager) Current(ctx context.Context, r *http.Request) (gateway.Session, *gateway.User, error) {
	c, err := r.Cookie(m.cookieName())
	if err != nil || c.Value == "" {
		return gateway.Session{}, nil, errSignedOut
	}
	sessions := m.opts.Store.Sessions()
	se, err := sessions.Get(ctx, m.opts.Org, hash(c.Value))
	if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
		return se, nil, errSignedOut
	}
	if err != nil {
		return se, nil, err
	}
	now := m.opts.Clock.Now()
	if !now.Before(se.Expires) || now.Sub(se.LastSeen) >= m.opts.Idle {
		_ = sessions.Delete(ctx, m.opts.Org, se.ID)
		return se, nil, errSignedOut
	}
	u, err := m.opts.Store.Users().Get(ctx, m.opts.Org, se.UserID)
	if gateway.ErrorCodeOf(err) == gateway.ErrNotFound || err == nil && !u.Active {
		_, _ = sessions.DeleteUser(ctx, m.opts.Org, se.UserID)
		return se, nil, errSignedOut
	}
	if err != nil {
		return se, nil, err
	}
	if now.Sub(se.LastSeen) >= m.opts.TouchEvery {
		if err := sessions.Touch(ctx, m.opts.Org, se.ID, now); err == nil {
			se.LastSeen = now
		}
	}
	return se, u, nil
}

// End signs the browser out: the session is deleted and the cookie
// cleared.
func (m *Manager) End(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(m.cookieName()); err == nil && c.Value != "" {
		if err := m.opts.Store.Sessions().Delete(ctx, m.opts.Org, hash(c.Value)); err != nil {
			return err
		}
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

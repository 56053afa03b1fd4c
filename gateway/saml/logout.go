package saml

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	crewsaml "github.com/crewjam/saml"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
)

// Single logout (saml-profiles-2.0 §4.4), HTTP-Redirect and HTTP-POST:
//
//	GET|POST {prefix}/saml/slo  a LogoutRequest from the IdP (IdP-initiated: ends the
//	                            sessions of its NameID and SessionIndex, and is answered),
//	                            or the LogoutResponse to ours (SP-initiated)
//
// The SP's metadata lists the endpoint with both bindings.

const (
	logoutReplayNS = "saml-logout-request"
	// logoutCookie holds the id of the LogoutRequest this browser was
	// sent to the IdP with, which the IdP's LogoutResponse must answer.
	logoutCookie  = httpx.CookiePrefix + "saml_logout"
	logoutTimeout = 10 * time.Minute
)

// replayCache keeps each accepted LogoutRequest's id until it would
// expire anyway (the library's ReplayCache), in the organization's store.
type replayCache struct {
	store gateway.Store
	org   gateway.OrgID
	ctx   context.Context
}

func (c replayCache) Consume(id string, expires time.Time) error {
	first, err := c.store.Ephemeral().PutIfAbsent(c.ctx, c.org, logoutReplayNS, id, nil, expires)
	if err != nil {
		return err
	}
	if !first {
		return crewsaml.ErrAssertionReplayed
	}
	return nil
}

// slo takes what the IdP sends to the single logout endpoint.
func (s *SP) slo(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBody)
	if err := r.ParseForm(); err != nil {
		s.sloRefused(w, r, http.StatusBadRequest, errors.New("the message is too large or malformed"))
		return
	}
	switch {
	case r.Form.Has("SAMLRequest"):
		s.logoutRequest(w, r)
	case r.Form.Has("SAMLResponse"):
		s.logoutResponse(w, r)
	default:
		s.sloRefused(w, r, http.StatusBadRequest, errors.New("neither a SAMLRequest nor a SAMLResponse"))
	}
}

// logoutRequest ends the sessions of a LogoutRequest the IdP signed (the
// library checks the signature, destination, issuer, issue instant and
// NotOnOrAfter; its id is accepted once), and answers it by the binding
// it came with: Success, or Responder when the sessions could not be
// ended. A request that is not valid changes nothing and gets an error
// page (it has no trustworthy place to be answered to).
func (s *SP) logoutRequest(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	st := s.cur.Load()
	sp := st.sp // a copy: the replay cache is for this request's context
	sp.ReplayCache = replayCache{store: s.opts.Store, org: s.opts.Org, ctx: r.Context()}
	req, err := sp.ValidateLogoutRequest(r)
	if err != nil {
		var ire *crewsaml.InvalidResponseError
		if errors.As(err, &ire) {
			err = ire.PrivateErr
		}
		s.opts.Refused("saml")
		s.sloRefused(w, r, http.StatusForbidden, err)
		return
	}
	l := gateway.IdPLogout{Protocol: "saml", Issuer: st.idp, RequestID: httpx.RequestID(r.Context())}
	if req.NameID != nil {
		l.Subject = req.NameID.Value
	}
	indexes := req.AllSessionIndexes()
	status := crewsaml.StatusSuccess
	if l.Subject == "" {
		s.opts.Refused("saml")
		status = crewsaml.StatusRequester // a BaseID or nothing: not someone we signed in
	} else if len(indexes) == 0 {
		if _, err := s.opts.Logout(r.Context(), l, received); err != nil {
			status = crewsaml.StatusResponder
		}
	}
	for _, index := range indexes {
		l.Session = index.Value
		if _, err := s.opts.Logout(r.Context(), l, received); err != nil {
			status = crewsaml.StatusResponder
		}
	}
	relay := r.Form.Get("RelayState")
	if r.URL.Query().Has("SAMLRequest") {
		to, err := sp.MakeRedirectLogoutResponseWithStatus(req.ID, relay, crewsaml.Status{StatusCode: crewsaml.StatusCode{Value: status}})
		if err != nil {
			s.sloRefused(w, r, http.StatusInternalServerError, fmt.Errorf("the LogoutResponse: %w", err))
			return
		}
		http.Redirect(w, r, to.String(), http.StatusFound)
		return
	}
	form, err := sp.MakePostLogoutResponseWithStatus(req.ID, relay, crewsaml.Status{StatusCode: crewsaml.StatusCode{Value: status}})
	if err != nil {
		s.sloRefused(w, r, http.StatusInternalServerError, fmt.Errorf("the LogoutResponse: %w", err))
		return
	}
	writeAutoPost(w, form)
}

// writeAutoPost answers with the library's self-posting form (its
// script is inline, so this page's own CSP allows just it).
func writeAutoPost(w http.ResponseWriter, form []byte) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; form-action *; frame-ancestors 'none'")
	_, _ = fmt.Fprintf(w, "<!doctype html><html><head><meta charset=\"utf-8\"><title>Signing out</title></head><body>%s</body></html>", form)
}

// logoutResponse takes the IdP's LogoutResponse to the request this
// browser was sent with. The gateway's session ended before the browser
// left; this only says whether the IdP signed the person out too.
func (s *SP) logoutResponse(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(s.logoutCookieName())
	http.SetCookie(w, &http.Cookie{Name: s.logoutCookieName(), Path: s.requestCookiePath(), MaxAge: -1, HttpOnly: true, Secure: s.secure()})
	if err != nil || c.Value == "" {
		s.sloRefused(w, r, http.StatusBadRequest, errors.New("a LogoutResponse to no logout this browser started"))
		return
	}
	st := s.cur.Load()
	resp, err := st.sp.ParseLogoutResponse(r, []string{c.Value})
	if err != nil {
		var ire *crewsaml.InvalidResponseError
		if errors.As(err, &ire) {
			err = ire.PrivateErr
		}
		s.sloRefused(w, r, http.StatusForbidden, err)
		return
	}
	if resp.Status.StatusCode.Value != crewsaml.StatusSuccess {
		s.opts.Logger.WarnContext(r.Context(), "saml: the IdP did not complete the single logout", "status", resp.Status.StatusCode.Value)
		s.opts.SignedOut(w, r, "You are signed out of this application. Your identity provider could not sign you out everywhere; close the browser to end your session there.")
		return
	}
	s.opts.SignedOut(w, r, "You are signed out of this application and of your identity provider.")
}

func (s *SP) sloRefused(w http.ResponseWriter, r *http.Request, status int, err error) {
	s.opts.Logger.WarnContext(r.Context(), "saml: single logout refused", "error", err)
	s.opts.Fail(w, r, status, "logout_refused",
		"This sign-out message from the identity provider was not accepted, and changed nothing. If you meant to sign out, use the application's sign-out; your administrator can find the details in the gateway's log (reason logout_refused).")
}

func (s *SP) logoutCookieName() string {
	if s.secure() {
		return "__Host-" + logoutCookie
	}
	return logoutCookie
}

// SignOutAtIdP sends the browser to the IdP's single logout service with
// a signed LogoutRequest (HTTP-Redirect) naming the session's NameID and
// SessionIndex; false when the IdP has no such service, or the session
// kept no NameID.
func (s *SP) SignOutAtIdP(w http.ResponseWriter, r *http.Request, se gateway.Session, _ string) bool {
	st := s.cur.Load()
	if se.IdPSubject == "" || st.sp.GetSLOBindingLocation(crewsaml.HTTPRedirectBinding) == "" {
		return false
	}
	var opts []crewsaml.LogoutRequestOption
	if se.IdPSession != "" {
		opts = append(opts, crewsaml.WithSessionIndex(se.IdPSession))
	}
	req, err := st.sp.MakeLogoutRequest(st.sp.GetSLOBindingLocation(crewsaml.HTTPRedirectBinding), se.IdPSubject, opts...)
	if err != nil {
		s.opts.Logger.ErrorContext(r.Context(), "saml: logout request", "error", err)
		return false
	}
	to, err := st.sp.RedirectLogoutRequestURL(req, "")
	if err != nil {
		s.opts.Logger.ErrorContext(r.Context(), "saml: logout request", "error", err)
		return false
	}
	c := &http.Cookie{Name: s.logoutCookieName(), Value: req.ID, Path: s.requestCookiePath(), MaxAge: int(logoutTimeout.Seconds()),
		HttpOnly: true, Secure: s.secure(), SameSite: http.SameSiteLaxMode}
	if s.secure() {
		c.SameSite = http.SameSiteNoneMode // the IdP may answer by a cross-site POST
	}
	http.SetCookie(w, c)
	http.Redirect(w, r, to.String(), http.StatusSeeOther)
	return true
}

package login

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/pages"
)

// Mount adds the pages that start sign-ins for something other than a
// plain sign-in, each recording its intent as it starts:
//
//	GET  {prefix}/invite/{token}         the invitation (a button to sign in, or to accept without SSO)
//	POST {prefix}/invite/{token}/signin  starts the sign-in that accepts it
//	POST {prefix}/invite/{token}         accepts it without SSO (the link proves the email)
//	GET  {prefix}/join                   the self-service page
//	POST {prefix}/join/signin            starts the sign-in that joins
//	POST {prefix}/login/test             a manager's test sign-in (from the console)
//
// The sign-ins they start end in an account made or a result recorded, so
// they start with a POST from this site (a button on these pages), never
// from a link another site could make a signed-in browser follow.
//
//	GET  {prefix}/login/test/done        shows its result to that manager
//	GET  {prefix}/logout                 asks to confirm the sign-out
//	POST {prefix}/logout                 signs out (from this site, with the CSRF token)
func (f *Funnel) Mount(mux *http.ServeMux) {
	p := f.opts.PathPrefix
	crossSite := http.NewCrossOriginProtection()
	mux.HandleFunc("GET "+p+"/invite/{token}", f.invitation)
	mux.Handle("POST "+p+"/invite/{token}/signin", crossSite.Handler(http.HandlerFunc(f.invitationSignIn)))
	// Links from before the sign-in was started here.
	mux.HandleFunc("GET "+p+"/invite/{token}/accept", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, p+"/invite/"+url.PathEscape(r.PathValue("token")), http.StatusFound)
	})
	// Without SSO the link proves the email: a click (a POST, so that a
	// mail scanner following links uses nothing up) accepts.
	mux.Handle("POST "+p+"/invite/{token}", crossSite.Handler(http.HandlerFunc(f.acceptWithoutSSO)))
	mux.HandleFunc("GET "+p+"/join", f.join)
	mux.Handle("POST "+p+"/join/signin", crossSite.Handler(http.HandlerFunc(f.joinSignIn)))
	mux.HandleFunc("GET "+p+"/join/complete", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, p+"/join", http.StatusFound)
	})
	mux.Handle("POST "+p+"/login/test", crossSite.Handler(http.HandlerFunc(f.testSignIn)))
	mux.HandleFunc("GET "+p+"/login/test/done", f.collectTestSignIn)
	mux.HandleFunc("GET "+p+"/logout", f.logoutPage)
	mux.HandleFunc("POST "+p+"/logout", f.logout(crossSite))
}

func (f *Funnel) settings(r *http.Request) gateway.IdentitySettings {
	st, _ := f.opts.Service.Current(r.Context(), f.opts.Org)
	return st.IdentitySettings
}

// starter is the sign-in in force, or nil (and a page written) when
// people do not sign in by SSO.
func (f *Funnel) starter(w http.ResponseWriter, r *http.Request) Starter {
	var s Starter
	if f.opts.Starter != nil {
		s = f.opts.Starter()
	}
	if s == nil {
		f.show(w, r, http.StatusServiceUnavailable, "Sign-in is not available", "Single sign-on is not set up on this gateway.",
			"A manager sets the login method to SAML or OIDC with the identity provider's settings.")
	}
	return s
}

func (f *Funnel) invitation(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	inv, err := f.opts.Service.CheckInvitation(r.Context(), f.opts.Org, token)
	if err != nil {
		f.refuse(w, r, "invitation", err)
		return
	}
	if f.settings(r).SSOSignIn() {
		pages.ShowAction(w, pages.Action{Title: "You are invited", Action: f.opts.PathPrefix + "/invite/" + url.PathEscape(token) + "/signin", Post: true,
			Message: "You are invited to this application as " + inv.Email + ". Sign in with your organization's account for that address to accept.",
			Button:  "Sign in to accept"})
		return
	}
	pages.ShowAction(w, pages.Action{Title: "You are invited", Action: f.opts.PathPrefix + "/invite/" + url.PathEscape(token), Post: true,
		Message: "You are invited to this application as " + inv.Email + ".", Button: "Accept the invitation"})
}

// invitationSignIn starts the sign-in that accepts the invitation: the
// token travels with the sign-in in flight, never through the IdP.
func (f *Funnel) invitationSignIn(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if _, err := f.opts.Service.CheckInvitation(r.Context(), f.opts.Org, token); err != nil {
		f.refuse(w, r, "invitation", err)
		return
	}
	if s := f.starter(w, r); s != nil {
		s.Start(w, r, Intent{Kind: AcceptInvitation, Invitation: token})
	}
}

func (f *Funnel) acceptWithoutSSO(w http.ResponseWriter, r *http.Request) {
	if f.settings(r).SSOSignIn() {
		http.Redirect(w, r, f.opts.PathPrefix+"/invite/"+url.PathEscape(r.PathValue("token")), http.StatusSeeOther)
		return
	}
	if err := f.opts.Service.CheckActive(r.Context(), f.opts.Org); err != nil {
		f.refuse(w, r, "invitation", err) // a suspended organization's sign-ins, this one too
		return
	}
	u, err := f.opts.Service.AcceptInvitation(r.Context(), f.opts.Org, r.PathValue("token"), nil)
	if err != nil {
		f.refuse(w, r, "invitation", err)
		return
	}
	if err := f.startSession(r.Context(), w, r, u.ID, "invitation"); err != nil {
		f.refuse(w, r, "invitation", err)
		return
	}
	f.opts.Logger.With("protocol", "invitation").InfoContext(r.Context(), "invitation accepted without SSO", "user", u.ID)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// joinClosed writes why joining is not open, if it is not.
func (f *Funnel) joinClosed(w http.ResponseWriter, r *http.Request) bool {
	st := f.settings(r)
	switch {
	case st.Provisioning.Method != gateway.SourceSelfService:
		f.show(w, r, http.StatusForbidden, "Registration is closed", "Self-service registration is not open in this application.",
			"Ask a manager to add or invite you.")
	case !st.SSOSignIn():
		f.show(w, r, http.StatusServiceUnavailable, "Registration is not available", "Joining needs single sign-on, and none is set up.",
			"A manager sets the login method to SAML or OIDC.")
	default:
		return false
	}
	return true
}

func (f *Funnel) join(w http.ResponseWriter, r *http.Request) {
	if f.joinClosed(w, r) {
		return
	}
	pages.ShowAction(w, pages.Action{Title: "Join", Action: f.opts.PathPrefix + "/join/signin", Post: true, Button: "Sign in to join",
		Message: "People with an address at " + strings.Join(f.settings(r).Provisioning.EmailDomain, " or ") + " can create their account here by signing in with their organization's account."})
}

func (f *Funnel) joinSignIn(w http.ResponseWriter, r *http.Request) {
	if f.joinClosed(w, r) {
		return
	}
	if s := f.starter(w, r); s != nil {
		s.Start(w, r, Intent{Kind: Join})
	}
}

// testSignIn starts a manager's test sign-in: whoever then signs in at
// the IdP, what it sends is shown to this manager, in this session.
func (f *Funnel) testSignIn(w http.ResponseWriter, r *http.Request) {
	se, m, err := f.opts.Sessions.Current(r.Context(), r)
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err == nil && !f.opts.Sessions.ValidCSRF(se, r.PostFormValue("csrf")) {
		f.show(w, r, http.StatusForbidden, "Test sign-in refused", "This form is out of date or was sent from another site.",
			"Start the test again from the console.")
		return
	}
	if err != nil || !m.IsManager() {
		f.show(w, r, http.StatusForbidden, "Test sign-in is for managers", "Only a manager, signed in, can test the sign-in.",
			"Sign in as a manager and start the test from the console.")
		return
	}
	if s := f.starter(w, r); s != nil {
		s.Start(w, r, Intent{Kind: TestSignIn, Manager: m.ID})
	}
}

// LoginPage starts a plain sign-in at start (the protocol's own entry),
// keeping the page asked for. While self-service is open it shows the
// sign-in page first, with the SSO button and the join link; otherwise it
// goes straight to the IdP (one click fewer for everyone with an account).
func (f *Funnel) LoginPage(start, method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		target := start + "?return=" + url.QueryEscape(httpx.SafeReturn(r.URL.Query().Get("return")))
		st := f.settings(r)
		if st.Provisioning.Method != gateway.SourceSelfService {
			http.Redirect(w, r, target, http.StatusFound)
			return
		}
		pages.ShowLogin(w, pages.Login{Start: target, Method: method, Domains: strings.Join(st.Provisioning.EmailDomain, " or "),
			Join: f.opts.PathPrefix + "/join"})
	}
}

// logoutPage asks for confirmation: a link (or a cross-site page) cannot
// end a session by itself, only the form this page posts with the
// session's CSRF token.
func (f *Funnel) logoutPage(w http.ResponseWriter, r *http.Request) {
	se, _, err := f.opts.Sessions.Current(r.Context(), r)
	if err != nil {
		f.show(w, r, http.StatusOK, "Signed out", "You are not signed in to this application.", "")
		return
	}
	pages.ShowLogout(w, http.StatusOK, pages.Logout{Action: f.opts.PathPrefix + "/logout", CSRF: f.opts.Sessions.CSRFToken(se)})
}

// logout ends the session when the sign-out comes from this site (the
// browser says so, and the form carries the session's CSRF token).
func (f *Funnel) logout(crossSite *http.CrossOriginProtection) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		se, _, err := f.opts.Sessions.Current(r.Context(), r)
		if err != nil {
			f.show(w, r, http.StatusOK, "Signed out", "You are not signed in to this application.", "")
			return
		}
		again := pages.Logout{Action: f.opts.PathPrefix + "/logout", CSRF: f.opts.Sessions.CSRFToken(se)}
		if crossSite.Check(r) != nil {
			again.Notice = "Another site asked to sign you out; you are still signed in."
			pages.ShowLogout(w, http.StatusForbidden, again)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
		if !f.opts.Sessions.ValidCSRF(se, r.PostFormValue("csrf")) {
			again.Notice = "This sign-out did not come from the gateway's own page; you are still signed in."
			pages.ShowLogout(w, http.StatusForbidden, again)
			return
		}
		log := f.opts.Logger
		if err := f.opts.Sessions.End(r.Context(), w, r); err != nil {
			log.ErrorContext(r.Context(), "sign-out: the session could not be deleted", "error", err)
		}
		log.InfoContext(r.Context(), "signed out", "user", se.UserID)
		f.show(w, r, http.StatusOK, "Signed out", "You are signed out of this application.", "")
	}
}

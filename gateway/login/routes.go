package login

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/pages"
)

// Mount adds the pages that start sign-ins for something other than a
// plain sign-in, each recording its intent as it starts, for the default
// organization at {prefix} and for every other at {prefix}/o/{org}:
//
//	GET  …/invite/{token}         the invitation (a button to sign in, or to accept without SSO)
//	POST …/invite/{token}/signin  starts the sign-in that accepts it
//	POST …/invite/{token}         accepts it without SSO (the link proves the email)
//	GET  …/join                   the self-service page
//	POST …/join/signin            starts the sign-in that joins
//	POST …/login/test             a manager's test sign-in (from the console)
//
// The sign-ins they start end in an account made or a result recorded, so
// they start with a POST from this site (a button on these pages), never
// from a link another site could make a signed-in browser follow.
//
//	GET  …/login/test/done        shows its result to that manager
//	GET  {prefix}/logout          asks to confirm the sign-out (of whichever organization)
//	POST {prefix}/logout          signs out (from this site, with the CSRF token)
func (f *Funnel) Mount(mux *http.ServeMux) {
	crossSite := http.NewCrossOriginProtection()
	for _, p := range []string{f.opts.PathPrefix, f.opts.PathPrefix + "/o/{org}"} {
		mux.HandleFunc("GET "+p+"/invite/{token}", f.invitation)
		mux.Handle("POST "+p+"/invite/{token}/signin", crossSite.Handler(http.HandlerFunc(f.invitationSignIn)))
		// Links from before the sign-in was started here.
		mux.HandleFunc("GET "+p+"/invite/{token}/accept", func(w http.ResponseWriter, r *http.Request) {
			if org, ok := f.org(w, r); ok {
				http.Redirect(w, r, f.Base(org)+"/invite/"+url.PathEscape(r.PathValue("token")), http.StatusFound)
			}
		})
		// Without SSO the link proves the email: a click (a POST, so that a
		// mail scanner following links uses nothing up) accepts.
		mux.Handle("POST "+p+"/invite/{token}", crossSite.Handler(http.HandlerFunc(f.acceptWithoutSSO)))
		mux.HandleFunc("GET "+p+"/join", f.join)
		mux.Handle("POST "+p+"/join/signin", crossSite.Handler(http.HandlerFunc(f.joinSignIn)))
		mux.HandleFunc("GET "+p+"/join/complete", func(w http.ResponseWriter, r *http.Request) {
			if org, ok := f.org(w, r); ok {
				http.Redirect(w, r, f.Base(org)+"/join", http.StatusFound)
			}
		})
		mux.Handle("POST "+p+"/login/test", crossSite.Handler(http.HandlerFunc(f.testSignIn)))
		mux.HandleFunc("GET "+p+"/login/test/done", f.collectTestSignIn)
	}
	p := f.opts.PathPrefix
	mux.HandleFunc("GET "+p+"/logout", f.logoutPage)
	mux.HandleFunc("POST "+p+"/logout", f.logout(crossSite))
}

// OrgOf is the organization a page's path names ({prefix}/o/{org}/…;
// the unprefixed organization without one): an ErrNotFound or ErrInvalid
// error when it names none that exists.
func (f *Funnel) OrgOf(r *http.Request) (gateway.OrgID, error) {
	named := r.PathValue("org")
	if named == "" {
		return f.opts.UnprefixedOrg, nil
	}
	org := gateway.OrgID(named)
	return org, f.opts.Service.CheckOrg(r.Context(), org)
}

// org is OrgOf, or false with a page written when the path names no
// organization that exists.
func (f *Funnel) org(w http.ResponseWriter, r *http.Request) (gateway.OrgID, bool) {
	org, err := f.OrgOf(r)
	if err != nil {
		if code := gateway.ErrorCodeOf(err); code == gateway.ErrNotFound || code == gateway.ErrInvalid {
			f.show(w, r, http.StatusNotFound, "No such organization", "This link names an organization the application does not have.",
				"Check the link, or ask your administrator for your organization's sign-in link.")
			return "", false
		}
		f.refuse(w, r, "org", err)
		return "", false
	}
	return org, true
}

func (f *Funnel) settings(r *http.Request, org gateway.OrgID) gateway.IdentitySettings {
	st, _ := f.opts.Service.Current(r.Context(), org)
	return st.IdentitySettings
}

// starter is the organization's sign-in in force, or nil (and a page
// written) when its people do not sign in by SSO.
func (f *Funnel) starter(w http.ResponseWriter, r *http.Request, org gateway.OrgID) Starter {
	s, err := f.opts.Starter(r.Context(), org)
	if err != nil {
		f.opts.Logger.ErrorContext(r.Context(), "sign-in: the organization's sign-in could not be loaded", "org", string(org), "error", err)
		f.show(w, r, http.StatusServiceUnavailable, "Sign-in is not available", "Single sign-on cannot be started right now.", "Try again in a moment.")
		return nil
	}
	if s == nil {
		f.show(w, r, http.StatusServiceUnavailable, "Sign-in is not available", "Single sign-on is not set up for this organization.",
			"A manager sets the login method to SAML or OIDC with the identity provider's settings.")
	}
	return s
}

func (f *Funnel) invitation(w http.ResponseWriter, r *http.Request) {
	org, ok := f.org(w, r)
	if !ok {
		return
	}
	token := r.PathValue("token")
	inv, err := f.opts.Service.CheckInvitation(r.Context(), org, token)
	if err != nil {
		f.refuse(w, r, "invitation", err)
		return
	}
	link := f.Base(org) + "/invite/" + url.PathEscape(token)
	if f.settings(r, org).SSOSignIn() {
		pages.ShowAction(w, pages.Action{Title: "You are invited", Action: link + "/signin", Post: true,
			Message: "You are invited to this application as " + inv.Email + ". Sign in with your organization's account for that address to accept.",
			Button:  "Sign in to accept"})
		return
	}
	pages.ShowAction(w, pages.Action{Title: "You are invited", Action: link, Post: true,
		Message: "You are invited to this application as " + inv.Email + ".", Button: "Accept the invitation"})
}

// invitationSignIn starts the sign-in that accepts the invitation: the
// token travels with the sign-in in flight, never through the IdP.
func (f *Funnel) invitationSignIn(w http.ResponseWriter, r *http.Request) {
	org, ok := f.org(w, r)
	if !ok {
		return
	}
	token := r.PathValue("token")
	if _, err := f.opts.Service.CheckInvitation(r.Context(), org, token); err != nil {
		f.refuse(w, r, "invitation", err)
		return
	}
	if s := f.starter(w, r, org); s != nil {
		s.Start(w, r, Intent{Kind: AcceptInvitation, Invitation: token})
	}
}

func (f *Funnel) acceptWithoutSSO(w http.ResponseWriter, r *http.Request) {
	org, ok := f.org(w, r)
	if !ok {
		return
	}
	if f.settings(r, org).SSOSignIn() {
		http.Redirect(w, r, f.Base(org)+"/invite/"+url.PathEscape(r.PathValue("token")), http.StatusSeeOther)
		return
	}
	if err := f.opts.Service.CheckActive(r.Context(), org); err != nil {
		f.refuse(w, r, "invitation", err) // a suspended organization's sign-ins, this one too
		return
	}
	u, err := f.opts.Service.AcceptInvitation(r.Context(), org, r.PathValue("token"), nil)
	if err != nil {
		f.refuse(w, r, "invitation", err)
		return
	}
	if err := f.startSession(r.Context(), w, r, org, u.ID, gateway.Identity{Protocol: "invitation"}); err != nil {
		f.refuse(w, r, "invitation", err)
		return
	}
	f.opts.Logger.With("protocol", "invitation").InfoContext(r.Context(), "invitation accepted without SSO", "org", string(org), "user", u.ID)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// joinClosed writes why joining the organization is not open, if it is
// not.
func (f *Funnel) joinClosed(w http.ResponseWriter, r *http.Request, org gateway.OrgID) bool {
	st := f.settings(r, org)
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
	org, ok := f.org(w, r)
	if !ok || f.joinClosed(w, r, org) {
		return
	}
	pages.ShowAction(w, pages.Action{Title: "Join", Action: f.Base(org) + "/join/signin", Post: true, Button: "Sign in to join",
		Message: "People with an address at " + strings.Join(f.settings(r, org).Provisioning.EmailDomain, " or ") + " can create their account here by signing in with their organization's account."})
}

func (f *Funnel) joinSignIn(w http.ResponseWriter, r *http.Request) {
	org, ok := f.org(w, r)
	if !ok || f.joinClosed(w, r, org) {
		return
	}
	if s := f.starter(w, r, org); s != nil {
		s.Start(w, r, Intent{Kind: Join})
	}
}

// testSignIn starts a manager's test sign-in: whoever then signs in at
// the IdP, what it sends is shown to this manager, in this session. The
// manager is one of the organization whose sign-in is tested.
func (f *Funnel) testSignIn(w http.ResponseWriter, r *http.Request) {
	org, ok := f.org(w, r)
	if !ok {
		return
	}
	se, m, err := f.opts.Sessions.Current(r.Context(), r)
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err == nil && !f.opts.Sessions.ValidCSRF(se, r.PostFormValue("csrf")) {
		f.show(w, r, http.StatusForbidden, "Test sign-in refused", "This form is out of date or was sent from another site.",
			"Start the test again from the console.")
		return
	}
	if err != nil || se.Org != org || !m.IsManager() {
		f.show(w, r, http.StatusForbidden, "Test sign-in is for managers", "Only a manager of this organization, signed in, can test its sign-in.",
			"Sign in as a manager and start the test from the console.")
		return
	}
	if s := f.starter(w, r, org); s != nil {
		s.Start(w, r, Intent{Kind: TestSignIn, Manager: m.ID})
	}
}

// LoginPage starts a plain sign-in in org at start (the protocol's own
// entry), keeping the page asked for. While self-service is open it shows
// the sign-in page first, with the SSO button and the join link;
// otherwise it goes straight to the IdP (one click fewer for everyone
// with an account).
func (f *Funnel) LoginPage(org gateway.OrgID, start, method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		target := start + "?return=" + url.QueryEscape(httpx.SafeReturn(r.URL.Query().Get("return")))
		st := f.settings(r, org)
		if st.Provisioning.Method != gateway.SourceSelfService {
			http.Redirect(w, r, target, http.StatusFound)
			return
		}
		pages.ShowLogin(w, pages.Login{Start: target, Method: method, Domains: strings.Join(st.Provisioning.EmailDomain, " or "),
			Join: f.Base(org) + "/join"})
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
		idToken := f.opts.Sessions.TakeIDToken(r.Context(), se)
		if err := f.opts.Sessions.End(r.Context(), w, r); err != nil {
			log.ErrorContext(r.Context(), "sign-out: the session could not be deleted", "error", err)
		}
		log.InfoContext(r.Context(), "signed out", "user", se.UserID, "protocol", se.Protocol)
		// Then at the IdP, when the sign-in came from one that offers it
		// (the gateway's own session has ended whatever the IdP answers).
		if f.opts.Starter != nil && (se.Protocol == "saml" || se.Protocol == "oidc") {
			if starter, err := f.opts.Starter(r.Context(), se.Org); err == nil && starter != nil {
				if idp, ok := starter.(IdPSignOut); ok && idp.SignOutAtIdP(w, r, se, idToken) {
					return
				}
			}
		}
		f.show(w, r, http.StatusOK, "Signed out", "You are signed out of this application.", "")
	}
}

// Discover is {prefix}/login, where every sign-in that does not know its
// organization starts (the proxy sends people there): ?org= names the
// organization; an email address (login_hint, or typed in the page it
// shows) finds the organization that holds its domain, verified domains
// only (home-realm discovery). The unprefixed organization's sign-in
// (single) is served here, not redirected to: it has no other URL; and
// a gateway with one organization sends everyone to it, as before
// organizations.
func (f *Funnel) Discover(single http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		q := r.URL.Query()
		returnTo := httpx.SafeReturn(q.Get("return"))
		page := pages.Discover{Action: f.opts.PathPrefix + "/login", Return: returnTo}
		go2 := func(org gateway.OrgID) {
			if org == f.opts.UnprefixedOrg {
				single.ServeHTTP(w, r) // its sign-in is at this very URL
				return
			}
			http.Redirect(w, r, f.Base(org)+"/login?return="+url.QueryEscape(returnTo), http.StatusFound)
		}
		if named := q.Get("org"); named != "" {
			org := gateway.OrgID(named)
			switch err := f.opts.Service.CheckOrg(ctx, org); gateway.ErrorCodeOf(err) {
			case "":
				go2(org)
			case gateway.ErrNotFound, gateway.ErrInvalid:
				page.Problem = fmt.Sprintf("The application has no organization called %q. Enter your work email address instead.", named)
				pages.ShowDiscover(w, http.StatusNotFound, page)
			default:
				f.refuse(w, r, "discovery", err)
			}
			return
		}
		if email := strings.TrimSpace(q.Get("login_hint")); email != "" {
			page.Email = email
			org, err := f.opts.Service.OrgForEmail(ctx, email)
			switch {
			case gateway.ErrorCodeOf(err) == gateway.ErrInvalid:
				page.Problem = "That is not an email address. Enter the address you use at work, such as ada@example.com."
				pages.ShowDiscover(w, http.StatusBadRequest, page)
			case err != nil:
				f.refuse(w, r, "discovery", err)
			case org == "":
				page.Problem = fmt.Sprintf("No organization signs in people of %s here. Check the address, or ask your administrator for your organization's sign-in link.",
					email[strings.LastIndexByte(email, '@')+1:])
				pages.ShowDiscover(w, http.StatusNotFound, page)
			default:
				go2(org)
			}
			return
		}
		one, err := f.opts.Service.SingleOrg(ctx)
		switch {
		case err != nil:
			f.refuse(w, r, "discovery", err)
		case one:
			single.ServeHTTP(w, r)
		default:
			pages.ShowDiscover(w, http.StatusOK, page)
		}
	}
}

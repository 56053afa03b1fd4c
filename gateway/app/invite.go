package app

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

// The acceptance and self-service pages: a person proves their email by
// SSO (or, without SSO, an invitation's link proves it) and gets an
// account; the funnel (completeSignIn) does the creating when the sign-in
// comes back to {prefix}/invite/{token}/accept or {prefix}/join/complete.

var actionTemplate = template.Must(template.New("action").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Gatehouse</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1a1a1a}h1{font-size:1.4rem}
a.button,button{display:inline-block;font:inherit;padding:.6rem 1.2rem;border:0;border-radius:.4rem;background:#1d4ed8;color:#fff;text-decoration:none;cursor:pointer}</style>
</head><body><main><h1>{{.Title}}</h1><p>{{.Message}}</p>
{{if .Post}}<form method="post" action="{{.Action}}"><button type="submit">{{.Button}}</button></form>{{else}}<p><a class="button" href="{{.Action}}">{{.Button}}</a></p>{{end}}
</main></body></html>
`))

type actionPage struct {
	Title, Message, Action, Button string
	Post                           bool
}

func showAction(w http.ResponseWriter, p actionPage) {
	noFraming(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer") // the invitation link is a secret
	_ = actionTemplate.Execute(w, p)
}

// ssoSignIn reports whether people sign in through the gateway's SSO.
func (a *App) ssoSignIn() bool {
	st, _ := a.service.Settings(gateway.DefaultOrg)
	return st.SSO.Protocol == gateway.ProtocolSAML || st.SSO.Protocol == gateway.ProtocolOIDC
}

// loginWithReturn starts an SSO sign-in at the protocol's own entry (not
// the login page, which under self-service would ask again).
func (a *App) loginWithReturn(returnTo string) string {
	st, _ := a.service.Settings(gateway.DefaultOrg)
	return a.cfg.PathPrefix + "/" + st.SSO.Protocol + "/login?return=" + url.QueryEscape(returnTo)
}

// refusedPage shows a funnel refusal (a *provision.LoginError) or a
// generic failure.
func (a *App) refusedPage(w http.ResponseWriter, r *http.Request, protocol string, err error) {
	var refused *provision.LoginError
	if errors.As(err, &refused) {
		a.metrics.Logins.WithLabelValues(protocol, refused.Reason).Inc()
		a.log.WarnContext(r.Context(), "sign-in refused", "protocol", protocol, "reason", refused.Reason)
		page(w, http.StatusForbidden, "You cannot sign in to this application", refused.Message,
			"If you think you should have access, ask your administrator.")
		return
	}
	a.metrics.Logins.WithLabelValues(protocol, "store").Inc()
	a.log.ErrorContext(r.Context(), "sign-in", "protocol", protocol, "error", err)
	page(w, http.StatusServiceUnavailable, "Sign-in failed", "The sign-in could not be completed right now.", "Try again in a moment.")
}

// inviteRoutes mounts the invitation and self-service pages.
func (a *App) inviteRoutes(mux *http.ServeMux) {
	prefix := a.cfg.PathPrefix
	crossSite := http.NewCrossOriginProtection()
	mux.HandleFunc("GET "+prefix+"/invite/{token}", func(w http.ResponseWriter, r *http.Request) {
		token := r.PathValue("token")
		inv, err := a.service.CheckInvitation(r.Context(), gateway.DefaultOrg, token)
		if err != nil {
			a.refusedPage(w, r, "invitation", err)
			return
		}
		if a.ssoSignIn() {
			showAction(w, actionPage{Title: "You are invited", Action: a.loginWithReturn(prefix + "/invite/" + token + "/accept"),
				Message: "You are invited to this application as " + inv.Email + ". Sign in with your organization's account for that address to accept.",
				Button:  "Sign in to accept"})
			return
		}
		showAction(w, actionPage{Title: "You are invited", Action: prefix + "/invite/" + token, Post: true,
			Message: "You are invited to this application as " + inv.Email + ".", Button: "Accept the invitation"})
	})
	mux.HandleFunc("GET "+prefix+"/invite/{token}/accept", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, prefix+"/invite/"+r.PathValue("token"), http.StatusFound)
	})
	// Without SSO the link proves the email: a click (a POST, so that a
	// mail scanner following links uses nothing up) accepts.
	mux.Handle("POST "+prefix+"/invite/{token}", crossSite.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.ssoSignIn() {
			http.Redirect(w, r, prefix+"/invite/"+r.PathValue("token"), http.StatusSeeOther)
			return
		}
		u, err := a.service.AcceptInvitation(r.Context(), gateway.DefaultOrg, r.PathValue("token"), nil)
		if err != nil {
			a.refusedPage(w, r, "invitation", err)
			return
		}
		if _, err := a.sessions.Start(r.Context(), w, r, u.ID, "invitation"); err != nil {
			a.refusedPage(w, r, "invitation", err)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})))
	mux.HandleFunc("GET "+prefix+"/join", func(w http.ResponseWriter, r *http.Request) {
		st, _ := a.service.Settings(gateway.DefaultOrg)
		switch {
		case st.Provisioning.Method != gateway.SourceSelfService:
			page(w, http.StatusForbidden, "Registration is closed", "Self-service registration is not open in this application.",
				"Ask a manager to add or invite you.")
		case !a.ssoSignIn():
			page(w, http.StatusServiceUnavailable, "Registration is not available", "Joining needs single sign-on, and none is set up.",
				"A manager sets the login method to SAML or OIDC.")
		default:
			showAction(w, actionPage{Title: "Join", Action: a.loginWithReturn(prefix + "/join/complete"), Button: "Sign in to join",
				Message: "People with an address at " + strings.Join(st.Provisioning.EmailDomain, " or ") + " can create their account here by signing in with their organization's account."})
		}
	})
	mux.HandleFunc("GET "+prefix+"/join/complete", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, prefix+"/join", http.StatusFound)
	})
}

// accountFromReturn creates the account a sign-in came back for: an
// invitation's or a self-service one. It reports whether it wrote the
// answer (a refusal), and the page to go to.
func (a *App) accountFromReturn(w http.ResponseWriter, r *http.Request, id gateway.Identity, returnTo string) (string, bool) {
	prefix := a.cfg.PathPrefix
	if rest, ok := strings.CutPrefix(returnTo, prefix+"/invite/"); ok {
		token, tail, _ := strings.Cut(rest, "/")
		if tail == "accept" {
			if _, err := a.service.AcceptInvitation(r.Context(), gateway.DefaultOrg, token, &id); err != nil {
				a.refusedPage(w, r, id.Protocol, err)
				return "", true
			}
			return "/", false
		}
	}
	if returnTo == prefix+"/join/complete" {
		if _, _, err := a.service.Join(r.Context(), gateway.DefaultOrg, id); err != nil {
			a.refusedPage(w, r, id.Protocol, err)
			return "", true
		}
		return "/", false
	}
	return returnTo, false
}

var loginTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Gatehouse</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1a1a1a}h1{font-size:1.4rem}
a.button{display:inline-block;padding:.6rem 1.2rem;border-radius:.4rem;background:#1d4ed8;color:#fff;text-decoration:none}</style>
</head><body><main><h1>Sign in</h1>
<p><a class="button" id="sso" href="{{.Start}}">Sign in with {{.Method}}</a></p>
<p id="join">New here? People with an address at {{.Domains}} can <a href="{{.Join}}">create their account</a>.</p>
</main></body></html>
`))

// loginPage starts a sign-in at start (the protocol's login), keeping the
// page asked for. While the self-service method is active it shows
// Gatehouse's login page first, with the SSO button and the join link;
// otherwise it goes straight to the IdP (one click fewer for everyone
// who has an account).
func (a *App) loginPage(start, method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		target := start + "?return=" + url.QueryEscape(httpx.SafeReturn(r.URL.Query().Get("return")))
		st, _ := a.service.Settings(gateway.DefaultOrg)
		if st.Provisioning.Method != gateway.SourceSelfService {
			http.Redirect(w, r, target, http.StatusFound)
			return
		}
		noFraming(w)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = loginTemplate.Execute(w, struct{ Start, Method, Domains, Join string }{target, method,
			strings.Join(st.Provisioning.EmailDomain, " or "), a.cfg.PathPrefix + "/join"})
	}
}

// Package login is the one funnel every sign-in goes through after its
// identity provider vouched for the person. SAML and OIDC turn a response
// into a verified gateway.Identity and hand it over with the sign-in's
// Intent, recorded when the sign-in started (beside the SAML request id
// or the OIDC state); the funnel does the rest: the policy and JIT
// (through provision), accepting an invitation, joining by self-service,
// a manager's test sign-in, the session and the way back. It also serves
// the pages that start such sign-ins (an invitation, joining, the
// console's test), so no other package infers what a sign-in was for.
package login

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
)

// Kind is what a sign-in is for.
type Kind string

const (
	// SignIn signs a person in and returns to Intent.Return.
	SignIn Kind = "sign_in"
	// AcceptInvitation accepts Intent.Invitation as the signed-in person.
	AcceptInvitation Kind = "accept_invitation"
	// Join creates a self-service account for the signed-in person.
	Join Kind = "join"
	// TestSignIn shows Intent.Manager what the IdP sent, and changes
	// nothing: no user, no session.
	TestSignIn Kind = "test_sign_in"
	// SetupTest shows the IT admin of the setup link Intent.Setup what
	// the IdP sent, and changes nothing: no user, no session.
	SetupTest Kind = "setup_test"
)

// Intent is what a sign-in is for, decided by the page that started it and
// stored with the sign-in in flight: the response from the IdP cannot
// change it, and an unsolicited (IdP-initiated) response is only ever a
// plain SignIn.
type Intent struct {
	Kind       Kind   `json:"kind"`
	Return     string `json:"return,omitempty"`     // SignIn: a same-site path
	Invitation string `json:"invitation,omitempty"` // AcceptInvitation: its token
	Manager    string `json:"manager,omitempty"`    // TestSignIn: the manager's user id
	Setup      string `json:"setup,omitempty"`      // SetupTest: the setup link's id
}

// Plain is an ordinary sign-in that returns to returnTo (made safe: a
// path on this site, "/" otherwise).
func Plain(returnTo string) Intent {
	return Intent{Kind: SignIn, Return: httpx.SafeReturn(returnTo)}
}

// Check says what is missing from an intent.
func (in Intent) Check() error {
	switch in.Kind {
	case SignIn, Join:
		return nil
	case AcceptInvitation:
		if in.Invitation == "" {
			return fmt.Errorf("an invitation sign-in names no invitation")
		}
		return nil
	case TestSignIn:
		if in.Manager == "" {
			return fmt.Errorf("a test sign-in names no manager")
		}
		return nil
	case SetupTest:
		if in.Setup == "" {
			return fmt.Errorf("a setup test sign-in names no setup link")
		}
		return nil
	}
	return fmt.Errorf("unknown sign-in kind %q", in.Kind)
}

// Starter starts a sign-in at the identity provider with an intent (the
// SAML service provider and the OIDC relying party).
type Starter interface {
	Start(w http.ResponseWriter, r *http.Request, in Intent)
}

// IdPSignOut is a sign-in that also signs people out at their IdP
// (RP-initiated logout, SAML single logout): once the gateway's session
// has ended, SignOutAtIdP sends the browser to the IdP and reports
// true, or reports false when this IdP offers no logout.
type IdPSignOut interface {
	SignOutAtIdP(w http.ResponseWriter, r *http.Request, se gateway.Session, idToken string) bool
}

// LogoutHooks are what a protocol's logout endpoints (SAML single logout,
// OIDC back-channel logout) need of the funnel: Logout ends the sessions
// a verified logout names, Refused counts one that was not, SignedOut
// shows that the person is signed out.
type LogoutHooks struct {
	Logout    func(ctx context.Context, l gateway.IdPLogout, received time.Time) (int, error)
	Refused   func(protocol string)
	SignedOut func(w http.ResponseWriter, r *http.Request, message string)
}

// OrDefaults is h with what is unset filled in: an unwired Logout
// answers that nothing was done.
func (h LogoutHooks) OrDefaults() LogoutHooks {
	if h.Logout == nil {
		h.Logout = func(context.Context, gateway.IdPLogout, time.Time) (int, error) {
			return 0, errors.New("logout is not wired")
		}
	}
	if h.Refused == nil {
		h.Refused = func(string) {}
	}
	if h.SignedOut == nil {
		h.SignedOut = func(w http.ResponseWriter, _ *http.Request, message string) { http.Error(w, message, http.StatusOK) }
	}
	return h
}

// LogoutHooks are the funnel's hooks for org's logout endpoints.
func (f *Funnel) LogoutHooks(org gateway.OrgID) LogoutHooks {
	return LogoutHooks{
		Logout: func(ctx context.Context, l gateway.IdPLogout, received time.Time) (int, error) {
			return f.IdPLogout(ctx, org, l, received)
		},
		Refused: f.RefusedLogout, SignedOut: f.SignedOut,
	}
}

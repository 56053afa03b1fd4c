package gateway

import (
	"context"
	"time"
)

// Identity is what an SSO login proved about a person, whichever protocol
// carried it (SAML, OIDC). The login funnel decides from it alone.
type Identity struct {
	Protocol      string // "saml" or "oidc"
	Issuer        string // the IdP
	Subject       string // the IdP's id for the person (NameID, sub)
	Email         string
	EmailVerified bool // false: the IdP says it did not verify the address
	// EmailAtVerifiedDomain: the IdP did not say it verified the address
	// (Entra never does): it is trusted only at one of the organization's
	// verified domains. With EmailVerified false and this false, the IdP
	// said it did not verify it: never trusted.
	EmailAtVerifiedDomain bool
	GivenName             string
	FamilyName            string
	Groups                []string
	// SessionID is the IdP's session the sign-in belongs to (SAML
	// SessionIndex, OIDC sid), which its logout names; "" when it sent
	// none.
	SessionID string
	// SubjectFormat is the SAML NameID's Format (a SAML logout request
	// names the person as the assertion did).
	SubjectFormat string
	// GroupsOverage: the IdP sent a link instead of the groups (a person
	// in too many, Entra's overage); Groups is nil, memberships untouched.
	GroupsOverage bool
	// Raw is what the IdP sent, attribute (or claim) by name, for the
	// test sign-in's page; never logged.
	Raw map[string][]string `json:",omitempty"`
	// IDToken is the OIDC ID token itself, kept with the session as the
	// id_token_hint of its RP-initiated logout (Okta requires one); never
	// shown or logged.
	IDToken string `json:"-"`
}

// Session is a signed-in browser, kept server-side. The browser holds an
// opaque random token; the store keeps only its SHA-256 (ID), so a copy
// of the database cannot be replayed as cookies.
type Session struct {
	ID       string // hex SHA-256 of the cookie token
	Org      OrgID
	UserID   string
	Protocol string
	Created  time.Time
	LastSeen time.Time
	Expires  time.Time // absolute end, whatever the activity
	// IdPSubject and IdPSession are who the IdP signed in (NameID, sub)
	// and its session (SessionIndex, sid): what its logout names. Empty
	// for sessions from before logout, and for values a store cannot
	// keep (see session.Start).
	IdPSubject string
	IdPSession string
}

// SessionStore keeps sessions. Errors are *Error values; Get of an
// unknown id is ErrNotFound.
type SessionStore interface {
	Create(ctx context.Context, s Session) error
	Get(ctx context.Context, org OrgID, id string) (Session, error)
	// Touch records activity (LastSeen).
	Touch(ctx context.Context, org OrgID, id string, at time.Time) error
	Delete(ctx context.Context, org OrgID, id string) error
	// DeleteUser ends every session of a user and says how many.
	DeleteUser(ctx context.Context, org OrgID, userID string) (int, error)
	// DeleteAll ends every session of the org and says how many.
	DeleteAll(ctx context.Context, org OrgID) (int, error)
	// Count is how many sessions are kept (for the active-sessions gauge).
	Count(ctx context.Context, org OrgID) (int, error)
	// Expire deletes sessions past their absolute end or idle since
	// before idleBefore, and says how many.
	Expire(ctx context.Context, org OrgID, now, idleBefore time.Time) (int, error)
	// EndIdP ends the sessions an IdP's logout names: those it signed in
	// as subject, or in its session idpSession, or both when both are
	// given (one of them is); it returns the sessions it ended.
	EndIdP(ctx context.Context, org OrgID, subject, idpSession string) ([]Session, error)
	// ListUser returns a user's sessions (which may include ended ones
	// the sweep has not removed yet).
	ListUser(ctx context.Context, org OrgID, userID string) ([]Session, error)
	// LastLogins returns when each user last signed in (absent: never,
	// or not since the user was created).
	LastLogins(ctx context.Context, org OrgID, userIDs []string) (map[string]time.Time, error)
}

// IdPLogout is an IdP's word that a person's sign-in ended: back-channel
// logout (OIDC), single logout (SAML), Universal Logout (Okta). It names
// the person by the subject the IdP signed in (Subject), or by the email
// address of their account (Email, Universal Logout's email format), and
// may name one of the IdP's sessions (Session).
type IdPLogout struct {
	Protocol  string // oidc, saml, universal
	Issuer    string // who sent it (the audit entry's actor)
	Subject   string
	Session   string
	Email     string
	RequestID string
}

// IDTokenNamespace is where the ephemeral store keeps each OIDC
// session's ID token (the hint of its RP-initiated logout), by session id.
const IDTokenNamespace = "oidc-id-token"

// ConnectionHealth is what the gateway knows of an organization's
// connection to its IdP: the signing certificate's expiry and whether
// its metadata still refreshes.
type ConnectionHealth struct {
	CertificateNotAfter time.Time // zero: unknown (no SAML, or not read yet)
	MetadataRefreshed   time.Time // the last good fetch from the metadata URL (zero: none)
	// MetadataError is why the fetches fail since MetadataFailingSince
	// ("" while they work): the last good metadata is in use.
	MetadataError        string
	MetadataFailingSince time.Time
}

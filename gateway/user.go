package gateway

import "time"

// Source says how a user or group came to exist.
type Source string

const (
	SourceSCIM        Source = "scim"
	SourceJIT         Source = "jit"
	SourceManual      Source = "manual"
	SourceSelfService Source = "self_service"
	// SourceOperator is the gateway's operator (organization events).
	SourceOperator Source = "operator"
	// SourceGateway is the gateway itself (what it noticed: an IdP
	// certificate about to expire).
	SourceGateway Source = "gateway"
)

// User is a provisioned person. The typed fields are the ones the gateway
// indexes, enforces and sends downstream; Attributes keeps the full
// protocol document (SCIM attributes by canonical name, extensions under
// their schema URN) so that an IdP reads back exactly what it wrote.
// Attributes never holds id, meta, schemas or password.
type User struct {
	ID          string    `json:"id"`
	Org         OrgID     `json:"tenant"`
	UserName    string    `json:"userName"`
	ExternalID  string    `json:"externalId,omitempty"`
	Active      bool      `json:"active"`
	GivenName   string    `json:"givenName,omitempty"`
	FamilyName  string    `json:"familyName,omitempty"`
	DisplayName string    `json:"displayName,omitempty"`
	Emails      []string  `json:"emails,omitempty"` // lower-cased, primary first
	Source      Source    `json:"source"`
	Pools       []string  `json:"pools,omitempty"` // pool ids; the app's, never the IdP's
	Role        string    `json:"role,omitempty"`
	Attributes  Document  `json:"attributes"`
	Created     time.Time `json:"created"`
	Modified    time.Time `json:"modified"`
	Version     uint64    `json:"version"`
}

// IsManager reports whether u may use the console and the admin API: an
// active person holding the manager role.
func (u *User) IsManager() bool { return u != nil && u.Active && u.Role == RoleManager }

// PrimaryEmail is the first email, or "".
func (u *User) PrimaryEmail() string {
	if len(u.Emails) == 0 {
		return ""
	}
	return u.Emails[0]
}

// Group is a set of users. Membership is stored as edges beside the group,
// not inside it, so that large groups do not rewrite one huge record.
type Group struct {
	ID          string    `json:"id"`
	Org         OrgID     `json:"tenant"`
	DisplayName string    `json:"displayName"`
	ExternalID  string    `json:"externalId,omitempty"`
	Source      Source    `json:"source"`
	Attributes  Document  `json:"attributes"` // without members
	Created     time.Time `json:"created"`
	Modified    time.Time `json:"modified"`
	Version     uint64    `json:"version"`
}

// Member is one membership edge as seen from a group.
type Member struct {
	UserID  string `json:"value"`
	Display string `json:"display,omitempty"`
}

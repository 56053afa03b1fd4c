package gateway

import "time"

// Op is the kind of a normalized provisioning event.
type Op string

const (
	OpUserCreated         Op = "user.created"
	OpUserUpdated         Op = "user.updated"
	OpUserDeactivated     Op = "user.deactivated"
	OpUserReactivated     Op = "user.reactivated"
	OpUserDeleted         Op = "user.deleted"
	OpGroupCreated        Op = "group.created"
	OpGroupUpdated        Op = "group.updated"
	OpGroupDeleted        Op = "group.deleted"
	OpGroupMembersAdded   Op = "group.members_added"
	OpGroupMembersRemoved Op = "group.members_removed"
	OpInvitationCreated   Op = "invitation.created"
	// OpOrgDeleted is an organization's last event: the operator deleted
	// it, and the gateway erased its data (an app erases its copy).
	OpOrgDeleted Op = "org.deleted"
	// OpPoolUpdated: a pool changed the role it grants its members.
	OpPoolUpdated Op = "pool.updated"
	// OpRoleUpdated: a role was created or its permissions changed.
	OpRoleUpdated Op = "role.updated"
	// OpCertificateExpiring: the organization's IdP signs with a
	// certificate that expires within 90, 30 or 7 days (once per
	// certificate and threshold): past it nobody signs in until the IdP's
	// new certificate is here.
	OpCertificateExpiring Op = "connection.certificate_expiring"
)

// Event is one normalized provisioning change, recorded in the outbox in
// the same transaction as the change itself. ID is stable across
// redeliveries so that adapters can deduplicate; Seq orders events of a
// org and is assigned by the store when the event is written.
type Event struct {
	ID         string    `json:"id"`
	Seq        uint64    `json:"seq"`
	Org        OrgID     `json:"tenant"`
	Op         Op        `json:"op"`
	Source     Source    `json:"source"`
	OccurredAt time.Time `json:"occurredAt"`
	User       *User     `json:"user,omitempty"`
	Group      *Group    `json:"group,omitempty"`
	// Invitation is set on invitation.created (with its link).
	Invitation *Invitation `json:"invitation,omitempty"`
	// Organization is set on org.* events.
	Organization *OrgRef `json:"organization,omitempty"`
	// Pool is set on pool.updated, Role on role.updated.
	Pool *Pool `json:"pool,omitempty"`
	Role *Role `json:"role,omitempty"`
	// Connection is set on connection.* events.
	Connection *Connection `json:"connection,omitempty"`
	MemberIDs  []string    `json:"memberIds,omitempty"`
	Changed    []string    `json:"changed,omitempty"` // attribute names that changed
	RequestID  string      `json:"requestId,omitempty"`
}

// Connection is an organization's connection to its IdP, as a
// connection.* event tells of it.
type Connection struct {
	Protocol string `json:"protocol"` // saml
	IdP      string `json:"idp"`      // the IdP's entity id
	// The signing certificate the warning is about.
	CertificateSubject     string    `json:"certificateSubject"`
	CertificateFingerprint string    `json:"certificateFingerprint"` // SHA-256 of the DER, hex
	CertificateNotAfter    time.Time `json:"certificateNotAfter"`
	DaysLeft               int       `json:"daysLeft"`
	ThresholdDays          int       `json:"thresholdDays"` // 90, 30 or 7
}

// OrgRef names an organization in an event.
type OrgRef struct {
	ID   OrgID  `json:"id"`
	Name string `json:"name"`
}

// Clock tells the time; tests pass a fixed one.
type Clock interface{ Now() time.Time }

// SystemClock is the wall clock in UTC.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now().UTC() }

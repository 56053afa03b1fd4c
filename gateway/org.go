package gateway

import (
	"context"
	"regexp"
	"time"
)

// OrgID names an organization (a customer of the app, with its own IdP,
// SCIM token, provisioning method and managers). Every stored key and
// every call that reads or writes them is scoped by one. It is resolved
// once per request at the edge (the path, the session, the token) and
// passed down explicitly; nothing below the wiring picks one by default,
// and the store refuses an empty one.
type OrgID string

// DefaultOrg is the organization served at the gateway's unprefixed URLs.
// Only the wiring (gateway/app) names it.
const DefaultOrg OrgID = "default"

var orgSlug = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// Check says what is wrong with an organization id: it is a URL-safe slug
// (lower-case letters, digits and inner hyphens, at most 63 characters).
func (o OrgID) Check() error {
	if o == "" {
		return Errorf(ErrInvalid, "no organization: the call names none")
	}
	if !orgSlug.MatchString(string(o)) {
		return Errorf(ErrInvalid, "organization id %q is not a slug (lower-case letters, digits and inner hyphens, at most 63 characters)", string(o))
	}
	return nil
}

func (o OrgID) String() string { return string(o) }

// OperatorScope is where the operator's own changes (organizations) are
// audited: not an organization (an id is a slug, with no '_'), so none
// can read or collide with it.
const OperatorScope OrgID = "_operator"

// Organization is a customer of the app: its own IdP, SCIM token,
// provisioning method and managers live in its scope of the store; the
// registry holds what the operator manages: the name, the email domains
// it owns (each at most one organization's), and whether it is suspended.
type Organization struct {
	ID        OrgID    `json:"id"`
	Name      string   `json:"name"`
	Domains   []Domain `json:"domains,omitempty"`
	Suspended bool     `json:"suspended,omitempty"`
	// DeletedAt is when the operator deleted it: it is gone for everyone,
	// its data is erased, and the registry entry stays only until its
	// outbox (ending with org.deleted) is delivered.
	DeletedAt time.Time `json:"deleted_at,omitzero"`
	Created   time.Time `json:"created"`
	Modified  time.Time `json:"modified"`
	Version   uint64    `json:"version"`
	// UpdatedBy is who wrote this version: the configuration file's
	// changes give way to a person's.
	UpdatedBy Actor `json:"updated_by"`
}

// Domain is an email domain an organization owns; it routes sign-ins
// and binds the self-service link once verified (DNS TXT).
type Domain struct {
	Name       string    `json:"name"` // lower-case
	VerifiedAt time.Time `json:"verified_at,omitzero"`
	// Token is what the domain's DNS must publish to prove the
	// organization holds it (TXT _gatehouse.<name>).
	Token string `json:"verification_token,omitempty"`
}

// OrgStore is the registry of organizations. Domains are unique across
// organizations, compared in lower case. Errors are *Error values:
// ErrConflict (the id, or a domain, is taken), ErrNotFound,
// ErrPreconditionFailed (not at ifVersion). Audit entries are recorded
// in OperatorScope in the same transaction.
type OrgStore interface {
	// Create stores a new organization at Version 1.
	Create(ctx context.Context, o *Organization, audit ...AuditEntry) error
	Get(ctx context.Context, id OrgID) (*Organization, error)
	// List returns up to limit organizations with an id after after ("":
	// from the first), in id order, and how many there are in all.
	List(ctx context.Context, after OrgID, limit int) ([]*Organization, int, error)
	// Replace writes o (stamped ifVersion + 1) over the stored one, if
	// that is still at ifVersion; its domains move with it.
	Replace(ctx context.Context, o *Organization, ifVersion uint64, audit ...AuditEntry) error
	// EraseData deletes everything in the organization's own scope but its
	// outbox (events, consumers' cursors, dead letters), which is
	// delivered before the organization is deleted: users, groups and
	// their indexes, sessions, keys, records (settings, credentials,
	// invitations, pools), ephemeral values, id maps and its audit log.
	// Erasing again is harmless.
	EraseData(ctx context.Context, id OrgID) error
	// Delete removes the organization from the registry, frees its
	// domains, and erases all that is left in its scope (its outbox), in
	// one write.
	Delete(ctx context.Context, id OrgID, ifVersion uint64, audit ...AuditEntry) error
	// ByDomain names the organization holding domain (any case); "" when
	// none does.
	ByDomain(ctx context.Context, domain string) (OrgID, error)
}

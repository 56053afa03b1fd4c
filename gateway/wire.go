package gateway

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"
)

// EventContract names the version of the wire form of events, the
// contract with receivers. A change that could break a receiver gets a new
// version; fields are only ever added within one.
const EventContract = "gatehouse.event.v1"

// WireEvent is an Event as it leaves the process (webhook bodies, REST and
// SQL templates, the events feed). It is its own type so that the domain
// can change without breaking receivers; adapters/event.schema.json
// describes it.
type WireEvent struct {
	Contract  string     `json:"contract"` // EventContract
	ID        string     `json:"id"`       // stable across redeliveries: dedupe on it
	Type      Op         `json:"type"`
	Seq       uint64     `json:"seq"` // order of the org's events
	Org       OrgID      `json:"tenant"`
	Source    Source     `json:"source"` // how the change came in
	Time      time.Time  `json:"time"`
	RequestID string     `json:"requestId,omitempty"`
	User      *WireUser  `json:"user,omitempty"`  // after the change (before, for user.deleted)
	Group     *WireGroup `json:"group,omitempty"` // after the change (before, for group.deleted)
	// Invitation is set on invitation.created: send Link to Email.
	Invitation *WireInvitation `json:"invitation,omitempty"`
	// Organization is set on org.deleted: the organization the event is about.
	Organization *WireOrg `json:"organization,omitempty"`
	// Pool is set on pool.updated: the pool after the change.
	Pool *WirePool `json:"pool,omitempty"`
	// Role is set on role.updated: the role after the change.
	Role *WireRole `json:"role,omitempty"`
	// Connection is set on connection.certificate_expiring.
	Connection *WireConnection `json:"connection,omitempty"`
	MemberIDs  []string        `json:"memberIds,omitempty"` // members added, removed, or of a created or deleted group
	Changed    []string        `json:"changed,omitempty"`   // attributes that changed (user.updated, group.updated)
}

// WireUser is a user as receivers see it.
type WireUser struct {
	ID          string          `json:"id"`
	ExternalID  string          `json:"externalId,omitempty"`
	UserName    string          `json:"userName"`
	Active      bool            `json:"active"`
	GivenName   string          `json:"givenName,omitempty"`
	FamilyName  string          `json:"familyName,omitempty"`
	DisplayName string          `json:"displayName,omitempty"`
	Email       string          `json:"email,omitempty"`  // the primary address
	Emails      []string        `json:"emails,omitempty"` // lower-cased, primary first
	Source      Source          `json:"source"`
	JIT         bool            `json:"jit"`             // created by SSO just-in-time provisioning
	Pool        string          `json:"pool,omitempty"`  // the first of Pools (kept for receivers of the first contract)
	Pools       []string        `json:"pools,omitempty"` // pool ids
	Role        string          `json:"role,omitempty"`
	Created     time.Time       `json:"created"`
	Modified    time.Time       `json:"modified"`
	Version     uint64          `json:"version"`
	Attributes  json.RawMessage `json:"attributes,omitempty"` // the SCIM document, extensions included
}

// WireGroup is a group as receivers see it (members travel as MemberIDs).
type WireGroup struct {
	ID          string          `json:"id"`
	ExternalID  string          `json:"externalId,omitempty"`
	DisplayName string          `json:"displayName"`
	Source      Source          `json:"source"`
	Created     time.Time       `json:"created"`
	Modified    time.Time       `json:"modified"`
	Version     uint64          `json:"version"`
	Attributes  json.RawMessage `json:"attributes,omitempty"`
}

// WirePool is a pool as receivers see it: the role it grants its members
// ("" : the organization's default role).
type WirePool struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

// WireRole is a role as receivers see it.
type WireRole struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
}

// WireConnection is an organization's IdP connection as receivers see
// it: the certificate a warning is about.
type WireConnection struct {
	Protocol    string          `json:"protocol"`
	IdP         string          `json:"idp"`
	Certificate WireCertificate `json:"certificate"`
	DaysLeft    int             `json:"daysLeft"`
	Threshold   int             `json:"thresholdDays"`
}

// WireCertificate is an IdP signing certificate.
type WireCertificate struct {
	Subject     string    `json:"subject"`
	Fingerprint string    `json:"sha256Fingerprint"`
	NotAfter    time.Time `json:"notAfter"`
}

// WireOrg is an organization as receivers see it.
type WireOrg struct {
	ID   OrgID  `json:"id"`
	Name string `json:"name"`
}

// WireInvitation is an invitation as receivers see it.
type WireInvitation struct {
	ID      string    `json:"id"`
	Email   string    `json:"email"`
	Role    string    `json:"role"`
	Pools   []string  `json:"pools"`
	Link    string    `json:"link"` // the single-use acceptance link
	Expires time.Time `json:"expires"`
}

// Wire converts an event to its wire form.
func (e Event) Wire() WireEvent {
	w := WireEvent{
		Contract: EventContract, ID: e.ID, Type: e.Op, Seq: e.Seq, Org: e.Org, Source: e.Source,
		Time: e.OccurredAt.UTC(), RequestID: e.RequestID, MemberIDs: e.MemberIDs, Changed: e.Changed,
	}
	if u := e.User; u != nil {
		w.User = &WireUser{
			ID: u.ID, ExternalID: u.ExternalID, UserName: u.UserName, Active: u.Active,
			GivenName: u.GivenName, FamilyName: u.FamilyName, DisplayName: u.DisplayName,
			Email: u.PrimaryEmail(), Emails: u.Emails, Source: u.Source, JIT: u.Source == SourceJIT,
			Pool: firstOr(u.Pools), Pools: u.Pools, Role: u.Role, Created: u.Created.UTC(), Modified: u.Modified.UTC(), Version: u.Version,
			Attributes: documentJSON(u.Attributes),
		}
	}
	if o := e.Organization; o != nil {
		w.Organization = &WireOrg{ID: o.ID, Name: o.Name}
	}
	if p := e.Pool; p != nil {
		w.Pool = &WirePool{ID: p.ID, Name: p.Name, Role: p.Role}
	}
	if c := e.Connection; c != nil {
		w.Connection = &WireConnection{Protocol: c.Protocol, IdP: c.IdP, DaysLeft: c.DaysLeft, Threshold: c.ThresholdDays,
			Certificate: WireCertificate{Subject: c.CertificateSubject, Fingerprint: c.CertificateFingerprint, NotAfter: c.CertificateNotAfter.UTC()}}
	}
	if r := e.Role; r != nil {
		perms := r.Permissions
		if perms == nil {
			perms = []string{}
		}
		w.Role = &WireRole{Name: r.Name, Permissions: perms}
	}
	if i := e.Invitation; i != nil {
		w.Invitation = &WireInvitation{ID: i.ID, Email: i.Email, Role: i.Role, Pools: i.Pools, Link: i.Link, Expires: i.Expires.UTC()}
	}
	if g := e.Group; g != nil {
		w.Group = &WireGroup{
			ID: g.ID, ExternalID: g.ExternalID, DisplayName: g.DisplayName, Source: g.Source,
			Created: g.Created.UTC(), Modified: g.Modified.UTC(), Version: g.Version,
			Attributes: documentJSON(g.Attributes),
		}
	}
	return w
}

func documentJSON(d Document) json.RawMessage {
	raw, err := d.JSON()
	if err != nil || len(raw) == 0 {
		return nil
	}
	return raw
}

func firstOr(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// Known reports whether o is one of the event types the gateway records
// (every adapter takes every one of them; one that has nothing to do for
// a type acknowledges it).
func (o Op) Known() bool {
	switch o {
	case OpUserCreated, OpUserUpdated, OpUserDeactivated, OpUserReactivated, OpUserDeleted,
		OpGroupCreated, OpGroupUpdated, OpGroupDeleted, OpGroupMembersAdded, OpGroupMembersRemoved, OpOrgDeleted,
		OpPoolUpdated, OpRoleUpdated, OpCertificateExpiring,
		OpInvitationCreated:
		return true
	}
	return false
}

// WireField reports whether path names a field of the wire form of an
// event, the names templates use (user.email, group.displayName,
// invitation.link, seq): the JSON names of WireEvent and of the user,
// group and invitation in it, and any path under their attributes (the
// SCIM document is the IdP's).
func WireField(path string) bool {
	root, rest, nested := strings.Cut(path, ".")
	t := reflect.TypeOf(WireEvent{})
	f, ok := jsonField(t, root)
	if !ok {
		return false
	}
	if !nested {
		return true
	}
	ft := f.Type
	if ft.Kind() == reflect.Pointer {
		ft = ft.Elem()
	}
	if ft.Kind() != reflect.Struct || ft == reflect.TypeOf(time.Time{}) {
		return false
	}
	name, _, deeper := strings.Cut(rest, ".")
	sub, ok := jsonField(ft, name)
	if !ok {
		return false
	}
	return !deeper || sub.Type == reflect.TypeOf(json.RawMessage(nil)) // attributes.<any path>
}

// jsonField finds the field of struct t whose JSON name is name.
func jsonField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name && tag != "" && tag != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

package gateway

import "regexp"

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

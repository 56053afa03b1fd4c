package gateway

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Validate checks the fields every user must have, whoever creates it
// (SCIM, JIT, the admin API): the one place these rules live.
func (u *User) Validate() error {
	if err := checkName("userName", u.UserName); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{
		{"externalId", u.ExternalID}, {"name.givenName", u.GivenName}, {"name.familyName", u.FamilyName}, {"displayName", u.DisplayName},
	} {
		if err := checkText(f.name, f.v); err != nil {
			return err
		}
	}
	for _, e := range u.Emails {
		if err := checkText("emails", e); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the fields every group must have.
func (g *Group) Validate() error {
	if err := checkName("displayName", g.DisplayName); err != nil {
		return err
	}
	return checkText("externalId", g.ExternalID)
}

// checkName: required, not blank, and text.
func checkName(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return Errorf(ErrInvalid, "%s is required and must not be empty or blank", field)
	}
	return checkText(field, v)
}

// checkText refuses invalid UTF-8 and control characters, which no name
// or address has and which would make two different values look alike.
func checkText(field, v string) error {
	if !utf8.ValidString(v) {
		return Errorf(ErrInvalid, "%s is not valid UTF-8", field)
	}
	if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
		return Errorf(ErrInvalid, "%s contains a control character (U+%04X at byte %d)", field, v[i], i)
	}
	return nil
}

// Clone returns a copy of u that shares nothing mutable with it (the
// Document is immutable).
func (u *User) Clone() *User {
	c := *u
	c.Emails = slices.Clone(u.Emails)
	return &c
}

// Clone returns a copy of g.
func (g *Group) Clone() *Group {
	c := *g
	return &c
}

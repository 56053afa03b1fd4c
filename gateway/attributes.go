package gateway

import (
	"slices"
	"strings"
)

// The typed fields of a User are the source of truth for the attributes
// they model (userName, name.givenName, name.familyName, displayName,
// emails, active, externalId); Attributes keeps the rest of the protocol
// document and the detail the typed fields do not hold (the case an email
// was sent in, its type). SyncAttributes writes the typed fields into the
// document before every store write, so a user created without a SCIM
// document (JIT, the admin API) reads back complete, and a change made
// through the typed fields shows in every protocol.

// SyncAttributes brings the document in line with the typed fields.
func (u *User) SyncAttributes() error {
	doc, err := u.Attributes.Map()
	if err != nil {
		return err
	}
	doc["userName"] = u.UserName
	doc["active"] = u.Active
	setOrDelete(doc, "externalId", u.ExternalID)
	setOrDelete(doc, "displayName", u.DisplayName)

	name, _ := doc["name"].(map[string]any)
	if name != nil {
		name = copyMap(name)
	} else {
		name = map[string]any{}
	}
	setOrDelete(name, "givenName", u.GivenName)
	setOrDelete(name, "familyName", u.FamilyName)
	if len(name) > 0 {
		doc["name"] = name
	} else {
		delete(doc, "name")
	}

	if !slices.Equal(EmailsOf(doc), u.Emails) {
		// The typed list changed: rebuild the values from it. A list that
		// still says the same keeps its detail (case, type, display).
		if len(u.Emails) == 0 {
			delete(doc, "emails")
		} else {
			list := make([]any, len(u.Emails))
			for i, e := range u.Emails {
				list[i] = map[string]any{"value": e, "type": "work", "primary": i == 0}
			}
			doc["emails"] = list
		}
	}
	u.Attributes = NewDocument(doc)
	return nil
}

func setOrDelete(m map[string]any, key, v string) {
	if v == "" {
		delete(m, key)
		return
	}
	m[key] = v
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// EmailsOf lists the email addresses of a SCIM document lower-cased and
// without duplicates: the primary one first, then work ones, then the
// rest in order. It is linear in the number of addresses.
func EmailsOf(doc map[string]any) []string {
	list, _ := doc["emails"].([]any)
	var primary, work, rest []string
	for _, e := range list {
		m, _ := e.(map[string]any)
		v, _ := m["value"].(string)
		if v == "" {
			continue
		}
		v = strings.ToLower(v)
		switch t, _ := m["type"].(string); {
		case m["primary"] == true:
			primary = append(primary, v)
		case strings.EqualFold(t, "work"):
			work = append(work, v)
		default:
			rest = append(rest, v)
		}
	}
	out := make([]string, 0, len(primary)+len(work)+len(rest))
	seen := make(map[string]bool, cap(out))
	for _, group := range [][]string{primary, work, rest} {
		for _, v := range group {
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	return out
}

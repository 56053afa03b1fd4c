package provision

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"sort"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// userChanges names what differs between two versions of a user: the typed
// fields by name, and any other attribute of the protocol document by its
// top-level key, sorted.
func userChanges(a, b *gateway.User) []string {
	var out []string
	add := func(name string, differ bool) {
		if differ {
			out = append(out, name)
		}
	}
	add("active", a.Active != b.Active)
	add("userName", a.UserName != b.UserName)
	add("externalId", a.ExternalID != b.ExternalID)
	add("name.givenName", a.GivenName != b.GivenName)
	add("name.familyName", a.FamilyName != b.FamilyName)
	add("displayName", a.DisplayName != b.DisplayName)
	add("emails", !slices.Equal(a.Emails, b.Emails))
	add("pools", !slices.Equal(a.Pools, b.Pools))
	add("access", !slices.Equal(a.Pools, b.Pools)) // what they may do follows their pools
	add("role", a.Role != b.Role)
	// Document keys already reported through a typed field are skipped;
	// "name" is reported only for parts without a typed field (formatted…).
	covered := map[string]bool{"active": true, "userName": true, "externalId": true, "displayName": true, "emails": true}
	covered["name"] = a.GivenName != b.GivenName || a.FamilyName != b.FamilyName
	for _, k := range attributeChanges(a.Attributes, b.Attributes) {
		if !covered[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func groupChanges(a, b *gateway.Group) []string {
	var out []string
	if a.DisplayName != b.DisplayName {
		out = append(out, "displayName")
	}
	if a.ExternalID != b.ExternalID {
		out = append(out, "externalId")
	}
	for _, k := range attributeChanges(a.Attributes, b.Attributes) {
		if k != "displayName" && k != "externalId" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// attributeChanges returns the top-level keys whose values differ. Values
// are compared by their JSON encoding: a stored document decodes numbers
// as json.Number where a fresh one holds int64, yet they are the same.
func attributeChanges(da, db gateway.Document) []string {
	a, errA := da.Map()
	b, errB := db.Map()
	if errA != nil || errB != nil {
		return []string{"attributes"}
	}
	var out []string
	for k, av := range a {
		if bv, ok := b[k]; !ok || !sameJSON(av, bv) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

func sameJSON(a, b any) bool {
	if reflect.DeepEqual(a, b) {
		return true // the common case, without encoding anything
	}
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

func dedupeMembers(ms []gateway.Member) []gateway.Member {
	seen := make(map[string]bool, len(ms))
	out := ms[:0:0]
	for _, m := range ms {
		if m.UserID == "" || seen[m.UserID] {
			continue
		}
		seen[m.UserID] = true
		out = append(out, m)
	}
	return out
}

func memberIDs(ms []gateway.Member) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.UserID
	}
	return ids
}

// memberDelta is how a member list changes.
type memberDelta struct {
	added, removed []string         // user ids, sorted
	put            []gateway.Member // edges to write: new members and new displays
}

// diffMembers compares two member lists in linear time.
func diffMembers(old, cur []gateway.Member) memberDelta {
	var d memberDelta
	before := make(map[string]string, len(old))
	for _, m := range old {
		before[m.UserID] = m.Display
	}
	after := make(map[string]bool, len(cur))
	for _, m := range cur {
		after[m.UserID] = true
		display, had := before[m.UserID]
		if !had {
			d.added = append(d.added, m.UserID)
		}
		if !had || display != m.Display {
			d.put = append(d.put, m)
		}
	}
	for _, m := range old {
		if !after[m.UserID] {
			d.removed = append(d.removed, m.UserID)
		}
	}
	sort.Strings(d.added)
	sort.Strings(d.removed)
	return d
}

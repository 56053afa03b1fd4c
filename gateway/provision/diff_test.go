package provision

import (
	"slices"
	"testing"

	"github.com/gatehouse-id/gatehouse/gateway"
)

func TestUserChanges(t *testing.T) {
	base := func() *gateway.User {
		return &gateway.User{UserName: "a@x", Active: true, GivenName: "A", FamilyName: "B", Emails: []string{"a@x"},
			Attributes: gateway.NewDocument(map[string]any{"userName": "a@x", "active": true, "name": map[string]any{"givenName": "A", "familyName": "B"}, "title": "Eng"})}
	}
	// set changes one document key, keeping the document immutable.
	set := func(u *gateway.User, k string, v any) {
		m, _ := u.Attributes.Map()
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		u.Attributes = gateway.NewDocument(m)
	}
	cases := []struct {
		name   string
		change func(u *gateway.User)
		want   []string
	}{
		{"nothing", func(*gateway.User) {}, nil},
		{"deactivate", func(u *gateway.User) { u.Active = false; set(u, "active", false) }, []string{"active"}},
		{"rename", func(u *gateway.User) { u.UserName = "b@x"; set(u, "userName", "b@x") }, []string{"userName"}},
		{"given name via document", func(u *gateway.User) {
			u.GivenName = "Z"
			set(u, "name", map[string]any{"givenName": "Z", "familyName": "B"})
		}, []string{"name.givenName"}},
		{"formatted name only", func(u *gateway.User) {
			set(u, "name", map[string]any{"givenName": "A", "familyName": "B", "formatted": "A B"})
		}, []string{"name"}},
		{"untyped attribute", func(u *gateway.User) { set(u, "title", "CTO") }, []string{"title"}},
		{"attribute removed", func(u *gateway.User) { set(u, "title", nil) }, []string{"title"}},
		{"emails", func(u *gateway.User) { u.Emails = []string{"b@x"} }, []string{"emails"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := base(), base()
			tc.change(b)
			if got := userChanges(a, b); !slices.Equal(got, tc.want) {
				t.Fatalf("userChanges = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDiffMembers(t *testing.T) {
	m := func(ids ...string) []gateway.Member {
		var out []gateway.Member
		for _, id := range ids {
			out = append(out, gateway.Member{UserID: id})
		}
		return out
	}
	cases := []struct {
		name           string
		old, cur       []gateway.Member
		added, removed []string
	}{
		{"none", nil, nil, nil, nil},
		{"add", m("a"), m("a", "b"), []string{"b"}, nil},
		{"remove", m("a", "b"), m("b"), nil, []string{"a"}},
		{"swap", m("a", "b"), m("c", "b"), []string{"c"}, []string{"a"}},
		{"replace all", m("a", "b"), m("d", "c"), []string{"c", "d"}, []string{"a", "b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := diffMembers(tc.old, tc.cur)
			added, removed := d.added, d.removed
			if !slices.Equal(added, tc.added) || !slices.Equal(removed, tc.removed) {
				t.Fatalf("diffMembers = +%v -%v, want +%v -%v", added, removed, tc.added, tc.removed)
			}
		})
	}
	if got := dedupeMembers(m("a", "b", "a", "")); len(got) != 2 {
		t.Fatalf("dedupeMembers = %v", got)
	}
}

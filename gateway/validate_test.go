package gateway

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestUserValidate(t *testing.T) {
	cases := []struct {
		name string
		u    User
		ok   bool
	}{
		{"plain", User{UserName: "ada@example.com"}, true},
		{"unicode", User{UserName: "straße@example.com", GivenName: "Zoë"}, true},
		{"empty", User{UserName: ""}, false},
		{"one space", User{UserName: " "}, false},
		{"tabs and newlines", User{UserName: "\t\n "}, false},
		{"invalid UTF-8", User{UserName: "ada\xff"}, false},
		{"control character", User{UserName: "ada\x07@example.com"}, false},
		{"control character in a name", User{UserName: "ada", FamilyName: "Love\x00lace"}, false},
		{"control character in an email", User{UserName: "ada", Emails: []string{"a\n@x"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.u.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && ErrorCodeOf(err) != ErrInvalid {
				t.Fatalf("code %s, want invalid", ErrorCodeOf(err))
			}
		})
	}
}

func TestGroupValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		g  Group
		ok bool
	}{
		"plain": {Group{DisplayName: "Eng"}, true}, "empty": {Group{}, false}, "blank": {Group{DisplayName: " "}, false},
		"control": {Group{DisplayName: "E\x1bng"}, false},
	} {
		if err := tc.g.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate = %v, want ok=%v", name, err, tc.ok)
		}
	}
}

func TestEmailsOf(t *testing.T) {
	doc := map[string]any{"emails": []any{
		map[string]any{"value": "Home@X", "type": "home"},
		map[string]any{"value": "work@x", "type": "work"},
		map[string]any{"value": "P@X", "type": "other", "primary": true},
		map[string]any{"value": "home@x", "type": "other"},
		map[string]any{"type": "work"},
	}}
	if got, want := EmailsOf(doc), []string{"p@x", "work@x", "home@x"}; !slices.Equal(got, want) {
		t.Fatalf("EmailsOf = %v, want %v (primary first, then work, lower-cased, deduplicated)", got, want)
	}
}

// BenchmarkEmailsOf shows de-duplication is linear: time per address stays
// flat from 100 to 10,000 addresses.
func BenchmarkEmailsOf(b *testing.B) {
	for _, n := range []int{100, 10000} {
		list := make([]any, n)
		for i := range list {
			list[i] = map[string]any{"value": fmt.Sprintf("user%d@example.com", i), "type": "work"}
		}
		doc := map[string]any{"emails": list}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				EmailsOf(doc)
			}
		})
	}
}

func TestSyncAttributes(t *testing.T) {
	docJSON := func(u *User) string {
		t.Helper()
		b, err := u.Attributes.JSON()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		out, _ := json.Marshal(m)
		return string(out)
	}
	cases := []struct {
		name string
		u    User
		want string
	}{
		{"typed fields only (JIT, admin)", User{UserName: "ada@example.com", Active: true, GivenName: "Ada", FamilyName: "Lovelace", Emails: []string{"ada@example.com"}},
			`{"active":true,"emails":[{"primary":true,"type":"work","value":"ada@example.com"}],"name":{"familyName":"Lovelace","givenName":"Ada"},"userName":"ada@example.com"}`},
		{"document detail kept when it agrees", User{UserName: "ada", Active: true, Emails: []string{"ada@x.com"}, Attributes: NewDocument(map[string]any{
			"userName": "ada", "active": true, "title": "Countess", "emails": []any{map[string]any{"value": "Ada@X.com", "type": "home"}}})},
			`{"active":true,"emails":[{"type":"home","value":"Ada@X.com"}],"title":"Countess","userName":"ada"}`},
		{"typed fields win", User{UserName: "new", Active: false, GivenName: "B", DisplayName: "Bee", Emails: []string{"b@x"}, Attributes: NewDocument(map[string]any{
			"userName": "old", "active": true, "displayName": "Old", "name": map[string]any{"givenName": "A", "familyName": "Z", "formatted": "A Z"}, "emails": []any{map[string]any{"value": "a@x"}}})},
			`{"active":false,"displayName":"Bee","emails":[{"primary":true,"type":"work","value":"b@x"}],"name":{"formatted":"A Z","givenName":"B"},"userName":"new"}`},
		{"cleared fields leave", User{UserName: "u", Attributes: NewDocument(map[string]any{"userName": "u", "externalId": "e", "displayName": "D", "name": map[string]any{"givenName": "G"}, "emails": []any{map[string]any{"value": "a@x"}}})},
			`{"active":false,"userName":"u"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.u
			if err := u.SyncAttributes(); err != nil {
				t.Fatal(err)
			}
			if got := docJSON(&u); got != tc.want {
				t.Fatalf("document\n got %s\nwant %s", got, tc.want)
			}
			m, _ := u.Attributes.Map()
			if got := EmailsOf(m); !slices.Equal(got, u.Emails) && !(len(got) == 0 && len(u.Emails) == 0) {
				t.Fatalf("document emails %v disagree with typed %v", got, u.Emails)
			}
			if strings.Contains(docJSON(&u), `"id"`) {
				t.Fatal("the document never holds id")
			}
		})
	}
}

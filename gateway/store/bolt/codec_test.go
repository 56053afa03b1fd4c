package bolt

import (
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

func TestRecordRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 24, 10, 0, 0, 123456789, time.UTC)
	users := []*gateway.User{
		{ID: "u1", Org: "default", UserName: "ada@example.com", ExternalID: "00u1", Active: true, GivenName: "Ada", FamilyName: "Lovelace",
			DisplayName: "Ada L", Emails: []string{"ada@example.com", "ada@home.org"}, Source: gateway.SourceSCIM, Pools: []string{"default"}, Role: "user",
			Attributes: gateway.NewDocument(map[string]any{"userName": "ada@example.com", "name": map[string]any{"givenName": "Ada"}}),
			Created:    at, Modified: at.Add(time.Hour), Version: 7},
		{ID: "u2", Org: "t", UserName: "ünïcode ✓", Attributes: gateway.NewDocument(map[string]any{})},
	}
	for _, u := range users {
		raw, err := encodeUser(u)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeUser(raw, org)
		if err != nil {
			t.Fatal(err)
		}
		wantDoc, _ := u.Attributes.Map()
		gotDoc, _ := got.Attributes.Map()
		if !reflect.DeepEqual(normalizeJSON(t, wantDoc), normalizeJSON(t, gotDoc)) {
			t.Errorf("document: got %v want %v", gotDoc, wantDoc)
		}
		u2, got2 := *u, *got
		u2.Attributes, got2.Attributes = gateway.Document{}, gateway.Document{}
		if len(u2.Emails) == 0 {
			u2.Emails = nil
		}
		if !reflect.DeepEqual(u2, got2) {
			t.Errorf("round trip:\ngot  %+v\nwant %+v", got2, u2)
		}
		// Truncated records are errors, never panics.
		for i := range raw {
			if _, err := decodeUser(raw[:i], org); err == nil && i < len(raw)-len(mustJSON(t, u.Attributes)) {
				t.Errorf("truncated at %d decoded without error", i)
			}
		}
	}
	g := &gateway.Group{ID: "g1", Org: "default", DisplayName: "Eng", ExternalID: "x", Source: gateway.SourceSCIM, Created: at, Modified: at, Version: 2,
		Attributes: gateway.NewDocument(map[string]any{"displayName": "Eng"})}
	raw, _ := encodeGroup(g)
	got, err := decodeGroup(raw)
	if err != nil || got.DisplayName != "Eng" || got.Version != 2 || !got.Created.Equal(at) || got.ExternalID != "x" {
		t.Fatalf("group round trip: %+v %v", got, err)
	}
}

func mustJSON(t *testing.T, d gateway.Document) []byte {
	b, err := document(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func normalizeJSON(t *testing.T, m map[string]any) string {
	b, err := document(gateway.NewDocument(m))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEventRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 24, 10, 0, 0, 5, time.UTC)
	u := &gateway.User{ID: "u1", Org: "default", UserName: "ada", Active: true, Emails: []string{"a@x"}, Created: at, Modified: at, Version: 3,
		Attributes: gateway.NewDocument(map[string]any{"userName": "ada"})}
	g := &gateway.Group{ID: "g1", Org: "default", DisplayName: "Eng", Created: at, Modified: at, Version: 1}
	cases := []gateway.Event{
		{ID: "e1", Org: "default", Op: gateway.OpUserUpdated, Source: gateway.SourceSCIM, OccurredAt: at, User: u, Changed: []string{"displayName", "title"}, RequestID: "r1"},
		{ID: "e2", Org: "default", Op: gateway.OpGroupMembersAdded, Source: gateway.SourceSCIM, OccurredAt: at, Group: g, MemberIDs: []string{"u1", "u2"}},
		{ID: "e3", Op: gateway.OpUserDeleted},
	}
	for _, e := range cases {
		raw, err := encodeEvent(&e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeEvent(42, raw)
		if err != nil {
			t.Fatal(err)
		}
		e.Seq = 42
		if (e.User == nil) != (got.User == nil) || e.User != nil && (got.User.UserName != "ada" || got.User.Version != 3 || !got.User.Created.Equal(at)) {
			t.Errorf("%s user = %+v", e.ID, got.User)
		}
		if (e.Group == nil) != (got.Group == nil) || e.Group != nil && got.Group.DisplayName != "Eng" {
			t.Errorf("%s group = %+v", e.ID, got.Group)
		}
		e.User, e.Group, got.User, got.Group = nil, nil, nil, nil
		if !reflect.DeepEqual(e, got) {
			t.Errorf("round trip:\ngot  %+v\nwant %+v", got, e)
		}
		for i := range raw {
			if _, err := decodeEvent(1, raw[:i]); err == nil && i < len(raw)-1 {
				// A truncation can only go unnoticed inside the trailing
				// nested document, which the record keeps as given.
				if e.ID == "e3" {
					t.Errorf("truncated at %d decoded without error", i)
				}
			}
		}
	}
}

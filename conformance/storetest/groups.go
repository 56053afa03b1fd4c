package storetest

import (
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/gateway"
)

func testGroupMembership(t *testing.T, s gateway.Store) {
	a := mustCreate(t, s, newUser(orgA, "a@x.example"))
	b := mustCreate(t, s, newUser(orgA, "b@x.example"))
	c := mustCreate(t, s, newUser(orgA, "c@x.example"))
	g := newGroup(orgA, "Eng")
	g.ExternalID = "grp-1"
	seq0 := lastSeq(t, s, orgA)
	// A member that is no user: ErrInvalid naming it, nothing written.
	err := s.Groups().Create(ctx(), g, []gateway.Member{{UserID: a.ID}, {UserID: "ghost"}}, ev(gateway.OpGroupCreated))
	if code(err) != gateway.ErrInvalid || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("create with an unknown member: %v", err)
	}
	if _, err := s.Groups().Get(ctx(), orgA, g.ID); code(err) != gateway.ErrNotFound {
		t.Fatalf("the group was written despite the error: %v", err)
	}
	if lastSeq(t, s, orgA) != seq0 {
		t.Fatal("the refused create recorded its event")
	}
	mustCreateGroup(t, s, g, gateway.Member{UserID: a.ID, Display: "A"}, gateway.Member{UserID: b.ID})
	if err := s.Groups().Create(ctx(), newGroup(orgA, "ENG"), nil, ev(gateway.OpGroupCreated)); code(err) != gateway.ErrConflict {
		t.Fatalf("duplicate displayName: %v", err)
	}
	if got := groupLookup(t, s, orgA, gateway.GroupByExternalID, "grp-1"); !slices.Equal(got, []string{g.ID}) {
		t.Fatalf("externalId lookup: %v", got)
	}
	memberships, err := s.Groups().Memberships(ctx(), orgA, []string{a.ID, c.ID})
	if err != nil || len(memberships[a.ID]) != 1 || memberships[a.ID][0] != (gateway.GroupRef{ID: g.ID, DisplayName: "Eng"}) || len(memberships[c.ID]) != 0 {
		t.Fatalf("memberships: %v %v", memberships, err)
	}
	// Replace a with c and rename, at the current version.
	ng, err := s.Groups().Update(ctx(), orgA, g.ID, 1, func(cur *gateway.Group) (gateway.GroupChange, error) {
		cur.DisplayName, cur.Version = "Engineering", cur.Version+1
		return gateway.GroupChange{Group: cur, Put: []gateway.Member{{UserID: c.ID, Display: "C"}}, Remove: []string{a.ID}, Events: ev(gateway.OpGroupUpdated)}, nil
	})
	if err != nil || ng.Version != 2 || ng.DisplayName != "Engineering" {
		t.Fatalf("update: %+v %v", ng, err)
	}
	got, members, err := s.Groups().GetWithMembers(ctx(), orgA, g.ID)
	if err != nil || got.Version != 2 || len(members) != 2 {
		t.Fatalf("GetWithMembers: %+v %v %v", got, members, err)
	}
	var ids []string
	for _, m := range members {
		ids = append(ids, m.UserID)
	}
	slices.Sort(ids)
	want := []string{b.ID, c.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("members %v, want %v", ids, want)
	}
	if got := groupLookup(t, s, orgA, gateway.GroupByMember, a.ID); len(got) != 0 {
		t.Fatalf("a removed member still finds the group: %v", got)
	}
	if got := groupLookup(t, s, orgA, gateway.GroupByMember, c.ID); !slices.Equal(got, []string{g.ID}) {
		t.Fatalf("a new member's groups: %v", got)
	}
	if got := groupLookup(t, s, orgA, gateway.GroupByDisplayName, "ENGINEERING"); !slices.Equal(got, []string{g.ID}) {
		t.Fatalf("renamed lookup: %v", got)
	}
	if got := groupLookup(t, s, orgA, gateway.GroupByDisplayName, "eng"); len(got) != 0 {
		t.Fatalf("the old name is still indexed: %v", got)
	}
	if memberships, _ := s.Groups().Memberships(ctx(), orgA, []string{c.ID}); len(memberships[c.ID]) != 1 || memberships[c.ID][0].DisplayName != "Engineering" {
		t.Fatalf("memberships carry the new name: %v", memberships)
	}
	// Stale version, or an unknown member: nothing changes.
	if _, err := s.Groups().Update(ctx(), orgA, g.ID, 1, func(cur *gateway.Group) (gateway.GroupChange, error) {
		cur.Version++
		return gateway.GroupChange{Group: cur, Remove: []string{b.ID}}, nil
	}); code(err) != gateway.ErrPreconditionFailed {
		t.Fatalf("stale update: %v", err)
	}
	if _, err := s.Groups().Update(ctx(), orgA, g.ID, 0, func(cur *gateway.Group) (gateway.GroupChange, error) {
		cur.Version++
		return gateway.GroupChange{Group: cur, Put: []gateway.Member{{UserID: "ghost"}}, Events: ev(gateway.OpGroupMembersAdded)}, nil
	}); code(err) != gateway.ErrInvalid {
		t.Fatalf("update with an unknown member: %v", err)
	}
	if got, ms, _ := s.Groups().GetWithMembers(ctx(), orgA, g.ID); got.Version != 2 || len(ms) != 2 {
		t.Fatalf("a refused update changed the group: %+v %v", got, ms)
	}
	if err := s.Groups().Delete(ctx(), orgA, g.ID, 1, func(*gateway.Group, []gateway.Member) ([]gateway.Event, error) {
		return ev(gateway.OpGroupDeleted), nil
	}); code(err) != gateway.ErrPreconditionFailed {
		t.Fatalf("delete at a stale version: %v", err)
	}
	var deletedWith []gateway.Member
	if err := s.Groups().Delete(ctx(), orgA, g.ID, 2, func(_ *gateway.Group, ms []gateway.Member) ([]gateway.Event, error) {
		deletedWith = ms
		return ev(gateway.OpGroupDeleted), nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(deletedWith) != 2 {
		t.Fatalf("the delete decision saw members %v", deletedWith)
	}
	if got := groupLookup(t, s, orgA, gateway.GroupByMember, b.ID); len(got) != 0 {
		t.Fatalf("edges left after the group's deletion: %v", got)
	}
	if got := groupLookup(t, s, orgA, gateway.GroupByDisplayName, "engineering"); len(got) != 0 {
		t.Fatalf("a deleted group's name is still taken: %v", got)
	}
	mustCreateGroup(t, s, newGroup(orgA, "Engineering"))
}

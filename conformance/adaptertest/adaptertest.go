// Package adaptertest is the conformance suite every delivery adapter
// passes: the life of users and groups as events, each delivered in
// order, each delivered twice (delivery is at least once), and what the
// downstream holds checked after every step.
//
//	adaptertest.Run(t, adaptertest.Harness{Open: ..., Downstream: ...})
package adaptertest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// Harness is what an adapter type gives the suite.
type Harness struct {
	// Open returns a fresh adapter whose downstream holds nothing.
	Open func(t *testing.T) gateway.Adapter
	// Downstream reads what the downstream holds now. Nil for an adapter
	// with no downstream (the directory): then only delivery is checked.
	Downstream func(t *testing.T) Snapshot
}

// Snapshot is the downstream's state, keyed by the gateway's ids.
type Snapshot struct {
	Users  map[string]User
	Groups map[string]Group
}

// User is what a downstream keeps of a user.
type User struct {
	UserName    string
	Active      bool
	DisplayName string
	Email       string
}

// Group is what a downstream keeps of a group; Members are user ids,
// sorted.
type Group struct {
	DisplayName string
	Members     []string
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	t.Helper()
	a := h.Open(t)
	t.Cleanup(func() { _ = a.Close() })
	s := newScript()
	want := Snapshot{Users: map[string]User{}, Groups: map[string]Group{}}
	var sent []gateway.WireEvent
	step := func(name string, e gateway.WireEvent, apply func()) {
		t.Helper()
		sent = append(sent, e)
		apply()
		for try := range 2 { // the second time is a redelivery: harmless
			if err := a.Deliver(context.Background(), e); err != nil {
				t.Fatalf("%s (delivery %d): %v", name, try+1, err)
			}
			if h.Downstream == nil {
				continue
			}
			got := h.Downstream(t)
			if !equal(got, want) {
				t.Fatalf("%s (delivery %d): downstream holds\n%s\nwant\n%s", name, try+1, dump(got), dump(want))
			}
		}
	}
	ada := s.user("ada@example.com", "Ada", "Lovelace")
	bob := s.user("bob@example.com", "Bob", "Babbage")
	step("user.created", s.event(gateway.OpUserCreated, ada, nil, nil), func() { want.Users[ada.ID] = toUser(ada) })
	step("user.created (second user)", s.event(gateway.OpUserCreated, bob, nil, nil), func() { want.Users[bob.ID] = toUser(bob) })
	ada.DisplayName, ada.GivenName = "Countess", "Augusta"
	ada.Version++
	step("user.updated", s.event(gateway.OpUserUpdated, ada, nil, nil), func() { want.Users[ada.ID] = toUser(ada) })
	ada.Email, ada.Emails = "ada.lovelace@example.com", []string{"ada.lovelace@example.com"}
	ada.Version++
	step("user.updated (email)", s.event(gateway.OpUserUpdated, ada, nil, nil), func() { want.Users[ada.ID] = toUser(ada) })
	ada.Active = false
	ada.Version++
	step("user.deactivated", s.event(gateway.OpUserDeactivated, ada, nil, nil), func() { want.Users[ada.ID] = toUser(ada) })
	ada.Active = true
	ada.Version++
	step("user.reactivated", s.event(gateway.OpUserReactivated, ada, nil, nil), func() { want.Users[ada.ID] = toUser(ada) })

	eng := s.group("Engineering")
	step("group.created", s.event(gateway.OpGroupCreated, nil, eng, []string{ada.ID}), func() {
		want.Groups[eng.ID] = Group{DisplayName: "Engineering", Members: []string{ada.ID}}
	})
	eng.DisplayName = "Engineers"
	eng.Version++
	step("group.updated", s.event(gateway.OpGroupUpdated, nil, eng, nil), func() {
		g := want.Groups[eng.ID]
		g.DisplayName = "Engineers"
		want.Groups[eng.ID] = g
	})
	eng.Version++
	step("group.members_added", s.event(gateway.OpGroupMembersAdded, nil, eng, []string{bob.ID}), func() {
		g := want.Groups[eng.ID]
		g.Members = sorted(append(slices.Clone(g.Members), bob.ID))
		want.Groups[eng.ID] = g
	})
	eng.Version++
	step("group.members_removed", s.event(gateway.OpGroupMembersRemoved, nil, eng, []string{ada.ID}), func() {
		g := want.Groups[eng.ID]
		g.Members = slices.DeleteFunc(slices.Clone(g.Members), func(id string) bool { return id == ada.ID })
		want.Groups[eng.ID] = g
	})
	// Deleting a member user: the gateway records the user's deletion and
	// its removal from each group.
	eng.Version++
	step("user.deleted", s.event(gateway.OpUserDeleted, bob, nil, nil), func() { delete(want.Users, bob.ID) })
	step("group.members_removed (of a deleted user)", s.event(gateway.OpGroupMembersRemoved, nil, eng, []string{bob.ID}), func() {
		g := want.Groups[eng.ID]
		g.Members = nil
		want.Groups[eng.ID] = g
	})
	step("group.deleted", s.event(gateway.OpGroupDeleted, nil, eng, nil), func() { delete(want.Groups, eng.ID) })
	step("user.deleted (last)", s.event(gateway.OpUserDeleted, ada, nil, nil), func() { delete(want.Users, ada.ID) })

	// A restart redelivers, in order, what came after the last written
	// cursor: once everything is delivered again, the downstream holds
	// what it held.
	for i, e := range sent[len(sent)/2:] {
		if err := a.Deliver(context.Background(), e); err != nil {
			t.Fatalf("redelivery %d (%s) after a restart: %v", i, e.Type, err)
		}
	}
	if h.Downstream != nil {
		if got := h.Downstream(t); !equal(got, want) {
			t.Fatalf("after redelivering the second half in order, the downstream holds\n%s\nwant\n%s", dump(got), dump(want))
		}
	}
}

// script makes realistic events with increasing sequence numbers.
type script struct {
	seq uint64
	at  time.Time
}

func newScript() *script { return &script{at: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)} }

func (s *script) id(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s-0000-7000-8000-%012d", prefix, s.seq)
}

func (s *script) user(userName, given, family string) *gateway.WireUser {
	return &gateway.WireUser{ID: s.id("01a2u000"), UserName: userName, Active: true, GivenName: given, FamilyName: family,
		Email: userName, Emails: []string{userName}, Source: gateway.SourceSCIM, Pool: "default", Role: "user",
		Created: s.at, Modified: s.at, Version: 1, Attributes: json.RawMessage(`{"userName":"` + userName + `"}`)}
}

func (s *script) group(name string) *gateway.WireGroup {
	return &gateway.WireGroup{ID: s.id("01a2g000"), DisplayName: name, Source: gateway.SourceSCIM, Created: s.at, Modified: s.at, Version: 1}
}

func (s *script) event(op gateway.Op, u *gateway.WireUser, g *gateway.WireGroup, members []string) gateway.WireEvent {
	s.at = s.at.Add(time.Second)
	e := gateway.WireEvent{Contract: gateway.EventContract, ID: s.id("01a2e000"), Type: op, Seq: s.seq, Org: gateway.DefaultOrg,
		Source: gateway.SourceSCIM, Time: s.at, MemberIDs: members}
	if u != nil {
		c := *u
		c.Modified = s.at
		e.User = &c
	}
	if g != nil {
		c := *g
		c.Modified = s.at
		e.Group = &c
	}
	if op == gateway.OpUserUpdated || op == gateway.OpGroupUpdated {
		e.Changed = []string{"displayName"}
	}
	return e
}

func toUser(u *gateway.WireUser) User {
	return User{UserName: u.UserName, Active: u.Active, DisplayName: u.DisplayName, Email: u.Email}
}

func sorted(s []string) []string { slices.Sort(s); return s }

// equal compares two snapshots. Memberships of users that no longer
// exist are left out on both sides: a downstream may drop them with the
// user (a foreign key's cascade) or when the group.members_removed that
// follows a user's deletion arrives.
func equal(a, b Snapshot) bool {
	if !maps.Equal(a.Users, b.Users) || len(a.Groups) != len(b.Groups) {
		return false
	}
	for id, g := range a.Groups {
		w, ok := b.Groups[id]
		if !ok || g.DisplayName != w.DisplayName || !slices.Equal(liveMembers(g.Members, a), liveMembers(w.Members, b)) {
			return false
		}
	}
	return true
}

func liveMembers(ids []string, s Snapshot) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, ok := s.Users[id]; ok {
			out = append(out, id)
		}
	}
	return sorted(out)
}

func dump(s Snapshot) string {
	b, _ := json.MarshalIndent(s, "", "  ")
	return string(b)
}

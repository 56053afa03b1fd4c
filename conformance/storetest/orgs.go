package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

func newOrg(id gateway.OrgID, domains ...string) *gateway.Organization {
	now := time.Now().UTC().Truncate(time.Millisecond)
	o := &gateway.Organization{ID: id, Name: string(id), Created: now, Modified: now, Version: 1}
	for _, d := range domains {
		o.Domains = append(o.Domains, gateway.Domain{Name: d})
	}
	return o
}

// testOrgRegistry: organizations are unique by id, a domain belongs to
// at most one of them (any case), versions guard changes, and the
// operator's audit entries are written with them.
func testOrgRegistry(t *testing.T, s gateway.Store) {
	reg := s.Orgs()
	entry := func(action string) gateway.AuditEntry {
		return gateway.AuditEntry{Actor: gateway.Actor{Kind: gateway.ActorToken, ID: "admin.token"}, Action: action, Target: "org:acme"}
	}
	if err := reg.Create(ctx(), newOrg("acme", "acme.com", "acme.io"), entry("org.create")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    *gateway.Organization
		want gateway.ErrorCode
	}{
		{"the same id", newOrg("acme"), gateway.ErrConflict},
		{"another's domain, in another case", newOrg("globex", "ACME.com"), gateway.ErrConflict},
		{"another's domain, fully qualified", newOrg("globex", "acme.com."), gateway.ErrConflict},
		{"not a slug", newOrg("Acme Inc"), gateway.ErrInvalid},
		{"not stamped", func() *gateway.Organization { o := newOrg("initech"); o.Version = 0; return o }(), gateway.ErrInternal},
	} {
		if err := reg.Create(ctx(), tc.o, entry("refused")); code(err) != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
	if id, err := reg.ByDomain(ctx(), "Acme.IO"); err != nil || id != "acme" {
		t.Fatalf("by domain: %q %v", id, err)
	}
	if id, _ := reg.ByDomain(ctx(), "globex.com"); id != "" {
		t.Fatalf("a refused create claimed its domain: %q", id)
	}
	got, err := reg.Get(ctx(), "acme")
	if err != nil || got.Name != "acme" || got.Version != 1 || len(got.Domains) != 2 {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := reg.Get(ctx(), "nope"); code(err) != gateway.ErrNotFound {
		t.Fatalf("get of none: %v", err)
	}
	// A change at the version read moves the domains; a stale one is refused.
	next := *got
	next.Domains, next.Suspended, next.Version = []gateway.Domain{{Name: "acme.com", VerifiedAt: time.Now().UTC().Truncate(time.Second)}}, true, 2
	if err := reg.Replace(ctx(), &next, 1, entry("org.update")); err != nil {
		t.Fatal(err)
	}
	stale := next
	stale.Version = 2
	if err := reg.Replace(ctx(), &stale, 1); code(err) != gateway.ErrPreconditionFailed {
		t.Fatalf("a stale replace: %v", err)
	}
	if id, _ := reg.ByDomain(ctx(), "acme.io"); id != "" {
		t.Fatalf("a dropped domain still routes to %q", id)
	}
	if err := reg.Create(ctx(), newOrg("globex", "acme.io"), entry("org.create")); err != nil {
		t.Fatalf("a freed domain: %v", err)
	}
	taken := next
	taken.Domains, taken.Version = append(taken.Domains, gateway.Domain{Name: "acme.io"}), 3
	if err := reg.Replace(ctx(), &taken, 2); code(err) != gateway.ErrConflict {
		t.Fatalf("a replace claiming another's domain: %v", err)
	}
	if got, _ := reg.Get(ctx(), "acme"); got.Version != 2 || !got.Suspended || len(got.Domains) != 1 || got.Domains[0].VerifiedAt.IsZero() {
		t.Fatalf("after the replace: %+v", got)
	}
	// Listing pages in id order with the total.
	for i := range 5 {
		if err := reg.Create(ctx(), newOrg(gateway.OrgID(fmt.Sprintf("org-%d", i)))); err != nil {
			t.Fatal(err)
		}
	}
	var ids []gateway.OrgID
	for after := gateway.OrgID(""); ; {
		page, total, err := reg.List(ctx(), after, 3)
		if err != nil || total != 7 {
			t.Fatalf("list: total %d %v", total, err)
		}
		if len(page) == 0 {
			break
		}
		for _, o := range page {
			ids = append(ids, o.ID)
		}
		after = page[len(page)-1].ID
	}
	if want := []gateway.OrgID{"acme", "globex", "org-0", "org-1", "org-2", "org-3", "org-4"}; !slices.Equal(ids, want) {
		t.Fatalf("listed %v, want %v", ids, want)
	}
	// Deleting frees the id and the domains.
	if err := reg.Delete(ctx(), "globex", 7); code(err) != gateway.ErrPreconditionFailed {
		t.Fatalf("a stale delete: %v", err)
	}
	if err := reg.Delete(ctx(), "globex", 1, entry("org.delete")); err != nil {
		t.Fatal(err)
	}
	if id, _ := reg.ByDomain(ctx(), "acme.io"); id != "" {
		t.Fatalf("a deleted organization's domain routes to %q", id)
	}
	if _, err := reg.Get(ctx(), "globex"); code(err) != gateway.ErrNotFound {
		t.Fatalf("a deleted organization: %v", err)
	}
	// The operator's audit: the changes that happened, none refused.
	if got, want := auditActions(t, s, gateway.OperatorScope), []string{"org.delete", "org.create", "org.update", "org.create"}; !slices.Equal(got, want) {
		t.Fatalf("operator audit %v, want %v", got, want)
	}
}

// testOrgErasure: an organization's data is erased in two steps, and
// nothing of another organization with it. EraseData leaves only its
// outbox (events, cursors, dead letters: still to be delivered); Delete
// then removes the registry entry, frees its domains and erases the
// outbox, and an organization created again under the id starts empty.
func testOrgErasure(t *testing.T, s gateway.Store) {
	at := time.Now().UTC().Truncate(time.Millisecond)
	audit := gateway.Journal{Audit: []gateway.AuditEntry{{Time: at, Actor: gateway.Actor{Kind: gateway.ActorToken, ID: "t"}, Action: "pool.create", Target: "pool:p"}}}
	for _, org := range []gateway.OrgID{orgA, orgB} {
		if err := s.Orgs().Create(ctx(), newOrg(org, string(org)+".example")); err != nil {
			t.Fatal(err)
		}
		u := mustCreate(t, s, newUser(org, "ada@example.com", "ada@example.com"))
		mustCreateGroup(t, s, newGroup(org, "eng"), gateway.Member{UserID: u.ID})
		if err := s.Sessions().Create(ctx(), gateway.Session{ID: "s1", Org: org, UserID: u.ID, Created: at, LastSeen: at, Expires: at.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Keys().PutIfAbsent(ctx(), org, "k", []byte("key")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Records().Put(ctx(), org, "pool", "p", 0, []byte(`{}`), audit); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Ephemeral().PutIfAbsent(ctx(), org, "replay", "id1", nil, farFuture); err != nil {
			t.Fatal(err)
		}
		if err := s.IDMaps().Put(ctx(), org, "app", u.ID, "42"); err != nil {
			t.Fatal(err)
		}
		if err := s.Outbox().Ack(ctx(), org, "app", 1, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	events := lastSeq(t, s, orgA)
	if err := s.Orgs().EraseData(ctx(), orgA); err != nil {
		t.Fatal(err)
	}
	if err := s.Orgs().EraseData(ctx(), orgA); err != nil {
		t.Fatalf("erasing again: %v", err)
	}
	// What is left of A: its registry entry and its outbox.
	if _, n, err := s.Users().List(ctx(), orgA, 0, 10); err != nil || n != 0 {
		t.Fatalf("A's users after erasure: %d %v", n, err)
	}
	if _, n, err := s.Groups().List(ctx(), orgA, 0, 10); err != nil || n != 0 {
		t.Fatalf("A's groups after erasure: %d %v", n, err)
	}
	if ids, err := s.Users().Lookup(ctx(), orgA, gateway.UserByUserName, "ada@example.com"); err != nil || len(ids) != 0 {
		t.Fatalf("A's user index after erasure: %v %v", ids, err)
	}
	if _, err := s.Sessions().Get(ctx(), orgA, "s1"); code(err) != gateway.ErrNotFound {
		t.Fatalf("A's session after erasure: %v", err)
	}
	if k, err := s.Keys().Get(ctx(), orgA, "k"); err != nil || k != nil {
		t.Fatalf("A's key after erasure: %q %v", k, err)
	}
	if _, err := s.Records().Get(ctx(), orgA, "pool", "p"); code(err) != gateway.ErrNotFound {
		t.Fatalf("A's record after erasure: %v", err)
	}
	if entries, _, err := s.Audit().List(ctx(), orgA, gateway.AuditQuery{Limit: 10}); err != nil || len(entries) != 0 {
		t.Fatalf("A's audit log after erasure: %v %v", entries, err)
	}
	if ok, err := s.Ephemeral().PutIfAbsent(ctx(), orgA, "replay", "id1", nil, farFuture); err != nil || !ok {
		t.Fatalf("A's ephemeral values after erasure: %v %v", ok, err)
	}
	if id, err := s.IDMaps().Get(ctx(), orgA, "app", "x"); err != nil || id != "" {
		t.Fatalf("A's id maps after erasure: %q %v", id, err)
	}
	if got := lastSeq(t, s, orgA); got != events {
		t.Fatalf("A's outbox after erasure: last %d, want %d", got, events)
	}
	if pending, err := s.Outbox().After(ctx(), orgA, 0, 100); err != nil || uint64(len(pending)) != events {
		t.Fatalf("A's events after erasure: %d %v", len(pending), err)
	}
	if cur, err := s.Outbox().Cursor(ctx(), orgA, "app"); err != nil || cur != 1 {
		t.Fatalf("A's cursor after erasure: %d %v", cur, err)
	}
	if _, err := s.Orgs().Get(ctx(), orgA); err != nil {
		t.Fatalf("A's registry entry after erasure: %v", err)
	}
	if err := s.Orgs().Delete(ctx(), orgA, 0); err != nil {
		t.Fatal(err)
	}
	if got := lastSeq(t, s, orgA); got != 0 {
		t.Fatalf("A's outbox after deletion: last %d", got)
	}
	if cur, err := s.Outbox().Cursor(ctx(), orgA, "app"); err != nil || cur != 0 {
		t.Fatalf("A's cursor after deletion: %d %v", cur, err)
	}
	if holder, err := s.Orgs().ByDomain(ctx(), string(orgA)+".example"); err != nil || holder != "" {
		t.Fatalf("A's domain after deletion: %q %v", holder, err)
	}
	// B is whole.
	if _, n, _ := s.Users().List(ctx(), orgB, 0, 10); n != 1 {
		t.Fatalf("B's users: %d", n)
	}
	if _, n, _ := s.Groups().List(ctx(), orgB, 0, 10); n != 1 {
		t.Fatalf("B's groups: %d", n)
	}
	if _, err := s.Sessions().Get(ctx(), orgB, "s1"); err != nil {
		t.Fatalf("B's session: %v", err)
	}
	if _, err := s.Records().Get(ctx(), orgB, "pool", "p"); err != nil {
		t.Fatalf("B's record: %v", err)
	}
	if k, _ := s.Keys().Get(ctx(), orgB, "k"); string(k) != "key" {
		t.Fatalf("B's key: %q", k)
	}
	if got := lastSeq(t, s, orgB); got != events {
		t.Fatalf("B's outbox: %d", got)
	}
	// A again, from nothing.
	if err := s.Orgs().Create(ctx(), newOrg(orgA)); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, newUser(orgA, "ada@example.com", "ada@example.com"))
	if got := lastSeq(t, s, orgA); got != 1 {
		t.Fatalf("A created again numbers its events from %d", got)
	}
}

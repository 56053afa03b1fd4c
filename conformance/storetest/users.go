package storetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

func testUserCreateAndRead(t *testing.T, s gateway.Store) {
	u := newUser(orgA, "Ada@Example.com", "ada@example.com", "ada@work.example")
	u.GivenName, u.FamilyName, u.DisplayName, u.Role, u.Pools = "Ada", "Lovelace", "Ada L.", "manager", []string{"default", "support"}
	mustCreate(t, s, u)
	got, err := s.Users().Get(ctx(), orgA, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.UserName != u.UserName || got.Version != 1 || got.Org != orgA || got.GivenName != "Ada" || got.Role != "manager" ||
		!slices.Equal(got.Emails, u.Emails) || !slices.Equal(got.Pools, u.Pools) || got.ExternalID != u.ExternalID ||
		got.Source != gateway.SourceSCIM || !got.Active || !got.Created.Equal(u.Created) {
		t.Fatalf("read back %+v, wrote %+v", got, u)
	}
	if m, err := got.Attributes.Map(); err != nil || m["userName"] != "Ada@Example.com" {
		t.Fatalf("document: %v %v", m, err)
	}
	many, err := s.Users().GetMany(ctx(), orgA, []string{u.ID, "missing"})
	if err != nil || len(many) != 1 || many[0].ID != u.ID {
		t.Fatalf("GetMany skips missing ids: %v %v", many, err)
	}
	if _, err := s.Users().Get(ctx(), orgA, "missing"); code(err) != gateway.ErrNotFound {
		t.Fatalf("get missing: %v", err)
	}
	// The store checks the core's stamping: a new record is version 1.
	unstamped := newUser(orgA, "v0@example.com")
	unstamped.Version = 0
	if err := s.Users().Create(ctx(), unstamped, nil); code(err) != gateway.ErrInternal {
		t.Fatalf("create of an unstamped user: %v", err)
	}
	// The events are recorded, numbered and stamped with the organization.
	evs, err := s.Outbox().After(ctx(), orgA, 0, 10)
	if err != nil || len(evs) != 1 || evs[0].Seq != 1 || evs[0].Org != orgA || evs[0].Op != gateway.OpUserCreated {
		t.Fatalf("events: %+v %v", evs, err)
	}
}

// testNamesUniqueOnFoldingKey: uniqueness cannot be dodged with ß/SS,
// ligatures or another normalization form, and lookups find the name
// under any of them.
func testNamesUniqueOnFoldingKey(t *testing.T, s gateway.Store) {
	pairs := [][2]string{
		{"straße@example.com", "STRASSE@example.com"},
		{"ﬀion@example.com", "ffion@example.com"},
		{"caf\u00e9@example.com", "cafe\u0301@example.com"},
		{"Ada@Example.com", "ada@example.COM"},
	}
	for _, p := range pairs {
		first := mustCreate(t, s, newUser(orgA, p[0]))
		if err := s.Users().Create(ctx(), newUser(orgA, p[1]), ev(gateway.OpUserCreated)); code(err) != gateway.ErrConflict {
			t.Errorf("%q after %q: %v, want a conflict", p[1], p[0], err)
		}
		if got := lookup(t, s, orgA, gateway.UserByUserName, p[1]); !slices.Equal(got, []string{first.ID}) {
			t.Errorf("lookup %q = %v, want %s", p[1], got, first.ID)
		}
		mustCreateGroup(t, s, newGroup(orgA, p[0]))
		if err := s.Groups().Create(ctx(), newGroup(orgA, p[1]), nil, nil); code(err) != gateway.ErrConflict {
			t.Errorf("group %q after %q: %v, want a conflict", p[1], p[0], err)
		}
	}
	// Names that only look alike are different names.
	mustCreate(t, s, newUser(orgA, "strase@example.com"))
	// Email look-ups use the same key as filters compare with.
	withEmail := mustCreate(t, s, newUser(orgA, "mail@example.com", "groß@example.com"))
	if got := lookup(t, s, orgA, gateway.UserByEmail, "GROSS@EXAMPLE.COM"); !slices.Equal(got, []string{withEmail.ID}) {
		t.Errorf("email lookup under folding = %v", got)
	}
}

// testRacingCreates: of many creates of one name (in several spellings)
// at once exactly one wins; distinct names at the same time all do, and
// only the winners' events are recorded.
func testRacingCreates(t *testing.T, s gateway.Store) {
	const n = 40
	same := make([]error, n)
	distinct := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			name := "Same@Example.com"
			switch i % 3 {
			case 0:
				name = strings.ToUpper(name)
			case 1:
				name = strings.ToLower(name)
			}
			same[i] = s.Users().Create(ctx(), newUser(orgA, name), ev(gateway.OpUserCreated))
		})
		wg.Go(func() {
			distinct[i] = s.Users().Create(ctx(), newUser(orgA, fmt.Sprintf("user%d@example.com", i)), ev(gateway.OpUserCreated))
		})
	}
	wg.Wait()
	won, conflicts := 0, 0
	for _, err := range same {
		switch code(err) {
		case "":
			won++
		case gateway.ErrConflict:
			conflicts++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if won != 1 || conflicts != n-1 {
		t.Fatalf("%d created, %d conflicts; want 1 and %d", won, conflicts, n-1)
	}
	for _, err := range distinct {
		if err != nil {
			t.Errorf("distinct create: %v", err)
		}
	}
	if got, _ := s.Outbox().Len(ctx(), orgA); got != n+1 {
		t.Errorf("outbox holds %d events, want %d", got, n+1)
	}
	if _, total, _ := s.Users().List(ctx(), orgA, 0, 0); total != n+1 {
		t.Errorf("%d users, want %d", total, n+1)
	}
}

func testIndexesFollowUpdatesAndDeletes(t *testing.T, s gateway.Store) {
	u := mustCreate(t, s, newUser(orgA, "Old@x.example", "old@x.example", "other@x.example"))
	other := mustCreate(t, s, newUser(orgA, "taken@x.example"))
	rename := func(name string, emails ...string) gateway.UserUpdateFunc {
		return bump(ev(gateway.OpUserUpdated), func(cur *gateway.User) {
			cur.UserName, cur.Emails, cur.ExternalID = name, emails, "ext-"+name
		})
	}
	if _, err := s.Users().Update(ctx(), orgA, u.ID, 0, rename("TAKEN@x.example")); code(err) != gateway.ErrConflict {
		t.Fatalf("rename onto another user's name: %v", err)
	}
	if _, err := s.Users().Update(ctx(), orgA, u.ID, 0, rename("OLD@X.EXAMPLE", "old@x.example")); err != nil {
		t.Fatalf("a case-only rename of oneself: %v", err)
	}
	nu, err := s.Users().Update(ctx(), orgA, u.ID, 0, rename("new@x.example", "new@x.example"))
	if err != nil || nu.Version != 3 {
		t.Fatalf("rename: %+v %v", nu, err)
	}
	if got := lookup(t, s, orgA, gateway.UserByUserName, "old@x.example"); len(got) != 0 {
		t.Errorf("old userName still indexed: %v", got)
	}
	if got := lookup(t, s, orgA, gateway.UserByUserName, "NEW@X.EXAMPLE"); !slices.Equal(got, []string{u.ID}) {
		t.Errorf("new userName lookup = %v", got)
	}
	if got := lookup(t, s, orgA, gateway.UserByEmail, "other@x.example"); len(got) != 0 {
		t.Errorf("dropped email still indexed: %v", got)
	}
	if got := lookup(t, s, orgA, gateway.UserByExternalID, "ext-new@x.example"); !slices.Equal(got, []string{u.ID}) {
		t.Errorf("externalId lookup = %v", got)
	}
	if got := lookup(t, s, orgA, gateway.UserByExternalID, "EXT-NEW@X.EXAMPLE"); len(got) != 0 {
		t.Errorf("externalId is exact, but a case variant found %v", got)
	}
	mustCreate(t, s, newUser(orgA, "old@x.example")) // the old name is free again

	g := mustCreateGroup(t, s, newGroup(orgA, "Eng"), gateway.Member{UserID: u.ID}, gateway.Member{UserID: other.ID})
	// The groups a deleted user leaves come back stamped (their member
	// lists change, so their versions move).
	err = s.Users().Delete(ctx(), orgA, u.ID, 0, func(*gateway.User, []*gateway.Group) (gateway.UserDeletion, error) {
		return gateway.UserDeletion{Events: ev(gateway.OpUserDeleted)}, nil
	})
	if code(err) != gateway.ErrInternal {
		t.Fatalf("delete without stamping the groups left: %v", err)
	}
	var left []string
	err = s.Users().Delete(ctx(), orgA, u.ID, 0, func(_ *gateway.User, groups []*gateway.Group) (gateway.UserDeletion, error) {
		left = nil
		del := gateway.UserDeletion{Events: ev(gateway.OpUserDeleted)}
		for _, g := range groups {
			left = append(left, g.ID)
			ng := g.Clone()
			ng.Version++
			del.Groups = append(del.Groups, ng)
		}
		return del, nil
	})
	if err != nil || !slices.Equal(left, []string{g.ID}) {
		t.Fatalf("delete: groups %v, %v", left, err)
	}
	if got, _ := s.Groups().Get(ctx(), orgA, g.ID); got.Version != 2 {
		t.Fatalf("a group the user left keeps version %d", got.Version)
	}
	if _, err := s.Users().Get(ctx(), orgA, u.ID); code(err) != gateway.ErrNotFound {
		t.Fatalf("get after delete: %v", err)
	}
	if ms, _ := s.Groups().Members(ctx(), orgA, g.ID); len(ms) != 1 || ms[0].UserID != other.ID {
		t.Fatalf("members after the user's deletion: %v", ms)
	}
	if got := groupLookup(t, s, orgA, gateway.GroupByMember, u.ID); len(got) != 0 {
		t.Fatalf("reverse edges after the user's deletion: %v", got)
	}
	for _, idx := range []gateway.UserIndex{gateway.UserByUserName, gateway.UserByEmail, gateway.UserByExternalID} {
		if got := lookup(t, s, orgA, idx, map[gateway.UserIndex]string{gateway.UserByUserName: "new@x.example",
			gateway.UserByEmail: "new@x.example", gateway.UserByExternalID: "ext-new@x.example"}[idx]); len(got) != 0 {
			t.Errorf("%s still finds the deleted user: %v", idx, got)
		}
	}
}

// testFailedWritesChangeNothing: a write refused for any reason leaves the
// record, its indexes, the outbox and the audit log as they were.
func testFailedWritesChangeNothing(t *testing.T, s gateway.Store) {
	u := mustCreate(t, s, newUser(orgA, "ada@x.example"))
	seq0 := lastSeq(t, s, orgA)
	audit := []gateway.AuditEntry{{Actor: gateway.Actor{Kind: gateway.ActorToken, ID: "t1"}, Action: "user.update", Target: "user:" + u.ID}}
	cases := []struct {
		name    string
		version uint64
		fn      gateway.UserUpdateFunc
		want    gateway.ErrorCode
	}{
		{"stale If-Match version", 7, func(cur *gateway.User) (gateway.UserChange, error) {
			cur.UserName = "x@x.example"
			cur.Version++
			return gateway.UserChange{User: cur, Events: ev(gateway.OpUserUpdated), Audit: audit}, nil
		}, gateway.ErrPreconditionFailed},
		{"the decision fails", 0, func(*gateway.User) (gateway.UserChange, error) {
			return gateway.UserChange{}, gateway.Errorf(gateway.ErrInvalid, "no")
		}, gateway.ErrInvalid},
		{"not stamped", 0, func(cur *gateway.User) (gateway.UserChange, error) {
			cur.UserName = "x@x.example"
			return gateway.UserChange{User: cur, Events: ev(gateway.OpUserUpdated), Audit: audit}, nil
		}, gateway.ErrInternal},
		{"stamped twice", 0, func(cur *gateway.User) (gateway.UserChange, error) {
			cur.Version += 2
			return gateway.UserChange{User: cur, Events: ev(gateway.OpUserUpdated)}, nil
		}, gateway.ErrInternal},
		{"another user's id", 0, func(cur *gateway.User) (gateway.UserChange, error) {
			cur.ID, cur.Version = "someone-else", cur.Version+1
			return gateway.UserChange{User: cur}, nil
		}, gateway.ErrInternal},
		{"no record and not unchanged", 0, func(*gateway.User) (gateway.UserChange, error) {
			return gateway.UserChange{Events: ev(gateway.OpUserUpdated)}, nil
		}, gateway.ErrInternal},
	}
	for _, tc := range cases {
		if _, err := s.Users().Update(ctx(), orgA, u.ID, tc.version, tc.fn); code(err) != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
	if _, err := s.Users().Update(ctx(), orgA, "missing", 0, cases[0].fn); code(err) != gateway.ErrNotFound {
		t.Fatalf("update of a missing user: %v", err)
	}
	if err := s.Users().Delete(ctx(), orgA, u.ID, 9, func(*gateway.User, []*gateway.Group) (gateway.UserDeletion, error) {
		return gateway.UserDeletion{Events: ev(gateway.OpUserDeleted)}, nil
	}); code(err) != gateway.ErrPreconditionFailed {
		t.Fatalf("delete at a stale version: %v", err)
	}
	got, _ := s.Users().Get(ctx(), orgA, u.ID)
	if got.UserName != "ada@x.example" || got.Version != 1 {
		t.Fatalf("the user changed: %+v", got)
	}
	if got := lookup(t, s, orgA, gateway.UserByUserName, "x@x.example"); len(got) != 0 {
		t.Fatalf("a refused rename is indexed: %v", got)
	}
	if n := lastSeq(t, s, orgA); n != seq0 {
		t.Fatalf("refused writes recorded events: last seq %d, was %d", n, seq0)
	}
	if a := auditActions(t, s, orgA); len(a) != 0 {
		t.Fatalf("refused writes left audit entries: %v", a)
	}
	// Unchanged writes nothing, whatever the function did to its copy.
	same, err := s.Users().Update(ctx(), orgA, u.ID, 1, func(cur *gateway.User) (gateway.UserChange, error) {
		cur.UserName = "ignored@x.example"
		return gateway.UserChange{User: cur, Unchanged: true}, nil
	})
	if err != nil || same.Version != 1 || same.UserName != "ada@x.example" || lastSeq(t, s, orgA) != seq0 {
		t.Fatalf("unchanged: %+v %v", same, err)
	}
	// Unchanged with events records the events only (an invitation).
	if same, err = s.Users().Update(ctx(), orgA, u.ID, 0, func(*gateway.User) (gateway.UserChange, error) {
		return gateway.UserChange{Unchanged: true, Events: ev(gateway.OpInvitationCreated)}, nil
	}); err != nil || same.Version != 1 || lastSeq(t, s, orgA) != seq0+1 {
		t.Fatalf("events without a change: %+v %v", same, err)
	}
	// A change without events (a login, a role) is still a change.
	changed, err := s.Users().Update(ctx(), orgA, u.ID, 1, bump(nil, func(cur *gateway.User) { cur.Role = "manager" }))
	if err != nil || changed.Version != 2 || changed.Role != "manager" {
		t.Fatalf("a change without events: %+v %v", changed, err)
	}
	if got, _ := s.Users().Get(ctx(), orgA, u.ID); got.Version != 2 || got.Role != "manager" {
		t.Fatalf("stored: %+v", got)
	}
}

// testAtomicJournal: events and audit entries are written with the record
// or not at all, for creates, updates and deletes.
func testAtomicJournal(t *testing.T, s gateway.Store) {
	entry := func(action string) gateway.AuditEntry {
		return gateway.AuditEntry{Actor: gateway.Actor{Kind: gateway.ActorSession, ID: "m1"}, Action: action, Target: "user:x"}
	}
	u := newUser(orgA, "ada@x.example")
	if err := s.Users().Create(ctx(), u, ev(gateway.OpUserCreated), entry("user.create")); err != nil {
		t.Fatal(err)
	}
	dup := newUser(orgA, "ADA@x.example")
	if err := s.Users().Create(ctx(), dup, ev(gateway.OpUserCreated), entry("user.create.refused")); code(err) != gateway.ErrConflict {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := s.Users().Update(ctx(), orgA, u.ID, 1, func(cur *gateway.User) (gateway.UserChange, error) {
		cur.Role, cur.Version = "manager", cur.Version+1
		return gateway.UserChange{User: cur, Events: ev(gateway.OpUserUpdated), Audit: []gateway.AuditEntry{entry("user.role")}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Users().Update(ctx(), orgA, u.ID, 1, func(cur *gateway.User) (gateway.UserChange, error) {
		cur.Role, cur.Version = "user", cur.Version+1
		return gateway.UserChange{User: cur, Events: ev(gateway.OpUserUpdated), Audit: []gateway.AuditEntry{entry("user.role.stale")}}, nil
	}); code(err) != gateway.ErrPreconditionFailed {
		t.Fatalf("stale update: %v", err)
	}
	if err := s.Users().Delete(ctx(), orgA, u.ID, 2, func(*gateway.User, []*gateway.Group) (gateway.UserDeletion, error) {
		return gateway.UserDeletion{Events: ev(gateway.OpUserDeleted), Audit: []gateway.AuditEntry{entry("user.delete")}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := auditActions(t, s, orgA), []string{"user.delete", "user.role", "user.create"}; !slices.Equal(got, want) {
		t.Fatalf("audit %v, want %v", got, want)
	}
	evs, _ := s.Outbox().After(ctx(), orgA, 0, 10)
	var ops []gateway.Op
	for _, e := range evs {
		ops = append(ops, e.Op)
	}
	if want := []gateway.Op{gateway.OpUserCreated, gateway.OpUserUpdated, gateway.OpUserDeleted}; !slices.Equal(ops, want) {
		t.Fatalf("events %v, want %v", ops, want)
	}
}

func testListAndScan(t *testing.T, s gateway.Store) {
	var want []string
	for i := range 25 {
		want = append(want, mustCreate(t, s, newUser(orgA, fmt.Sprintf("u%02d@x.example", i))).ID)
	}
	slices.Sort(want)
	var paged []string
	for off := 0; off < 30; off += 10 {
		page, total, err := s.Users().List(ctx(), orgA, off, 10)
		if err != nil || total != 25 {
			t.Fatalf("list at %d: total %d %v", off, total, err)
		}
		for _, u := range page {
			paged = append(paged, u.ID)
		}
	}
	if !slices.Equal(paged, want) {
		t.Fatalf("pages in id order: %v, want %v", paged, want)
	}
	if page, total, _ := s.Users().List(ctx(), orgA, 0, 0); len(page) != 0 || total != 25 {
		t.Fatalf("limit 0: %d users, total %d", len(page), total)
	}
	// Scan: id order, from after the given id, stopping when told. The
	// callback may not use the store (a backend may hold a transaction).
	var scanned []string
	if err := s.Users().Scan(ctx(), orgA, want[9], func(u *gateway.User) bool {
		scanned = append(scanned, u.ID)
		return len(scanned) < 5
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(scanned, want[10:15]) {
		t.Fatalf("scan after %s: %v, want %v", want[9], scanned, want[10:15])
	}
	var gs []string
	for i := range 3 {
		gs = append(gs, mustCreateGroup(t, s, newGroup(orgA, fmt.Sprintf("g%d", i))).ID)
	}
	var gscanned []string
	_ = s.Groups().Scan(ctx(), orgA, func(g *gateway.Group) bool { gscanned = append(gscanned, g.ID); return len(gscanned) < 2 })
	if !slices.Equal(gscanned, gs[:2]) {
		t.Fatalf("group scan: %v", gscanned)
	}
	if page, total, err := s.Groups().List(ctx(), orgA, 1, 10); err != nil || total != 3 || len(page) != 2 || page[0].ID != gs[1] {
		t.Fatalf("group list: %v %d %v", page, total, err)
	}
}

// testScanSummaries: the summaries carry the typed fields, and a search's
// first cut never drops a user that holds the text.
func testScanSummaries(t *testing.T, s gateway.Store) {
	mk := func(name, given string) *gateway.User {
		u := newUser(orgA, name, name)
		u.GivenName = given
		u.Attributes = gateway.NewDocument(map[string]any{"userName": name, "name": map[string]any{"givenName": given}})
		return mustCreate(t, s, u)
	}
	ada, strasse, bob := mk("ada@example.com", "Ada"), mk("s@example.com", "Straße"), mk("bob@example.com", "Bob")
	for q, must := range map[string][]string{
		"":        {ada.ID, strasse.ID, bob.ID},
		"ada":     {ada.ID},
		"example": {ada.ID, strasse.ID, bob.ID},
		"bob":     {bob.ID},
	} {
		var got []string
		if err := s.Users().ScanSummaries(ctx(), orgA, "", q, func(u *gateway.User) bool {
			if u.UserName == "" || u.ID == "" {
				t.Errorf("a summary without its typed fields: %+v", u)
			}
			got = append(got, u.ID)
			return true
		}); err != nil {
			t.Fatal(err)
		}
		for _, id := range must {
			if !slices.Contains(got, id) {
				t.Errorf("%q: %s was dropped (got %v)", q, id, got)
			}
		}
		if !slices.IsSorted(got) {
			t.Errorf("%q: not in id order: %v", q, got)
		}
	}
}

func testPoolIndex(t *testing.T, s gateway.Store) {
	u := newUser(orgA, "ada@example.com")
	u.Pools = []string{"default", "support"}
	mustCreate(t, s, u)
	if !slices.Equal(lookup(t, s, orgA, gateway.UserByPool, "support"), []string{u.ID}) ||
		!slices.Equal(lookup(t, s, orgA, gateway.UserByPool, "default"), []string{u.ID}) {
		t.Fatal("a new user is not indexed under its pools")
	}
	if _, err := s.Users().Update(ctx(), orgA, u.ID, 0, bump(nil, func(cur *gateway.User) { cur.Pools = []string{"sales"} })); err != nil {
		t.Fatal(err)
	}
	if len(lookup(t, s, orgA, gateway.UserByPool, "support")) != 0 || !slices.Equal(lookup(t, s, orgA, gateway.UserByPool, "sales"), []string{u.ID}) {
		t.Fatal("a pool change does not move the index entries")
	}
}

// testIsolation: two organizations share nothing: names, ids, lookups,
// events, audit, records, sessions, ephemeral values and keys.
func testIsolation(t *testing.T, s gateway.Store) {
	a := mustCreate(t, s, newUser(orgA, "ada@example.com", "ada@example.com"))
	b := mustCreate(t, s, newUser(orgB, "ada@example.com", "ada@example.com")) // the same name elsewhere is fine
	if _, err := s.Users().Get(ctx(), orgB, a.ID); code(err) != gateway.ErrNotFound {
		t.Fatalf("org B reads org A's user: %v", err)
	}
	if got := lookup(t, s, orgB, gateway.UserByEmail, "ada@example.com"); !slices.Equal(got, []string{b.ID}) {
		t.Fatalf("lookup in org B: %v", got)
	}
	if _, err := s.Users().Update(ctx(), orgB, a.ID, 0, bump(nil, func(cur *gateway.User) { cur.Role = "manager" })); code(err) != gateway.ErrNotFound {
		t.Fatalf("org B updates org A's user: %v", err)
	}
	if page, total, err := s.Users().List(ctx(), "org-none", 0, 10); err != nil || total != 0 || len(page) != 0 {
		t.Fatalf("an organization with nothing: %v %d %v", page, total, err)
	}
	if n := lastSeq(t, s, orgB); n != 1 {
		t.Fatalf("org B's events are numbered from 1 on their own: last %d", n)
	}
	if _, err := s.Records().Put(ctx(), orgA, "pool", "p", 0, []byte(`{}`), gateway.Journal{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Records().Get(ctx(), orgB, "pool", "p"); code(err) != gateway.ErrNotFound {
		t.Fatalf("org B reads org A's record: %v", err)
	}
	if ok, _ := s.Ephemeral().PutIfAbsent(ctx(), orgA, "replay", "id1", nil, farFuture); !ok {
		t.Fatal("put")
	}
	if ok, _ := s.Ephemeral().PutIfAbsent(ctx(), orgB, "replay", "id1", nil, farFuture); !ok {
		t.Fatal("org A's replay record blocks org B's")
	}
	ka, _ := s.Keys().PutIfAbsent(ctx(), orgA, "k", []byte("a"))
	kb, _ := s.Keys().PutIfAbsent(ctx(), orgB, "k", []byte("b"))
	if string(ka) != "a" || string(kb) != "b" {
		t.Fatalf("keys shared across organizations: %q %q", ka, kb)
	}
}

// testNoOrganization: a call that names no organization is refused
// (ErrInvalid), reads and writes alike; nothing lands in any
// organization in its place.
func testNoOrganization(t *testing.T, s gateway.Store) {
	const none gateway.OrgID = ""
	u := newUser(none, "ada@example.com")
	g := newGroup(none, "eng")
	now := time.Now()
	calls := map[string]func() error{
		"Users.Create": func() error { return s.Users().Create(ctx(), u, ev(gateway.OpUserCreated)) },
		"Users.Get":    func() error { _, err := s.Users().Get(ctx(), none, "x"); return err },
		"Users.List":   func() error { _, _, err := s.Users().List(ctx(), none, 0, 10); return err },
		"Users.Lookup": func() error {
			_, err := s.Users().Lookup(ctx(), none, gateway.UserByUserName, "ada@example.com")
			return err
		},
		"Users.Update": func() error {
			_, err := s.Users().Update(ctx(), none, "x", 0, bump(nil, func(*gateway.User) {}))
			return err
		},
		"Users.Scan":    func() error { return s.Users().Scan(ctx(), none, "", func(*gateway.User) bool { return true }) },
		"Groups.Create": func() error { return s.Groups().Create(ctx(), g, nil, ev(gateway.OpGroupCreated)) },
		"Groups.Get":    func() error { _, err := s.Groups().Get(ctx(), none, "x"); return err },
		"Outbox.After":  func() error { _, err := s.Outbox().After(ctx(), none, 0, 10); return err },
		"Outbox.Ack":    func() error { return s.Outbox().Ack(ctx(), none, "hook", 1, nil, nil) },
		"Sessions.Create": func() error {
			return s.Sessions().Create(ctx(), gateway.Session{ID: "s", UserID: "u", Created: now, LastSeen: now, Expires: now.Add(time.Hour)})
		},
		"Sessions.Get": func() error { _, err := s.Sessions().Get(ctx(), none, "s"); return err },
		"Ephemeral.PutIfAbsent": func() error {
			_, err := s.Ephemeral().PutIfAbsent(ctx(), none, "replay", "a", nil, now.Add(time.Hour))
			return err
		},
		"Keys.PutIfAbsent": func() error { _, err := s.Keys().PutIfAbsent(ctx(), none, "k", []byte("v")); return err },
		"IDMaps.Put":       func() error { return s.IDMaps().Put(ctx(), none, "rest", "u", "1") },
		"Records.Put": func() error {
			_, err := s.Records().Put(ctx(), none, "pool", "p", 0, []byte(`{}`), gateway.Journal{})
			return err
		},
		"Audit.Append": func() error { return s.Audit().Append(ctx(), none, gateway.AuditEntry{Action: "x"}) },
	}
	for name, call := range calls {
		if err := call(); code(err) != gateway.ErrInvalid {
			t.Errorf("%s without an organization: %v, want %s", name, err, gateway.ErrInvalid)
		}
	}
	for _, org := range []gateway.OrgID{orgA, gateway.OrgID("default")} {
		if _, total, _ := s.Users().List(ctx(), org, 0, 0); total != 0 || lastSeq(t, s, org) != 0 {
			t.Errorf("a call without an organization wrote into %s", org)
		}
	}
}

// testReplace: a change decided before the call is written only over the
// version it was decided from, with its indexes, events and audit entry.
func testReplace(t *testing.T, s gateway.Store) {
	u := mustCreate(t, s, newUser(orgA, "ada@x.example", "ada@x.example"))
	mustCreate(t, s, newUser(orgA, "taken@x.example"))
	seq0 := lastSeq(t, s, orgA)
	next := func(f func(*gateway.User)) *gateway.User {
		nu := u.Clone()
		nu.Version = u.Version + 1
		f(nu)
		return nu
	}
	entry := gateway.AuditEntry{Actor: gateway.Actor{Kind: gateway.ActorToken, ID: "t"}, Action: "user.update", Target: "user:" + u.ID}
	for _, tc := range []struct {
		name      string
		nu        *gateway.User
		ifVersion uint64
		want      gateway.ErrorCode
	}{
		{"stale version", next(func(nu *gateway.User) { nu.Role = "x"; nu.Version = 3 }), 2, gateway.ErrPreconditionFailed},
		{"not stamped", next(func(nu *gateway.User) { nu.Version = 1 }), 1, gateway.ErrInternal},
		{"no version to compare", next(func(nu *gateway.User) { nu.Version = 1 }), 0, gateway.ErrInternal},
		{"onto a taken name", next(func(nu *gateway.User) { nu.UserName = "TAKEN@x.example" }), 1, gateway.ErrConflict},
		{"a user that is not there", next(func(nu *gateway.User) { nu.ID = "missing" }), 1, gateway.ErrNotFound},
	} {
		if err := s.Users().Replace(ctx(), tc.nu, tc.ifVersion, ev(gateway.OpUserUpdated), entry); code(err) != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
	if lastSeq(t, s, orgA) != seq0 || len(auditActions(t, s, orgA)) != 0 {
		t.Fatal("refused replaces recorded events or audit entries")
	}
	nu := next(func(nu *gateway.User) {
		nu.UserName, nu.Emails, nu.Pools, nu.Active = "ada.l@x.example", []string{"ada.l@x.example"}, []string{"support"}, false
		nu.Attributes = gateway.NewDocument(map[string]any{"userName": "ada.l@x.example", "title": "Countess"})
	})
	if err := s.Users().Replace(ctx(), nu, 1, ev(gateway.OpUserDeactivated), entry); err != nil {
		t.Fatal(err)
	}
	got, err := s.Users().Get(ctx(), orgA, u.ID)
	if err != nil || got.Version != 2 || got.UserName != "ada.l@x.example" || got.Active {
		t.Fatalf("after the replace: %+v %v", got, err)
	}
	if m, _ := got.Attributes.Map(); m["title"] != "Countess" {
		t.Fatalf("the document: %v", m)
	}
	for idx, v := range map[gateway.UserIndex]string{gateway.UserByUserName: "ada.l@x.example", gateway.UserByEmail: "ada.l@x.example", gateway.UserByPool: "support"} {
		if got := lookup(t, s, orgA, idx, v); !slices.Equal(got, []string{u.ID}) {
			t.Errorf("%s %s: %v", idx, v, got)
		}
	}
	if got := lookup(t, s, orgA, gateway.UserByEmail, "ada@x.example"); len(got) != 0 {
		t.Errorf("the old email still finds the user: %v", got)
	}
	evs, _ := s.Outbox().After(ctx(), orgA, seq0, 10)
	if len(evs) != 1 || evs[0].Op != gateway.OpUserDeactivated || evs[0].Seq != seq0+1 || evs[0].Org != orgA {
		t.Fatalf("events: %+v", evs)
	}
	if a := auditActions(t, s, orgA); !slices.Equal(a, []string{"user.update"}) {
		t.Fatalf("audit: %v", a)
	}
	// The same change again is stale now.
	if err := s.Users().Replace(ctx(), nu, 1, nil); code(err) != gateway.ErrPreconditionFailed {
		t.Fatalf("a replay of the replace: %v", err)
	}
}

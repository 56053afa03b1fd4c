// Package storetest is the contract every gateway.Store backend keeps,
// as a suite a backend's own test runs (dex's storage conformance is the
// model):
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) gateway.Store { return openEmptyStore(t) })
//	}
//
// open returns a new, empty store for each subtest and arranges its
// Close (t.Cleanup). A backend passes the suite unchanged; what it may do
// besides (its own layout, migrations, crash recovery) it tests itself.
// RunShared adds what two openers of one store (replicas) must agree on.
//
// What the suite writes down, beyond "what was written is read back":
//   - events are numbered per organization from 1, strictly increasing and
//     without gaps, in commit order: a reader never sees seq n+1 before n,
//     so a gap always means pruned (the feed's 410) and an adapter's cursor
//     never skips an event;
//   - userName and group displayName are unique per organization on the
//     folding key (gateway/fold: full case folding and NFC, not lower());
//     of racing creates of one name exactly one wins;
//   - versions: a write names the version it was computed from (0: any),
//     a stale one is ErrPreconditionFailed, and nothing is written;
//   - a record, its indexes, its events and its audit entries commit
//     together or not at all;
//   - scans visit in id order and stop when the callback says so;
//   - Changed(org) wakes a consumer when org's next events commit, and
//     caches (the proxy's sessions) when a user or group changes or
//     sessions end, events or not;
//   - ephemeral values are single use and as good as absent once
//     expired; Sweep deletes those; sessions end by id, user, all, or
//     expiry; keys are created once however many ask at once; id maps,
//     records and the audit log page as documented;
//   - organizations are isolated from each other; the registry of
//     organizations keeps ids and domains unique (domains in any case)
//     and audits the operator's changes in gateway.OperatorScope.
package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// The organizations the suite writes into.
const (
	orgA gateway.OrgID = "org-a"
	orgB gateway.OrgID = "org-b"
)

// Run runs the whole suite; open gives each subtest a new, empty store.
func Run(t *testing.T, open func(t *testing.T) gateway.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s gateway.Store)
	}{
		{"UserCreateAndRead", testUserCreateAndRead},
		{"UserNamesUniqueOnTheFoldingKey", testNamesUniqueOnFoldingKey},
		{"RacingCreatesOfOneNameOneWins", testRacingCreates},
		{"IndexesFollowUpdatesAndDeletes", testIndexesFollowUpdatesAndDeletes},
		{"FailedWritesChangeNothing", testFailedWritesChangeNothing},
		{"ReplaceADecidedChange", testReplace},
		{"RecordEventsAndAuditCommitTogether", testAtomicJournal},
		{"GroupMembership", testGroupMembership},
		{"ListAndScan", testListAndScan},
		{"ScanSummaries", testScanSummaries},
		{"PoolIndex", testPoolIndex},
		{"OrganizationsAreIsolated", testIsolation},
		{"EveryCallNamesAnOrganization", testNoOrganization},
		{"OrganizationRegistry", testOrgRegistry},
		{"OrganizationErasure", testOrgErasure},
		{"EventNumbersGaplessInCommitOrder", testEventNumbering},
		{"OutboxCursorsDeadLettersPruning", testOutboxDelivery},
		{"ChangedSignal", testChangedSignal},
		{"ChangedByWhatCachesKeep", testChangedByWhatCachesKeep},
		{"EphemeralValues", testEphemeral},
		{"PutIfAbsentAndTake", testPutIfAbsentAndTake},
		{"EphemeralSweep", testEphemeralSweep},
		{"Sessions", testSessions},
		{"IdPLogout", testIdPLogout},
		{"Keys", testKeys},
		{"IDMaps", testIDMaps},
		{"Records", testRecords},
		{"AuditPaging", testAuditPaging},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

var ids atomic.Uint64

// newID is a fresh id, ordered like the provisioning core's (time-sortable
// strings: the suite's own counter, zero-padded).
func newID(prefix string) string { return fmt.Sprintf("%s-%08d", prefix, ids.Add(1)) }

func code(err error) gateway.ErrorCode { return gateway.ErrorCodeOf(err) }

func ctx() context.Context { return context.Background() }

// newUser is a stamped new user of org (version 1).
func newUser(org gateway.OrgID, name string, emails ...string) *gateway.User {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &gateway.User{ID: newID("u"), Org: org, UserName: name, Active: true, Emails: emails, ExternalID: "ext-" + name,
		Source: gateway.SourceSCIM, Version: 1, Created: now, Modified: now,
		Attributes: gateway.NewDocument(map[string]any{"userName": name})}
}

// newGroup is a stamped new group of org.
func newGroup(org gateway.OrgID, name string) *gateway.Group {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &gateway.Group{ID: newID("g"), Org: org, DisplayName: name, Source: gateway.SourceSCIM, Version: 1, Created: now, Modified: now,
		Attributes: gateway.NewDocument(map[string]any{"displayName": name})}
}

// ev is one event of op.
func ev(op gateway.Op) []gateway.Event {
	return []gateway.Event{{ID: newID("e"), Op: op, Source: gateway.SourceSCIM, OccurredAt: time.Now().UTC()}}
}

func mustCreate(t *testing.T, s gateway.Store, u *gateway.User) *gateway.User {
	t.Helper()
	if err := s.Users().Create(ctx(), u, ev(gateway.OpUserCreated)); err != nil {
		t.Fatalf("create %s: %v", u.UserName, err)
	}
	return u
}

func mustCreateGroup(t *testing.T, s gateway.Store, g *gateway.Group, members ...gateway.Member) *gateway.Group {
	t.Helper()
	if err := s.Groups().Create(ctx(), g, members, ev(gateway.OpGroupCreated)); err != nil {
		t.Fatalf("create group %s: %v", g.DisplayName, err)
	}
	return g
}

// bump is an update that changes f and stamps the next version.
func bump(events []gateway.Event, f func(u *gateway.User)) gateway.UserUpdateFunc {
	return func(cur *gateway.User) (gateway.UserChange, error) {
		f(cur)
		cur.Version++
		return gateway.UserChange{User: cur, Events: events}, nil
	}
}

func lastSeq(t *testing.T, s gateway.Store, org gateway.OrgID) uint64 {
	t.Helper()
	n, err := s.Outbox().LastSeq(ctx(), org)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func lookup(t *testing.T, s gateway.Store, org gateway.OrgID, idx gateway.UserIndex, v string) []string {
	t.Helper()
	got, err := s.Users().Lookup(ctx(), org, idx, v)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func groupLookup(t *testing.T, s gateway.Store, org gateway.OrgID, idx gateway.GroupIndex, v string) []string {
	t.Helper()
	got, err := s.Groups().Lookup(ctx(), org, idx, v)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func auditActions(t *testing.T, s gateway.Store, org gateway.OrgID) []string {
	t.Helper()
	entries, _, err := s.Audit().List(ctx(), org, gateway.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Action)
	}
	return out
}

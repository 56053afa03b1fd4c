package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

var farFuture = time.Now().Add(24 * time.Hour)

func testEphemeral(t *testing.T, s gateway.Store) {
	e := s.Ephemeral()
	soon := time.Now().Add(time.Hour)
	if ok, err := e.PutIfAbsent(ctx(), orgA, "replay", "a1", nil, soon); !ok || err != nil {
		t.Fatalf("first put: %v %v", ok, err)
	}
	if ok, _ := e.PutIfAbsent(ctx(), orgA, "replay", "a1", nil, soon); ok {
		t.Fatal("a second put of a live key succeeded (a replay would pass)")
	}
	if ok, _ := e.PutIfAbsent(ctx(), orgA, "other", "a1", nil, soon); !ok {
		t.Fatal("namespaces are not separate")
	}
	if ok, _ := e.PutIfAbsent(ctx(), orgA, "replay", "old", nil, time.Now().Add(-time.Second)); !ok {
		t.Fatal("put of an already expired value")
	}
	if ok, _ := e.PutIfAbsent(ctx(), orgA, "replay", "old", nil, soon); !ok {
		t.Fatal("an expired key blocks a new value")
	}
	if _, err := e.PutIfAbsent(ctx(), orgA, "req", "r1", []byte("return=/x"), soon); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.Take(ctx(), orgA, "req", "r1"); string(v) != "return=/x" {
		t.Fatalf("take: %q", v)
	}
	if v, _ := e.Take(ctx(), orgA, "req", "r1"); v != nil {
		t.Fatal("a value was taken twice")
	}
	if _, err := e.PutIfAbsent(ctx(), orgA, "req", "gone", []byte("x"), time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.Take(ctx(), orgA, "req", "gone"); v != nil {
		t.Fatal("an expired value was taken")
	}
	// Racing puts of one key: one wins (two browsers replaying one
	// assertion at once cannot both sign in).
	var wins sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 20 {
		wins.Go(func() {
			if ok, err := e.PutIfAbsent(ctx(), orgA, "replay", "raced", nil, soon); err == nil && ok {
				mu.Lock()
				won++
				mu.Unlock()
			}
		})
	}
	wins.Wait()
	if won != 1 {
		t.Fatalf("%d racing puts of one key won", won)
	}
}

// testPutIfAbsentAndTake: the put and the take happen together or not at
// all: a replayed assertion takes no request.
func testPutIfAbsentAndTake(t *testing.T, s gateway.Store) {
	e := s.Ephemeral()
	later := time.Now().Add(time.Hour)
	if _, err := e.PutIfAbsent(ctx(), orgA, "req", "r1", []byte("return=/x"), later); err != nil {
		t.Fatal(err)
	}
	stored, taken, err := e.PutIfAbsentAndTake(ctx(), orgA, "replay", "a1", nil, later, "req", "r1")
	if err != nil || !stored || string(taken) != "return=/x" {
		t.Fatalf("first: %v %q %v", stored, taken, err)
	}
	if _, err := e.PutIfAbsent(ctx(), orgA, "req", "r2", []byte("return=/y"), later); err != nil {
		t.Fatal(err)
	}
	stored, taken, err = e.PutIfAbsentAndTake(ctx(), orgA, "replay", "a1", nil, later, "req", "r2")
	if err != nil || stored || taken != nil {
		t.Fatalf("a replay: %v %q %v", stored, taken, err)
	}
	if v, _ := e.Take(ctx(), orgA, "req", "r2"); string(v) != "return=/y" {
		t.Fatalf("a replay took the other request: %q", v)
	}
	if stored, taken, err = e.PutIfAbsentAndTake(ctx(), orgA, "replay", "a2", nil, later, "req", ""); err != nil || !stored || taken != nil {
		t.Fatalf("nothing to take: %v %q %v", stored, taken, err)
	}
	if stored, taken, err = e.PutIfAbsentAndTake(ctx(), orgA, "replay", "a3", nil, later, "req", "never-made"); err != nil || !stored || taken != nil {
		t.Fatalf("a request that was never made: %v %q %v", stored, taken, err)
	}
}

// testEphemeralSweep: Sweep deletes exactly what expired before now, in
// one organization, and says how many.
func testEphemeralSweep(t *testing.T, s gateway.Store) {
	e := s.Ephemeral()
	base := time.Now()
	for i := range 30 {
		if _, err := e.PutIfAbsent(ctx(), orgA, "replay", fmt.Sprintf("a%d", i), nil, base.Add(time.Duration(i+1)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.PutIfAbsent(ctx(), orgB, "replay", "b", nil, base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, err := e.Sweep(ctx(), orgA, base); err != nil || n != 0 {
		t.Fatalf("sweep before any expiry: %d %v", n, err)
	}
	if n, err := e.Sweep(ctx(), orgA, base.Add(10*time.Minute+time.Second)); err != nil || n != 10 {
		t.Fatalf("sweep after ten expired: %d %v", n, err)
	}
	if n, _ := e.Sweep(ctx(), orgA, base.Add(10*time.Minute+time.Second)); n != 0 {
		t.Fatalf("a second sweep at the same time: %d", n)
	}
	if ok, _ := e.PutIfAbsent(ctx(), orgA, "replay", "a20", nil, farFuture); ok {
		t.Fatal("a sweep deleted a live value")
	}
	if n, _ := e.Sweep(ctx(), orgA, base.Add(time.Hour)); n != 20 {
		t.Fatalf("the rest: %d, want 20", n)
	}
	if n, _ := e.Sweep(ctx(), orgB, base.Add(time.Hour)); n != 1 {
		t.Fatalf("org B: %d, want its own 1", n)
	}
}

func testSessions(t *testing.T, s gateway.Store) {
	at := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	ss := s.Sessions()
	for i, user := range []string{"u1", "u1", "u2", "u3"} {
		se := gateway.Session{ID: fmt.Sprintf("s%d", i), Org: orgA, UserID: user, Protocol: "saml", Created: at, LastSeen: at, Expires: at.Add(time.Duration(i+1) * time.Hour)}
		if err := ss.Create(ctx(), se); err != nil {
			t.Fatal(err)
		}
	}
	if err := ss.Create(ctx(), gateway.Session{ID: "sb", Org: orgB, UserID: "u1", Protocol: "oidc", Created: at, LastSeen: at, Expires: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got, err := ss.Get(ctx(), orgA, "s1"); err != nil || got.UserID != "u1" || got.Protocol != "saml" || !got.Expires.Equal(at.Add(2*time.Hour)) || !got.Created.Equal(at) {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := ss.Get(ctx(), orgA, "nope"); code(err) != gateway.ErrNotFound {
		t.Fatalf("get of an unknown session: %v", err)
	}
	if err := ss.Touch(ctx(), orgA, "s2", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := ss.Get(ctx(), orgA, "s2"); !got.LastSeen.Equal(at.Add(time.Minute)) {
		t.Fatalf("touch: last seen %v", got.LastSeen)
	}
	if list, err := ss.ListUser(ctx(), orgA, "u1"); err != nil || len(list) != 2 {
		t.Fatalf("list u1: %v %v", list, err)
	}
	last, err := ss.LastLogins(ctx(), orgA, []string{"u1", "u2", "nobody"})
	if err != nil || !last["u1"].Equal(at) || !last["u2"].Equal(at) || !last["nobody"].IsZero() {
		t.Fatalf("last logins: %v %v", last, err)
	}
	// Revocation: by user (deactivation), one by one (sign-out), all.
	if n, err := ss.DeleteUser(ctx(), orgA, "u1"); err != nil || n != 2 {
		t.Fatalf("delete user: %d %v", n, err)
	}
	if _, err := ss.Get(ctx(), orgA, "s0"); code(err) != gateway.ErrNotFound {
		t.Fatalf("a deleted user's session: %v", err)
	}
	if _, err := ss.Get(ctx(), orgB, "sb"); err != nil {
		t.Fatalf("org B's session of a user with the same id went too: %v", err)
	}
	if err := ss.Delete(ctx(), orgA, "s3"); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Get(ctx(), orgA, "s3"); code(err) != gateway.ErrNotFound {
		t.Fatalf("a deleted session: %v", err)
	}
	// Expiry: past the absolute end, or idle since before idleBefore.
	if n, _ := ss.Expire(ctx(), orgA, at.Add(2*time.Hour), at.Add(30*time.Second)); n != 0 {
		t.Fatalf("expired %d, want 0 (s2 ends at +3h and was seen at +1m)", n)
	}
	if n, _ := ss.Expire(ctx(), orgA, at.Add(90*time.Minute), at.Add(2*time.Minute)); n != 1 {
		t.Fatalf("expired %d, want 1 (idle)", n)
	}
	if n, _ := ss.Count(ctx(), orgA); n != 0 {
		t.Fatalf("count %d", n)
	}
	if n, _ := ss.Count(ctx(), orgB); n != 1 {
		t.Fatalf("org B count %d", n)
	}
	if n, err := ss.DeleteAll(ctx(), orgB); err != nil || n != 1 {
		t.Fatalf("delete all: %d %v", n, err)
	}
}

// testIdPLogout: an IdP's logout ends the sessions it names (by subject,
// by its session, by both) and no other, in its organization only; the
// index goes with sessions ended any other way.
func testIdPLogout(t *testing.T, s gateway.Store) {
	at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	ss := s.Sessions()
	for _, se := range []gateway.Session{
		{ID: "a1", Org: orgA, UserID: "u1", IdPSubject: "00u1", IdPSession: "sid-1"},
		{ID: "a2", Org: orgA, UserID: "u1", IdPSubject: "00u1", IdPSession: "sid-2"},
		{ID: "a3", Org: orgA, UserID: "u1", IdPSubject: "00u1"},
		{ID: "a4", Org: orgA, UserID: "u2", IdPSubject: "00u2", IdPSession: "sid-3"},
		{ID: "a5", Org: orgA, UserID: "u3"}, // from before logout: no IdP values
		{ID: "b1", Org: orgB, UserID: "u1", IdPSubject: "00u1", IdPSession: "sid-1"},
	} {
		se.Protocol, se.Created, se.LastSeen, se.Expires = "oidc", at, at, at.Add(time.Hour)
		if err := ss.Create(ctx(), se); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := ss.Get(ctx(), orgA, "a1"); got.IdPSubject != "00u1" || got.IdPSession != "sid-1" {
		t.Fatalf("the IdP's subject and session are not kept: %+v", got)
	}
	ids := func(list []gateway.Session) []string {
		var out []string
		for _, se := range list {
			out = append(out, se.ID)
		}
		slices.Sort(out)
		return out
	}
	if _, err := ss.EndIdP(ctx(), orgA, "", ""); code(err) != gateway.ErrInvalid {
		t.Fatalf("a logout naming nothing: %v, want invalid (it must not end every session)", err)
	}
	if ended, err := ss.EndIdP(ctx(), orgA, "00u1", "sid-2"); err != nil || !slices.Equal(ids(ended), []string{"a2"}) {
		t.Fatalf("subject and session: %v %v", ids(ended), err)
	}
	if ended, err := ss.EndIdP(ctx(), orgA, "", "sid-3"); err != nil || !slices.Equal(ids(ended), []string{"a4"}) || ended[0].UserID != "u2" {
		t.Fatalf("session only: %v %v", ended, err)
	}
	if err := ss.Delete(ctx(), orgA, "a3"); err != nil {
		t.Fatal(err)
	}
	if ended, err := ss.EndIdP(ctx(), orgA, "00u1", ""); err != nil || !slices.Equal(ids(ended), []string{"a1"}) {
		t.Fatalf("subject only (a3 was signed out before): %v %v", ids(ended), err)
	}
	if ended, err := ss.EndIdP(ctx(), orgA, "00u1", ""); err != nil || len(ended) != 0 {
		t.Fatalf("a second logout ended %v %v", ids(ended), err)
	}
	if _, err := ss.Get(ctx(), orgA, "a5"); err != nil {
		t.Fatalf("a session without IdP values went: %v", err)
	}
	if _, err := ss.Get(ctx(), orgB, "b1"); err != nil {
		t.Fatalf("org B's session with the same subject and sid went: %v", err)
	}
	if ended, err := ss.EndIdP(ctx(), orgB, "00u1", "sid-1"); err != nil || !slices.Equal(ids(ended), []string{"b1"}) {
		t.Fatalf("org B: %v %v", ids(ended), err)
	}
	if _, err := ss.DeleteAll(ctx(), orgA); err != nil {
		t.Fatal(err)
	}
}

// testKeys: a key is created once; however many ask at once, all get the
// stored one.
func testKeys(t *testing.T, s gateway.Store) {
	if v, err := s.Keys().Get(ctx(), orgA, "signing"); err != nil || v != nil {
		t.Fatalf("a missing key: %q %v", v, err)
	}
	stored := racingKeys(t, s)
	if v, _ := s.Keys().Get(ctx(), orgA, "signing"); !bytes.Equal(v, stored) {
		t.Fatalf("Get %q, PutIfAbsent answered %q", v, stored)
	}
}

// racingKeys puts one key with 16 values at once through the stores in
// turn, requires every caller to get the same one back, and returns it.
func racingKeys(t *testing.T, stores ...gateway.Store) []byte {
	t.Helper()
	got := make([][]byte, 16)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			v, err := stores[i%len(stores)].Keys().PutIfAbsent(ctx(), orgA, "signing", []byte(fmt.Sprintf("key-%d", i)))
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	for _, v := range got {
		if !bytes.Equal(v, got[0]) {
			t.Fatalf("racing PutIfAbsent disagree: %q and %q", v, got[0])
		}
	}
	return got[0]
}

func testIDMaps(t *testing.T, s gateway.Store) {
	m := s.IDMaps()
	if v, err := m.Get(ctx(), orgA, "rest", "u1"); err != nil || v != "" {
		t.Fatalf("missing: %q %v", v, err)
	}
	if err := m.Put(ctx(), orgA, "rest", "u1", "app-42"); err != nil {
		t.Fatal(err)
	}
	if err := m.Put(ctx(), orgA, "sql", "u1", "row-7"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		org           gateway.OrgID
		adapter, want string
	}{{orgA, "rest", "app-42"}, {orgA, "sql", "row-7"}, {orgB, "rest", ""}} {
		if v, _ := m.Get(ctx(), c.org, c.adapter, "u1"); v != c.want {
			t.Errorf("%s/%s: %q, want %q", c.org, c.adapter, v, c.want)
		}
	}
	if err := m.Put(ctx(), orgA, "rest", "u1", "app-43"); err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Get(ctx(), orgA, "rest", "u1"); v != "app-43" {
		t.Fatalf("overwrite: %q", v)
	}
	if err := m.Delete(ctx(), orgA, "rest", "u1"); err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Get(ctx(), orgA, "rest", "u1"); v != "" {
		t.Fatalf("after delete: %q", v)
	}
	if v, _ := m.Get(ctx(), orgA, "sql", "u1"); v != "row-7" {
		t.Fatalf("another adapter's map went too: %q", v)
	}
	if err := m.Delete(ctx(), orgA, "rest", "never"); err != nil {
		t.Fatalf("delete of a missing id: %v", err)
	}
}

package conformance

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// replicaPair starts two gateways sharing one PostgreSQL schema (two
// replicas behind one load balancer), each with its own data_dir, both
// delivering to hook.
func replicaPair(t *testing.T, hook *hookReceiver, extraEnv ...string) (a, b *gatewayUnderTest) {
	t.Helper()
	dsn, schema := pgSchema(t, "")
	env := append([]string{"GATEHOUSE_STORE_TYPE=postgres", "GATEHOUSE_STORE_POSTGRES_DSN=" + dsn, "GATEHOUSE_STORE_POSTGRES_SCHEMA=" + schema, unshared},
		webhookEnv(hook.srv.URL)...)
	env = append(env, extraEnv...)
	return startGateway(t, "", env...), startGateway(t, "", env...)
}

func userJSON(name string) string {
	return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + name + `","active":true,"emails":[{"value":"` + name + `","primary":true}]}`
}

// TestReplicasActAsOne: two gateways on one database are one gateway:
// what one acknowledges the other reads; names stay unique and If-Match
// holds across them; every change is delivered once, by one replica at a
// time, in order per user; when the delivering replica stops, the other
// takes over within seconds and nothing is lost.
func TestReplicasActAsOne(t *testing.T) {
	hook := newHookReceiver(t)
	a, b := replicaPair(t, hook)
	replicas := []*gatewayUnderTest{a, b}

	// Writes through both, each read back through the other.
	var ids []string
	for i := range 20 {
		w, r := replicas[i%2], replicas[(i+1)%2]
		id := w.call("POST", "/Users", userJSON(fmt.Sprintf("u%02d@example.com", i))).must(t, 201).str("id")
		r.call("GET", "/Users/"+id, "").must(t, 200)
		r.call("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"n`+fmt.Sprint(i)+`"}]}`).must(t, 200)
		ids = append(ids, id)
	}

	// Racing creates of one name, spread over both: one wins.
	var wg sync.WaitGroup
	statuses := make([]int, 10)
	for i := range statuses {
		wg.Go(func() { statuses[i] = replicas[i%2].call("POST", "/Users", userJSON("race@example.com")).status })
	}
	wg.Wait()
	won := 0
	for _, s := range statuses {
		switch s {
		case 201:
			won++
		case 409:
		default:
			t.Fatalf("a racing create answered %d", s)
		}
	}
	if won != 1 {
		t.Fatalf("%d racing creates of one name won across replicas, want 1 (%v)", won, statuses)
	}

	// A stale If-Match from one replica is refused by the other.
	stale := a.call("GET", "/Users/"+ids[0], "").must(t, 200).header.Get("ETag")
	b.call("PATCH", "/Users/"+ids[0], `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"fresh"}]}`,
		"If-Match", stale).must(t, 200)
	a.call("PATCH", "/Users/"+ids[0], `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"stale"}]}`,
		"If-Match", stale).scimError(t, 412, "")

	checkDelivered := func(what string) {
		t.Helper()
		last, err := a.app.Store().Outbox().LastSeq(context.Background(), "default")
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, what, func() bool { return len(hook.events()) >= int(last) })
		hook.mu.Lock()
		defer hook.mu.Unlock()
		seen := map[uint64]bool{}
		lastOf := map[string]uint64{}
		for _, e := range hook.got {
			if hook.ids[e.ID] != 1 {
				t.Errorf("%s: event %d (%s) delivered %d times: two replicas delivered one stream", what, e.Seq, e.Type, hook.ids[e.ID])
			}
			seen[e.Seq] = true
			if e.User != nil {
				if e.Seq <= lastOf[e.User.ID] {
					t.Errorf("%s: user %s's event %d came after %d", what, e.User.ID, e.Seq, lastOf[e.User.ID])
				}
				lastOf[e.User.ID] = e.Seq
			}
		}
		for seq := uint64(1); seq <= last; seq++ {
			if !seen[seq] {
				t.Errorf("%s: event %d was never delivered", what, seq)
			}
		}
	}
	checkDelivered("every acknowledged change delivered")
	// ...and recorded as delivered: a delivery still in flight when its
	// replica stops is delivered again (at least once), so the stop below
	// waits for the durable cursor, as a rolling upgrade that drains does.
	delivered, _ := a.app.Store().Outbox().LastSeq(context.Background(), "default")
	eventually(t, "every delivery recorded in the cursor", func() bool {
		c, err := a.app.Store().Outbox().Cursor(context.Background(), "default", "app-hook")
		return err == nil && c >= delivered
	})

	// The replica that delivers stops (a rolling upgrade): the other takes
	// the stream up from the durable cursor.
	a.stop()
	start := time.Now()
	for i := range 5 {
		b.call("POST", "/Users", userJSON(fmt.Sprintf("after%d@example.com", i))).must(t, 201)
	}
	last, _ := b.app.Store().Outbox().LastSeq(context.Background(), "default")
	eventually(t, "the surviving replica delivering", func() bool { return len(hook.events()) >= int(last) })
	t.Logf("after the delivering replica stopped, the other delivered its first new events within %v", time.Since(start).Round(10*time.Millisecond))
	hook.mu.Lock()
	for _, e := range hook.got {
		if hook.ids[e.ID] != 1 {
			t.Errorf("after the takeover, event %d delivered %d times", e.Seq, hook.ids[e.ID])
		}
	}
	hook.mu.Unlock()
}

// TestReplicasFollowEachOthersSettings: a method switch and a new API
// token made through one replica act on the other within a second.
func TestReplicasFollowEachOthersSettings(t *testing.T) {
	hook := newHookReceiver(t)
	a, b := replicaPair(t, hook, "GATEHOUSE_ADMIN_TOKEN="+adminToken)
	ada := b.call("POST", "/Users", userJSON("before@example.com")).must(t, 201).str("id")

	// A role's permissions change through A: B's next answer has them (B
	// keeps the access model in memory; A's change signal drops it).
	if r := adminRequest(t, b, "GET", "/users/"+ada+"/access", "", bearer(adminToken)); r.status != 200 || strings.Contains(r.raw, "docs.read") {
		t.Fatalf("access before: %d %s", r.status, r.raw)
	}
	if r := adminRequest(t, a, "PUT", "/roles/user", `{"permissions":["docs.read"]}`, bearer(adminToken)); r.status != 200 {
		t.Fatalf("change the user role: %d %s", r.status, r.raw)
	}
	start := time.Now()
	for {
		r := adminRequest(t, b, "GET", "/users/"+ada+"/access", "", bearer(adminToken))
		if strings.Contains(r.raw, `"permissions":["docs.read"]`) {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("B still answers the old access %v after A changed the role: %s", time.Since(start), r.raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the other replica followed a role's change within %v", time.Since(start).Round(time.Millisecond))

	// SCIM off (manual provisioning) through A: B refuses SCIM writes.
	if r := adminRequest(t, a, "PUT", "/identity", `{"provisioning":{"method":"manual","default_pool":"default","default_role":"user"}}`, bearer(adminToken)); r.status != 200 {
		t.Fatalf("switch to manual: %d %s", r.status, r.raw)
	}
	start = time.Now()
	for {
		r := b.call("POST", "/Users", userJSON(fmt.Sprintf("during%d@example.com", time.Now().UnixNano())))
		if r.status == 403 {
			break
		}
		if r.status != 201 || time.Since(start) > time.Second {
			t.Fatalf("B still provisions by SCIM %v after A switched to manual: %d %s", time.Since(start), r.status, r.raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the other replica followed the method switch within %v", time.Since(start).Round(time.Millisecond))

	// An API token made through B works on A at once (it is read from the
	// database on each use).
	tok := adminRequest(t, b, "POST", "/api-tokens", `{"name":"ci"}`, bearer(adminToken))
	if tok.status != 201 || tok.str("token") == "" {
		t.Fatalf("create an API token: %d %s", tok.status, tok.raw)
	}
	if r := adminRequest(t, a, "GET", "/users", "", bearer(tok.str("token"))); r.status != 200 {
		t.Fatalf("the token made on B, used on A: %d %s", r.status, r.raw)
	}
}

// TestReplicasEndSessionsTogether: a session started on one replica is
// good on the other; deactivating its person through one replica ends it
// on both within a second, though each keeps sessions in memory for the
// proxy's hot path.
func TestReplicasEndSessionsTogether(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer upstream.Close()
	hook := newHookReceiver(t)
	// A long cache: only the change signal can end the session in time.
	a, b := replicaPair(t, hook, "GATEHOUSE_UPSTREAM_URL="+upstream.URL, "GATEHOUSE_PUBLIC_URL=http://127.0.0.1", "GATEHOUSE_SESSION_CACHE_TTL=30s")
	cookie, _ := sessionAs(t, a, "ada@example.com", "user")
	auth := func(g *gatewayUnderTest) int {
		req, _ := http.NewRequest("GET", "http://"+g.app.MainAddr()+"/gatehouse/auth", nil)
		req.AddCookie(cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 3 { // the second and third are answered from each replica's memory
		if sa, sb := auth(a), auth(b); sa/100 != 2 || sb/100 != 2 {
			t.Fatalf("the session on A and on B: %d, %d", sa, sb)
		}
	}
	id := a.call("GET", `/Users?filter=userName+eq+%22ada@example.com%22`, "").must(t, 200).get("Resources.0.id").(string)
	a.call("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`).must(t, 200)
	if got := auth(a); got != 401 {
		t.Fatalf("on the replica that deactivated her, the next request: %d, want 401", got)
	}
	start := time.Now()
	for auth(b) != 401 {
		if time.Since(start) > time.Second {
			t.Fatalf("the other replica still lets her in %v after the deactivation", time.Since(start))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("the other replica ended the session within %v", time.Since(start).Round(time.Millisecond))
}

// TestReplicasReplayAnywhere: a replay asked of a replica that does not
// deliver the organization is passed on to the one that does.
func TestReplicasReplayAnywhere(t *testing.T) {
	hook := newHookReceiver(t)
	hook.set(func(h *hookReceiver) {
		h.reject = func(e gateway.WireEvent) bool { return e.User != nil && e.User.UserName == "bad@example.com" }
	})
	a, b := replicaPair(t, hook)
	a.call("POST", "/Users", userJSON("bad@example.com")).must(t, 201)
	deadLetters := func() int {
		dls, err := a.app.Store().Outbox().DeadLetters(context.Background(), gateway.DefaultOrg, "app-hook")
		if err != nil {
			t.Fatal(err)
		}
		return len(dls)
	}
	eventually(t, "the refused event set aside", func() bool { return deadLetters() == 1 })
	hook.set(func(h *hookReceiver) { h.reject = nil })
	// A claimed every lease first: B answers the replay and passes it on.
	if out := outboxCLI(t, b, "replay", "--adapter", "app-hook"); !strings.HasPrefix(out, "1 dead letter(s) of app-hook scheduled") {
		t.Fatalf("replay through the replica that does not deliver: %q", out)
	}
	eventually(t, "the replayed event delivered", func() bool {
		for _, e := range hook.events() {
			if e.User != nil && e.User.UserName == "bad@example.com" {
				return deadLetters() == 0
			}
		}
		return false
	})
}

package conformance

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/app"
)

// TestStoreCopyBoltToPostgres: a gateway's bbolt file copied into
// PostgreSQL is the same gateway: users, groups and members, sessions
// (a browser stays signed in), settings, the audit log, keys (the JWKS
// stays the same) and the event numbering (the next event follows the
// last) all carry over, and the copy command verifies the counts.
func TestStoreCopyBoltToPostgres(t *testing.T) {
	dsn, schema := pgSchema(t, "")
	dir := t.TempDir()
	env := []string{"GATEHOUSE_STORE_TYPE=bolt", "GATEHOUSE_ADMIN_TOKEN=" + adminToken}
	g := startGateway(t, dir, env...)
	var ids []string
	for i := range 30 {
		ids = append(ids, g.call("POST", "/Users", oktaUser(fmt.Sprintf("copy%d@example.com", i), "Copy", fmt.Sprint(i))).must(t, 201).str("id"))
	}
	g.call("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Engineering","members":[{"value":"`+ids[0]+`"},{"value":"`+ids[1]+`"}]}`).must(t, 201)
	cookie, _ := sessionAs(t, g, "mia@example.com", "manager")
	if r := adminRequest(t, g, "POST", "/api-tokens", `{"name":"ci"}`, bearer(adminToken)); r.status != 201 {
		t.Fatalf("api token: %d %s", r.status, r.raw)
	}
	jwks := get(t, "http://"+g.app.MainAddr()+"/gatehouse/.well-known/jwks.json")
	// An assertion used just before the move (SAML replay protection).
	if ok, err := g.app.Store().Ephemeral().PutIfAbsent(context.Background(), gateway.DefaultOrg, "saml-assertion", "id-123", nil, time.Now().Add(time.Hour)); !ok || err != nil {
		t.Fatalf("record a used assertion: %v %v", ok, err)
	}
	last, err := g.app.Store().Outbox().LastSeq(context.Background(), gateway.DefaultOrg)
	if err != nil || last == 0 {
		t.Fatalf("events before the copy: %d %v", last, err)
	}
	g.stop()

	pgEnv := []string{"GATEHOUSE_STORE_POSTGRES_DSN=" + dsn, "GATEHOUSE_STORE_POSTGRES_SCHEMA=" + schema}
	var out, errOut bytes.Buffer
	if code := app.Main([]string{"store", "copy", "--from", "bolt:" + filepath.Join(dir, app.DBFile)}, pgEnv, &out, &errOut, "test"); code != 0 {
		t.Fatalf("store copy: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "copied and verified") || !strings.Contains(out.String(), "31 users") || !strings.Contains(out.String(), "2 members") {
		t.Fatalf("store copy said: %s", out.String())
	}
	// A second copy into the same database is refused, and changes nothing.
	errOut.Reset()
	if code := app.Main([]string{"store", "copy", "--from", "bolt:" + filepath.Join(dir, app.DBFile)}, pgEnv, &out, &errOut, "test"); code == 0 || !strings.Contains(errOut.String(), "already holds") {
		t.Fatalf("a copy into a database that holds organizations: exit %d: %s", code, errOut.String())
	}

	p := startGateway(t, "", append(append(env, "GATEHOUSE_STORE_TYPE=postgres"), pgEnv...)...)
	if r := p.call("GET", `/Users?filter=userName+eq+%22copy7@example.com%22`, "").must(t, 200); r.str("Resources.0.id") != ids[7] {
		t.Fatalf("a copied user: %s", r.raw)
	}
	grp := p.call("GET", `/Groups?filter=displayName+eq+%22engineering%22`, "").must(t, 200)
	if n := len(grp.get("Resources.0.members").([]any)); n != 2 {
		t.Fatalf("the copied group's members: %s", grp.raw)
	}
	p.call("POST", "/Users", userJSON("COPY29@example.com")).scimError(t, 409, "uniqueness") // the folded name index was built
	// The manager is still signed in; the keys, and so the JWKS, are the same.
	req, _ := http.NewRequest("GET", "http://"+p.app.MainAddr()+"/gatehouse/admin/api/v1/me", nil)
	req.AddCookie(cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the copied session: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if got := get(t, "http://"+p.app.MainAddr()+"/gatehouse/.well-known/jwks.json"); got != jwks {
		t.Fatal("the JWKS changed with the copy: the signing keys were not copied")
	}
	// The used assertion is still used: it cannot be replayed after the move.
	if ok, err := p.app.Store().Ephemeral().PutIfAbsent(context.Background(), gateway.DefaultOrg, "saml-assertion", "id-123", nil, time.Now().Add(time.Hour)); ok || err != nil {
		t.Fatalf("an assertion used before the copy was accepted again after it: %v %v", ok, err)
	}
	// The numbering goes on from the copied outbox.
	p.call("POST", "/Users", userJSON("after-copy@example.com")).must(t, 201)
	if next, _ := p.app.Store().Outbox().LastSeq(context.Background(), gateway.DefaultOrg); next != last+1 {
		t.Fatalf("the first event after the copy is %d, want %d", next, last+1)
	}
	if audit := adminRequest(t, p, "GET", "/audit", "", bearer(adminToken)); !strings.Contains(audit.raw, "api_token") {
		t.Fatalf("the copied audit log: %s", audit.raw)
	}
}

// get is a GET's body (200 required).
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b.String())
	}
	return b.String()
}

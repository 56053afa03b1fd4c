package conformance

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// TestBadInputChangesNothing sends every kind of bad request the issue
// lists and asserts the SCIM error and that neither the directory nor the
// outbox changed.
func TestBadInputChangesNothing(t *testing.T) {
	g := startGateway(t, "", "GATEHOUSE_SCIM_MAX_BODY_BYTES=65536")
	id := g.call("POST", "/Users", oktaUser("ada@example.com", "Ada", "Lovelace")).must(t, 201).str("id")
	gid := g.call("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Eng"}`).must(t, 201).str("id")
	before := g.call("GET", "/Users/"+id, "").must(t, 200).raw

	big := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x","displayName":"` + strings.Repeat("a", 70000) + `"}`
	patch := func(ops string) string { return `{` + patchOp + `,"Operations":[` + ops + `]}` }
	cases := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		scimType                 string
	}{
		{"malformed JSON", "POST", "/Users", `{"userName":`, nil, 400, "invalidSyntax"},
		{"body is an array", "POST", "/Users", `[1,2]`, nil, 400, "invalidSyntax"},
		{"missing userName", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"name":{"givenName":"X"}}`, nil, 400, "invalidValue"},
		{"empty userName", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":""}`, nil, 400, "invalidValue"},
		{"blank userName", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"   "}`, nil, 400, "invalidValue"},
		{"userName wrong type", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":5}`, nil, 400, "invalidValue"},
		{"body too large", "POST", "/Users", big, nil, 413, ""},
		{"wrong content type", "POST", "/Users", oktaUser("new@example.com", "N", "U"), []string{"Content-Type", "text/plain"}, 415, ""},
		{"PUT empty userName", "PUT", "/Users/" + id, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":""}`, nil, 400, "invalidValue"},
		{"PATCH readOnly id", "PATCH", "/Users/" + id, patch(`{"op":"replace","path":"id","value":"x"}`), nil, 400, "mutability"},
		{"PATCH readOnly meta", "PATCH", "/Users/" + id, patch(`{"op":"replace","path":"meta.created","value":"2020-01-01T00:00:00Z"}`), nil, 400, "mutability"},
		{"PATCH unknown attribute", "PATCH", "/Users/" + id, patch(`{"op":"replace","path":"favouriteColour","value":"x"}`), nil, 400, "invalidPath"},
		{"PATCH unparsable path", "PATCH", "/Users/" + id, patch(`{"op":"replace","path":"emails[type eq","value":"x"}`), nil, 400, "invalidPath"},
		{"PATCH remove userName", "PATCH", "/Users/" + id, patch(`{"op":"remove","path":"userName"}`), nil, 400, "invalidValue"},
		{"PATCH remove without path", "PATCH", "/Users/" + id, patch(`{"op":"remove"}`), nil, 400, "noTarget"},
		{"PATCH bad op", "PATCH", "/Users/" + id, patch(`{"op":"move","path":"displayName","value":"x"}`), nil, 400, "invalidValue"},
		{"PATCH wrong value type", "PATCH", "/Users/" + id, patch(`{"op":"replace","path":"active","value":{"a":1}}`), nil, 400, "invalidValue"},
		{"PATCH no operations", "PATCH", "/Users/" + id, `{` + patchOp + `,"Operations":[]}`, nil, 400, "invalidValue"},
		{"PATCH second op fails → first not applied", "PATCH", "/Users/" + id, patch(`{"op":"replace","path":"displayName","value":"Changed"},{"op":"replace","path":"id","value":"x"}`), nil, 400, "mutability"},
		{"PATCH filter matches nothing", "PATCH", "/Users/" + id, patch(`{"op":"replace","path":"emails[type eq \"home\"]","value":{"display":"x"}}`), nil, 400, "noTarget"},
		{"PATCH If-Match mismatch", "PATCH", "/Users/" + id, patch(`{"op":"replace","path":"displayName","value":"X"}`), []string{"If-Match", `W/"999"`}, 412, ""},
		{"PUT If-Match mismatch", "PUT", "/Users/" + id, oktaUser("ada@example.com", "Changed", "X"), []string{"If-Match", `W/"999"`}, 412, ""},
		{"DELETE If-Match mismatch", "DELETE", "/Users/" + id, "", []string{"If-Match", `W/"999"`}, 412, ""},
		{"PATCH unknown user", "PATCH", "/Users/nope", patch(`{"op":"replace","path":"displayName","value":"X"}`), nil, 404, ""},
		{"group PATCH unknown member", "PATCH", "/Groups/" + gid, patch(`{"op":"add","path":"members","value":[{"value":"nope"}]}`), nil, 400, "invalidValue"},
		{"group empty displayName", "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":""}`, nil, 400, "invalidValue"},
		{"invalid filter", "GET", "/Users?" + filterQuery(`userName eq`), "", nil, 400, "invalidFilter"},
		{"filter on unknown attribute", "GET", "/Users?" + filterQuery(`shoeSize gt 3`), "", nil, 400, "invalidFilter"},
		{"non-integer count", "GET", "/Users?count=ten", "", nil, 400, ""},
		{"PATCH remove active", "PATCH", "/Users/" + id, patch(`{"op":"remove","path":"active"}`), nil, 400, "invalidValue"},
		{"PATCH Remove Active (case)", "PATCH", "/Users/" + id, patch(`{"op":"Remove","path":"Active"}`), nil, 400, "invalidValue"},
		{"POST trailing data after the object", "POST", "/Users", oktaUser("trail@example.com", "T", "D") + ` {"userName":"second"}`, nil, 400, "invalidSyntax"},
		{"PUT trailing data", "PUT", "/Users/" + id, oktaUser("ada@example.com", "Changed", "X") + `]`, nil, 400, "invalidSyntax"},
		{"PATCH trailing data", "PATCH", "/Users/" + id, patch(`{"op":"replace","path":"displayName","value":"X"}`) + `{}`, nil, 400, "invalidSyntax"},
		{"POST without schemas", "POST", "/Users", `{"userName":"noschemas@example.com"}`, nil, 400, "invalidValue"},
		{"POST schemas not an array", "POST", "/Users", `{"schemas":"urn:ietf:params:scim:schemas:core:2.0:User","userName":"s@example.com"}`, nil, 400, "invalidValue"},
		{"POST only unknown schema", "POST", "/Users", `{"schemas":["urn:example:custom"],"userName":"u@example.com"}`, nil, 400, "invalidValue"},
		{"POST Group schema to /Users", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"userName":"g@example.com"}`, nil, 400, "invalidValue"},
		{"POST invalid UTF-8", "POST", "/Users", "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"bad\xff@example.com\"}", nil, 400, "invalidSyntax"},
		{"POST lone surrogate escape", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bad\ud800@example.com"}`, nil, 400, "invalidSyntax"},
		{"PATCH invalid UTF-8", "PATCH", "/Users/" + id, patch("{\"op\":\"replace\",\"path\":\"displayName\",\"value\":\"\xc3\x28\"}"), nil, 400, "invalidSyntax"},
		{"POST deeply nested body", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"deep@example.com","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, nil, 400, "invalidSyntax"},
		{"POST schemas key inside the extension", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ext@example.com","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"schemas":["x"],"department":"d"}}`, nil, 400, "invalidValue"},
		{"PATCH schemas key inside the extension", "PATCH", "/Users/" + id, patch(`{"op":"add","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"schemas":["x"],"department":"d"}}}`), nil, 400, "invalidValue"},
		{"PATCH path with deeply nested filter", "PATCH", "/Users/" + id, patch(`{"op":"replace","path":"emails[` + strings.Repeat("(", 5000) + `type eq \"work\"` + strings.Repeat(")", 5000) + `].value","value":"x"}`), nil, 400, "invalidPath"},
		{"300k nested parentheses in a filter", "GET", "/Users?" + filterQuery(strings.Repeat("(", 300000)), "", nil, 400, "invalidFilter"},
		{"filter too long", "GET", "/Users?" + filterQuery(`userName eq "`+strings.Repeat("a", 5000)+`"`), "", nil, 400, "invalidFilter"},
		{"too many or-terms", "GET", "/Users?" + filterQuery(strings.Repeat(`userName eq "a" or `, 100)+`userName eq "b"`), "", nil, 400, "invalidFilter"},
		{"POST to ServiceProviderConfig", "POST", "/ServiceProviderConfig", `{}`, nil, 405, ""},
		{"unknown method", "FROB", "/Users/" + id, "", nil, 405, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := g.outboxLen()
			g.call(tc.method, tc.path, tc.body, tc.headers...).scimError(t, tc.status, tc.scimType)
			if got := g.outboxLen(); got != n {
				t.Errorf("outbox grew from %d to %d", n, got)
			}
			if after := g.call("GET", "/Users/"+id, "").must(t, 200).raw; string(after) != string(before) {
				t.Errorf("user changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	users, total, err := g.app.Store().Users().List(context.Background(), gateway.DefaultOrg, 0, 10)
	if err != nil || total != 1 || len(users) != 1 {
		t.Fatalf("directory holds %d users (%v), want only the original", total, err)
	}
}

// TestIfMatchHonoured: the ETag of the last read lets a write through.
func TestIfMatchHonoured(t *testing.T) {
	g := startGateway(t, "")
	r := g.call("POST", "/Users", oktaUser("ada@example.com", "Ada", "Lovelace")).must(t, 201)
	id, tag := r.str("id"), r.header.Get("ETag")
	r = g.call("PATCH", "/Users/"+id, `{`+patchOp+`,"Operations":[{"op":"replace","path":"displayName","value":"A"}]}`, "If-Match", tag).must(t, 200)
	// The old tag is stale now.
	g.call("PATCH", "/Users/"+id, `{`+patchOp+`,"Operations":[{"op":"replace","path":"displayName","value":"B"}]}`, "If-Match", tag).scimError(t, 412, "")
	g.call("DELETE", "/Users/"+id, "", "If-Match", r.header.Get("ETag")).must(t, 204)
}

// TestConcurrentDuplicateCreates: many identical creates at once yield
// exactly one 201 and 409 for the rest, and one user.created event.
func TestConcurrentDuplicateCreates(t *testing.T) {
	g := startGateway(t, "")
	const n = 24
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := "race@example.com"
			if i%2 == 1 {
				name = "RACE@example.com"
			}
			req, _ := http.NewRequest("POST", g.base+"/Users", strings.NewReader(oktaUser(name, "R", "C")))
			req.Header.Set("Authorization", "Bearer "+testToken)
			req.Header.Set("Content-Type", "application/scim+json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	created, conflicts := 0, 0
	for _, s := range statuses {
		switch s {
		case 201:
			created++
		case 409:
			conflicts++
		}
	}
	if created != 1 || conflicts != n-1 {
		t.Fatalf("statuses %v: %d created, %d conflicts", statuses, created, conflicts)
	}
	if got := g.opsSince(0); len(got) != 1 || got[0] != "user.created" {
		t.Fatalf("outbox = %v", got)
	}
}

// TestRestartKeepsData: the directory and the outbox survive a restart of
// the gateway on the same data_dir.
func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, dir, "GATEHOUSE_STORE_FSYNC=true")
	id := g.call("POST", "/Users", oktaUser("ada@example.com", "Ada", "Lovelace")).must(t, 201).str("id")
	g.stop()

	g2 := startGateway(t, dir)
	r := g2.call("GET", "/Users?"+filterQuery(`userName eq "ADA@example.com"`), "").must(t, 200)
	if r.num(t, "totalResults") != 1 || r.str("Resources.0.id") != id {
		t.Fatalf("after restart: %s", r.raw)
	}
	if ops := g2.opsSince(0); len(ops) != 1 {
		t.Fatalf("outbox after restart = %v", ops)
	}
	g2.call("POST", "/Users", oktaUser("bob@example.com", "Bob", "B")).must(t, 201)
	evs := g2.events()
	if len(evs) != 2 || evs[1].Seq <= evs[0].Seq {
		t.Fatalf("outbox sequence after restart: %+v", evs)
	}
}

// TestSCIMDisabledSaysWhichSettingToChange: with another provisioning
// method active, SCIM requests get a SCIM error naming the setting.
func TestSCIMDisabledSaysWhichSettingToChange(t *testing.T) {
	g := startGateway(t, "", "GATEHOUSE_PROVISIONING_METHOD=manual")
	r := g.call("GET", "/Users", "").scimError(t, 403, "")
	if !strings.Contains(r.str("detail"), "provisioning.method") {
		t.Fatalf("detail does not name the setting: %s", r.raw)
	}
	g.call("POST", "/Users", oktaUser("a@example.com", "A", "B")).scimError(t, 403, "")
	if g.outboxLen() != 0 {
		t.Fatal("disabled SCIM wrote events")
	}
}

// TestDiscoveryEndpoints: ServiceProviderConfig tells the truth, and the
// schema and resource type endpoints answer.
func TestDiscoveryEndpoints(t *testing.T) {
	g := startGateway(t, "")
	r := g.call("GET", "/ServiceProviderConfig", "").must(t, 200)
	for path, want := range map[string]any{"patch.supported": true, "bulk.supported": false, "filter.supported": true, "etag.supported": true, "sort.supported": false, "changePassword.supported": false} {
		if got := r.get(path); got != want {
			t.Errorf("ServiceProviderConfig %s = %v, want %v", path, got, want)
		}
	}
	if r.num(t, "filter.maxResults") != 200 || r.str("authenticationSchemes.0.type") != "oauthbearertoken" {
		t.Errorf("ServiceProviderConfig: %s", r.raw)
	}
	r = g.call("GET", "/ResourceTypes", "").must(t, 200)
	if r.num(t, "totalResults") != 2 {
		t.Errorf("ResourceTypes: %s", r.raw)
	}
	r = g.call("GET", "/Schemas", "").must(t, 200)
	if r.num(t, "totalResults") < 3 {
		t.Errorf("Schemas: %s", r.raw)
	}
	g.call("GET", "/Schemas/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "").must(t, 200)
}

// TestPagingAndProjection: 1-based startIndex, count=0 gives totals only,
// stable order across pages, and attributes/excludedAttributes.
func TestPagingAndProjection(t *testing.T) {
	g := startGateway(t, "")
	var ids []string
	for i := range 7 {
		ids = append(ids, g.call("POST", "/Users", oktaUser(fmt.Sprintf("user%d@example.com", i), "U", fmt.Sprint(i))).must(t, 201).str("id"))
	}
	r := g.call("GET", "/Users?count=0", "").must(t, 200)
	if r.num(t, "totalResults") != 7 || len(r.get("Resources").([]any)) != 0 {
		t.Fatalf("count=0: %s", r.raw)
	}
	var seen []string
	for start := 1; start <= 7; start += 3 {
		r = g.call("GET", fmt.Sprintf("/Users?startIndex=%d&count=3", start), "").must(t, 200)
		if r.num(t, "startIndex") != start || r.num(t, "totalResults") != 7 {
			t.Fatalf("page %d: %s", start, r.raw)
		}
		for _, res := range r.get("Resources").([]any) {
			seen = append(seen, res.(map[string]any)["id"].(string))
		}
	}
	if sortedJoin(seen...) != sortedJoin(ids...) || len(seen) != 7 {
		t.Fatalf("paging saw %v, want each of %v once", seen, ids)
	}
	r = g.call("GET", "/Users?startIndex=100", "").must(t, 200)
	if r.num(t, "totalResults") != 7 || len(r.get("Resources").([]any)) != 0 {
		t.Fatalf("past the end: %s", r.raw)
	}
	r = g.call("GET", "/Users/"+ids[0]+"?attributes=userName,name.givenName", "").must(t, 200)
	if r.str("userName") == "" || r.str("name.givenName") == "" || r.get("name.familyName") != nil || r.get("emails") != nil || r.str("id") != ids[0] {
		t.Fatalf("attributes projection: %s", r.raw)
	}
	r = g.call("GET", "/Users?"+filterQuery(`userName sw "user1"`)+"&excludedAttributes=emails,name", "").must(t, 200)
	if r.num(t, "totalResults") != 1 || r.get("Resources.0.emails") != nil || r.get("Resources.0.name") != nil || r.str("Resources.0.userName") != "user1@example.com" {
		t.Fatalf("excludedAttributes: %s", r.raw)
	}
	// Non-indexed operators are evaluated, never a 500.
	for _, f := range []string{`userName co "3@"`, `userName ew "example.com" and not (name.familyName eq "2")`, `name.familyName gt "4"`, `emails pr`, `title pr or userName eq "user0@example.com"`, `meta.lastModified gt "2000-01-01T00:00:00Z"`} {
		r = g.call("GET", "/Users?"+filterQuery(f), "")
		if r.status != 200 {
			t.Errorf("filter %s: %d %s", f, r.status, r.raw)
		}
	}
	want := map[string]int{`userName eq "user0@example.com" and name.familyName eq "9"`: 0, `userName eq "USER0@example.com" and name.familyName eq "0"`: 1, `userName co "3@"`: 1, `userName ew "example.com" and not (name.familyName eq "2")`: 6, `name.familyName gt "4"`: 2, `emails pr`: 7, `title pr or userName eq "user0@example.com"`: 1}
	for f, n := range want {
		if got := g.call("GET", "/Users?"+filterQuery(f), "").num(t, "totalResults"); got != n {
			t.Errorf("filter %s: totalResults %d, want %d", f, got, n)
		}
	}
}

// TestListEntryEqualsSingleRead: a user in a list page (rendered by the
// gateway from stored bytes) is exactly the user GET /Users/{id} returns
// (rendered through the library), groups included.
func TestListEntryEqualsSingleRead(t *testing.T) {
	g := startGateway(t, "")
	id := g.call("POST", "/Users", entraUser("eq@contoso.test", "ext-eq", "")).must(t, 201).str("id")
	g.call("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Eq","members":[{"value":"`+id+`"}]}`).must(t, 201)
	patched := g.call("PATCH", "/Users/"+id, `{`+patchOp+`,"Operations":[{"op":"replace","value":{"title":"Eng"}}]}`).must(t, 200)
	single := g.call("GET", "/Users/"+id, "").must(t, 200)
	if !reflect.DeepEqual(patched.body, single.body) || patched.header.Get("ETag") != single.header.Get("ETag") {
		t.Errorf("PATCH response differs from GET:\npatch %s\nget   %s", patched.raw, single.raw)
	}
	for _, q := range []string{"", "?" + filterQuery(`userName eq "EQ@contoso.test"`), "?" + filterQuery(`displayName pr`)} {
		list := g.call("GET", "/Users"+q, "").must(t, 200)
		entry, _ := list.get("Resources.0").(map[string]any)
		if !reflect.DeepEqual(entry, single.body) {
			t.Errorf("list%s entry differs from GET:\nlist %v\nget  %v", q, entry, single.body)
		}
	}
}

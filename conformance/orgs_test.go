package conformance

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

// TestOrganizationsRegistry: the operator adds, reads, pages and changes
// organizations; ids and domains are unique (409) and well formed (422);
// a refusal changes nothing; every change is audited at the operator
// level; managers and API tokens cannot touch the registry (403).
func TestOrganizationsRegistry(t *testing.T) {
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_PROVISIONING_METHOD=manual")
	auth := bearer(adminToken)
	must := func(c adminCall, want int) adminCall { t.Helper(); return c.must(t, want) }
	orgIDs := func(c adminCall) []string {
		var ids []string
		list, _ := c.body["orgs"].([]any)
		for _, o := range list {
			id, _ := o.(map[string]any)["id"].(string)
			ids = append(ids, id)
		}
		return ids
	}

	// A gateway from before organizations serves the default one, listed.
	must(adminRequest(t, g, "POST", "/users", `{"userName":"ada@example.com"}`, auth), 201)
	list := must(adminRequest(t, g, "GET", "/orgs", "", auth), 200)
	if ids := orgIDs(list); !slices.Equal(ids, []string{"default"}) || list.body["total"] != float64(1) {
		t.Fatalf("organizations of a new gateway: %s", list.raw)
	}
	def := must(adminRequest(t, g, "GET", "/orgs/default", "", auth), 200)
	if def.str("status", "provisioning_method") != "manual" || def.body["status"].(map[string]any)["users"] != float64(1) {
		t.Fatalf("the default organization's status: %s", def.raw)
	}

	created := must(adminRequest(t, g, "POST", "/orgs", `{"id":"acme","name":"Acme","domains":["Acme.COM.","bücher.de","acme.com"]}`, auth), 201)
	domains, _ := created.body["domains"].([]any)
	if created.header.Get("ETag") != `"1"` || created.str("name") != "Acme" || len(domains) != 2 ||
		domains[0].(map[string]any)["name"] != "acme.com" || domains[1].(map[string]any)["name"] != "xn--bcher-kva.de" ||
		domains[0].(map[string]any)["verified_at"] != nil || created.str("status", "sign_in") != "none" || created.str("status", "provisioning_method") != "manual" {
		t.Fatalf("created: %s %v", created.raw, created.header)
	}
	requestID := created.header.Get("X-Request-Id")

	refusals := []struct {
		name, body string
		status     int
	}{
		{"the id is taken", `{"id":"acme"}`, 409},
		{"a domain is another's", `{"id":"rival","domains":["ACME.com"]}`, 409},
		{"an id that is not a slug", `{"id":"Bad_Id"}`, 422},
		{"the operator's scope", `{"id":"_operator"}`, 422},
		{"no id", `{"name":"Nameless"}`, 422},
		{"not a domain", `{"id":"rival","domains":["acme com"]}`, 422},
		{"a top-level domain", `{"id":"rival","domains":["com"]}`, 422},
		{"a control character in the name", `{"id":"rival","name":"A\u0000B"}`, 422},
	}
	for _, r := range refusals {
		got := adminRequest(t, g, "POST", "/orgs", r.body, auth)
		if got.status != r.status || got.header.Get("Content-Type") != "application/problem+json" || got.str("detail") == "" {
			t.Errorf("%s: %d %s, want %d with a problem", r.name, got.status, got.raw, r.status)
		}
	}
	if got := adminRequest(t, g, "GET", "/orgs/rival", "", auth); got.status != 404 {
		t.Fatalf("a refused organization was stored: %d %s", got.status, got.raw)
	}

	// Domains move: one dropped is free for another organization.
	changed := must(adminRequest(t, g, "PATCH", "/orgs/acme", `{"domains":["acme.com","acme.io"]}`, func(r *http.Request) {
		auth(r)
		r.Header.Set("If-Match", `"1"`)
	}), 200)
	if changed.header.Get("ETag") != `"2"` || changed.str("name") != "Acme" {
		t.Fatalf("changed: %s", changed.raw)
	}
	if got := adminRequest(t, g, "PATCH", "/orgs/acme", `{"name":"Acme Corp"}`, func(r *http.Request) {
		auth(r)
		r.Header.Set("If-Match", `"1"`)
	}); got.status != 412 {
		t.Fatalf("a change from a stale read: %d %s", got.status, got.raw)
	}
	must(adminRequest(t, g, "POST", "/orgs", `{"id":"rival","domains":["bücher.de"]}`, auth), 201)
	if got := adminRequest(t, g, "PATCH", "/orgs/rival", `{"domains":["acme.io"]}`, auth); got.status != 409 {
		t.Fatalf("taking another's domain by a change: %d %s", got.status, got.raw)
	}
	if got := must(adminRequest(t, g, "GET", "/orgs/rival", "", auth), 200); got.header.Get("ETag") != `"1"` {
		t.Fatalf("a refused change was stored: %s", got.raw)
	}
	if got := adminRequest(t, g, "PATCH", "/orgs/nobody", `{"name":"X"}`, auth); got.status != 404 {
		t.Fatalf("changing an unknown organization: %d %s", got.status, got.raw)
	}

	// Paging walks every organization once, in id order.
	want := []string{"acme", "default", "rival"}
	for i := range 7 {
		id := "org-" + strconv.Itoa(i)
		must(adminRequest(t, g, "POST", "/orgs", `{"id":"`+id+`"}`, auth), 201)
		want = append(want, id)
	}
	slices.Sort(want)
	var seen []string
	for after, pages := "", 0; ; pages++ {
		page := must(adminRequest(t, g, "GET", "/orgs?limit=3&after="+after, "", auth), 200)
		seen = append(seen, orgIDs(page)...)
		if page.body["total"] != float64(len(want)) || pages > len(want) {
			t.Fatalf("page after %q: %s", after, page.raw)
		}
		if after = page.str("next"); after == "" {
			break
		}
	}
	if !slices.Equal(seen, want) {
		t.Fatalf("paging saw %v, want %v", seen, want)
	}

	// Audited at the operator level, not in any organization's log.
	entries, _, err := g.app.Store().Audit().List(context.Background(), gateway.OperatorScope, gateway.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(entries, func(e gateway.AuditEntry) bool { return e.Action == "org.create" && e.Target == "org:acme" })
	if i < 0 || entries[i].RequestID != requestID || entries[i].Actor != (gateway.Actor{Kind: gateway.ActorToken, ID: "admin.token"}) {
		t.Fatalf("the operator's audit log: %+v", entries)
	}

	// Managers and API tokens belong to one organization: the registry is
	// not theirs.
	token := must(adminRequest(t, g, "POST", "/api-tokens", `{"name":"ci"}`, auth), 201).str("token")
	mgrCookie, mgrCSRF := sessionAs(t, g, "mia@example.com", "manager")
	for _, who := range []struct {
		name string
		auth func(*http.Request)
	}{{"an API token", bearer(token)}, {"a manager", withCookie(mgrCookie, mgrCSRF, "Sec-Fetch-Site", "same-origin")}} {
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/orgs", ""}, {"GET", "/orgs/acme", ""}, {"POST", "/orgs", `{"id":"mine"}`}, {"PATCH", "/orgs/acme", `{"name":"Mine"}`},
		} {
			if got := adminRequest(t, g, c.method, c.path, c.body, who.auth); got.status != 403 || got.str("detail") == "" {
				t.Errorf("%s: %s %s: %d %s, want 403", who.name, c.method, c.path, got.status, got.raw)
			}
		}
	}
	if got := must(adminRequest(t, g, "GET", "/orgs/acme", "", auth), 200); got.str("name") != "Acme" || got.header.Get("ETag") != `"2"` {
		t.Fatalf("a refused caller changed the organization: %s", got.raw)
	}
}

// TestOrganizationsAdminAPIIsolation: every admin operation is served
// under /orgs/{org}/ and acts on that organization alone: the same
// userName in two organizations is two users; no read, write, pool,
// audit entry or token crosses over; an organization's API token works
// for it alone (403 elsewhere, on the registry too), and so does a
// manager; the identity view names the organization's own URLs.
func TestOrganizationsAdminAPIIsolation(t *testing.T) {
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_PROVISIONING_METHOD=manual")
	operator := bearer(adminToken)
	must := func(c adminCall, want int) adminCall { t.Helper(); return c.must(t, want) }
	must(adminRequest(t, g, "POST", "/orgs", `{"id":"acme"}`, operator), 201)
	must(adminRequest(t, g, "POST", "/orgs", `{"id":"beta"}`, operator), 201)

	ids := map[string]string{}
	for _, at := range []string{"", "/orgs/acme", "/orgs/beta"} {
		ids[at] = must(adminRequest(t, g, "POST", at+"/users", `{"userName":"ada@example.com"}`, operator), 201).str("id")
	}
	if ids[""] == ids["/orgs/acme"] || ids["/orgs/acme"] == ids["/orgs/beta"] {
		t.Fatalf("one user across organizations: %v", ids)
	}
	for at, id := range ids {
		list := must(adminRequest(t, g, "GET", at+"/users", "", operator), 200)
		users, _ := list.body["users"].([]any)
		if len(users) != 1 || users[0].(map[string]any)["id"] != id {
			t.Errorf("users of %q: %s", at, list.raw)
		}
		for other, otherID := range ids {
			if other != at {
				if got := adminRequest(t, g, "GET", at+"/users/"+otherID, "", operator); got.status != 404 {
					t.Errorf("%q reads a user of %q: %d %s", at, other, got.status, got.raw)
				}
				if got := adminRequest(t, g, "DELETE", at+"/users/"+otherID, "", operator); got.status != 404 {
					t.Errorf("%q deletes a user of %q: %d %s", at, other, got.status, got.raw)
				}
			}
		}
	}
	must(adminRequest(t, g, "POST", "/orgs/acme/pools", `{"id":"support"}`, operator), 201)
	if got := must(adminRequest(t, g, "GET", "/pools", "", operator), 200); strings.Contains(got.raw, "support") {
		t.Fatalf("another organization's pool is listed: %s", got.raw)
	}
	audit := must(adminRequest(t, g, "GET", "/orgs/acme/audit", "", operator), 200)
	if !strings.Contains(audit.raw, "user:"+ids["/orgs/acme"]) || strings.Contains(audit.raw, ids[""]) || strings.Contains(audit.raw, ids["/orgs/beta"]) {
		t.Fatalf("acme's audit log: %s", audit.raw)
	}

	// The organization's own URLs.
	identity := must(adminRequest(t, g, "GET", "/orgs/acme/identity", "", operator), 200)
	root := "https://app.example.test/gatehouse/o/acme"
	if identity.str("scim_base_url") != root+"/scim/v2" || identity.str("sp", "acs_url") != root+"/saml/acs" ||
		identity.str("sp", "entity_id") != root+"/saml/metadata" || identity.str("provisioning", "method") != "manual" || identity.str("sso", "protocol") != "none" {
		t.Fatalf("acme's identity: %s", identity.raw)
	}
	if got := must(adminRequest(t, g, "POST", "/orgs/acme/scim-token", "", operator), 200); got.str("scim_base_url") != root+"/scim/v2" {
		t.Fatalf("acme's SCIM token: %s", got.raw)
	}
	// acme's invitation links lead to acme's own pages.
	inv := must(adminRequest(t, g, "POST", "/orgs/acme/invitations", `{"email":"bob@acme.example"}`, operator), 201)
	link, ok := strings.CutPrefix(inv.str("link"), root+"/invite/")
	if !ok {
		t.Fatalf("acme's invitation link: %s", inv.raw)
	}
	page := getPage(t, http.DefaultClient, "http://"+g.app.MainAddr()+"/gatehouse/o/acme/invite/"+link)
	if page.status != 200 || !strings.Contains(page.body, "bob@acme.example") || !strings.Contains(page.body, `action="/gatehouse/o/acme/invite/`) {
		t.Fatalf("acme's invitation page: %d %s", page.status, page.body)
	}
	if page := getPage(t, http.DefaultClient, "http://"+g.app.MainAddr()+"/gatehouse/invite/"+link); page.status != 403 || !strings.Contains(page.body, "not valid") {
		t.Fatalf("acme's invitation at the default organization's URL: %d %s", page.status, page.body)
	}

	// Tokens and managers belong to one organization.
	acmeToken := must(adminRequest(t, g, "POST", "/orgs/acme/api-tokens", `{"name":"acme ci"}`, operator), 201).str("token")
	defaultToken := must(adminRequest(t, g, "POST", "/api-tokens", `{"name":"default ci"}`, operator), 201).str("token")
	mgrCookie, mgrCSRF := sessionAs(t, g, "mia@example.com", "manager")
	if got := must(adminRequest(t, g, "GET", "/orgs/acme/users", "", bearer(acmeToken)), 200); !strings.Contains(got.raw, ids["/orgs/acme"]) {
		t.Fatalf("acme's token on acme: %s", got.raw)
	}
	refused := []struct {
		name, method, path, body string
		auth                     func(*http.Request)
	}{
		{"acme's token on beta", "GET", "/orgs/beta/users", "", bearer(acmeToken)},
		{"acme's token changing beta", "DELETE", "/orgs/beta/users/" + ids["/orgs/beta"], "", bearer(acmeToken)},
		{"acme's token on the default organization", "GET", "/users", "", bearer(acmeToken)},
		{"acme's token on the registry", "GET", "/orgs", "", bearer(acmeToken)},
		{"acme's token on an unknown organization", "GET", "/orgs/nope/users", "", bearer(acmeToken)},
		{"the default organization's token on acme", "GET", "/orgs/acme/users", "", bearer(defaultToken)},
		{"the default organization's manager on acme", "GET", "/orgs/acme/users", "", withCookie(mgrCookie, "")},
		{"the default organization's manager changing acme", "POST", "/orgs/acme/pools", `{"id":"mine"}`, withCookie(mgrCookie, mgrCSRF, "Sec-Fetch-Site", "same-origin")},
	}
	for _, r := range refused {
		if got := adminRequest(t, g, r.method, r.path, r.body, r.auth); got.status != 403 || got.str("detail") == "" {
			t.Errorf("%s: %d %s, want 403", r.name, got.status, got.raw)
		}
	}
	if got := must(adminRequest(t, g, "GET", "/orgs/beta/users/"+ids["/orgs/beta"], "", operator), 200); got.str("id") != ids["/orgs/beta"] {
		t.Fatalf("a refused call changed beta: %s", got.raw)
	}
	if got := adminRequest(t, g, "GET", "/orgs/acme/pools", "", operator); strings.Contains(got.raw, `"mine"`) {
		t.Fatalf("a refused manager made a pool: %s", got.raw)
	}
	// An unknown organization is 404 to the operator, 401 to nobody (its
	// existence is not told before the caller is known).
	if got := adminRequest(t, g, "GET", "/orgs/nope/users", "", operator); got.status != 404 || !strings.Contains(got.str("detail"), "nope") {
		t.Fatalf("an unknown organization: %d %s", got.status, got.raw)
	}
	if got := adminRequest(t, g, "GET", "/orgs/acme/users", "", nil); got.status != 401 {
		t.Fatalf("no credentials on acme: %d %s", got.status, got.raw)
	}
	for _, path := range []string{"/orgs/acme/orgs", "/orgs/acme/orgs/beta", "/orgs/acme/openapi.json", "/orgs/Bad_Org/users", "/orgs/acme/"} {
		if got := adminRequest(t, g, "GET", path, "", operator); got.status != 404 {
			t.Errorf("GET %s: %d %s, want 404", path, got.status, got.raw)
		}
	}
}

// TestOrganizationsSCIMIsolation: each organization's SCIM endpoint at
// /o/{org}/scim/v2 takes its own token alone; the same userName in two
// organizations is two users; no read, write, filter, count, membership
// or event crosses over; locations name the organization's URLs.
func TestOrganizationsSCIMIsolation(t *testing.T) {
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken)
	operator := bearer(adminToken)
	tokens := map[string]string{"default": testToken}
	bases := map[string]string{"default": g.base}
	for _, org := range []string{"acme", "beta"} {
		if got := adminRequest(t, g, "POST", "/orgs", `{"id":"`+org+`"}`, operator); got.status != 201 {
			t.Fatalf("create %s: %d %s", org, got.status, got.raw)
		}
		bases[org] = "http://" + g.app.MainAddr() + "/gatehouse/o/" + org + "/scim/v2"
		// SCIM answers once the organization chose it, with its token.
		tokens[org] = adminRequest(t, g, "POST", "/orgs/"+org+"/scim-token", "", operator).str("token")
		if got := scimAt(t, bases[org], tokens[org], "GET", "/Users", ""); got.status != 403 || got.str("detail") == "" || !strings.Contains(got.str("detail"), "/orgs/"+org+"/identity") {
			t.Fatalf("%s before choosing SCIM: %d %s", org, got.status, got.raw)
		}
		if got := adminRequest(t, g, "PUT", "/orgs/"+org+"/identity", `{"sso":{"protocol":"external"},"provisioning":{"method":"scim","default_pool":"default","default_role":"user"}}`, operator); got.status != 200 {
			t.Fatalf("%s chooses SCIM: %d %s", org, got.status, got.raw)
		}
	}

	ids := map[string]string{}
	for org, base := range bases {
		created := scimAt(t, base, tokens[org], "POST", "/Users", oktaUser("ada@example.com", "Ada", org))
		if created.status != 201 || !strings.HasPrefix(created.header.Get("Location"), strings.Replace(base, "http://"+g.app.MainAddr(), "https://app.example.test", 1)+"/Users/") {
			t.Fatalf("%s: create: %d %s %s", org, created.status, created.header.Get("Location"), created.raw)
		}
		ids[org] = created.str("id")
	}
	if ids["acme"] == ids["beta"] || ids["acme"] == ids["default"] {
		t.Fatalf("one user across organizations: %v", ids)
	}
	for org, base := range bases {
		for other, token := range tokens {
			if other != org {
				if got := scimAt(t, base, token, "GET", "/Users", ""); got.status != 401 {
					t.Errorf("%s's token at %s: %d %s", other, org, got.status, got.raw)
				}
			}
		}
		list := scimAt(t, base, tokens[org], "GET", "/Users?filter="+url.QueryEscape(`userName eq "ada@example.com"`), "")
		resources, _ := list.body["Resources"].([]any)
		if list.status != 200 || list.body["totalResults"] != float64(1) || len(resources) != 1 || resources[0].(map[string]any)["id"] != ids[org] ||
			resources[0].(map[string]any)["name"].(map[string]any)["familyName"] != org {
			t.Errorf("%s: the filter found %s", org, list.raw)
		}
		if all := scimAt(t, base, tokens[org], "GET", "/Users?count=0", ""); all.body["totalResults"] != float64(1) {
			t.Errorf("%s counts %s", org, all.raw)
		}
		for other, id := range ids {
			if other == org {
				continue
			}
			if got := scimAt(t, base, tokens[org], "GET", "/Users/"+id, ""); got.status != 404 {
				t.Errorf("%s reads %s's user: %d %s", org, other, got.status, got.raw)
			}
			if got := scimAt(t, base, tokens[org], "PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`); got.status != 404 {
				t.Errorf("%s deactivates %s's user: %d %s", org, other, got.status, got.raw)
			}
			if got := scimAt(t, base, tokens[org], "DELETE", "/Users/"+id, ""); got.status != 404 {
				t.Errorf("%s deletes %s's user: %d %s", org, other, got.status, got.raw)
			}
		}
	}
	// A group never takes another organization's user.
	group := scimAt(t, bases["acme"], tokens["acme"], "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Eng","members":[{"value":"`+ids["beta"]+`"}]}`)
	if group.status != 400 || group.str("scimType") != "invalidValue" {
		t.Fatalf("a group with another organization's user: %d %s", group.status, group.raw)
	}
	if got := scimAt(t, bases["acme"], tokens["acme"], "GET", "/Groups", ""); got.body["totalResults"] != float64(0) {
		t.Fatalf("the refused group was stored: %s", got.raw)
	}
	for org, id := range ids {
		if u := scimAt(t, bases[org], tokens[org], "GET", "/Users/"+id, ""); u.status != 200 || u.body["active"] != true {
			t.Errorf("%s's user after the others' attempts: %d %s", org, u.status, u.raw)
		}
		events, err := g.app.Store().Outbox().After(context.Background(), gateway.OrgID(org), 0, 100)
		if err != nil || len(events) != 1 || events[0].Org != gateway.OrgID(org) || events[0].User == nil || events[0].User.ID != id {
			t.Errorf("%s's events: %+v %v", org, events, err)
		}
	}
	if got := scimAt(t, "http://"+g.app.MainAddr()+"/gatehouse/o/Bad_Org/scim/v2", testToken, "GET", "/Users", ""); got.status != 404 || got.str("detail") == "" {
		t.Fatalf("a malformed organization: %d %s", got.status, got.raw)
	}
	if got := scimAt(t, "http://"+g.app.MainAddr()+"/gatehouse/o/nope/scim/v2", testToken, "GET", "/Users", ""); got.status != 401 {
		t.Fatalf("an unknown organization: %d %s", got.status, got.raw)
	}
	// The operator sees when each organization's IdP last reached SCIM
	// (with its token; a refused token is nobody's request).
	adminRequest(t, g, "POST", "/orgs", `{"id":"idle"}`, operator).must(t, 201)
	scimAt(t, "http://"+g.app.MainAddr()+"/gatehouse/o/idle/scim/v2", tokens["acme"], "GET", "/Users", "").must(t, 401)
	list := adminRequest(t, g, "GET", "/orgs", "", operator).must(t, 200)
	for _, o := range list.body["orgs"].([]any) {
		o := o.(map[string]any)
		seen, _ := o["status"].(map[string]any)["last_scim_request"].(string)
		at, err := time.Parse(time.RFC3339Nano, seen)
		if o["id"] == "idle" && seen != "" || o["id"] != "idle" && (err != nil || time.Since(at) > time.Minute) {
			t.Errorf("%s's last SCIM request: %q", o["id"], seen)
		}
	}
}

// scimAt sends a SCIM request to base with token.
func scimAt(t *testing.T, base, token, method, path, body string) response {
	t.Helper()
	g := &gatewayUnderTest{t: t, base: base, client: &http.Client{}}
	return g.callAuth("Bearer "+token, method, path, body)
}

// TestOrganizationSuspended: the operator suspends an organization: its
// sessions end at once, every sign-in is refused with a page that says
// why, SCIM answers a SCIM error naming the suspension; resumed, people
// sign in again.
func TestOrganizationSuspended(t *testing.T) {
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "dashboard of "+r.Header.Get("X-Gatehouse-Email"))
	}))
	defer upstream.Close()
	g, root := startSAMLGateway(t, idp, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_PROVISIONING_METHOD=jit",
		"GATEHOUSE_PROVISIONING_ALLOWED_DOMAINS=example.com", "GATEHOUSE_UPSTREAM_URL="+upstream.URL)
	operator := bearer(adminToken)
	signIn := func(browser *http.Client) (int, string) {
		t.Helper()
		acs, form := samlidptest.SignIn(t, browser, root+"/dashboard")
		resp, err := browser.PostForm(acs, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	sessions := func() int {
		n, err := g.app.Store().Sessions().Count(context.Background(), gateway.DefaultOrg)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	browser := samlidptest.Browser(nil)
	if status, body := signIn(browser); status != 200 || body != "dashboard of ada@example.com" || sessions() != 1 {
		t.Fatalf("before suspension: %d %q, %d sessions", status, body, sessions())
	}

	if got := adminRequest(t, g, "PATCH", "/orgs/default", `{"suspended":true}`, operator); got.status != 200 || got.body["suspended"] != true {
		t.Fatalf("suspend: %d %s", got.status, got.raw)
	}
	if n := sessions(); n != 0 {
		t.Fatalf("%d sessions left after suspension", n)
	}
	status, body := signIn(samlidptest.Browser(nil))
	if status != 403 || !strings.Contains(body, "suspended") || sessions() != 0 {
		t.Fatalf("a sign-in while suspended: %d %s, %d sessions", status, body, sessions())
	}
	if got := g.call("GET", "/Users", ""); got.status != 403 || !strings.Contains(got.str("detail"), "suspended") {
		t.Fatalf("SCIM while suspended: %d %s", got.status, got.raw)
	}
	entries, _, err := g.app.Store().Audit().List(context.Background(), gateway.OperatorScope, gateway.AuditQuery{Limit: 1})
	if err != nil || len(entries) != 1 || entries[0].Action != "org.suspend" || entries[0].Target != "org:default" {
		t.Fatalf("the operator's audit log: %+v %v", entries, err)
	}

	if got := adminRequest(t, g, "PATCH", "/orgs/default", `{"suspended":false}`, operator); got.status != 200 || got.body["suspended"] != false {
		t.Fatalf("resume: %d %s", got.status, got.raw)
	}
	if status, body := signIn(samlidptest.Browser(nil)); status != 200 || body != "dashboard of ada@example.com" {
		t.Fatalf("after resuming: %d %q", status, body)
	}
}

// TestOrganizationsDelivery: every organization's events reach the
// adapters, each naming its organization (tenant); a downstream failing
// for one organization's events holds back none of another's, and
// nothing is lost: once it recovers, they arrive. Delivery state and
// dead letters are per organization.
func TestOrganizationsDelivery(t *testing.T) {
	hook := newHookReceiver(t)
	g := startGateway(t, "", append(webhookEnv(hook.srv.URL), "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_PROVISIONING_METHOD=manual")...)
	operator := bearer(adminToken)
	if got := adminRequest(t, g, "POST", "/orgs", `{"id":"acme"}`, operator); got.status != 201 {
		t.Fatalf("create acme: %d %s", got.status, got.raw)
	}
	hook.set(func(h *hookReceiver) { h.refuse = func(e gateway.WireEvent) bool { return e.Org == "acme" } })
	acmeUser := adminRequest(t, g, "POST", "/orgs/acme/users", `{"userName":"ada@acme.example"}`, operator).str("id")
	defaultUser := adminRequest(t, g, "POST", "/users", `{"userName":"ada@example.com"}`, operator).str("id")
	delivered := func(org gateway.OrgID, userID string) bool {
		for _, e := range hook.events() {
			if e.Type == gateway.OpUserCreated && e.Org == org && e.User != nil && e.User.ID == userID {
				return true
			}
		}
		return false
	}
	eventually(t, "the default organization's user, while acme's downstream fails", func() bool { return delivered(gateway.DefaultOrg, defaultUser) })
	if delivered("acme", acmeUser) {
		t.Fatal("an event the downstream refused counts as delivered")
	}
	status := adminRequest(t, g, "GET", "/orgs/acme/delivery", "", operator)
	adapters, _ := status.body["adapters"].([]any)
	if status.status != 200 || len(adapters) != 1 || adapters[0].(map[string]any)["lag"] != float64(1) {
		t.Fatalf("acme's delivery while its events fail: %s", status.raw)
	}
	eventually(t, "the default organization's cursor past its event", func() bool {
		return strings.Contains(adminRequest(t, g, "GET", "/delivery", "", operator).raw, `"lag":0`)
	})
	hook.set(func(h *hookReceiver) { h.refuse = nil })
	eventually(t, "acme's user once its downstream recovers", func() bool { return delivered("acme", acmeUser) })
	for _, e := range hook.events() {
		if e.User != nil && (e.User.ID == acmeUser) != (e.Org == "acme") {
			t.Fatalf("an event names the wrong organization: %+v", e)
		}
	}
}

// TestAdapterLimitedToOrganizations: an adapter with orgs takes those
// organizations' events alone; one without takes every organization's.
func TestAdapterLimitedToOrganizations(t *testing.T) {
	all, acmeOnly := newHookReceiver(t), newHookReceiver(t)
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_PROVISIONING_METHOD=manual", "HOOK_SECRET="+hookSecret,
		`GATEHOUSE_ADAPTERS=[{"id":"all","type":"webhook","config":{"url":"`+all.srv.URL+`","secret":"env:HOOK_SECRET"}},`+
			`{"id":"acme-only","type":"webhook","config":{"url":"`+acmeOnly.srv.URL+`","secret":"env:HOOK_SECRET"},"orgs":["acme"]}]`)
	operator := bearer(adminToken)
	if got := adminRequest(t, g, "POST", "/orgs", `{"id":"acme"}`, operator); got.status != 201 {
		t.Fatalf("create acme: %d %s", got.status, got.raw)
	}
	adminRequest(t, g, "POST", "/users", `{"userName":"ada@example.com"}`, operator)
	adminRequest(t, g, "POST", "/orgs/acme/users", `{"userName":"ada@acme.example"}`, operator)
	orgsOf := func(h *hookReceiver) []string {
		var out []string
		for _, e := range h.events() {
			out = append(out, string(e.Org))
		}
		slices.Sort(out)
		return out
	}
	eventually(t, "both organizations' events at the unlimited adapter", func() bool { return slices.Equal(orgsOf(all), []string{"acme", "default"}) })
	eventually(t, "acme's event at acme's adapter", func() bool { return len(acmeOnly.events()) == 1 })
	if got := orgsOf(acmeOnly); !slices.Equal(got, []string{"acme"}) {
		t.Fatalf("acme's adapter took %v", got)
	}
	if got := adminRequest(t, g, "GET", "/delivery", "", operator); strings.Contains(got.raw, "acme-only") {
		t.Fatalf("the default organization's delivery lists acme's adapter: %s", got.raw)
	}
}

// TestOrganizationsShareSCIMFairly: an organization past its share of
// SCIM requests gets 429 with Retry-After and a SCIM error, counted for
// it; another organization pushing at the same time is not slowed.
func TestOrganizationsShareSCIMFairly(t *testing.T) {
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_SCIM_ORG_REQUESTS_PER_SECOND=5")
	operator := bearer(adminToken)
	if got := adminRequest(t, g, "POST", "/orgs", `{"id":"acme"}`, operator); got.status != 201 {
		t.Fatalf("create acme: %d %s", got.status, got.raw)
	}
	acmeToken := adminRequest(t, g, "POST", "/orgs/acme/scim-token", "", operator).str("token")
	if got := adminRequest(t, g, "PUT", "/orgs/acme/identity", `{"sso":{"protocol":"external"},"provisioning":{"method":"scim","default_pool":"default","default_role":"user"}}`, operator); got.status != 200 {
		t.Fatalf("acme chooses SCIM: %d %s", got.status, got.raw)
	}
	acme := "http://" + g.app.MainAddr() + "/gatehouse/o/acme/scim/v2"
	var throttled response
	for i := range 40 { // a bulk push: far past 5 a second with bursts of 10
		got := scimAt(t, acme, acmeToken, "POST", "/Users", oktaUser("bulk"+strconv.Itoa(i)+"@acme.example", "B", "K"))
		if got.status == 429 {
			throttled = got
			break
		}
		if got.status != 201 {
			t.Fatalf("acme's push: %d %s", got.status, got.raw)
		}
	}
	if throttled.status != 429 || throttled.header.Get("Retry-After") == "" || !strings.Contains(throttled.str("detail"), "org_requests_per_second") {
		t.Fatalf("acme past its share: %d %v %s", throttled.status, throttled.header, throttled.raw)
	}
	// The default organization's share is its own: its requests go on.
	for i := range 8 {
		if got := g.call("POST", "/Users", oktaUser("ada"+strconv.Itoa(i)+"@example.com", "A", "L")); got.status != 201 {
			t.Fatalf("the default organization while acme is throttled: %d %s", got.status, got.raw)
		}
	}
	if v := metricValue(t, "http://"+g.app.OpsAddr()+"/metrics", `gatehouse_scim_org_throttled_total{org="acme"}`); v < 1 {
		t.Fatalf("acme's throttled requests counted %v", v)
	}
}

// TestOrganizationDomainVerification: a domain is unverified until its
// DNS publishes the organization's TXT record, asked of a real DNS server
// (on loopback); a missing or wrong record is refused saying what DNS
// holds, and changes nothing.
func TestOrganizationDomainVerification(t *testing.T) {
	zone := startDNS(t)
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_DOMAINS_RESOLVER="+zone.addr)
	operator := bearer(adminToken)
	if got := adminRequest(t, g, "POST", "/orgs", `{"id":"acme","domains":["acme.com","acme.io"]}`, operator); got.status != 201 {
		t.Fatalf("create acme: %d %s", got.status, got.raw)
	}
	list := adminRequest(t, g, "GET", "/orgs/acme/domains", "", operator)
	domains, _ := list.body["domains"].([]any)
	if list.status != 200 || len(domains) != 2 {
		t.Fatalf("acme's domains: %d %s", list.status, list.raw)
	}
	first := domains[0].(map[string]any)
	txtName, txtValue := first["txt_name"].(string), first["txt_value"].(string)
	if first["name"] != "acme.com" || first["verified"] != false || txtName != "_gatehouse.acme.com" || !strings.HasPrefix(txtValue, "gatehouse-verification=") ||
		txtValue == domains[1].(map[string]any)["txt_value"] {
		t.Fatalf("acme.com before verification: %s", list.raw)
	}
	verify := func() adminCall {
		return adminRequest(t, g, "POST", "/orgs/acme/domains/ACME.com/verify", "", operator)
	}
	if got := verify(); got.status != 422 || !strings.Contains(got.str("detail"), "found: none") {
		t.Fatalf("no record: %d %s", got.status, got.raw)
	}
	zone.set(txtName, "gatehouse-verification=someone-elses")
	if got := verify(); got.status != 422 || !strings.Contains(got.str("detail"), "someone-elses") {
		t.Fatalf("a wrong record: %d %s", got.status, got.raw)
	}
	if got := adminRequest(t, g, "GET", "/orgs/acme", "", operator); got.header.Get("ETag") != `"1"` {
		t.Fatalf("a refused verification changed the organization: %s", got.raw)
	}
	zone.set(txtName, "v=spf1 -all", txtValue)
	got := verify()
	if got.status != 200 || got.body["verified"] != true || got.str("verified_at") == "" {
		t.Fatalf("the right record: %d %s", got.status, got.raw)
	}
	org := adminRequest(t, g, "GET", "/orgs/acme", "", operator)
	if ds := org.body["domains"].([]any); ds[0].(map[string]any)["verified_at"] == nil || ds[1].(map[string]any)["verified_at"] != nil {
		t.Fatalf("acme after verifying acme.com: %s", org.raw)
	}
	if got := adminRequest(t, g, "POST", "/orgs/acme/domains/other.example/verify", "", operator); got.status != 404 {
		t.Fatalf("a domain acme does not hold: %d %s", got.status, got.raw)
	}
	entries, _, err := g.app.Store().Audit().List(context.Background(), gateway.OperatorScope, gateway.AuditQuery{Limit: 1})
	if err != nil || len(entries) != 1 || entries[0].Action != "org.domain_verified" || entries[0].Target != "org:acme/domain:acme.com" {
		t.Fatalf("the operator's audit log: %+v %v", entries, err)
	}
}

// TestOrganizationsFromTheFile: organizations declared in the file are
// created at start and follow the file while nobody changed them in the
// admin API; a person's change wins over the file afterwards (with a
// warning), and organizations the file does not name stay.
func TestOrganizationsFromTheFile(t *testing.T) {
	dir := t.TempDir()
	declare := func(orgs string) *gatewayUnderTest {
		return startGateway(t, dir, "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_ORGANIZATIONS="+orgs)
	}
	operator := bearer(adminToken)
	g := declare(`[{"id":"acme","name":"Acme","domains":["acme.com"]},{"id":"beta"}]`)
	if got := adminRequest(t, g, "GET", "/orgs/acme", "", operator); got.status != 200 || got.str("name") != "Acme" || !strings.Contains(got.raw, `"acme.com"`) || got.str("status", "provisioning_method") != "manual" {
		t.Fatalf("acme from the file: %d %s", got.status, got.raw)
	}
	adminRequest(t, g, "POST", "/orgs", `{"id":"gamma"}`, operator)
	g.stop()

	g = declare(`[{"id":"acme","name":"Acme Inc","domains":["acme.com","acme.io"]}]`)
	if got := adminRequest(t, g, "GET", "/orgs/acme", "", operator); got.str("name") != "Acme Inc" || !strings.Contains(got.raw, `"acme.io"`) {
		t.Fatalf("acme after the file changed: %s", got.raw)
	}
	for _, id := range []string{"beta", "gamma"} {
		if got := adminRequest(t, g, "GET", "/orgs/"+id, "", operator); got.status != 200 {
			t.Fatalf("%s, no longer in the file: %d", id, got.status)
		}
	}
	if got := adminRequest(t, g, "PATCH", "/orgs/acme", `{"name":"Acme (renamed by a person)"}`, operator); got.status != 200 {
		t.Fatalf("rename: %d %s", got.status, got.raw)
	}
	g.stop()

	g = declare(`[{"id":"acme","name":"Acme Inc","domains":["acme.com","acme.io"]}]`)
	if got := adminRequest(t, g, "GET", "/orgs/acme", "", operator); got.str("name") != "Acme (renamed by a person)" {
		t.Fatalf("the file overwrote a person's change: %s", got.raw)
	}
}

// TestSuspendedOrganizationRefusesInvitations: accepting an invitation
// without SSO is a sign-in too: refused while the organization is
// suspended, creating nobody.
func TestSuspendedOrganizationRefusesInvitations(t *testing.T) {
	addr := freeAddr(t)
	root := "http://" + addr
	g := startGateway(t, "", "GATEHOUSE_LISTEN="+addr, "GATEHOUSE_PUBLIC_URL="+root, "GATEHOUSE_SSO_PROTOCOL=none",
		"GATEHOUSE_PROVISIONING_METHOD=manual", "GATEHOUSE_ADMIN_TOKEN="+adminToken)
	operator := bearer(adminToken)
	inv := adminRequest(t, g, "POST", "/invitations", `{"email":"zoe@example.com","role":"user"}`, operator)
	if inv.status != 201 {
		t.Fatalf("invite: %d %s", inv.status, inv.raw)
	}
	if got := adminRequest(t, g, "PATCH", "/orgs/default", `{"suspended":true}`, operator); got.status != 200 {
		t.Fatalf("suspend: %d %s", got.status, got.raw)
	}
	resp, err := samlidptest.Browser(nil).PostForm(inv.str("link"), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), "suspended") {
		t.Fatalf("accepting while suspended: %d %s", resp.StatusCode, body)
	}
	if _, n, _ := g.app.Store().Users().List(context.Background(), gateway.DefaultOrg, 0, 0); n != 0 {
		t.Fatalf("%d users after a refused acceptance", n)
	}
}

// TestOrganizationPolicyAfterRestart: an organization's provisioning
// method is its own from the first request after a restart, never the
// file's (which is the default organization's).
func TestOrganizationPolicyAfterRestart(t *testing.T) {
	dir := t.TempDir()
	operator := bearer(adminToken)
	g := startGateway(t, dir, "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_PROVISIONING_METHOD=manual")
	adminRequest(t, g, "POST", "/orgs", `{"id":"acme"}`, operator)
	adminRequest(t, g, "POST", "/orgs/acme/scim-token", "", operator)
	if got := adminRequest(t, g, "PUT", "/orgs/acme/identity", `{"sso":{"protocol":"external"},"provisioning":{"method":"scim","default_pool":"default","default_role":"user"}}`, operator); got.status != 200 {
		t.Fatalf("acme chooses SCIM: %d %s", got.status, got.raw)
	}
	g.stop()
	g = startGateway(t, dir, "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_PROVISIONING_METHOD=manual")
	if got := adminRequest(t, g, "POST", "/orgs/acme/users", `{"userName":"ada@acme.example"}`, operator); got.status != 422 {
		t.Fatalf("a manual user in acme, which provisions by SCIM: %d %s", got.status, got.raw)
	}
	if got := adminRequest(t, g, "POST", "/users", `{"userName":"ada@example.com"}`, operator); got.status != 201 {
		t.Fatalf("a manual user in the default organization: %d %s", got.status, got.raw)
	}
}

// TestOrganizationDeleted: deleting an organization makes it gone at
// once (SCIM, the admin API, sign-in pages and sessions all answer as if
// it never existed, its domains are free), erases its data, and ends its
// event stream with org.deleted, delivered to the app before its outbox
// and registry entry go too; the id is then free for a new one.
func TestOrganizationDeleted(t *testing.T) {
	hook := newHookReceiver(t)
	g := startGateway(t, "", append(webhookEnv(hook.srv.URL), "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_PROVISIONING_METHOD=manual")...)
	ctx := context.Background()
	operator := bearer(adminToken)
	must := func(c adminCall, want int) adminCall { t.Helper(); return c.must(t, want) }
	must(adminRequest(t, g, "POST", "/orgs", `{"id":"acme","name":"Acme","domains":["acme.example"]}`, operator), 201)
	ada := must(adminRequest(t, g, "POST", "/orgs/acme/users", `{"userName":"ada@acme.example"}`, operator), 201).str("id")
	must(adminRequest(t, g, "POST", "/orgs/acme/users", `{"userName":"bob@acme.example"}`, operator), 201)
	must(adminRequest(t, g, "POST", "/orgs/acme/invitations", `{"email":"cy@acme.example"}`, operator), 201)
	acmeToken := must(adminRequest(t, g, "POST", "/orgs/acme/api-tokens", `{"name":"acme ci"}`, operator), 201).str("token")
	scimToken := must(adminRequest(t, g, "POST", "/orgs/acme/scim-token", "", operator), 200).str("token")
	must(adminRequest(t, g, "PUT", "/orgs/acme/identity", `{"sso":{"protocol":"external"},"provisioning":{"method":"scim","default_pool":"default","default_role":"user"}}`, operator), 200)
	scimBase := "http://" + g.app.MainAddr() + "/gatehouse/o/acme/scim/v2"
	scimAt(t, scimBase, scimToken, "GET", "/Users", "").must(t, 200)
	w := httptest.NewRecorder()
	if _, err := g.app.Sessions().Start(ctx, w, httptest.NewRequest("GET", "/", nil), "acme", ada, "saml"); err != nil {
		t.Fatal(err)
	}
	adaCookie := w.Result().Cookies()[0]
	// acme's downstream is down: its last events wait.
	hook.set(func(h *hookReceiver) { h.refuse = func(e gateway.WireEvent) bool { return e.Org == "acme" } })

	for _, c := range []struct {
		name    string
		path    string
		auth    func(*http.Request)
		status  int
		problem string
	}{
		{"the organization at the unprefixed URLs", "/orgs/default", operator, 409, "cannot be deleted"},
		{"an organization's own API token", "/orgs/acme", bearer(acmeToken), 403, "works for it alone"},
		{"a stale version", "/orgs/acme", withCookie(&http.Cookie{Name: "x", Value: "y"}, "", "Authorization", "Bearer "+adminToken, "If-Match", `"99"`), 412, ""},
		{"an organization that does not exist", "/orgs/nope", operator, 404, ""},
	} {
		if got := adminRequest(t, g, "DELETE", c.path, "", c.auth); got.status != c.status || !strings.Contains(got.str("detail"), c.problem) {
			t.Errorf("%s: %d %s", c.name, got.status, got.raw)
		}
	}
	deleted := must(adminRequest(t, g, "DELETE", "/orgs/acme", "", operator), 202)
	if deleted.str("deleted_at") == "" || len(deleted.body["domains"].([]any)) != 0 {
		t.Fatalf("the deleted organization: %s", deleted.raw)
	}

	// Gone at once, for everyone.
	scimAt(t, scimBase, scimToken, "GET", "/Users", "").must(t, 401)
	if got := adminRequest(t, g, "GET", "/orgs/acme/users", "", operator); got.status != 404 {
		t.Fatalf("acme's users in the admin API: %d %s", got.status, got.raw)
	}
	if got := adminRequest(t, g, "GET", "/orgs/acme/users", "", bearer(acmeToken)); got.status != 401 && got.status != 404 {
		t.Fatalf("acme's API token: %d %s", got.status, got.raw)
	}
	if got := adminRequest(t, g, "GET", "/me", "", withCookie(adaCookie, "")); got.status != 401 {
		t.Fatalf("Ada's session: %d %s", got.status, got.raw)
	}
	for _, path := range []string{"/gatehouse/o/acme/login", "/gatehouse/o/acme/join"} {
		if p := getPage(t, http.DefaultClient, "http://"+g.app.MainAddr()+path); p.status != 404 {
			t.Fatalf("%s: %d", path, p.status)
		}
	}
	if got := adminRequest(t, g, "PATCH", "/orgs/acme", `{"name":"Acme again"}`, operator); got.status != 404 {
		t.Fatalf("renaming a deleted organization: %d %s", got.status, got.raw)
	}
	if got := adminRequest(t, g, "POST", "/orgs", `{"id":"acme"}`, operator); got.status != 409 {
		t.Fatalf("a new acme while the deleted one delivers its last events: %d %s", got.status, got.raw)
	}
	must(adminRequest(t, g, "POST", "/orgs", `{"id":"globex","domains":["acme.example"]}`, operator), 201) // its domain is free
	// Its data is erased.
	if _, n, err := g.app.Store().Users().List(ctx, "acme", 0, 10); err != nil || n != 0 {
		t.Fatalf("acme's users after deletion: %d %v", n, err)
	}
	if n, _ := g.app.Store().Sessions().Count(ctx, "acme"); n != 0 {
		t.Fatalf("acme's sessions after deletion: %d", n)
	}
	if entries, _, _ := g.app.Store().Audit().List(ctx, "acme", gateway.AuditQuery{Limit: 10}); len(entries) != 0 {
		t.Fatalf("acme's audit log after deletion: %+v", entries)
	}
	entries, _, err := g.app.Store().Audit().List(ctx, gateway.OperatorScope, gateway.AuditQuery{Target: "org:acme", Limit: 1})
	if err != nil || len(entries) != 1 || entries[0].Action != "org.delete" {
		t.Fatalf("the operator's audit log: %+v %v", entries, err)
	}
	if n, _ := g.app.Store().Outbox().LastSeq(ctx, "acme"); n == 0 {
		t.Fatal("acme's undelivered events were erased before delivery")
	}

	// Its downstream recovers: org.deleted arrives last, then the rest of
	// the organization goes.
	hook.set(func(h *hookReceiver) { h.refuse = nil })
	var last gateway.WireEvent
	eventually(t, "org.deleted at the app", func() bool {
		for _, e := range hook.events() {
			if e.Org == "acme" && e.Seq > last.Seq {
				last = e
			}
		}
		return last.Type == gateway.OpOrgDeleted
	})
	if last.Source != gateway.SourceOperator || last.Organization == nil || last.Organization.ID != "acme" || last.Organization.Name != "Acme" || last.User != nil {
		t.Fatalf("org.deleted: %+v", last)
	}
	eventually(t, "acme gone from the registry", func() bool { return adminRequest(t, g, "GET", "/orgs/acme", "", operator).status == 404 })
	if n, _ := g.app.Store().Outbox().LastSeq(ctx, "acme"); n != 0 {
		t.Fatalf("acme's outbox after its last events were delivered: last %d", n)
	}
	// The id is free: a new acme starts empty.
	must(adminRequest(t, g, "POST", "/orgs", `{"id":"acme","name":"New Acme"}`, operator), 201)
	if got := must(adminRequest(t, g, "GET", "/orgs/acme/users", "", operator), 200); strings.Contains(got.raw, "ada@acme.example") {
		t.Fatalf("the new acme holds the old one's users: %s", got.raw)
	}
}

// TestOrganizationInvitationAccepted: an organization's invitation,
// accepted at its own URL (no SSO: the link proves the email), makes the
// person in that organization alone and signs them in to it.
func TestOrganizationInvitationAccepted(t *testing.T) {
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_PUBLIC_URL=http://app.example.test", "GATEHOUSE_PROVISIONING_METHOD=manual")
	operator := bearer(adminToken)
	adminRequest(t, g, "POST", "/orgs", `{"id":"acme"}`, operator).must(t, 201)
	link := adminRequest(t, g, "POST", "/orgs/acme/invitations", `{"email":"bob@acme.example"}`, operator).must(t, 201).str("link")
	path := strings.TrimPrefix(link, "http://app.example.test")
	if !strings.HasPrefix(path, "/gatehouse/o/acme/invite/") {
		t.Fatalf("the link: %s", link)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("POST", "http://"+g.app.MainAddr()+path, nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("accepting: %d", resp.StatusCode)
	}
	ctx := context.Background()
	ids, _ := g.app.Store().Users().Lookup(ctx, "acme", gateway.UserByEmail, "bob@acme.example")
	if len(ids) != 1 {
		t.Fatalf("Bob in acme: %v", ids)
	}
	if other, _ := g.app.Store().Users().Lookup(ctx, gateway.DefaultOrg, gateway.UserByEmail, "bob@acme.example"); len(other) != 0 {
		t.Fatalf("Bob in the default organization: %v", other)
	}
	if n, _ := g.app.Store().Sessions().Count(ctx, "acme"); n != 1 {
		t.Fatalf("Bob's session in acme: %d", n)
	}
}

package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/config"
	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/admin"
	"github.com/gatehouse-id/gatehouse/gateway/app"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
)

const adminToken = "admin-bootstrap-token-0123456789"

// adminCall is one admin API request and its answer.
type adminCall struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// must stops the test unless the call answered want.
func (c adminCall) must(t *testing.T, want int) adminCall {
	t.Helper()
	if c.status != want {
		t.Fatalf("%d %s, want %d", c.status, c.raw, want)
	}
	return c
}

func (c adminCall) str(path ...string) string {
	var v any = c.body
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	s, _ := v.(string)
	return s
}

// adminRequest calls the admin API; auth is applied to the request.
func adminRequest(t *testing.T, g *gatewayUnderTest, method, path, body string, auth func(*http.Request)) adminCall {
	t.Helper()
	return adminAt(t, "http://"+g.app.MainAddr(), method, path, body, auth)
}

// adminAt calls the admin API of the gateway at root (scheme://host).
func adminAt(t *testing.T, root, method, path, body string, auth func(*http.Request)) adminCall {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, root+"/gatehouse"+admin.Base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != nil {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	c := adminCall{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &c.body)
	return c
}

func bearer(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

// sessionAs signs a person with role in (a session made as the SSO
// funnel makes them) and returns the cookie and the CSRF token.
func sessionAs(t *testing.T, g *gatewayUnderTest, email, role string) (*http.Cookie, string) {
	t.Helper()
	ctx := context.Background()
	svc := provision.New(g.app.Store(), nil, provision.Policy{Method: gateway.SourceManual, DefaultPool: "default", DefaultRole: role})
	u, err := svc.CreateUser(ctx, provision.Meta{Org: gateway.DefaultOrg, Source: gateway.SourceManual},
		&gateway.User{UserName: email, Active: true, Emails: []string{email}, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	se, err := g.app.Sessions().Start(ctx, w, httptest.NewRequest("GET", "/", nil), gateway.DefaultOrg, u.ID, "saml")
	if err != nil {
		t.Fatal(err)
	}
	return w.Result().Cookies()[0], g.app.Sessions().CSRFToken(se)
}

func withCookie(c *http.Cookie, csrf string, extra ...string) func(*http.Request) {
	return func(r *http.Request) {
		r.AddCookie(c)
		if csrf != "" {
			r.Header.Set(admin.CSRFHeader, csrf)
		}
		for i := 0; i+1 < len(extra); i += 2 {
			r.Header.Set(extra[i], extra[i+1])
		}
	}
}

// adminRoutes reads the served OpenAPI document: the routes as the
// router declares them (huma builds both from the same registrations).
func adminRoutes(t *testing.T, g *gatewayUnderTest) []admin.Route {
	t.Helper()
	resp, err := http.Get("http://" + g.app.MainAddr() + "/gatehouse" + admin.Base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			OperationID string `json:"operationId"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 200 || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json: %d %v %q", resp.StatusCode, err, doc.OpenAPI)
	}
	var out []admin.Route
	for path, ops := range doc.Paths {
		for method, op := range ops {
			out = append(out, admin.Route{Method: strings.ToUpper(method), Path: path, OperationID: op.OperationID})
		}
	}
	slices.SortFunc(out, func(a, b admin.Route) int { return strings.Compare(a.Path+a.Method, b.Path+b.Method) })
	return out
}

// concrete fills a route's path parameters.
func concrete(path string, ids map[string]string) string {
	for k, v := range ids {
		path = strings.ReplaceAll(path, "{"+k+"}", v)
	}
	return path
}

// TestAdminAuthorization: every route the API declares refuses no
// credentials and a wrong token (401), a user-role session (403), and a
// manager's cookie-authenticated change without the CSRF token or from
// another site (403); and the routes in the OpenAPI document are the
// ones the router serves.
func TestAdminAuthorization(t *testing.T) {
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken)
	userCookie, userCSRF := sessionAs(t, g, "uma@example.com", "user")
	mgrCookie, mgrCSRF := sessionAs(t, g, "mia@example.com", "manager")
	routes := adminRoutes(t, g)
	if len(routes) < 15 {
		t.Fatalf("the OpenAPI document lists only %d operations", len(routes))
	}
	ids := map[string]string{"id": "no-such-id", "org": "no-such-org", "domain": "no-such.example"}
	for _, r := range routes {
		path := concrete(r.Path, ids)
		body := ""
		if r.Method != "GET" && r.Method != "DELETE" {
			body = "{}"
		}
		cases := []struct {
			name string
			auth func(*http.Request)
			want int
		}{
			{"no credentials", nil, 401},
			{"wrong token", bearer("not-the-token-0123456789"), 401},
			{"token in another scheme", func(r *http.Request) { r.Header.Set("Authorization", "Basic "+adminToken) }, 401},
			{"user-role session", withCookie(userCookie, userCSRF), 403},
		}
		if r.Method != "GET" {
			cases = append(cases,
				struct {
					name string
					auth func(*http.Request)
					want int
				}{"manager session without the CSRF token", withCookie(mgrCookie, ""), 403},
				struct {
					name string
					auth func(*http.Request)
					want int
				}{"manager session, another session's CSRF token", withCookie(mgrCookie, userCSRF), 403},
				struct {
					name string
					auth func(*http.Request)
					want int
				}{"manager session from another site", withCookie(mgrCookie, mgrCSRF, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"), 403})
		}
		if strings.HasPrefix(r.Path, "/orgs") { // the operator's alone
			cases = append(cases, struct {
				name string
				auth func(*http.Request)
				want int
			}{"manager session with the CSRF token", withCookie(mgrCookie, mgrCSRF, "Sec-Fetch-Site", "same-origin"), 403})
		}
		for _, c := range cases {
			got := adminRequest(t, g, r.Method, path, body, c.auth)
			if got.status != c.want || got.header.Get("Content-Type") != "application/problem+json" || got.str("detail") == "" {
				t.Errorf("%s %s, %s: %d %s %s, want %d with a problem", r.Method, r.Path, c.name, got.status, got.header.Get("Content-Type"), got.raw, c.want)
			}
		}
		// With credentials the route exists (not the catch-all's 404);
		// signing everyone out is checked last (it ends these sessions).
		if r.OperationID == "end-all-sessions" {
			continue
		}
		got := adminRequest(t, g, r.Method, path, body, bearer(adminToken))
		if strings.Contains(got.raw, "no such admin API endpoint") || got.status == 405 {
			t.Errorf("%s %s is in the OpenAPI document but not served: %d %s", r.Method, r.Path, got.status, got.raw)
		}
	}
	if got := adminRequest(t, g, "GET", "/nope", "", bearer(adminToken)); got.status != 404 || got.header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("unknown path: %d %s", got.status, got.raw)
	}
	// A manager's session reads, and changes with its CSRF token.
	if got := adminRequest(t, g, "GET", "/me", "", withCookie(mgrCookie, "")); got.status != 200 || got.str("csrf_token") != mgrCSRF {
		t.Fatalf("GET /me as a manager: %d %s", got.status, got.raw)
	}
	if got := adminRequest(t, g, "POST", "/pools", `{"id":"support"}`, withCookie(mgrCookie, mgrCSRF, "Sec-Fetch-Site", "same-origin")); got.status != 201 {
		t.Fatalf("a manager's change with the CSRF token: %d %s", got.status, got.raw)
	}
	// Calls are counted by operation and status class.
	if v := metricValue(t, "http://"+g.app.OpsAddr()+"/metrics", `gatehouse_admin_requests_total{class="4xx",operation="list-users"}`); v < 3 {
		t.Fatalf("refused list-users calls counted %v", v)
	}
	// Signing everyone out ends every session, the caller's too.
	if got := adminRequest(t, g, "DELETE", "/sessions", "", withCookie(mgrCookie, mgrCSRF)); got.status != 200 || got.body["ended"] != float64(2) {
		t.Fatalf("end all sessions: %d %s", got.status, got.raw)
	}
	if got := adminRequest(t, g, "GET", "/me", "", withCookie(mgrCookie, "")); got.status != 401 {
		t.Fatalf("the manager's session after signing everyone out: %d", got.status)
	}
}

// TestAdminEveryChangeIsAudited: each mutating operation of the API,
// called once, writes an audit entry with the caller, the target and the
// request id. An operation without a sample here fails the test.
func TestAdminEveryChangeIsAudited(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "refused", http.StatusBadRequest) // permanent: a dead letter
	}))
	defer hook.Close()
	zone := startDNS(t)
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_PROVISIONING_METHOD=manual", "GATEHOUSE_DOMAINS_RESOLVER="+zone.addr,
		`GATEHOUSE_ADAPTERS=[{"id":"hook","type":"webhook","config":{"url":"`+hook.URL+`","secret":"env:HOOK_SECRET"}}]`,
		"HOOK_SECRET="+hookSecret, "GATEHOUSE_DELIVERY_MAX_ATTEMPTS=1")
	auth := bearer(adminToken)
	mustStatus := func(c adminCall, want int) adminCall { t.Helper(); return c.must(t, want) }
	// Fixtures: a user, a pool, an API token, a dead letter.
	victim := mustStatus(adminRequest(t, g, "POST", "/users", `{"userName":"victim@example.com"}`, auth), 201).str("id")
	member := mustStatus(adminRequest(t, g, "POST", "/users", `{"userName":"member@example.com"}`, auth), 201).str("id")
	mustStatus(adminRequest(t, g, "POST", "/pools", `{"id":"doomed"}`, auth), 201)
	tokenID := mustStatus(adminRequest(t, g, "POST", "/api-tokens", `{"name":"to revoke"}`, auth), 201).str("info", "id")
	invitationID := mustStatus(adminRequest(t, g, "POST", "/invitations", `{"email":"invitee@example.com"}`, auth), 201).str("id")
	mustStatus(adminRequest(t, g, "PATCH", "/orgs/default", `{"domains":["example.org"]}`, auth), 200)
	record := mustStatus(adminRequest(t, g, "GET", "/domains", "", auth), 200).body["domains"].([]any)[0].(map[string]any)
	zone.set(record["txt_name"].(string), record["txt_value"].(string))
	var deadLetter string
	eventually(t, "a dead letter", func() bool {
		dls := adminRequest(t, g, "GET", "/dead-letters", "", auth)
		list, _ := dls.body["deadLetters"].([]any)
		if len(list) == 0 {
			return false
		}
		deadLetter, _ = list[0].(map[string]any)["id"].(string)
		return true
	})
	client := mustStatus(adminRequest(t, g, "POST", "/scim-clients", `{"name":"fixture"}`, auth), 201)
	clientID := client.str("client_id")
	var shown struct {
		Client struct {
			Secrets []struct {
				ID string `json:"id"`
			} `json:"secrets"`
		} `json:"client"`
	}
	if err := json.Unmarshal([]byte(client.raw), &shown); err != nil || len(shown.Client.Secrets) != 1 {
		t.Fatalf("the fixture client: %v %s", err, client.raw)
	}
	clientSecretID := shown.Client.Secrets[0].ID
	samples := map[string]struct {
		path, body string
		status     int
		target     string
	}{
		"put-identity":              {"/identity", `{"provisioning":{"method":"manual","default_pool":"default","default_role":"user"}}`, 200, "identity:settings"},
		"rotate-scim-token":         {"/scim-token", "", 200, "credential:scim"},
		"create-api-token":          {"/api-tokens", `{"name":"ci"}`, 201, ""},
		"revoke-api-token":          {"/api-tokens/" + tokenID, "", 204, "api_token:" + tokenID},
		"create-user":               {"/users", `{"userName":"new@example.com","role":"manager"}`, 201, ""},
		"update-user":               {"/users/" + victim, `{"role":"manager","pools":["default","doomed"]}`, 200, "user:" + victim},
		"role-from-groups":          {"/users/" + victim + "/role", "", 200, "user:" + victim},
		"delete-user":               {"/users/" + victim, "", 204, "user:" + victim},
		"create-pool":               {"/pools", `{"id":"sales","name":"Sales"}`, 201, "pool:sales"},
		"update-pool":               {"/pools/sales", `{"name":"Sales EMEA"}`, 200, "pool:sales"},
		"delete-pool":               {"/pools/doomed", "", 204, "pool:doomed"},
		"put-role":                  {"/roles/auditor", `{"permissions":["audit.read"]}`, 200, "role:auditor"},
		"put-pool-member":           {"/pools/sales/members/" + member, `{"role":"auditor"}`, 200, "user:" + member},
		"remove-pool-member":        {"/pools/sales/members/" + member, "", 204, "user:" + member},
		"delete-role":               {"/roles/auditor", "", 204, "role:auditor"},
		"replay-dead-letter":        {"/dead-letters/" + deadLetter + "/replay", "", 200, "dead_letter:" + deadLetter},
		"create-invitation":         {"/invitations", `{"email":"someone@example.com","role":"user"}`, 201, ""},
		"resend-invitation":         {"/invitations/" + invitationID + "/resend", `{}`, 200, "invitation:" + invitationID},
		"revoke-invitation":         {"/invitations/" + invitationID, "", 204, "invitation:" + invitationID},
		"end-all-sessions":          {"/sessions", "", 200, "sessions:all"},
		"create-org":                {"/orgs", `{"id":"acme","domains":["acme.com"]}`, 201, "org:acme"},
		"update-org":                {"/orgs/acme", `{"name":"Acme"}`, 200, "org:acme"},
		"delete-org":                {"/orgs/acme", "", 202, "org:acme"},
		"create-setup-link":         {"/setup-links", `{"expires_in":"1h"}`, 201, ""},
		"verify-domain":             {"/domains/example.org/verify", "", 200, "org:default/domain:example.org"},
		"create-scim-client":        {"/scim-clients", `{"name":"Entra"}`, 201, ""},
		"add-scim-client-secret":    {"/scim-clients/" + clientID + "/secrets", `{}`, 201, "scim_client:" + clientID},
		"remove-scim-client-secret": {"/scim-clients/" + clientID + "/secrets/" + clientSecretID, "", 204, "scim_client:" + clientID},
		"delete-scim-client":        {"/scim-clients/" + clientID, "", 204, "scim_client:" + clientID},
	}
	// Run in an order where each fixture is still there.
	order := []string{"put-identity", "rotate-scim-token", "create-api-token", "revoke-api-token", "create-user", "update-user",
		"role-from-groups", "delete-user", "create-pool", "update-pool", "put-role", "put-pool-member", "remove-pool-member", "delete-role", "delete-pool", "replay-dead-letter", "create-invitation", "resend-invitation", "revoke-invitation", "end-all-sessions",
		"create-org", "update-org", "delete-org", "verify-domain", "create-setup-link",
		"create-scim-client", "add-scim-client-secret", "remove-scim-client-secret", "delete-scim-client"}
	for _, r := range adminRoutes(t, g) {
		if r.Method != "GET" && !slices.Contains(order, r.OperationID) {
			t.Errorf("mutating operation %s (%s %s) has no audit sample here: add one", r.OperationID, r.Method, r.Path)
		}
	}
	for _, op := range order {
		s := samples[op]
		method := map[string]string{"put-identity": "PUT", "update-user": "PATCH", "update-pool": "PATCH",
			"delete-user": "DELETE", "delete-pool": "DELETE", "revoke-api-token": "DELETE", "revoke-invitation": "DELETE", "end-all-sessions": "DELETE", "update-org": "PATCH", "delete-org": "DELETE",
			"put-role": "PUT", "put-pool-member": "PUT", "remove-pool-member": "DELETE", "delete-role": "DELETE",
			"remove-scim-client-secret": "DELETE", "delete-scim-client": "DELETE", "role-from-groups": "DELETE"}[op]
		if method == "" {
			method = "POST"
		}
		got := adminRequest(t, g, method, s.path, s.body, auth)
		if got.status != s.status {
			t.Fatalf("%s: %d %s, want %d", op, got.status, got.raw, s.status)
		}
		requestID := got.header.Get("X-Request-Id")
		scope := gateway.DefaultOrg
		if strings.HasSuffix(op, "-org") || op == "verify-domain" { // the registry of organizations
			scope = gateway.OperatorScope
		}
		entries, _, err := g.app.Store().Audit().List(context.Background(), scope, gateway.AuditQuery{Limit: 1})
		if err != nil || len(entries) != 1 {
			t.Fatalf("%s: audit %v %v", op, entries, err)
		}
		e := entries[0]
		if e.RequestID != requestID || e.Actor != (gateway.Actor{Kind: gateway.ActorToken, ID: "admin.token"}) || s.target != "" && e.Target != s.target {
			t.Errorf("%s: audit entry %+v (request %s)", op, e, requestID)
		}
	}
}

// TestAdminRulesAndLiveSwitch: forbidden combinations are refused with
// their rule and change nothing; allowed switches take effect at once:
// SCIM answers, then refuses when the method moves away, without restart.
func TestAdminRulesAndLiveSwitch(t *testing.T) {
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken)
	auth := bearer(adminToken)
	g.call("POST", "/Users", oktaUser("ada@example.com", "Ada", "L")).must(t, 201)

	cases := []struct {
		name, body string
		rule       string
	}{
		{"scim without sso", `{"sso":{"protocol":"none"}}`, gateway.RuleSCIMNeedsSSO},
		{"jit with external login", `{"provisioning":{"method":"jit","default_pool":"default","default_role":"user"}}`, gateway.RuleJITNeedsSSOLogin},
		{"self service without a domain", `{"provisioning":{"method":"self_service","default_pool":"default","default_role":"user"}}`, gateway.RuleSelfServiceNeeds},
		{"two methods", `{"provisioning":{"method":"scim,jit","default_pool":"default","default_role":"user"}}`, ""},
		{"saml without metadata", `{"sso":{"protocol":"saml"}}`, gateway.RuleSingleIdP},
		{"saml with two metadata sources", `{"sso":{"protocol":"saml","saml":{"idp_metadata_url":"https://idp.example/md","idp_metadata_xml":"<EntityDescriptor/>"}}}`, gateway.RuleSingleIdP},
		{"default pool that does not exist", `{"provisioning":{"method":"scim","default_pool":"ghosts","default_role":"user"}}`, gateway.RuleDefaults},
		{"a role outside the roles", `{"provisioning":{"method":"scim","default_pool":"default","default_role":"admin"}}`, gateway.RuleDefaults},
	}
	for _, c := range cases {
		got := adminRequest(t, g, "PUT", "/identity", c.body, auth)
		rules, _ := got.body["rules"].([]any)
		switch {
		case c.rule == "" && got.status != 422:
			t.Errorf("%s: %d %s, want 422", c.name, got.status, got.raw)
		case c.rule != "" && (got.status != 422 || len(rules) == 0 || rules[0].(map[string]any)["rule"] != c.rule || got.str("detail") == ""):
			t.Errorf("%s: %d %s, want 422 naming %s", c.name, got.status, got.raw, c.rule)
		}
	}
	if v := adminRequest(t, g, "GET", "/identity", "", auth); v.str("provisioning", "method") != "scim" || v.header.Get("ETag") != `"1"` {
		t.Fatalf("refused changes changed the configuration: %s", v.raw)
	}
	// Switch to manual: SCIM stops answering at once, users stay.
	got := adminRequest(t, g, "PUT", "/identity", `{"provisioning":{"method":"manual","default_pool":"default","default_role":"user"}}`,
		func(r *http.Request) { auth(r); r.Header.Set("If-Match", `"1"`) })
	if got.status != 200 || got.str("provisioning", "method") != "manual" || got.header.Get("ETag") != `"2"` {
		t.Fatalf("switch to manual: %d %s", got.status, got.raw)
	}
	g.call("GET", "/Users", "").scimError(t, 403, "")
	if stale := adminRequest(t, g, "PUT", "/identity", `{"provisioning":{"method":"scim","default_pool":"default","default_role":"user"}}`,
		func(r *http.Request) { auth(r); r.Header.Set("If-Match", `"1"`) }); stale.status != 412 {
		t.Fatalf("a change from a stale read: %d %s", stale.status, stale.raw)
	}
	users := adminRequest(t, g, "GET", "/users", "", auth)
	if list, _ := users.body["users"].([]any); len(list) != 1 || list[0].(map[string]any)["source"] != "scim" {
		t.Fatalf("switching deleted users: %s", users.raw)
	}
	// And back: SCIM answers again, with the token it had.
	if got := adminRequest(t, g, "PUT", "/identity", `{"provisioning":{"method":"scim","default_pool":"default","default_role":"user"}}`, auth); got.status != 200 {
		t.Fatalf("switch back to scim: %d %s", got.status, got.raw)
	}
	g.call("GET", "/Users", "").must(t, 200)
	// A rotated token works at once; the old one for the grace period.
	rot := adminRequest(t, g, "POST", "/scim-token", "", auth)
	if rot.status != 200 || len(rot.str("token")) < 40 {
		t.Fatalf("rotate: %d %s", rot.status, rot.raw)
	}
	g.call("GET", "/Users", "").must(t, 200)
	req, _ := http.NewRequest("GET", g.base+"/Users", nil)
	req.Header.Set("Authorization", "Bearer "+rot.str("token"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the rotated token: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
}

// TestAdminUsersAndPools: list filters and paging, role and pool
// changes, deactivation ending sessions, and errors in one shape.
func TestAdminUsersAndPools(t *testing.T) {
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_PROVISIONING_METHOD=manual")
	auth := bearer(adminToken)
	var ids []string
	for i := range 7 {
		c := adminRequest(t, g, "POST", "/users", fmt.Sprintf(`{"userName":"person%d@example.com","givenName":"Person","familyName":"N%d"}`, i, i), auth)
		if c.status != 201 || c.str("source") != "manual" || c.str("role") != "user" {
			t.Fatalf("create: %d %s", c.status, c.raw)
		}
		ids = append(ids, c.str("id"))
	}
	if c := adminRequest(t, g, "POST", "/users", `{"userName":"PERSON0@example.com"}`, auth); c.status != 409 || c.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("a taken userName: %d %s", c.status, c.raw)
	}
	if c := adminRequest(t, g, "POST", "/users", `{"userName":"x@example.com","pools":["ghosts"]}`, auth); c.status != 422 {
		t.Fatalf("an unknown pool: %d %s", c.status, c.raw)
	}
	if c := adminRequest(t, g, "POST", "/users", `{"userName":"x@example.com","unknown":1}`, auth); c.status != 422 || c.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("an unknown field: %d %s", c.status, c.raw)
	}
	// Pages of 3 cover everyone once, in order.
	var seen []string
	after := ""
	for {
		c := adminRequest(t, g, "GET", "/users?limit=3&after="+after, "", auth)
		list, _ := c.body["users"].([]any)
		for _, u := range list {
			seen = append(seen, u.(map[string]any)["id"].(string))
		}
		if after = c.str("next"); after == "" {
			break
		}
	}
	if !slices.Equal(seen, ids) {
		t.Fatalf("paging: %v, want %v", seen, ids)
	}
	adminRequest(t, g, "POST", "/pools", `{"id":"support","name":"Support"}`, auth)
	patch := adminRequest(t, g, "PATCH", "/users/"+ids[2], `{"role":"manager","pools":["support"]}`, auth)
	if patch.status != 200 || patch.str("role") != "manager" {
		t.Fatalf("patch: %d %s", patch.status, patch.raw)
	}
	filters := map[string][]string{
		"?pool=support":           {ids[2]},
		"?role=manager":           {ids[2]},
		"?q=person4":              {ids[4]},
		"?q=n5":                   {ids[5]},
		"?source=jit":             nil,
		"?active=false":           nil,
		"?jit_not_seen_days=30":   nil,
		"?source=manual&q=person": ids,
	}
	for q, want := range filters {
		c := adminRequest(t, g, "GET", "/users"+q, "", auth)
		var got []string
		list, _ := c.body["users"].([]any)
		for _, u := range list {
			got = append(got, u.(map[string]any)["id"].(string))
		}
		if c.status != 200 || !slices.Equal(got, want) {
			t.Errorf("GET /users%s: %d %v, want %v", q, c.status, got, want)
		}
	}
	pools := adminRequest(t, g, "GET", "/pools", "", auth)
	if !strings.Contains(pools.raw, `"id":"support"`) || !strings.Contains(pools.raw, `"members":1`) {
		t.Fatalf("pools: %s", pools.raw)
	}
	// Deactivation ends the user's sessions.
	cookie := sessionFor(t, g, ids[3])
	if c := adminRequest(t, g, "PATCH", "/users/"+ids[3], `{"active":false}`, auth); c.status != 200 || c.body["active"] != false {
		t.Fatalf("deactivate: %d %s", c.status, c.raw)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookie)
	if _, _, err := g.app.Sessions().Current(context.Background(), r); err == nil {
		t.Fatal("the deactivated user's session still works")
	}
	if c := adminRequest(t, g, "GET", "/users/nope", "", auth); c.status != 404 || c.str("detail") == "" {
		t.Fatalf("unknown user: %d %s", c.status, c.raw)
	}
	// JIT users not seen lately (removed at the IdP, perhaps): one never
	// signed in, one just did.
	jit := provision.New(g.app.Store(), nil, provision.Policy{Method: gateway.SourceJIT, DefaultPool: "default", DefaultRole: "user"})
	var jitIDs []string
	for _, name := range []string{"gone@example.com", "here@example.com"} {
		u, err := jit.CreateUser(context.Background(), provision.Meta{Org: gateway.DefaultOrg, Source: gateway.SourceJIT},
			&gateway.User{UserName: name, Active: true, Emails: []string{name}})
		if err != nil {
			t.Fatal(err)
		}
		jitIDs = append(jitIDs, u.ID)
	}
	sessionFor(t, g, jitIDs[1])
	c := adminRequest(t, g, "GET", "/users?jit_not_seen_days=30", "", auth)
	if list, _ := c.body["users"].([]any); len(list) != 1 || list[0].(map[string]any)["id"] != jitIDs[0] || list[0].(map[string]any)["jit"] != true {
		t.Fatalf("JIT users not seen for 30 days: %s", c.raw)
	}
	if c := adminRequest(t, g, "GET", "/users/"+jitIDs[1], "", auth); c.str("lastLogin") == "" {
		t.Fatalf("last login of a signed-in user: %s", c.raw)
	}
}

func sessionFor(t *testing.T, g *gatewayUnderTest, userID string) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	if _, err := g.app.Sessions().Start(context.Background(), w, httptest.NewRequest("GET", "/", nil), gateway.DefaultOrg, userID, "saml"); err != nil {
		t.Fatal(err)
	}
	return w.Result().Cookies()[0]
}

// TestCheckConfigShowsStoreAndFile: check-config shows the stored
// identity settings beside the file's and says which win, and says so
// when the running gateway holds the store.
func TestCheckConfigShowsStoreAndFile(t *testing.T) {
	onBolt(t)
	dir := t.TempDir()
	env := []string{"GATEHOUSE_DATA_DIR=" + dir, "GATEHOUSE_SCIM_TOKEN=" + testToken, "GATEHOUSE_SSO_PROTOCOL=external",
		"GATEHOUSE_PROVISIONING_METHOD=scim", "GATEHOUSE_ADMIN_TOKEN=" + adminToken}
	check := func() string {
		var out, errOut strings.Builder
		if code := app.Main([]string{"check-config"}, env, &out, &errOut, "test"); code != 0 {
			t.Fatalf("check-config exit %d:\n%s", code, errOut.String())
		}
		return errOut.String()
	}
	if out := check(); !strings.Contains(out, "no store at") {
		t.Fatalf("before the first start:\n%s", out)
	}
	g := startGateway(t, dir, "GATEHOUSE_ADMIN_TOKEN="+adminToken)
	if out := check(); !strings.Contains(out, "cannot be read") || !strings.Contains(out, "/admin/api/v1/identity") {
		t.Fatalf("while the gateway runs:\n%s", out)
	}
	if got := adminRequest(t, g, "PUT", "/identity", `{"provisioning":{"method":"manual","default_pool":"default","default_role":"user"}}`, bearer(adminToken)); got.status != 200 {
		t.Fatalf("switch: %d %s", got.status, got.raw)
	}
	g.stop()
	out := check()
	if !strings.Contains(out, `provisioning.method "manual"`) || !strings.Contains(out, "sets provisioning.method differently from what token:") ||
		!strings.Contains(out, "stays in force") || !strings.Contains(out, "admin.identity_source: file") {
		t.Fatalf("after a change through the API:\n%s", out)
	}
	env = append(env, "GATEHOUSE_ADMIN_IDENTITY_SOURCE=file")
	if out := check(); !strings.Contains(out, "file's win at the next start") {
		t.Fatalf("with identity_source file:\n%s", out)
	}
}

// TestIdPNeverOverwritesRoleOrPools: SCIM users get the default role and
// pool; a manager's role and pools survive the IdP's PUT and PATCH.
func TestIdPNeverOverwritesRoleOrPools(t *testing.T) {
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken)
	auth := bearer(adminToken)
	id := g.call("POST", "/Users", oktaUser("ada@example.com", "Ada", "L")).must(t, 201).str("id")
	u := adminRequest(t, g, "GET", "/users/"+id, "", auth)
	if u.str("role") != "user" || !strings.Contains(u.raw, `"pools":["default"]`) || u.str("source") != "scim" {
		t.Fatalf("SCIM defaults: %s", u.raw)
	}
	adminRequest(t, g, "POST", "/pools", `{"id":"support"}`, auth)
	if c := adminRequest(t, g, "PATCH", "/users/"+id, `{"role":"manager","pools":["support","default"]}`, auth); c.status != 200 {
		t.Fatalf("manager's change: %d %s", c.status, c.raw)
	}
	g.call("PUT", "/Users/"+id, oktaUser("ada@example.com", "Augusta", "King")).must(t, 200)
	g.call("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":true,"name":{"givenName":"Ada"}}}]}`).must(t, 200)
	u = adminRequest(t, g, "GET", "/users/"+id, "", auth)
	if u.str("role") != "manager" || !strings.Contains(u.raw, `"pools":["default","support"]`) || u.str("givenName") != "Ada" || u.str("familyName") != "King" {
		t.Fatalf("after the IdP's PUT and PATCH: %s", u.raw)
	}
}

// TestSCIMTokenRuleHasOneOwner: SCIM without a token is refused where the
// store is known, by the one rule: check-config and the start say the
// same; a token rotated into the store satisfies it (the file need not
// carry one).
func TestSCIMTokenRuleHasOneOwner(t *testing.T) {
	onBolt(t)
	dir := t.TempDir()
	env := []string{"GATEHOUSE_LISTEN=127.0.0.1:0", "GATEHOUSE_OPS_LISTEN=127.0.0.1:0", "GATEHOUSE_DATA_DIR=" + dir,
		"GATEHOUSE_STORE_FSYNC=false", "GATEHOUSE_SSO_PROTOCOL=external", "GATEHOUSE_PROVISIONING_METHOD=scim"}
	var out, errOut strings.Builder
	if code := app.Main([]string{"check-config"}, env, &out, &errOut, "test"); code == 0 || !strings.Contains(errOut.String(), "scim.token: SCIM needs a token") {
		t.Fatalf("check-config without a token: %d\n%s", code, errOut.String())
	}
	cfg, err := config.Load("", env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.New(cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "SCIM needs a token") {
		t.Fatalf("the start without a token: %v", err)
	}
	// A manager rotated one (the gateway ran under another method).
	st, err := bolt.Open(filepath.Join(dir, app.DBFile), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	svc := provision.New(st, nil, provision.Policy{})
	token, _, err := svc.RotateSCIMToken(context.Background(), gateway.DefaultOrg, gateway.Actor{Kind: gateway.ActorToken, ID: "t"}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	errOut.Reset()
	if code := app.Main([]string{"check-config"}, env, &out, &errOut, "test"); code != 0 {
		t.Fatalf("check-config with a rotated token: %d\n%s", code, errOut.String())
	}
	g := startGateway(t, dir, "GATEHOUSE_SCIM_TOKEN=")
	g.callAuth("Bearer "+token, "GET", "/Users", "").must(t, 200)
}

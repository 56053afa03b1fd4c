package conformance

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

// accessClaim is the identity JWT's access claim, verified.
func accessClaim(t *testing.T, root, token string) []gateway.Access {
	t.Helper()
	var claims struct {
		Access []gateway.Access `json:"access"`
	}
	verifiedClaims(t, root, token, &claims)
	return claims.Access
}

// TestPoolsGrantRolesAndPermissions: a person signed in through a real IdP
// (JIT, the default pool), then put by a manager in pools whose roles
// grant permissions: the next proxied request's signed JWT and header say
// exactly what they may do where, the auth endpoint answers questions
// about it, and every later change (the pool's role, a membership's own
// role, a role's permissions) applies to the next request with no new
// sign-in. Every change is an event the schema accepts and an audit entry
// naming who made it.
func TestPoolsGrantRolesAndPermissions(t *testing.T) {
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	g, root := startSAMLGateway(t, idp, "", "GATEHOUSE_PROVISIONING_METHOD=jit", "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_UPSTREAM_URL="+startWhoami(t))
	operator := bearer(adminToken)
	must := func(c adminCall, want int) adminCall { t.Helper(); return c.must(t, want) }

	// Ada signs in: JIT puts her in the default pool with the user role.
	ada := samlidptest.Browser(nil)
	acs, form := samlidptest.SignIn(t, ada, root+"/gatehouse/login?return=/whoami")
	resp, err := ada.PostForm(acs, form)
	if err != nil {
		t.Fatal(err)
	}
	who := readWhoami(t, resp)
	if got := accessClaim(t, root, who.Assertion); len(got) != 1 || got[0].Pool != "default" || got[0].Role != "user" || len(got[0].Permissions) != 0 ||
		who.Access != "default=user:" {
		t.Fatalf("a JIT user's access: %+v, header %q", got, who.Access)
	}

	must(adminRequest(t, g, "PUT", "/roles/debugger", `{"permissions":["agents.read","agents.debug","agents.debug"]}`, operator), 200)
	must(adminRequest(t, g, "PUT", "/roles/viewer", `{"permissions":["agents.read"]}`, operator), 200)
	must(adminRequest(t, g, "POST", "/pools", `{"id":"prod","role":"debugger"}`, operator), 201)
	must(adminRequest(t, g, "POST", "/pools", `{"id":"staging","role":"viewer"}`, operator), 201)
	must(adminRequest(t, g, "POST", "/pools", `{"id":"nope","role":"no-such-role"}`, operator), 422)
	for _, pool := range []string{"prod", "staging"} {
		must(adminRequest(t, g, "PUT", "/pools/"+pool+"/members/"+who.UserID, "", operator), 200)
	}

	whoNow := func() whoami {
		t.Helper()
		resp, err := ada.Get(root + "/whoami")
		if err != nil {
			t.Fatal(err)
		}
		return readWhoami(t, resp)
	}
	ask := func(c *http.Client, pool, permission string) int {
		t.Helper()
		resp, err := c.Get(root + "/gatehouse/auth?pool=" + url.QueryEscape(pool) + "&permission=" + url.QueryEscape(permission))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	want := func(what string, claim []gateway.Access, header string) {
		t.Helper()
		w := whoNow()
		if got := accessClaim(t, root, w.Assertion); !slices.EqualFunc(got, claim, func(a, b gateway.Access) bool {
			return a.Pool == b.Pool && a.Role == b.Role && slices.Equal(a.Permissions, b.Permissions)
		}) || w.Access != header {
			t.Fatalf("%s: access claim %+v, header %q; want %+v, %q", what, got, w.Access, claim, header)
		}
	}
	debugRead := []string{"agents.debug", "agents.read"}
	want("in prod and staging",
		[]gateway.Access{{Pool: "default", Role: "user", Permissions: []string{}}, {Pool: "prod", Role: "debugger", Permissions: debugRead}, {Pool: "staging", Role: "viewer", Permissions: []string{"agents.read"}}},
		"default=user:;prod=debugger:agents.debug,agents.read;staging=viewer:agents.read")
	for _, c := range []struct {
		pool, permission string
		status           int
	}{{"prod", "agents.debug", 200}, {"staging", "agents.debug", 403}, {"staging", "agents.read", 200}, {"elsewhere", "agents.read", 403}} {
		if got := ask(ada, c.pool, c.permission); got != c.status {
			t.Errorf("%s in %s: %d, want %d", c.permission, c.pool, got, c.status)
		}
	}
	if got := ask(http.DefaultClient, "prod", "agents.debug"); got != 401 {
		t.Fatalf("without a session: %d", got)
	}
	if resp, err := ada.Get(root + "/gatehouse/auth?pool=prod"); err != nil || resp.StatusCode != 400 {
		t.Fatalf("a question without a permission: %v %v", resp.StatusCode, err)
	}

	// A change naming a role that does not exist changes nothing.
	must(adminRequest(t, g, "PATCH", "/pools/prod", `{"name":"Production","role":"nope"}`, operator), 422)
	if got := must(adminRequest(t, g, "GET", "/pools", "", operator), 200); strings.Contains(got.raw, "Production") {
		t.Fatalf("a refused change renamed the pool: %s", got.raw)
	}
	// The pool's role changes: the next request says so, no new sign-in.
	must(adminRequest(t, g, "PATCH", "/pools/prod", `{"role":"viewer"}`, operator), 200)
	if got := ask(ada, "prod", "agents.debug"); got != 403 {
		t.Fatalf("after prod's role changed to viewer: %d", got)
	}
	// A membership's own role.
	must(adminRequest(t, g, "PUT", "/pools/staging/members/"+who.UserID, `{"role":"debugger"}`, operator), 200)
	// A role's permissions.
	must(adminRequest(t, g, "PUT", "/roles/user", `{"permissions":["docs.read"]}`, operator), 200)
	want("after the changes",
		[]gateway.Access{{Pool: "default", Role: "user", Permissions: []string{"docs.read"}}, {Pool: "prod", Role: "viewer", Permissions: []string{"agents.read"}}, {Pool: "staging", Role: "debugger", Permissions: debugRead}},
		"default=user:docs.read;prod=viewer:agents.read;staging=debugger:agents.debug,agents.read")
	if got := ask(ada, "staging", "agents.debug"); got != 200 {
		t.Fatalf("with her own role in staging: %d", got)
	}
	if got := adminRequest(t, g, "DELETE", "/roles/debugger", "", operator); got.status != 409 || !strings.Contains(got.str("detail"), "1 memberships hold it") {
		t.Fatalf("deleting a role in use: %d %s", got.status, got.raw)
	}
	if got := adminRequest(t, g, "DELETE", "/roles/viewer", "", operator); got.status != 409 || !strings.Contains(got.str("detail"), "pools prod, staging grant it") {
		t.Fatalf("deleting a role pools grant: %d %s", got.status, got.raw)
	}
	// Out of staging: gone from her access, her own role there with it.
	must(adminRequest(t, g, "DELETE", "/pools/staging/members/"+who.UserID, "", operator), 204)
	if got := ask(ada, "staging", "agents.read"); got != 403 {
		t.Fatalf("after leaving staging: %d", got)
	}
	must(adminRequest(t, g, "DELETE", "/roles/debugger", "", operator), 204)

	// Every change is an event the contract accepts, and audited.
	ctx := context.Background()
	events, err := g.app.Store().Outbox().After(ctx, gateway.DefaultOrg, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	schema := eventSchema(t)
	kinds := map[string]int{}
	for _, e := range events {
		raw, _ := json.Marshal(e.Wire())
		validateEvent(t, schema, raw)
		kind := string(e.Op)
		if e.Op == gateway.OpUserUpdated && slices.Contains(e.Changed, "access") {
			kind = "user.updated/access"
		}
		kinds[kind]++
	}
	// user.updated naming access: joining prod and staging, her own role
	// in staging, and leaving staging (her pools, then her own role there).
	if kinds["role.updated"] != 3 || kinds["pool.updated"] != 1 || kinds["user.updated/access"] != 5 {
		t.Fatalf("events: %v", kinds)
	}
	for _, action := range []string{"role.update", "pool.update", "pool.member_role", "role.delete"} {
		entries, _, err := g.app.Store().Audit().List(ctx, gateway.DefaultOrg, gateway.AuditQuery{Actor: "token:admin.token", Limit: 100})
		if err != nil || !slices.ContainsFunc(entries, func(e gateway.AuditEntry) bool { return e.Action == action }) {
			t.Fatalf("no %s audit entry by the operator: %v", action, err)
		}
	}
}

// TestRolesSeededFromTheFile: provisioning.role_permissions gives roles
// their first permissions, in the default organization and every new
// one; a manager's change wins over the file after a restart.
func TestRolesSeededFromTheFile(t *testing.T) {
	dir := t.TempDir()
	env := []string{"GATEHOUSE_ADMIN_TOKEN=" + adminToken, `GATEHOUSE_PROVISIONING_ROLE_PERMISSIONS={"user":["agents.read"],"debugger":["agents.debug","agents.read"]}`}
	g := startGateway(t, dir, env...)
	operator := bearer(adminToken)
	roles := func(path string) map[string][]string {
		t.Helper()
		got := adminRequest(t, g, "GET", path, "", operator).must(t, 200)
		out := map[string][]string{}
		for _, r := range got.body["roles"].([]any) {
			r := r.(map[string]any)
			var perms []string
			for _, p := range r["permissions"].([]any) {
				perms = append(perms, p.(string))
			}
			out[r["name"].(string)] = perms
		}
		return out
	}
	want := map[string][]string{"manager": nil, "user": {"agents.read"}, "debugger": {"agents.debug", "agents.read"}}
	if got := roles("/roles"); !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("the default organization's roles: %v", got)
	}
	adminRequest(t, g, "POST", "/orgs", `{"id":"acme"}`, operator).must(t, 201)
	if got := roles("/orgs/acme/roles"); !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("a new organization's roles: %v", got)
	}
	adminRequest(t, g, "PUT", "/roles/user", `{"permissions":["docs.read"]}`, operator).must(t, 200)
	g.stop()
	g = startGateway(t, dir, env...)
	if got := roles("/roles"); !slices.Equal(got["user"], []string{"docs.read"}) {
		t.Fatalf("after a restart, the manager's change: %v", got["user"])
	}
}

// TestProxyRules: the proxy's rules protect paths without code in the
// app: the first matching rule decides, its pool named by a path segment
// (or fixed, or a header); the auth endpoint answers for a path below it
// (Envoy ext_authz's path_prefix) with the same rules.
func TestProxyRules(t *testing.T) {
	rules := `[{"path":"/admin/*","permission":"app.admin"},{"path":"/pools/*/debug/*","permission":"agents.debug","pool_segment":2}]`
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_PROVISIONING_METHOD=manual", "GATEHOUSE_UPSTREAM_URL="+startWhoami(t),
		"GATEHOUSE_PROXY_RULES="+rules)
	operator := bearer(adminToken)
	cookie, _ := sessionAs(t, g, "ada@example.com", "user")
	root := "http://" + g.app.MainAddr()
	get := func(path string, headers ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", root+path, nil)
		req.AddCookie(cookie)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get("/admin/users"); status != 403 || !strings.Contains(body, "needs the permission app.admin in any of your pools") {
		t.Fatalf("/admin without app.admin: %d %.300s", status, body)
	}
	if status, body := get("/admin/users", "Accept", "application/json"); status != 403 || !strings.Contains(body, `"permission":"app.admin"`) {
		t.Fatalf("/admin without app.admin, as an API: %d %.300s", status, body)
	}
	if status, _ := get("/reports"); status != 200 {
		t.Fatalf("a path no rule names: %d", status)
	}
	adminRequest(t, g, "PUT", "/roles/debugger", `{"permissions":["agents.debug","app.admin"]}`, operator).must(t, 200)
	adminRequest(t, g, "POST", "/pools", `{"id":"prod","role":"debugger"}`, operator).must(t, 201)
	adminRequest(t, g, "POST", "/pools", `{"id":"staging"}`, operator).must(t, 201)
	ids, _ := g.app.Store().Users().Lookup(context.Background(), gateway.DefaultOrg, gateway.UserByEmail, "ada@example.com")
	for _, pool := range []string{"prod", "staging"} {
		adminRequest(t, g, "PUT", "/pools/"+pool+"/members/"+ids[0], "", operator).must(t, 200)
	}
	// Ways around the rules: an ambiguous path (servers normalize it
	// differently) is refused before any rule is read, and below the auth
	// endpoint the original request's query asks nothing.
	for path, want := range map[string]int{
		"/public/%2e%2e/admin/x": 400, "/public/..%2fadmin/x": 400, "/pools/staging/debug/%2e/x": 400,
		"/gatehouse/auth/public/%2e%2e/pools/staging/debug/x":                     400,
		"/gatehouse/auth/pools/staging/debug/x?pool=prod&permission=agents.debug": 403,
		"/gatehouse/auth/reports?pool=prod":                                       200,
	} {
		if status, body := get(path); status != want {
			t.Errorf("%s: %d, want %d: %.200s", path, status, want, body)
		}
	}
	for path, want := range map[string]int{
		"/admin/users": 200, "/pools/prod/debug/session/1": 200, "/pools/staging/debug/session/1": 403,
		"/gatehouse/auth/pools/prod/debug/x": 200, "/gatehouse/auth/pools/staging/debug/x": 403, "/gatehouse/auth/anything": 200,
	} {
		if status, body := get(path); status != want {
			t.Errorf("%s: %d, want %d: %.200s", path, status, want, body)
		}
	}
}

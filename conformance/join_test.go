package conformance

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/conformance/oidcoptest"
	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

// TestSelfServiceJoin: the join page leads through the real OP; a
// verified address in the organization's domain gets an account (source
// self_service, default pool and role); another domain, an unverified
// address and an inactive method are refused and create nobody.
func TestSelfServiceJoin(t *testing.T) {
	addr := freeAddr(t)
	root := "http://" + addr
	op := oidcoptest.Start(t, root+"/gatehouse/oidc/callback")
	g := startGateway(t, "", append(op.GatewayEnv(), "GATEHOUSE_LISTEN="+addr, "GATEHOUSE_PUBLIC_URL="+root,
		"GATEHOUSE_PROVISIONING_METHOD=self_service", "GATEHOUSE_PROVISIONING_EMAIL_DOMAIN=example.org", "GATEHOUSE_ADMIN_TOKEN="+adminToken)...)
	users := func() int {
		_, n, _ := g.app.Store().Users().List(context.Background(), gateway.DefaultOrg, 0, 0)
		return n
	}
	join := func(user, password string) (int, string) {
		t.Helper()
		c := samlidptest.Browser(func(r *http.Request) bool { return r.URL.Path == "/gatehouse/oidc/callback" })
		resp, err := c.Get(root + "/gatehouse/join")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindSubmatch(page)
		if resp.StatusCode != 200 || m == nil {
			return resp.StatusCode, string(page)
		}
		next, _ := url.Parse(root)
		next, _ = next.Parse(strings.ReplaceAll(string(m[1]), "&amp;", "&"))
		back := op.SignInAs(t, c, "POST "+next.String(), user, password)
		c.CheckRedirect = nil
		resp, err = c.Get(back.String())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Request.URL.Path + " " + string(body)
	}
	// Gatehouse's login page offers SSO and the join link while the
	// method is active.
	resp, err := http.Get(root + "/gatehouse/login?return=/reports")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `href="/gatehouse/join"`) || !strings.Contains(string(page), `href="/gatehouse/oidc/login?return=%2Freports"`) {
		t.Fatalf("login page under self-service: %d %s", resp.StatusCode, page)
	}
	if status, body := join(oidcoptest.User, oidcoptest.Password); status != http.StatusForbidden || !strings.Contains(body, "example.org") || users() != 0 {
		t.Fatalf("another domain: %d %s", status, body)
	}
	if got := adminRequest(t, g, "PUT", "/identity", `{"provisioning":{"method":"self_service","default_pool":"default","default_role":"user","email_domain":["example.com"]}}`,
		bearer(adminToken)); got.status != 200 {
		t.Fatalf("set the domain: %d %s", got.status, got.raw)
	}
	if status, body := join("eve", "eve pass"); status != http.StatusForbidden || !strings.Contains(body, "not verified") || users() != 0 {
		t.Fatalf("an unverified address: %d %s", status, body)
	}
	// No upstream: a joined person lands on the gateway's 404 for "/".
	if status, body := join(oidcoptest.User, oidcoptest.Password); status != http.StatusNotFound || !strings.HasPrefix(body, "/ ") || users() != 1 {
		t.Fatalf("joining: %d %s, %d users", status, body, users())
	}
	us, _, _ := g.app.Store().Users().List(context.Background(), gateway.DefaultOrg, 0, 1)
	if u := us[0]; u.Source != gateway.SourceSelfService || u.Role != "user" || !slices.Equal(u.Pools, []string{"default"}) || u.UserName != oidcoptest.Email {
		t.Fatalf("joined user: %+v", u)
	}
	if got := adminRequest(t, g, "PUT", "/identity", `{"provisioning":{"method":"manual","default_pool":"default","default_role":"user"}}`,
		bearer(adminToken)); got.status != 200 {
		t.Fatalf("switch to manual: %d %s", got.status, got.raw)
	}
	if status, body := join(oidcoptest.User, oidcoptest.Password); status != http.StatusForbidden || !strings.Contains(body, "closed") {
		t.Fatalf("the join page under manual: %d %s", status, body)
	}
	// A join started while the method was open and completed after it
	// closed is refused as well: the funnel applies the policy in force.
	if got := adminRequest(t, g, "PUT", "/identity", `{"provisioning":{"method":"self_service","default_pool":"default","default_role":"user","email_domain":["example.com"]}}`,
		bearer(adminToken)); got.status != 200 {
		t.Fatalf("reopen: %d %s", got.status, got.raw)
	}
	c := samlidptest.Browser(func(r *http.Request) bool { return r.URL.Path == "/gatehouse/oidc/callback" })
	back := op.SignInAs(t, c, "POST "+root+"/gatehouse/join/signin", "eve", "eve pass")
	if got := adminRequest(t, g, "PUT", "/identity", `{"provisioning":{"method":"manual","default_pool":"default","default_role":"user"}}`,
		bearer(adminToken)); got.status != 200 {
		t.Fatalf("close again: %d %s", got.status, got.raw)
	}
	c.CheckRedirect = nil
	resp, err = c.Get(back.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "not open") || users() != 1 {
		t.Fatalf("join completion under manual: %d %s", resp.StatusCode, body)
	}
}

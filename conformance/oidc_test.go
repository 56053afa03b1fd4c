package conformance

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/conformance/oidcoptest"
	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

// TestOIDCJITLogin is the browser journey with OIDC against a real OP:
// the app's page, the OP's form, code + PKCE back at the gateway, a JIT
// user with the OP's groups, the app's page with the identity.
func TestOIDCJITLogin(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.Header.Get("X-Gatehouse-Email")+" in "+r.Header.Get("X-Gatehouse-Groups"))
	}))
	defer upstream.Close()
	addr := freeAddr(t)
	root := "http://" + addr
	op := oidcoptest.Start(t, root+"/gatehouse/oidc/callback")
	g := startGateway(t, "", append(op.GatewayEnv(), "GATEHOUSE_LISTEN="+addr, "GATEHOUSE_PUBLIC_URL="+root,
		"GATEHOUSE_PROVISIONING_METHOD=jit", "GATEHOUSE_UPSTREAM_URL="+upstream.URL)...)
	c := samlidptest.Browser(func(r *http.Request) bool { return r.URL.Path == "/gatehouse/oidc/callback" })
	back := op.SignIn(t, c, root+"/dashboard")
	c.CheckRedirect = nil
	resp, err := c.Get(back.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/dashboard" || string(body) == "" {
		t.Fatalf("after sign-in: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	us, _, err := g.app.Store().Users().List(context.Background(), gateway.DefaultOrg, 0, 10)
	if err != nil || len(us) != 1 || us[0].Source != gateway.SourceJIT || !slices.Equal(us[0].Pools, []string{"default"}) || us[0].Role != "user" {
		t.Fatalf("JIT user: %v %+v", err, us)
	}
	if want := "hello " + us[0].UserName + " in admins,engineering"; string(body) != want {
		t.Fatalf("app page %q, want %q", body, want)
	}

	// An email the OP has not verified never signs in, nor creates anyone.
	other := samlidptest.Browser(func(r *http.Request) bool { return r.URL.Path == "/gatehouse/oidc/callback" })
	back = op.SignInAs(t, other, root+"/dashboard", "eve", "eve pass")
	other.CheckRedirect = nil
	resp, err = other.Get(back.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "not verified") {
		t.Fatalf("unverified email: %d %s", resp.StatusCode, body)
	}
	if us, _, _ := g.app.Store().Users().List(context.Background(), gateway.DefaultOrg, 0, 10); len(us) != 1 {
		t.Fatalf("%d users after an unverified sign-in", len(us))
	}
}

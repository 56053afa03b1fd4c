package conformance

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
)

// TestConsoleAccessInTheBrowser: a manager gives a role permissions,
// makes a pool grant it, sees on a person's page what they may do in each
// pool and why, gives them their own role in one, and sees it on the
// pools page; what the app is told follows (GET /users/{id}/access).
func TestConsoleAccessInTheBrowser(t *testing.T) {
	b := newBrowser(t)
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	g, root := startSAMLGateway(t, idp, "", "GATEHOUSE_PROVISIONING_METHOD=manual", "GATEHOUSE_ADMIN_BOOTSTRAP_MANAGERS=ada@example.com",
		"GATEHOUSE_ADMIN_TOKEN="+adminToken)
	operator := bearer(adminToken)
	bob := adminRequest(t, g, "POST", "/users", `{"userName":"bob@example.com"}`, operator).must(t, 201).str("id")
	console := root + "/gatehouse/console"

	mgr := b.newTab("manager")
	mgr.run("open the pools page", chromedp.Navigate(console+"/pools"))
	mgr.idpSignIn(samlidptest.User, samlidptest.Password, "#roles")
	mgr.run("a new role", chromedp.SendKeys(chromedp.CSS(`#new-role`), "debugger"), chromedp.SendKeys(chromedp.CSS(`#new-role-perms`), "agents.read, agents.debug"))
	mgr.submit("create the role", `form[action$="/console/roles"] button`)
	if row := mgr.text(`#role-row-debugger`); !strings.Contains(row, "no pool") {
		t.Fatalf("the new role's row: %q", row)
	}
	if v := value(mgr, "read its permissions", chromedp.Value(chromedp.CSS(`#perms-debugger`))); v != "agents.debug agents.read" {
		t.Fatalf("the role's permissions: %q", v)
	}
	mgr.run("a new pool granting it", chromedp.SendKeys(chromedp.CSS(`#pool-id`), "prod"), chromedp.SendKeys(chromedp.CSS(`#pool-name`), "Production"),
		chromedp.SetValue(chromedp.CSS(`#pool-role`), "debugger"))
	mgr.submit("create the pool", `form[action$="/console/pools"] button`)
	if row := mgr.text(`#role-row-debugger`); !strings.Contains(row, "prod") {
		t.Fatalf("the role's row after prod grants it: %q", row)
	}
	adminRequest(t, g, "PUT", "/pools/prod/members/"+bob, "", operator).must(t, 200)

	mgr.run("open Bob's page", chromedp.Navigate(console+"/users/"+bob), chromedp.WaitVisible(chromedp.CSS(`#access`)))
	if prod := mgr.text(`#access-prod`); !strings.Contains(prod, "debugger, because Production grants debugger") || !strings.Contains(prod, "agents.debug") {
		t.Fatalf("what Bob may do in prod: %q", prod)
	}
	if def := mgr.text(`#access-default`); !strings.Contains(def, "user, because default grants the default role, user") {
		t.Fatalf("what Bob may do in default: %q", def)
	}
	mgr.run("his own role in prod", chromedp.SetValue(chromedp.CSS(`#own-prod`), "user"))
	mgr.submit("save it", `#access-prod button`)
	if prod := mgr.text(`#access-prod`); !strings.Contains(prod, "user, because their own role in Production") || !strings.Contains(prod, "No permissions") {
		t.Fatalf("Bob's access in prod with his own role: %q", prod)
	}
	access := adminRequest(t, g, "GET", "/users/"+bob+"/access", "", operator).must(t, 200)
	if !strings.Contains(access.raw, `{"pool":"prod","role":"user","permissions":[]}`) {
		t.Fatalf("what the app is told: %s", access.raw)
	}
	mgr.run("back to the pools", chromedp.Navigate(console+"/pools"), chromedp.WaitVisible(chromedp.CSS(`#pool-prod`)))
	if row := mgr.text(`#pool-prod`); !strings.Contains(row, "Their own role here: bob@example.com (user)") {
		t.Fatalf("prod's row: %q", row)
	}
}

package conformance

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

// readmeShots is where the README's pictures are saved when
// GHTEST_README_SCREENSHOTS=1 ("" otherwise).
func readmeShots() string {
	if os.Getenv("GHTEST_README_SCREENSHOTS") != "1" {
		return ""
	}
	dir, _ := filepath.Abs("../docs/screenshots")
	return dir
}

// TestConsoleManagerJourney drives the console in a real headless
// Chromium against a real SAML IdP: a manager signs in through the IdP
// and lands on the page they asked for, sees SCIM refused with its
// reason and switches the provisioning method, creates a pool, invites
// someone (the mail reaches a real SMTP server), who accepts in a second
// browser; the manager changes their role and pools, deactivates them and
// their session ends; a dead letter is replayed from the delivery page.
func TestConsoleManagerJourney(t *testing.T) {
	b := newBrowser(t)
	box := startMailbox(t)
	var hookOK atomic.Bool
	var delivered atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hookOK.Load() {
			http.Error(w, "the app refuses this for now", http.StatusUnprocessableEntity)
			return
		}
		delivered.Add(1)
	}))
	defer hook.Close()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `<!doctype html><title>App</title><p id="who">`+r.Header.Get("X-Gatehouse-Email")+` as `+r.Header.Get("X-Gatehouse-Role")+`</p>`)
	}))
	defer upstream.Close()
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	idp.Put(t, "/users/bob", `{"password":"bob pass","email":"bob@example.com","given_name":"Bob","surname":"Builder"}`)
	g, root := startSAMLGateway(t, idp, "", append(box.env(), "GATEHOUSE_PROVISIONING_METHOD=manual",
		"GATEHOUSE_ADMIN_BOOTSTRAP_MANAGERS=ada@example.com", "GATEHOUSE_UPSTREAM_URL="+upstream.URL,
		`GATEHOUSE_ADAPTERS=[{"id":"app-hook","type":"webhook","config":{"url":"`+hook.URL+`","secret":"env:HOOK_SECRET"}}]`,
		"HOOK_SECRET="+hookSecret, "GATEHOUSE_DELIVERY_MAX_ATTEMPTS=1")...)
	console := root + "/gatehouse/console"
	shots := readmeShots()

	// The manager asks for the pools page, signs in at the IdP, lands there.
	mgr := b.newTab("manager")
	mgr.run("open the console", chromedp.Navigate(console+"/pools"))
	mgr.idpSignIn(samlidptest.User, samlidptest.Password, "main h1")
	if h := mgr.text("main h1"); h != "Pools and roles" || !strings.HasSuffix(mgr.location(), "/gatehouse/console/pools") {
		t.Fatalf("after sign-in: %q at %s", h, mgr.location())
	}
	mgr.run("create a pool",
		chromedp.SendKeys(chromedp.CSS(`#pool-id`), "support"),
		chromedp.SendKeys(chromedp.CSS(`#pool-name`), "Support"))
	mgr.submit("create a pool", `form[action$="/console/pools"] button`)
	if !strings.Contains(mgr.text(`#pools`), "Support") {
		t.Fatal("the new pool is not listed")
	}

	// Self-service is offered disabled with its reason (no email domain);
	// forced through anyway, the server refuses it with that reason.
	mgr.run("open the identity page", chromedp.Navigate(console+"/identity"), chromedp.WaitVisible(chromedp.CSS(`#why-self_service`)))
	if why := mgr.text(`#why-self_service`); !strings.Contains(why, "email domain") {
		t.Fatalf("self-service's reason: %q", why)
	}
	if disabled := value(mgr, "read the self-service choice", chromedp.Evaluate[bool](`document.querySelector('input[name=method][value=self_service]').disabled`)); !disabled {
		t.Fatal("self-service can be chosen without a domain")
	}
	mgr.run("force self-service",
		chromedp.Evaluate[chromedp.Void](`(() => { const r = document.querySelector('input[name=method][value=self_service]'); r.disabled = false; r.checked = true; })()`))
	mgr.submit("force self-service", `form[action$="/identity/method"] button[type=submit]`)
	if e := mgr.text(`p.error`); !strings.Contains(e, "email domain") || g.app.Service().Policy(gateway.DefaultOrg).Method != gateway.SourceManual {
		t.Fatalf("forced self-service: %q", e)
	}
	if shots != "" {
		mgr.screenshot(filepath.Join(shots, "identity.png"))
	}
	// The test sign-in goes to the IdP and back (the page's form leads
	// there by a redirect) and shows what it sent.
	mgr.run("test the sign-in", chromedp.Evaluate[chromedp.Void](`window.__gatehouseOldPage = true`), chromedp.Click(chromedp.CSS(`form[action$="/login/test"] button`)))
	mgr.waitFor("the test's result", `document.querySelector('#last-sign-in') !== null`)
	if got := mgr.text(`#last-sign-in`); !strings.Contains(got, samlidptest.Email) {
		t.Fatalf("the test sign-in's attributes: %q", got)
	}
	// A setup link for the IT admin, shown once.
	mgr.submit("make a setup link", `#make-setup-link`)
	if link := value(mgr, "read the setup link", chromedp.Value(chromedp.CSS(`#secret`))); !strings.HasPrefix(link, root+"/gatehouse/setup/link/") {
		t.Fatalf("the setup link: %q", link)
	}
	mgr.run("back to the identity page", chromedp.Navigate(console+"/identity"), chromedp.WaitVisible(chromedp.CSS(`input[name=method][value=jit]`)))
	mgr.run("switch to JIT",
		chromedp.Click(chromedp.CSS(`input[name=method][value=jit]`)))
	mgr.submit("switch to JIT", `form[action$="/identity/method"] button[type=submit]`)
	if m := g.app.Service().Policy(gateway.DefaultOrg).Method; m != gateway.SourceJIT {
		t.Fatalf("method after the switch: %s", m)
	}
	mgr.run("switch back to manual",
		chromedp.Click(chromedp.CSS(`input[name=method][value=manual]`)))
	mgr.submit("switch back to manual", `form[action$="/identity/method"] button[type=submit]`)

	// Invite Bob; the mail carries the link.
	mgr.run("fill the invitation",
		chromedp.Navigate(console+"/users"),
		chromedp.SendKeys(chromedp.CSS(`#inv-email`), "bob@example.com"))
	mgr.submit("invite", `form[action$="/console/invitations"] button`)
	if inv := mgr.text(`#invitations`); !strings.Contains(inv, "bob@example.com") || !strings.Contains(inv, "pending") {
		t.Fatalf("invitations: %q", inv)
	}
	eventually(t, "the invitation mail", func() bool { return len(box.messages()) == 1 })
	link := linkPattern.FindString(strings.ReplaceAll(box.messages()[0].data, "=\r\n", ""))

	// Bob accepts in his own browser.
	bob := b.newTab("invitee")
	bob.run("open the link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`form button`)), chromedp.Click(chromedp.CSS(`form button`)))
	bob.idpSignIn("bob", "bob pass", "#who")
	if who := bob.text("#who"); who != "bob@example.com as user" {
		t.Fatalf("the app sees %q", who)
	}
	ids, _ := g.app.Store().Users().Lookup(context.Background(), gateway.DefaultOrg, gateway.UserByUserName, "bob@example.com")
	if len(ids) != 1 {
		t.Fatal("the invitation made no user")
	}
	bobID := ids[0]

	// The manager makes Bob a manager in both pools.
	mgr.run("change role and pools",
		chromedp.Navigate(console+"/users/"+bobID),
		chromedp.WaitVisible(chromedp.CSS(`#role`)),
		chromedp.SetValue(chromedp.CSS(`#role`), "manager"),
		chromedp.Click(chromedp.CSS(`input[name=pools][value=support]`)))
	mgr.submit("change role and pools", `form[action$="/console/users/`+bobID+`"] button`)
	u, err := g.app.Store().Users().Get(context.Background(), gateway.DefaultOrg, bobID)
	if err != nil || u.Role != "manager" || strings.Join(u.Pools, ",") != "default,support" {
		t.Fatalf("after the change: %+v %v", u, err)
	}
	if s := mgr.text(`#sessions`); s != "1" {
		t.Fatalf("Bob's active sessions: %q", s)
	}
	if shots != "" {
		mgr.screenshot(filepath.Join(shots, "user.png"))
	}
	// Deactivated: Bob's next request ends at a refusal, not the app.
	mgr.submit("ask to deactivate", `#deactivate`)
	if q := mgr.text(`main section p`); !strings.Contains(q, "Deactivate bob@example.com?") {
		t.Fatalf("confirmation: %q", q)
	}
	mgr.submit("deactivate", `form[action$="/deactivate"] button`)
	if st := mgr.text(`#status`); st != "deactivated" {
		t.Fatalf("status after deactivation: %q", st)
	}
	bob.run("reload the app", chromedp.Navigate(root+"/"), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
	if body := bob.text("main"); !strings.Contains(body, "deactivated") {
		t.Fatalf("Bob after deactivation: %q", body)
	}

	// The webhook refused Bob's events: dead letters, replayed once the
	// app accepts them.
	eventually(t, "a dead letter", func() bool {
		dls, _ := g.app.Store().Outbox().DeadLetters(context.Background(), gateway.DefaultOrg, "app-hook")
		return len(dls) > 0
	})
	mgr.run("open delivery", chromedp.Navigate(console+"/delivery"), chromedp.WaitVisible(chromedp.CSS(`#dead-letters`)))
	if dl := mgr.text(`#dead-letters`); !strings.Contains(dl, "422") {
		t.Fatalf("dead letters: %q", dl)
	}
	if recent := mgr.text(`#adapters`); !strings.Contains(recent, "422") || !strings.Contains(recent, "failed attempts") {
		t.Fatalf("recent failures: %q", recent)
	}
	if shots != "" {
		mgr.screenshot(filepath.Join(shots, "delivery.png"))
	}
	hookOK.Store(true)
	mgr.submit("replay", `#dead-letters button`)
	if n := mgr.text(`p.notice`); !strings.Contains(n, "scheduled") {
		t.Fatalf("after the replay: %q", n)
	}
	eventually(t, "the replayed events delivered", func() bool {
		dls, _ := g.app.Store().Outbox().DeadLetters(context.Background(), gateway.DefaultOrg, "app-hook")
		return len(dls) == 0 && delivered.Load() > 0
	})
	if shots != "" {
		mgr.run("users page", chromedp.Navigate(console+"/users"), chromedp.WaitVisible(chromedp.CSS(`#users`)))
		mgr.screenshot(filepath.Join(shots, "users.png"))
		mgr.run("audit page", chromedp.Navigate(console+"/audit"), chromedp.WaitVisible(chromedp.CSS(`#audit`)))
		mgr.screenshot(filepath.Join(shots, "audit.png"))
	}
}

// TestConsoleRefusesNonManagers: a person with the user role who signs in
// gets the page saying they need the manager role, and no console.
func TestConsoleRefusesNonManagers(t *testing.T) {
	b := newBrowser(t)
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	_, root := startSAMLGateway(t, idp, "", "GATEHOUSE_PROVISIONING_METHOD=jit")
	user := b.newTab("user")
	user.run("open the console", chromedp.Navigate(root+"/gatehouse/console/users"))
	user.idpSignIn(samlidptest.User, samlidptest.Password, "main h1")
	if h, body := user.text("main h1"), user.text("main"); h != "Forbidden" || !strings.Contains(body, "manager role") {
		t.Fatalf("a user-role person sees %q: %q", h, body)
	}
}

// TestConsoleOnAPhoneAndByKeyboard: on a phone-sized screen no console
// page is wider than the screen (tables scroll inside their box), and
// the first key press reaches the skip link, which leads to the content.
func TestConsoleOnAPhoneAndByKeyboard(t *testing.T) {
	b := newBrowser(t)
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	_, root := startSAMLGateway(t, idp, "", "GATEHOUSE_PROVISIONING_METHOD=manual", "GATEHOUSE_ADMIN_BOOTSTRAP_MANAGERS=ada@example.com")
	phone := b.newTab("phone")
	phone.run("a phone's screen", chromedp.EmulateViewport(390, 844), chromedp.Navigate(root+"/gatehouse/console/users"))
	phone.idpSignIn(samlidptest.User, samlidptest.Password, "main h1")
	for _, page := range consolePages {
		phone.run("open "+page, chromedp.Navigate(root+"/gatehouse"+page), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
		if wide := value(phone, "measure "+page, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)); wide {
			t.Errorf("%s is wider than a phone's screen", page)
		}
		phone.run("press Tab", chromedp.KeyEvent("\t"))
		if focused := value(phone, "focus", chromedp.Evaluate[string](`document.activeElement.className + ":" + document.activeElement.getAttribute("href")`)); focused != "skip:#main" {
			t.Errorf("%s: the first Tab focuses %q, not the skip link", page, focused)
		}
	}
}

package conformance

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleOperatorInTheBrowser: the operator signs in to the console
// with admin.token (a wrong token is refused), sees every organization
// with its status, users, last SCIM request and domains, opens one,
// verifies its domain against DNS, makes a setup link and suspends it;
// a manager's session is nobody here, and a wrong token opens nothing.
func TestConsoleOperatorInTheBrowser(t *testing.T) {
	b := newBrowser(t)
	zone := startDNS(t)
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_DOMAINS_RESOLVER="+zone.addr)
	operator := bearer(adminToken)
	adminRequest(t, g, "POST", "/orgs", `{"id":"acme","name":"Acme","domains":["acme.example"]}`, operator).must(t, 201)
	adminRequest(t, g, "POST", "/orgs/acme/users", `{"userName":"ada@acme.example"}`, operator).must(t, 201)
	adminRequest(t, g, "POST", "/orgs", `{"id":"globex","name":"Globex"}`, operator).must(t, 201)
	domain := adminRequest(t, g, "GET", "/orgs/acme/domains", "", operator).must(t, 200).body["domains"].([]any)[0].(map[string]any)
	root := "http://" + g.app.MainAddr() + "/gatehouse/console/operator"

	op := b.newTab("operator")
	op.run("open the operator view", chromedp.Navigate(root), chromedp.WaitVisible(chromedp.CSS(`#token`)))
	op.run("a wrong token", chromedp.SendKeys(chromedp.CSS(`#token`), "not-the-token"))
	op.submit("sign in with a wrong token", `form button`)
	if e := op.text(`p.error`); !strings.Contains(e, "not the operator token") {
		t.Fatalf("a wrong token: %q", e)
	}
	op.run("the token", chromedp.SendKeys(chromedp.CSS(`#token`), adminToken))
	op.submit("sign in", `form button`)
	rows := op.text(`#orgs`)
	for _, want := range []string{"Acme", "Globex", "Default organization", "acme.example (unverified)"} {
		if !strings.Contains(rows, want) {
			t.Fatalf("the organizations lack %q: %q", want, rows)
		}
	}
	if acme := op.text(`#org-acme`); !strings.Contains(acme, "manual") || !strings.Contains(acme, "never") {
		t.Fatalf("Acme's row: %q", acme)
	}
	op.submit("open Acme", `#org-acme a`)
	if h := op.text("h1"); h != "Acme" {
		t.Fatalf("Acme's page: %q", h)
	}
	if v := value(op, "read the TXT value", chromedp.Value(chromedp.CSS(`#txt-acme\.example`))); v != domain["txt_value"] {
		t.Fatalf("the TXT record shown: %q, want %q", v, domain["txt_value"])
	}
	zone.set(domain["txt_name"].(string), domain["txt_value"].(string))
	op.submit("verify the domain", `#domain-acme\.example form button`)
	if d := op.text(`#domain-acme\.example`); !strings.Contains(d, "verified") || strings.Contains(d, "unverified") {
		t.Fatalf("after verifying: %q", d)
	}
	op.submit("make a setup link", `#make-setup-link`)
	if link := value(op, "read the setup link", chromedp.Value(chromedp.CSS(`#secret`))); !strings.HasPrefix(link, "https://app.example.test/gatehouse/o/acme/setup/link/") {
		t.Fatalf("the setup link: %q", link)
	}
	op.run("suspend, confirmed", chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`))
	op.submit("suspend", `#suspend`)
	if st := op.text(`#status`); !strings.Contains(st, "suspended") {
		t.Fatalf("after suspending: %q", st)
	}
	if got := adminRequest(t, g, "GET", "/orgs/acme", "", operator); got.body["suspended"] != true {
		t.Fatalf("Acme after the operator suspended it: %s", got.raw)
	}

	// A manager's session, or no cookie, is nobody here; a form without
	// the operator's CSRF token changes nothing.
	mgr, _ := sessionAs(t, g, "mia@example.com", "manager")
	req, _ := http.NewRequest("GET", root, nil)
	req.AddCookie(mgr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a manager at the operator view: %d", resp.StatusCode)
	}
	cookies := value(op, "read the cookies", chromedp.Evaluate[string](`document.cookie`)) // HttpOnly: none readable
	if cookies != "" {
		t.Fatalf("the operator cookie is readable by scripts: %q", cookies)
	}
	form := url.Values{"do": {"resume"}}
	resp, err = http.PostForm(root+"/orgs/acme", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a form without the operator's cookie: %d", resp.StatusCode)
	}
}

// TestConsoleOperatorGuessesBounded: wrong operator tokens are refused,
// and after ten of them every attempt waits (429), the right token too.
func TestConsoleOperatorGuessesBounded(t *testing.T) {
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken)
	signIn := func(token string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+g.app.MainAddr()+"/gatehouse/console/operator/signin", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := signIn(adminToken); status != http.StatusSeeOther {
		t.Fatalf("the right token: %d", status)
	}
	// Sixteen guesses at once: ten are looked at, the rest wait.
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			status := signIn("guess")
			mu.Lock()
			statuses[status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[http.StatusUnauthorized] != 10 || statuses[http.StatusTooManyRequests] != 6 {
		t.Fatalf("sixteen guesses at once: %v", statuses)
	}
	if status := signIn(adminToken); status != http.StatusTooManyRequests {
		t.Fatalf("after ten wrong tokens: %d", status)
	}
}

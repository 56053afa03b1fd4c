package conformance

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

// TestSignInIntentIsRecordedNotInferred: what a sign-in is for is decided
// by the page that started it and stored with the sign-in in flight; the
// page it returns to never decides. A plain sign-in that returns to an
// invitation's acceptance accepts nothing; an IdP-initiated response
// whose RelayState names the join, an invitation or the console's test
// is a plain sign-in; a test sign-in completed outside the manager's
// session shows nothing and signs nobody in.
func TestSignInIntentIsRecordedNotInferred(t *testing.T) {
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	g, root := startSAMLGateway(t, idp, "", "GATEHOUSE_PROVISIONING_METHOD=manual", "GATEHOUSE_ADMIN_TOKEN="+adminToken,
		"GATEHOUSE_SSO_SAML_ALLOW_IDP_INITIATED=true")
	auth := bearer(adminToken)
	users := func() int {
		_, n, _ := g.app.Store().Users().List(context.Background(), gateway.DefaultOrg, 0, 0)
		return n
	}
	complete := func(b *http.Client, acs string, form url.Values) (int, string) {
		t.Helper()
		resp, err := b.PostForm(acs, form)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Request.URL.Path + " " + string(body)
	}
	inv := adminRequest(t, g, "POST", "/invitations", `{"email":"`+samlidptest.Email+`"}`, auth)
	if inv.status != 201 {
		t.Fatalf("invite: %d %s", inv.status, inv.raw)
	}
	accept := strings.TrimPrefix(inv.str("link"), root) + "/accept"
	pending := func() bool {
		return strings.Contains(adminRequest(t, g, "GET", "/invitations", "", auth).raw, `"status":"pending"`)
	}

	// A plain sign-in returning to the acceptance: Ada is not provisioned,
	// so she is refused; the invitation is still waiting.
	b := samlidptest.Browser(nil)
	acs, form := samlidptest.SignIn(t, b, root+"/gatehouse/login?return="+url.QueryEscape(accept))
	if status, body := complete(b, acs, form); status != http.StatusForbidden || !strings.Contains(body, "not been provisioned") || users() != 0 || !pending() {
		t.Fatalf("a plain sign-in returning to the acceptance: %d %.300s; %d users, pending %v", status, body, users(), pending())
	}

	// IdP-initiated responses naming the acceptance, the join or the test
	// page: plain sign-ins, refused like the one above.
	signedIn := samlidptest.Browser(nil)
	resp, err := signedIn.PostForm(idp.URL+"/login", url.Values{"user": {samlidptest.User}, "password": {samlidptest.Password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for i, relay := range []string{accept, "/gatehouse/join/complete", "/gatehouse/console/identity/test"} {
		name := "tile" + string(rune('a'+i))
		idp.Put(t, "/shortcuts/"+name, `{"service_provider":"`+root+`/gatehouse/saml/metadata","relay_state":"`+relay+`"}`)
		resp, err := signedIn.Get(idp.URL + "/login/" + name)
		if err != nil {
			t.Fatal(err)
		}
		acs, form := samlidptest.FormOf(t, resp)
		if form.Get("RelayState") != relay {
			t.Fatalf("the IdP sent RelayState %q", form.Get("RelayState"))
		}
		if status, body := complete(signedIn, acs, form); status != http.StatusForbidden || !strings.Contains(body, "not been provisioned") || users() != 0 || !pending() {
			t.Fatalf("IdP-initiated to %s: %d %.300s; %d users", relay, status, body, users())
		}
	}

	// The invitation's own sign-in accepts it.
	b = samlidptest.Browser(nil)
	acs, form = samlidptest.SignIn(t, b, "POST "+inv.str("link")+"/signin")
	if status, body := complete(b, acs, form); status == http.StatusForbidden || users() != 1 || pending() {
		t.Fatalf("the invitation's sign-in: %d %.300s; %d users", status, body, users())
	}

	// A manager starts a test, then signs out before coming back: the
	// result is not shown to anyone, and nobody is signed in by it.
	cookie, csrf := sessionAs(t, g, "mia@example.com", "manager")
	mgr := samlidptest.Browser(nil)
	rootURL, _ := url.Parse(root)
	mgr.Jar.SetCookies(rootURL, []*http.Cookie{cookie})
	acs, form = samlidptest.SignIn(t, mgr, "POST "+root+"/gatehouse/login/test?csrf="+url.QueryEscape(csrf))
	signOut(t, mgr, root)
	if status, body := complete(mgr, acs, form); status != http.StatusForbidden || !strings.Contains(body, "another browser session") {
		t.Fatalf("a test completed after the manager signed out: %d %.300s", status, body)
	}
	if n, _ := g.app.Store().Sessions().Count(context.Background(), gateway.DefaultOrg); n != 1 {
		t.Fatalf("%d sessions: the refused test signed someone in (only Ada's from her acceptance should be left)", n)
	}
	// Only managers may start one, with a button on this site: a link or
	// another site's form starts nothing.
	if resp, err := samlidptest.Browser(nil).PostForm(root+"/gatehouse/login/test", nil); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a test started without a manager's session: %v %v", resp.StatusCode, err)
	}
	for _, path := range []string{"/gatehouse/join/signin", "/gatehouse/login/test", strings.TrimPrefix(inv.str("link"), root) + "/signin"} {
		if resp, err := samlidptest.Browser(nil).Get(root + path); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("a link to %s: %v %v, want 405", path, resp.StatusCode, err)
		}
		req, _ := http.NewRequest("POST", root+path, nil)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("another site's form to %s: %v %v, want 403", path, resp.StatusCode, err)
		}
	}
}

package conformance

import (
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

var checkLine = regexp.MustCompile(`(?s)<li id="check-([a-z-]+)" data-done="(true|false)"[^>]*>(.*?)</li>`)

// overview reads the console's overview: each check's done state and
// text, and the next step.
func overview(t *testing.T, url string, cookie *http.Cookie) (map[string]string, string) {
	t.Helper()
	body := httpGetWithCookie(t, url, cookie)
	checks := map[string]string{}
	for _, m := range checkLine.FindAllStringSubmatch(body, -1) {
		checks[m[1]] = m[2] + " " + m[3]
	}
	next := regexp.MustCompile(`(?s)id="next"[^>]*>(.*?)</(section|p)>`).FindStringSubmatch(body)
	if next == nil {
		t.Fatalf("no next step on the overview: %.2000s", body)
	}
	return checks, next[1]
}

// TestConsoleOverview: the overview shows the organization's setup
// status and the next step: the sign-in connected, tested (and tested
// again after a change), SCIM's first request, delivery's dead letters,
// and the IdP certificate's expiry read from its metadata.
func TestConsoleOverview(t *testing.T) {
	hook := newHookReceiver(t)
	hook.set(func(h *hookReceiver) { h.reject = func(e gateway.WireEvent) bool { return true } })
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	g, root := startSAMLGateway(t, idp, "", append(webhookEnv(hook.srv.URL), "GATEHOUSE_PROVISIONING_METHOD=scim", "GATEHOUSE_DELIVERY_MAX_ATTEMPTS=1")...)
	cookie, csrf := sessionAs(t, g, "mia@example.com", "manager")
	page := root + "/gatehouse/console/overview"

	checks, next := overview(t, page, cookie)
	if !strings.HasPrefix(checks["sign-in"], "true") || !strings.HasPrefix(checks["tested"], "false") || !strings.Contains(next, "Run a test sign-in") {
		t.Fatalf("before a test: %v, next %q", checks, next)
	}
	// The certificate's date is the IdP's own.
	md := string(idp.Metadata(t))
	raw := regexp.MustCompile(`(?s)<(?:\w+:)?X509Certificate[^>]*>(.*?)</`).FindStringSubmatch(md)
	der, _ := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(raw[1]), ""))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Valid until " + cert.NotAfter.UTC().Format("2 January 2006"); !strings.Contains(checks["certificate"], want) {
		t.Fatalf("the IdP certificate: %q, want %q", checks["certificate"], want)
	}
	if !strings.HasPrefix(checks["scim"], "false") || !strings.Contains(checks["scim"], "No SCIM request yet") {
		t.Fatalf("SCIM before its first request: %q", checks["scim"])
	}

	// A manager's test sign-in ticks it.
	b := laxBrowser()
	rootURL, _ := url.Parse(root)
	b.Jar.SetCookies(rootURL, []*http.Cookie{cookie})
	acs, form := samlidptest.SignIn(t, b, "POST "+root+"/gatehouse/login/test?csrf="+url.QueryEscape(csrf))
	resp, err := b.PostForm(acs, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// A SCIM request arrives; a user is made, and the app refuses it.
	call := g.call("POST", "/Users", oktaUser("ada@example.com", "Ada", "Lovelace"))
	call.must(t, 201)
	eventually(t, "a dead letter", func() bool {
		checks, _ = overview(t, page, cookie)
		return strings.HasPrefix(checks["delivery"], "false")
	})
	checks, next = overview(t, page, cookie)
	if !strings.HasPrefix(checks["tested"], "true") || !strings.HasPrefix(checks["scim"], "true") || !strings.Contains(next, "fix what the application refused") {
		t.Fatalf("after a test, a SCIM request and a refused delivery: %v, next %q", checks, next)
	}
	// A change of the settings asks for a new test.
	got := adminRequest(t, g, "PUT", "/identity", `{"sso":{"protocol":"saml","saml":{"idp_metadata_xml":`+jsonString(md)+`}}}`, withCookie(cookie, csrf))
	got.must(t, 200)
	if checks, _ = overview(t, page, cookie); !strings.HasPrefix(checks["tested"], "false") || !strings.Contains(checks["tested"], "before the settings changed") {
		t.Fatalf("after a change: %q", checks["tested"])
	}
}

// TestConsoleGroups: the Groups page lists the IdP's groups with their
// members (the first few named, linked) and the pool each maps to.
func TestConsoleGroups(t *testing.T) {
	g := startGateway(t, "")
	cookie, csrf := sessionAs(t, g, "mia@example.com", "manager")
	page := "http://" + g.app.MainAddr() + "/gatehouse/console/groups"
	if body := httpGetWithCookie(t, page, cookie); !strings.Contains(body, `id="no-groups"`) {
		t.Fatalf("no groups yet: %.2000s", body)
	}
	var members []string
	for i := range 7 {
		u := g.call("POST", "/Users", oktaUser(fmt.Sprintf("user%d@example.com", i), "User", strconv.Itoa(i))).must(t, 201)
		members = append(members, `{"value":"`+u.str("id")+`","display":"user`+strconv.Itoa(i)+`@example.com"}`)
	}
	g.call("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Support Agents","members":[`+strings.Join(members, ",")+`]}`).must(t, 201)
	g.call("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Empty"}`).must(t, 201)
	adminRequest(t, g, "POST", "/pools", `{"id":"support"}`, withCookie(cookie, csrf)).must(t, 201)
	adminRequest(t, g, "PUT", "/identity", `{"provisioning":{"method":"scim","default_pool":"default","default_role":"user","group_pools":{"support agents":"support"},"group_pools_enabled":true}}`,
		withCookie(cookie, csrf)).must(t, 200)
	body := httpGetWithCookie(t, page, cookie)
	row := regexp.MustCompile(`(?s)<tr id="group-[^"]+"><td>Support Agents</td>(.*?)</tr>`).FindStringSubmatch(body)
	if row == nil || !strings.Contains(row[1], "7 members") || strings.Count(row[1], `/console/users/`) != 5 || !strings.Contains(row[1], "…") ||
		!strings.Contains(row[1], `href="/gatehouse/console/users?pool=support"`) {
		t.Fatalf("the Support Agents row: %.3000s", body)
	}
	if !regexp.MustCompile(`(?s)<td>Empty</td>\s*<td>0 members</td>\s*<td><span class="hint">none</span>`).MatchString(body) {
		t.Fatalf("the empty group's row: %.3000s", body)
	}
}

// TestConsoleAuditByEmail: the audit log is searchable by the email it
// shows for the person who made a change.
func TestConsoleAuditByEmail(t *testing.T) {
	g := startGateway(t, "")
	mia, miaCSRF := sessionAs(t, g, "mia@example.com", "manager")
	noah, noahCSRF := sessionAs(t, g, "noah@example.com", "manager")
	adminRequest(t, g, "POST", "/pools", `{"id":"by-mia"}`, withCookie(mia, miaCSRF)).must(t, 201)
	adminRequest(t, g, "POST", "/pools", `{"id":"by-noah"}`, withCookie(noah, noahCSRF)).must(t, 201)
	page := "http://" + g.app.MainAddr() + "/gatehouse/console/audit?email="
	body := httpGetWithCookie(t, page+url.QueryEscape("MIA@example.com"), noah)
	if !strings.Contains(body, "pool:by-mia") || strings.Contains(body, "pool:by-noah") || !strings.Contains(body, `value="MIA@example.com"`) {
		t.Fatalf("Mia's changes: %.3000s", body)
	}
	if body := httpGetWithCookie(t, page+"nobody%40example.com", noah); !strings.Contains(body, "Nobody in this organization has the email nobody@example.com") || strings.Contains(body, "pool:by-") {
		t.Fatalf("an unknown email: %.3000s", body)
	}
}

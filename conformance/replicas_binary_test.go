package conformance

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/oidcoptest"
	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

// balancer is the load balancer in front of the replicas: round robin
// over the ones that are up.
type balancer struct {
	mu       sync.Mutex
	backends []string
	next     atomic.Uint64
}

func (b *balancer) set(i int, addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends[i] = addr
}

func startBalancer(t *testing.T, addr string, backends []string) *balancer {
	b := &balancer{backends: backends}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			b.mu.Lock()
			target := b.backends[int(b.next.Add(1))%len(b.backends)]
			b.mu.Unlock()
			r.SetURL(&url.URL{Scheme: "http", Host: target})
			r.Out.Host = r.In.Host
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) { w.WriteHeader(http.StatusBadGateway) },
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rp}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b
}

// TestThreeReplicasThroughBinaries: three gatehouse processes on one
// PostgreSQL database behind a load balancer act as one gateway, through
// a SIGKILL and restart of one of them under SCIM load: every acknowledged
// write is readable through every replica and delivered to the app in
// order per user; racing creates of one name across replicas make one
// user; a stale If-Match from one replica is refused by another; a sign-in
// started on one replica completes on another and is good on the third; a
// deactivation through one ends the session on the others within 1 s;
// the IdP's single logout and Universal Logout do too;
// all publish the same JWKS; an API token and a method switch made on one
// act on all.
func TestThreeReplicasThroughBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dsn, schema := pgSchema(t, "")
	hook := newHookReceiver(t)
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	lbAddr := freeAddr(t)
	root := "http://" + lbAddr
	env := append([]string{"GATEHOUSE_STORE_TYPE=postgres", "GATEHOUSE_STORE_POSTGRES_DSN=" + dsn, "GATEHOUSE_STORE_POSTGRES_SCHEMA=" + schema,
		"GATEHOUSE_PUBLIC_URL=" + root, "GATEHOUSE_ADMIN_TOKEN=" + adminToken, "GATEHOUSE_SCIM_TOKEN=" + testToken,
		"GATEHOUSE_SSO_PROTOCOL=external", "GATEHOUSE_PROVISIONING_METHOD=scim", "GATEHOUSE_UPSTREAM_URL=" + startWhoami(t), unshared,
		// A long session cache: only the change signal can end a session
		// on the other replicas in time.
		"GATEHOUSE_SESSION_CACHE_TTL=30s"},
		webhookEnv(hook.srv.URL)...)
	var reps [3]*process
	addrs := make([]string, 3)
	for i := range reps {
		reps[i] = startBinary(t, t.TempDir(), env...)
		addrs[i] = reps[i].addr
	}
	lb := startBalancer(t, lbAddr, addrs)
	at := func(i int) string { return "http://" + reps[i].addr }

	// SCIM load through the balancer; one replica is killed and restarted.
	var mu sync.Mutex
	acked := map[string]bool{}
	other := map[int]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("load%d-%d@example.com", w, i)
				req, _ := http.NewRequest("POST", root+"/gatehouse/scim/v2/Users", strings.NewReader(userJSON(name)))
				req.Header.Set("Authorization", "Bearer "+testToken)
				req.Header.Set("Content-Type", "application/scim+json")
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				mu.Lock()
				if resp.StatusCode == 201 {
					acked[name] = true
				} else {
					other[resp.StatusCode]++
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	_ = reps[2].cmd.Process.Kill() // SIGKILL: no shutdown, no lease released
	<-reps[2].done
	time.Sleep(500 * time.Millisecond)
	reps[2] = startBinary(t, t.TempDir(), env...)
	lb.set(2, reps[2].addr)
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d creates acknowledged; other answers %v", len(acked), other)
	for code := range other {
		if code != http.StatusBadGateway {
			t.Errorf("%d answers %d (only the balancer's 502 for the killed replica is expected)", other[code], code)
		}
	}

	// Every acknowledged write, through every replica.
	for i := range reps {
		n := scimAt(t, at(i)+"/gatehouse/scim/v2", testToken, "GET", "/Users?count=0", "").must(t, 200).get("totalResults").(float64)
		if int(n) < len(acked) {
			t.Fatalf("replica %d holds %v users, %d were acknowledged", i, n, len(acked))
		}
	}
	checked := 0
	for name := range acked {
		if checked%25 == 0 {
			r := scimAt(t, at(checked%3)+"/gatehouse/scim/v2", testToken, "GET", "/Users?filter="+url.QueryEscape(`userName eq "`+name+`"`), "").must(t, 200)
			if r.get("totalResults") != float64(1) {
				t.Fatalf("%s, acknowledged, through replica %d: %s", name, checked%3, r.raw)
			}
		}
		checked++
	}
	// Delivered, in order per user, with every user's creation.
	eventually(t, "every acknowledged user delivered", func() bool {
		got := map[string]bool{}
		for _, e := range hook.events() {
			if e.User != nil && e.Type == gateway.OpUserCreated {
				got[e.User.UserName] = true
			}
		}
		for name := range acked {
			if !got[name] {
				return false
			}
		}
		return true
	})
	lastOf := map[string]uint64{}
	for _, e := range hook.events() {
		if e.User == nil {
			continue
		}
		if e.Seq < lastOf[e.User.ID] {
			t.Fatalf("user %s's event %d came after %d", e.User.ID, e.Seq, lastOf[e.User.ID])
		}
		lastOf[e.User.ID] = e.Seq
	}

	// Racing creates of one name, three per replica: one user.
	statuses := make([]int, 9)
	var race sync.WaitGroup
	for i := range statuses {
		race.Go(func() {
			statuses[i] = scimAt(t, at(i%3)+"/gatehouse/scim/v2", testToken, "POST", "/Users", userJSON("race@example.com")).status
		})
	}
	race.Wait()
	if won := strings.Count(fmt.Sprint(statuses), "201"); won != 1 {
		t.Fatalf("racing creates across replicas: %v", statuses)
	}
	// A stale If-Match from replica 0, after replica 1 changed the user.
	ada := scimAt(t, at(0)+"/gatehouse/scim/v2", testToken, "POST", "/Users", oktaUser(samlidptest.Email, "Ada", "Lovelace")).must(t, 201)
	etag := ada.header.Get("ETag")
	patch := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"%s"}]}`
	g1 := &gatewayUnderTest{t: t, base: at(1) + "/gatehouse/scim/v2", client: &http.Client{}}
	g1.call("PATCH", "/Users/"+ada.str("id"), fmt.Sprintf(patch, "one"), "If-Match", etag).must(t, 200)
	g2 := &gatewayUnderTest{t: t, base: at(2) + "/gatehouse/scim/v2", client: &http.Client{}}
	g2.call("PATCH", "/Users/"+ada.str("id"), fmt.Sprintf(patch, "stale"), "If-Match", etag).scimError(t, 412, "")

	// One signing key between them: the JWKS is the same everywhere.
	if j0, j1, j2 := get(t, at(0)+"/gatehouse/.well-known/jwks.json"), get(t, at(1)+"/gatehouse/.well-known/jwks.json"),
		get(t, at(2)+"/gatehouse/.well-known/jwks.json"); j0 != j1 || j1 != j2 {
		t.Fatalf("the replicas publish different keys:\n%s\n%s\n%s", j0, j1, j2)
	}

	// SAML set up through replica 0; every replica serves it.
	metadata := fmt.Sprintf("%q", idp.Metadata(t))
	if r := adminAt(t, at(0), "PUT", "/identity", `{"sso":{"protocol":"saml","saml":{"idp_metadata_xml":`+metadata+`}},"provisioning":{"method":"scim","default_pool":"default","default_role":"user"}}`, bearer(adminToken)); r.status != 200 {
		t.Fatalf("set up SAML: %d %s", r.status, r.raw)
	}
	idp.RegisterSP(t, "gatehouse", root+"/gatehouse/saml/metadata", false)
	// Started on replica 1, completed on replica 2, good on replica 0.
	browser := samlidptest.Browser(nil)
	acs, form := samlidptest.SignIn(t, browser, at(1)+"/gatehouse/login?return=/whoami")
	acsURL, _ := url.Parse(acs)
	acsURL.Host = reps[2].addr
	resp, err := browser.PostForm(acsURL.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	if who := readWhoami(t, resp); who.UserID != ada.str("id") {
		t.Fatalf("signed in through replica 2 as %+v", who)
	}
	whoamiAt := func(i int) int {
		c := &http.Client{Jar: browser.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(at(i) + "/whoami")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range reps { // every replica has the session in memory now
		if s := whoamiAt(i); s != 200 {
			t.Fatalf("the session through replica %d: %d", i, s)
		}
	}
	// Deactivated through replica 0: refused on 1 and 2 within a second.
	scimAt(t, at(0)+"/gatehouse/scim/v2", testToken, "PATCH", "/Users/"+ada.str("id"),
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`).must(t, 200)
	start := time.Now()
	for whoamiAt(1) == 200 || whoamiAt(2) == 200 {
		if time.Since(start) > time.Second {
			t.Fatalf("a replica still lets the deactivated person in %v later", time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the deactivation ended the session on every replica within %v", time.Since(start).Round(time.Millisecond))

	// The IdP's logouts end the session on every replica within a second
	// too: samlidp's single logout (through the browser and the
	// balancer), then Okta's Universal Logout sent to replica 0.
	scimAt(t, at(0)+"/gatehouse/scim/v2", testToken, "PATCH", "/Users/"+ada.str("id"),
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":true}]}`).must(t, 200)
	okta := startOktaOrg(t)
	if r := adminAt(t, at(0), "PUT", "/identity", `{"sso":{"protocol":"saml","saml":{"idp_metadata_xml":`+metadata+`},"universal_logout":{"issuer":"`+okta.url+`"}},"provisioning":{"method":"scim","default_pool":"default","default_role":"user"}}`, bearer(adminToken)); r.status != 200 {
		t.Fatalf("turn Universal Logout on: %d %s", r.status, r.raw)
	}
	signInEverywhere := func() {
		t.Helper()
		acs, form := samlidptest.SignIn(t, browser, at(1)+"/gatehouse/login?return=/whoami")
		acsURL, _ := url.Parse(acs)
		acsURL.Host = reps[2].addr
		resp, err := browser.PostForm(acsURL.String(), form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for i := range reps {
			if s := whoamiAt(i); s != 200 {
				t.Fatalf("signed in again, through replica %d: %d", i, s)
			}
		}
	}
	endedEverywhere := func(what string, start time.Time) {
		t.Helper()
		for whoamiAt(0) == 200 || whoamiAt(1) == 200 || whoamiAt(2) == 200 {
			if time.Since(start) > time.Second {
				t.Fatalf("a replica still serves the session %v after %s", time.Since(start), what)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("%s ended the session on every replica within %v", what, time.Since(start).Round(time.Millisecond))
	}
	signInEverywhere()
	resp, err = samlidptest.FollowForms(browser, idp.URL+"/logout")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	endedEverywhere("the IdP's SAML single logout", time.Now())
	signInEverywhere()
	revoke, _ := http.NewRequest("POST", at(0)+"/gatehouse/global-token-revocation", strings.NewReader(`{"sub_id":{"format":"email","email":"`+samlidptest.Email+`"}}`))
	revoke.Header.Set("Authorization", "Bearer "+okta.token(t, root+"/gatehouse/global-token-revocation", nil, nil))
	revoke.Header.Set("Content-Type", "application/json")
	start = time.Now()
	resp, err = http.DefaultClient.Do(revoke)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("Universal Logout through replica 0: %d", resp.StatusCode)
	}
	endedEverywhere("Okta's Universal Logout", start)
	// The person signs out through replica 0: a LogoutRequest to the IdP,
	// its LogoutResponse back through the balancer.
	signInEverywhere()
	signOutThrough := func(i int, back string) {
		t.Helper()
		resp, err := browser.Get(at(i) + "/gatehouse/logout")
		if err != nil {
			t.Fatal(err)
		}
		action, fields := samlidptest.FormOf(t, resp)
		req, _ := http.NewRequest("POST", at(i)+action, strings.NewReader(url.Values{"csrf": {fields.Get("csrf")}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", at(i))
		start := time.Now()
		if resp, err = samlidptest.FollowFormsFrom(browser, req); err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(page), back) {
			t.Fatalf("signing out through replica %d: %d at %s: %.300s", i, resp.StatusCode, resp.Request.URL, page)
		}
		endedEverywhere(fmt.Sprintf("signing out through replica %d", i), start)
	}
	signOutThrough(0, "signed out of this application and of your identity provider")

	// OIDC now: the OP's back-channel logout, sent to replica 1.
	op := oidcoptest.Start(t, root+"/gatehouse/oidc/callback")
	if r := adminAt(t, at(0), "PUT", "/identity", `{"sso":{"protocol":"oidc","oidc":{"issuer":"`+op.Issuer+`","client_id":"`+oidcoptest.ClientID+`","client_secret":"`+oidcoptest.ClientSecret+`"}},"provisioning":{"method":"scim","default_pool":"default","default_role":"user"}}`, bearer(adminToken)); r.status != 200 {
		t.Fatalf("switch to OIDC: %d %s", r.status, r.raw)
	}
	browser = samlidptest.Browser(func(r *http.Request) bool { return r.URL.Path == "/gatehouse/oidc/callback" })
	back := op.SignIn(t, browser, at(2)+"/gatehouse/login?return=/whoami")
	back.Host = reps[0].addr
	browser.CheckRedirect = nil
	resp, err = browser.Get(back.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for i := range reps {
		if s := whoamiAt(i); s != 200 {
			t.Fatalf("signed in by OIDC, through replica %d: %d", i, s)
		}
	}
	token, err := op.SignLogoutToken(map[string]any{"iss": op.Issuer, "sub": oidcoptest.User, "aud": oidcoptest.ClientID,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(), "jti": "replicas-1", "sid": op.Session(oidcoptest.User),
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}})
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	resp, err = http.PostForm(at(1)+"/gatehouse/oidc/backchannel-logout", url.Values{"logout_token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("back-channel logout through replica 1: %d", resp.StatusCode)
	}
	endedEverywhere("the OP's back-channel logout", start)
	// Signed in again and out through replica 2: the OP's end_session,
	// its back-channel logout through the balancer, and back.
	browser.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if r.URL.Path == "/gatehouse/oidc/callback" {
			return http.ErrUseLastResponse
		}
		return nil
	}
	back = op.SignIn(t, browser, at(2)+"/gatehouse/login?return=/whoami")
	back.Host = reps[1].addr
	browser.CheckRedirect = nil
	if resp, err = browser.Get(back.String()); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for i := range reps {
		if s := whoamiAt(i); s != 200 {
			t.Fatalf("signed in by OIDC again, through replica %d: %d", i, s)
		}
	}
	signOutThrough(2, "signed out of this application and of your identity provider")

	// An API token made on replica 1 works on 0 and 2 at once.
	tok := adminAt(t, at(1), "POST", "/api-tokens", `{"name":"ci"}`, bearer(adminToken))
	if tok.status != 201 {
		t.Fatalf("API token: %d %s", tok.status, tok.raw)
	}
	for _, i := range []int{0, 2} {
		if r := adminAt(t, at(i), "GET", "/users", "", bearer(tok.str("token"))); r.status != 200 {
			t.Fatalf("the token made on replica 1, used on replica %d: %d %s", i, r.status, r.raw)
		}
	}
	// The method switched to manual on replica 2: SCIM is off on all
	// three within a second.
	if r := adminAt(t, at(2), "PUT", "/identity", `{"provisioning":{"method":"manual","default_pool":"default","default_role":"user"}}`, bearer(adminToken)); r.status != 200 {
		t.Fatalf("switch to manual: %d %s", r.status, r.raw)
	}
	start = time.Now()
	for i := range reps {
		for scimAt(t, at(i)+"/gatehouse/scim/v2", testToken, "GET", "/Users?count=1", "").status != 403 {
			if time.Since(start) > time.Second {
				t.Fatalf("replica %d still answers SCIM %v after the switch", i, time.Since(start))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

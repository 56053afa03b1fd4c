package conformance

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/oidcoptest"
	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

// whoami is what the app behind the gateway was told about a request.
type whoami struct {
	Org, Email, UserID, Assertion, Access string
}

// startWhoami is an app that answers every request with the identity
// headers the gateway forwarded.
func startWhoami(t *testing.T) string {
	t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(whoami{Org: r.Header.Get("X-Gatehouse-Org"), Email: r.Header.Get("X-Gatehouse-Email"),
			UserID: r.Header.Get("X-Gatehouse-User-Id"), Assertion: r.Header.Get("X-Gatehouse-Assertion"), Access: r.Header.Get("X-Gatehouse-Access")})
	}))
	t.Cleanup(app.Close)
	return app.URL
}

// readWhoami reads the app's answer, after a sign-in ended on it.
func readWhoami(t *testing.T, resp *http.Response) whoami {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var who whoami
	if resp.StatusCode != 200 || json.Unmarshal(b, &who) != nil {
		t.Fatalf("the app's page at %s: %d %.400s", resp.Request.URL, resp.StatusCode, b)
	}
	return who
}

// verifiedClaims verifies the identity JWT with the gateway's published
// keys (ES256 only) and reads its claims into claims.
func verifiedClaims(t *testing.T, root, token string, claims any) {
	t.Helper()
	resp, err := http.Get(root + "/gatehouse/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("identity JWT: %v", err)
	}
	if err := parsed.Claims(set, claims); err != nil {
		t.Fatalf("identity JWT does not verify with the gateway's JWKS: %v", err)
	}
}

// orgClaim is the identity JWT's subject and org claim, verified.
func orgClaim(t *testing.T, root, token string) (string, string) {
	t.Helper()
	var claims struct {
		jwt.Claims
		Org string `json:"org"`
	}
	verifiedClaims(t, root, token, &claims)
	return claims.Subject, claims.Org
}

// TestOrganizationsSignInThroughTheirOwnIdPs: two organizations, each
// with its own IdP at its own URLs (Acme by SAML, Globex by OIDC), the
// same person known to both; JIT makes them once in each organization,
// each session belongs to the organization it signed in to, and the app
// is told which by header and by the signed JWT. A response made for one
// organization's SP is worth nothing at another's, even from the same
// IdP.
func TestOrganizationsSignInThroughTheirOwnIdPs(t *testing.T) {
	addr := freeAddr(t)
	root := "http://" + addr
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	op := oidcoptest.Start(t, root+"/gatehouse/o/globex/oidc/callback")
	g := startGateway(t, "", "GATEHOUSE_LISTEN="+addr, "GATEHOUSE_PUBLIC_URL="+root, "GATEHOUSE_ADMIN_TOKEN="+adminToken,
		"GATEHOUSE_UPSTREAM_URL="+startWhoami(t))
	operator := bearer(adminToken)
	must := func(c adminCall, want int) adminCall { t.Helper(); return c.must(t, want) }
	for _, o := range []string{`{"id":"acme","name":"Acme"}`, `{"id":"globex","name":"Globex"}`, `{"id":"initech","name":"Initech"}`} {
		must(adminRequest(t, g, "POST", "/orgs", o, operator), 201)
	}
	metadata, _ := json.Marshal(string(idp.Metadata(t)))
	jit := `"provisioning":{"method":"jit","default_pool":"default","default_role":"user"}`
	for _, org := range []string{"acme", "initech"} { // one IdP, two organizations' apps in it
		must(adminRequest(t, g, "PUT", "/orgs/"+org+"/identity", `{"sso":{"protocol":"saml","saml":{"idp_metadata_xml":`+string(metadata)+`}},`+jit+`}`, operator), 200)
		idp.RegisterSP(t, org, root+"/gatehouse/o/"+org+"/saml/metadata", false)
	}
	must(adminRequest(t, g, "PUT", "/orgs/globex/identity", `{"sso":{"protocol":"oidc","oidc":{"issuer":"`+op.Issuer+`","client_id":"`+
		oidcoptest.ClientID+`","client_secret":"`+oidcoptest.ClientSecret+`"}},`+jit+`}`, operator), 200)

	// Acme, by SAML at its own URLs.
	acmeBrowser := samlidptest.Browser(nil)
	acs, form := samlidptest.SignIn(t, acmeBrowser, root+"/gatehouse/o/acme/login?return=/whoami")
	if acs != root+"/gatehouse/o/acme/saml/acs" {
		t.Fatalf("Acme's ACS: %s", acs)
	}
	stolen := form.Get("SAMLResponse")
	resp, err := acmeBrowser.PostForm(acs, form)
	if err != nil {
		t.Fatal(err)
	}
	atAcme := readWhoami(t, resp)
	if resp.Request.URL.Path != "/whoami" || atAcme.Org != "acme" || atAcme.Email != samlidptest.Email {
		t.Fatalf("Acme's person at the app: %+v at %s", atAcme, resp.Request.URL)
	}
	if sub, org := orgClaim(t, root, atAcme.Assertion); sub != atAcme.UserID || org != "acme" {
		t.Fatalf("Acme's identity JWT: sub %q org %q", sub, org)
	}

	// Globex, by OIDC at its own URLs: the same person, another user.
	globexBrowser := samlidptest.Browser(func(r *http.Request) bool { return r.URL.Path == "/gatehouse/o/globex/oidc/callback" })
	back := op.SignIn(t, globexBrowser, root+"/gatehouse/o/globex/login?return=/whoami")
	globexBrowser.CheckRedirect = nil
	resp, err = globexBrowser.Get(back.String())
	if err != nil {
		t.Fatal(err)
	}
	atGlobex := readWhoami(t, resp)
	if atGlobex.Org != "globex" || atGlobex.Email != oidcoptest.Email || atGlobex.UserID == atAcme.UserID {
		t.Fatalf("Globex's person at the app: %+v (Acme's: %+v)", atGlobex, atAcme)
	}
	if sub, org := orgClaim(t, root, atGlobex.Assertion); sub != atGlobex.UserID || org != "globex" {
		t.Fatalf("Globex's identity JWT: sub %q org %q", sub, org)
	}

	// Each organization holds its own JIT user, and nobody else does.
	ctx := context.Background()
	for org, want := range map[gateway.OrgID]string{"acme": atAcme.UserID, "globex": atGlobex.UserID, "initech": "", gateway.DefaultOrg: ""} {
		users, n, err := g.app.Store().Users().List(ctx, org, 0, 10)
		switch {
		case err != nil:
			t.Fatal(err)
		case want == "" && n != 0, want != "" && (n != 1 || users[0].ID != want || users[0].Source != gateway.SourceJIT || users[0].UserName != "ada@example.com"):
			t.Fatalf("%s's users: %d %+v", org, n, users)
		}
	}

	// Acme's response, replayed at Initech's ACS (the same IdP, a
	// registered SP): made for another audience, it signs nobody in.
	thief := samlidptest.Browser(nil)
	resp, err = thief.PostForm(root+"/gatehouse/o/initech/saml/acs", map[string][]string{"SAMLResponse": {stolen}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("Acme's response at Initech: %d", resp.StatusCode)
	}
	if _, n, _ := g.app.Store().Users().List(ctx, "initech", 0, 10); n != 0 {
		t.Fatalf("Acme's response made %d users at Initech", n)
	}
	if n, _ := g.app.Store().Sessions().Count(ctx, "initech"); n != 0 {
		t.Fatalf("Acme's response made %d sessions at Initech", n)
	}

	// Expired sessions and sign-in data are swept in every organization.
	swept := g.app.SweepExpired(ctx, time.Now().Add(48*time.Hour))
	for _, org := range []gateway.OrgID{"acme", "globex"} {
		if n, _ := g.app.Store().Sessions().Count(ctx, org); n != 0 || swept.Sessions < 2 || swept.Ephemeral < 1 {
			t.Fatalf("after the sweep, %s keeps %d sessions (swept %+v)", org, n, swept)
		}
	}

	// Organizations that do not exist have no sign-in, no metadata.
	for _, path := range []string{"/gatehouse/o/nope/login", "/gatehouse/o/nope/saml/metadata", "/gatehouse/o/Not_A_Slug/login", "/gatehouse/o/nope/join"} {
		if p := getPage(t, http.DefaultClient, root+path); p.status != 404 || !strings.Contains(p.body, "No such organization") {
			t.Fatalf("%s: %d %.200s", path, p.status, p.body)
		}
	}
	// Acme's SP metadata names Acme's URLs.
	if p := getPage(t, http.DefaultClient, root+"/gatehouse/o/acme/saml/metadata"); p.status != 200 ||
		!strings.Contains(p.body, `entityID="`+root+`/gatehouse/o/acme/saml/metadata"`) || !strings.Contains(p.body, root+"/gatehouse/o/acme/saml/acs") {
		t.Fatalf("Acme's SP metadata: %d %.400s", p.status, p.body)
	}
}

// TestHomeRealmDiscoveryAndVerifiedDomains: {prefix}/login sends a
// person to the organization that holds their email's domain, once DNS
// proved it; ?org= names one. An organization that admits only its
// verified domains refuses everyone else its own IdP vouches for,
// saying which domains it admits, and creates nobody.
func TestHomeRealmDiscoveryAndVerifiedDomains(t *testing.T) {
	zone := startDNS(t)
	addr := freeAddr(t)
	root := "http://" + addr
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	idp.Put(t, "/users/bob", `{"password":"bob pass","email":"bob@other.example","given_name":"Bob"}`)
	g := startGateway(t, "", "GATEHOUSE_LISTEN="+addr, "GATEHOUSE_PUBLIC_URL="+root, "GATEHOUSE_ADMIN_TOKEN="+adminToken,
		"GATEHOUSE_DOMAINS_RESOLVER="+zone.addr, "GATEHOUSE_UPSTREAM_URL="+startWhoami(t))
	operator := bearer(adminToken)
	must := func(c adminCall, want int) adminCall { t.Helper(); return c.must(t, want) }
	must(adminRequest(t, g, "POST", "/orgs", `{"id":"acme","name":"Acme","domains":["example.com"]}`, operator), 201)
	must(adminRequest(t, g, "POST", "/orgs", `{"id":"globex","name":"Globex","domains":["globex.example"]}`, operator), 201)
	metadata, _ := json.Marshal(string(idp.Metadata(t)))
	must(adminRequest(t, g, "PUT", "/orgs/acme/identity", `{"sso":{"protocol":"saml","saml":{"idp_metadata_xml":`+string(metadata)+
		`}},"provisioning":{"method":"jit","default_pool":"default","default_role":"user","verified_domains_only":true}}`, operator), 200)
	idp.RegisterSP(t, "acme", root+"/gatehouse/o/acme/saml/metadata", false)

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	discover := func(query string) (int, string, string) {
		t.Helper()
		resp, err := noFollow.Get(root + "/gatehouse/login?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Location"), string(body)
	}
	// The proxy sends a person without a session to discovery, which asks
	// for their email (the gateway has several organizations).
	if p := getPage(t, http.DefaultClient, root+"/dashboard"); p.status != 200 || !strings.Contains(p.url, "/gatehouse/login?return=%2Fdashboard") ||
		!strings.Contains(p.body, `name="login_hint"`) || !strings.Contains(p.body, `name="return" value="/dashboard"`) {
		t.Fatalf("discovery page: %d at %s: %.500s", p.status, p.url, p.body)
	}
	// An unverified domain routes nowhere, keeping what was typed.
	if status, _, body := discover("login_hint=ada%40Example.COM&return=%2Fdashboard"); status != 404 ||
		!strings.Contains(body, "No organization signs in people of Example.COM") || !strings.Contains(body, `value="ada@Example.COM"`) {
		t.Fatalf("an unverified domain: %d %.500s", status, body)
	}
	list := must(adminRequest(t, g, "GET", "/orgs/acme/domains", "", operator), 200)
	first := list.body["domains"].([]any)[0].(map[string]any)
	zone.set(first["txt_name"].(string), first["txt_value"].(string))
	must(adminRequest(t, g, "POST", "/orgs/acme/domains/example.com/verify", "", operator), 200)
	cases := []struct {
		query, location string
		status          int
		says            string
	}{
		{"login_hint=ada%40Example.COM&return=%2Fdashboard", "/gatehouse/o/acme/login?return=%2Fdashboard", 302, ""},
		{"login_hint=ada%40example.com&return=https%3A%2F%2Fevil.example%2F", "/gatehouse/o/acme/login?return=%2F", 302, ""},
		{"org=globex&return=%2Fx", "/gatehouse/o/globex/login?return=%2Fx", 302, ""},
		{"login_hint=bob%40globex.example", "", 404, "No organization signs in people of globex.example"},
		{"login_hint=not-an-address", "", 400, "not an email address"},
		{"org=nope", "", 404, `no organization called &#34;nope&#34;`},
		{"org=..%2Fadmin", "", 404, "no organization called"},
		// The default organization's sign-in is this URL itself (external
		// here: the page says how its people sign in).
		{"org=default&return=%2Fx", "", 503, "sign in through the application itself"},
	}
	for _, c := range cases {
		status, location, body := discover(c.query)
		if status != c.status || location != c.location || !strings.Contains(body, c.says) {
			t.Errorf("%s: %d to %q: %.300s", c.query, status, location, body)
		}
	}

	// Acme admits only its verified domain: Bob, vouched for by Acme's own
	// IdP but at other.example, is refused and made nobody.
	signIn := func(user, password string) (int, string) {
		t.Helper()
		b := samlidptest.Browser(nil)
		acs, form := samlidptest.SignInAs(t, b, root+"/gatehouse/login?login_hint=ada%40example.com&return=%2Fwhoami", user, password)
		resp, err := b.PostForm(acs, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if status, body := signIn("bob", "bob pass"); status != 403 ||
		!strings.Contains(body, "Only people with an address at example.com may sign in here; bob@other.example is not one of them") {
		t.Fatalf("Bob at Acme (verified domains only): %d %.500s", status, body)
	}
	if status, body := signIn(samlidptest.User, samlidptest.Password); status != 200 || !strings.Contains(body, `"Org":"acme"`) {
		t.Fatalf("Ada at Acme: %d %.300s", status, body)
	}
	if _, n, _ := g.app.Store().Users().List(context.Background(), "acme", 0, 10); n != 1 {
		t.Fatalf("Acme holds %d users, want Ada alone", n)
	}
	// Off (the default), Acme's IdP speaks for anyone.
	must(adminRequest(t, g, "PUT", "/orgs/acme/identity", `{"provisioning":{"method":"jit","default_pool":"default","default_role":"user"}}`, operator), 200)
	if status, body := signIn("bob", "bob pass"); status != 200 || !strings.Contains(body, `"Email":"bob@other.example"`) {
		t.Fatalf("Bob at Acme (any domain): %d %.300s", status, body)
	}
}

// TestOrganizationJoinBoundToVerifiedDomain: an organization's
// self-service link admits its own domain once verified, at its own URL;
// a domain another organization holds joins nobody else.
func TestOrganizationJoinBoundToVerifiedDomain(t *testing.T) {
	zone := startDNS(t)
	addr := freeAddr(t)
	root := "http://" + addr
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	g := startGateway(t, "", "GATEHOUSE_LISTEN="+addr, "GATEHOUSE_PUBLIC_URL="+root, "GATEHOUSE_ADMIN_TOKEN="+adminToken,
		"GATEHOUSE_DOMAINS_RESOLVER="+zone.addr)
	operator := bearer(adminToken)
	must := func(c adminCall, want int) adminCall { t.Helper(); return c.must(t, want) }
	must(adminRequest(t, g, "POST", "/orgs", `{"id":"acme","name":"Acme","domains":["example.com"]}`, operator), 201)
	must(adminRequest(t, g, "POST", "/orgs", `{"id":"globex","name":"Globex"}`, operator), 201)
	metadata, _ := json.Marshal(string(idp.Metadata(t)))
	for _, org := range []string{"acme", "globex"} {
		must(adminRequest(t, g, "PUT", "/orgs/"+org+"/identity", `{"sso":{"protocol":"saml","saml":{"idp_metadata_xml":`+string(metadata)+
			`}},"provisioning":{"method":"self_service","default_pool":"default","default_role":"user","email_domain":["example.com"]}}`, operator), 200)
		idp.RegisterSP(t, org, root+"/gatehouse/o/"+org+"/saml/metadata", false)
	}
	join := func(org string) (int, string) {
		t.Helper()
		b := samlidptest.Browser(nil)
		p := getPage(t, b, root+"/gatehouse/o/"+org+"/join")
		if p.status != 200 || !strings.Contains(p.body, `action="/gatehouse/o/`+org+`/join/signin"`) {
			t.Fatalf("%s's join page: %d %.300s", org, p.status, p.body)
		}
		acs, form := samlidptest.SignIn(t, b, "POST "+root+"/gatehouse/o/"+org+"/join/signin")
		resp, err := b.PostForm(acs, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	users := func(org gateway.OrgID) int {
		_, n, _ := g.app.Store().Users().List(context.Background(), org, 0, 0)
		return n
	}
	if status, body := join("acme"); status != 403 || !strings.Contains(body, "The domain example.com is not verified for this organization yet") || users("acme") != 0 {
		t.Fatalf("joining Acme before example.com is verified: %d %.400s", status, body)
	}
	first := must(adminRequest(t, g, "GET", "/orgs/acme/domains", "", operator), 200).body["domains"].([]any)[0].(map[string]any)
	zone.set(first["txt_name"].(string), first["txt_value"].(string))
	must(adminRequest(t, g, "POST", "/orgs/acme/domains/example.com/verify", "", operator), 200)
	if status, body := join("acme"); status != 404 || users("acme") != 1 { // no upstream: the gateway's 404 for "/"
		t.Fatalf("joining Acme: %d %.400s, %d users", status, body, users("acme"))
	}
	if status, body := join("globex"); status != 403 || !strings.Contains(body, "belong to another organization") || users("globex") != 0 {
		t.Fatalf("joining Globex with Acme's domain: %d %.400s", status, body)
	}
}

// TestOrganizationSignInsAreBuiltLazilyAndBounded: an organization's SP
// is built at its first sign-in, at most sso.cached_orgs are kept, and
// one dropped is built again when next used, signing in as before.
func TestOrganizationSignInsAreBuiltLazilyAndBounded(t *testing.T) {
	addr := freeAddr(t)
	root := "http://" + addr
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	g := startGateway(t, "", "GATEHOUSE_LISTEN="+addr, "GATEHOUSE_PUBLIC_URL="+root, "GATEHOUSE_ADMIN_TOKEN="+adminToken,
		"GATEHOUSE_SSO_CACHED_ORGS=2")
	operator := bearer(adminToken)
	built := func() float64 {
		return metricValue(t, "http://"+g.app.OpsAddr()+"/metrics", "gatehouse_sso_orgs_built")
	}
	if n := built(); n != 1 { // the default organization's, at start
		t.Fatalf("built at start: %v", n)
	}
	metadata, _ := json.Marshal(string(idp.Metadata(t)))
	orgs := []string{"a1", "a2", "a3"}
	for _, org := range orgs {
		adminRequest(t, g, "POST", "/orgs", `{"id":"`+org+`","name":"`+org+`"}`, operator).must(t, 201)
		adminRequest(t, g, "PUT", "/orgs/"+org+"/identity", `{"sso":{"protocol":"saml","saml":{"idp_metadata_xml":`+string(metadata)+
			`}},"provisioning":{"method":"jit","default_pool":"default","default_role":"user"}}`, operator).must(t, 200)
	}
	if n := built(); n != 1 {
		t.Fatalf("built after three organizations were set up, before any sign-in: %v", n)
	}
	signIn := func(org string) {
		t.Helper()
		b := samlidptest.Browser(nil)
		acs, form := samlidptest.SignIn(t, b, root+"/gatehouse/o/"+org+"/login")
		resp, err := b.PostForm(acs, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 || resp.Request.URL.Path != "/" { // no upstream: the gateway's 404 for "/"
			t.Fatalf("sign-in at %s: %d at %s", org, resp.StatusCode, resp.Request.URL)
		}
	}
	for _, org := range orgs {
		idp.RegisterSP(t, org, root+"/gatehouse/o/"+org+"/saml/metadata", false) // builds it: the metadata is the SP's
		signIn(org)
		if n := built(); n > 2 {
			t.Fatalf("%v organizations built, past sso.cached_orgs=2", n)
		}
	}
	signIn("a1") // dropped for a3, built again
	for _, org := range orgs {
		if _, n, _ := g.app.Store().Users().List(context.Background(), gateway.OrgID(org), 0, 0); n != 1 {
			t.Fatalf("%s holds %d users", org, n)
		}
	}
}

// TestConsoleWithoutGatewaySignIn: where the gateway signs nobody in
// (external, or not set up yet), the console's way to sign in explains
// how managers get in instead of being a dead end.
func TestConsoleWithoutGatewaySignIn(t *testing.T) {
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken) // sso.protocol external
	root := "http://" + g.app.MainAddr() + "/gatehouse"
	if p := getPage(t, http.DefaultClient, root+"/console/users"); p.status != 503 || !strings.Contains(p.url, "/gatehouse/login?return=") ||
		!strings.Contains(p.body, "sign in through the application itself") || !strings.Contains(p.body, "API token") {
		t.Fatalf("the console with external sign-in: %d at %s: %.500s", p.status, p.url, p.body)
	}
	adminRequest(t, g, "POST", "/orgs", `{"id":"acme"}`, bearer(adminToken)).must(t, 201)
	if p := getPage(t, http.DefaultClient, root+"/o/acme/login"); p.status != 503 || !strings.Contains(p.body, "has not connected its identity provider") || !strings.Contains(p.body, "setup link") {
		t.Fatalf("an organization without sign-in: %d %.500s", p.status, p.body)
	}
}

// TestOrganizationsIsolatedThroughTheBinary: the built gateway serving two
// organizations, each with its own SCIM token and its own real IdP (Acme
// by SAML, Globex by OIDC); the same userName in both is two users; no
// SCIM read, filter, count or membership, no admin API call and no audit
// entry crosses over; each person signs in at their organization's own
// URLs and the app is told the organization by header and signed JWT.
func TestOrganizationsIsolatedThroughTheBinary(t *testing.T) {
	addr := freeAddr(t)
	root := "http://" + addr
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	op := oidcoptest.Start(t, root+"/gatehouse/o/globex/oidc/callback")
	startBinary(t, t.TempDir(), "GATEHOUSE_LISTEN="+addr, "GATEHOUSE_PUBLIC_URL="+root, "GATEHOUSE_ADMIN_TOKEN="+adminToken,
		"GATEHOUSE_UPSTREAM_URL="+startWhoami(t), "GATEHOUSE_SSO_PROTOCOL=external", "GATEHOUSE_PROVISIONING_METHOD=manual", "GATEHOUSE_STORE_FSYNC=false")
	operator := bearer(adminToken)
	admin := func(method, path, body string, auth func(*http.Request)) adminCall {
		t.Helper()
		return adminAt(t, root, method, path, body, auth)
	}
	metadata, _ := json.Marshal(string(idp.Metadata(t)))
	scim := `"provisioning":{"method":"scim","default_pool":"default","default_role":"user"}`
	tokens, bases, ids := map[string]string{}, map[string]string{}, map[string]string{}
	for org, sso := range map[string]string{
		"acme":   `{"protocol":"saml","saml":{"idp_metadata_xml":` + string(metadata) + `}}`,
		"globex": `{"protocol":"oidc","oidc":{"issuer":"` + op.Issuer + `","client_id":"` + oidcoptest.ClientID + `","client_secret":"` + oidcoptest.ClientSecret + `"}}`,
	} {
		admin("POST", "/orgs", `{"id":"`+org+`"}`, operator).must(t, 201)
		tokens[org] = admin("POST", "/orgs/"+org+"/scim-token", "", operator).must(t, 200).str("token")
		admin("PUT", "/orgs/"+org+"/identity", `{"sso":`+sso+`,`+scim+`}`, operator).must(t, 200)
		bases[org] = root + "/gatehouse/o/" + org + "/scim/v2"
		ids[org] = scimAt(t, bases[org], tokens[org], "POST", "/Users", oktaUser(samlidptest.Email, "Ada", org)).must(t, 201).str("id")
	}
	idp.RegisterSP(t, "acme", root+"/gatehouse/o/acme/saml/metadata", false)
	if ids["acme"] == ids["globex"] {
		t.Fatal("one user in two organizations")
	}
	for org := range bases { // a change the audit log keeps
		admin("POST", "/orgs/"+org+"/pools", `{"id":"pool-`+org+`"}`, operator).must(t, 201)
	}
	for org, other := range map[string]string{"acme": "globex", "globex": "acme"} {
		scimAt(t, bases[org], tokens[other], "GET", "/Users", "").must(t, 401)
		list := scimAt(t, bases[org], tokens[org], "GET", "/Users?filter="+url.QueryEscape(`userName eq "`+samlidptest.Email+`"`), "").must(t, 200)
		if list.body["totalResults"] != float64(1) || !strings.Contains(string(list.raw), ids[org]) || strings.Contains(string(list.raw), ids[other]) {
			t.Fatalf("%s's filter: %s", org, list.raw)
		}
		scimAt(t, bases[org], tokens[org], "GET", "/Users/"+ids[other], "").must(t, 404)
		scimAt(t, bases[org], tokens[org], "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Eng","members":[{"value":"`+ids[other]+`"}]}`).
			scimError(t, 400, "invalidValue")
		token := admin("POST", "/orgs/"+org+"/api-tokens", `{"name":"ci"}`, operator).must(t, 201).str("token")
		admin("GET", "/orgs/"+other+"/users", "", bearer(token)).must(t, 403)
		audit := admin("GET", "/orgs/"+org+"/audit", "", bearer(token)).must(t, 200)
		if !strings.Contains(audit.raw, "pool:pool-"+org) || strings.Contains(audit.raw, "pool-"+other) || strings.Contains(audit.raw, `"tenant":"`+other+`"`) {
			t.Fatalf("%s's audit log: %s", org, audit.raw)
		}
	}

	// Ada signs in at each organization's own URLs, through its own IdP.
	acme := samlidptest.Browser(nil)
	acs, form := samlidptest.SignIn(t, acme, root+"/gatehouse/o/acme/login?return=/whoami")
	resp, err := acme.PostForm(acs, form)
	if err != nil {
		t.Fatal(err)
	}
	atAcme := readWhoami(t, resp)
	globex := samlidptest.Browser(func(r *http.Request) bool { return r.URL.Path == "/gatehouse/o/globex/oidc/callback" })
	back := op.SignIn(t, globex, root+"/gatehouse/o/globex/login?return=/whoami")
	globex.CheckRedirect = nil
	if resp, err = globex.Get(back.String()); err != nil {
		t.Fatal(err)
	}
	atGlobex := readWhoami(t, resp)
	for org, who := range map[string]whoami{"acme": atAcme, "globex": atGlobex} {
		sub, claim := orgClaim(t, root, who.Assertion)
		if who.Org != org || who.UserID != ids[org] || sub != ids[org] || claim != org {
			t.Fatalf("%s's person at the app: %+v (JWT sub %q org %q)", org, who, sub, claim)
		}
	}
}

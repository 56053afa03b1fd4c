package conformance

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/oidcoptest"
	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

// whoami is what the app behind the gateway was told about a request.
type whoami struct {
	Org, Email, UserID, Assertion string
}

// startWhoami is an app that answers every request with the identity
// headers the gateway forwarded.
func startWhoami(t *testing.T) string {
	t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(whoami{Org: r.Header.Get("X-Gatehouse-Org"), Email: r.Header.Get("X-Gatehouse-Email"),
			UserID: r.Header.Get("X-Gatehouse-User-Id"), Assertion: r.Header.Get("X-Gatehouse-Assertion")})
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

// orgClaim verifies the identity JWT with the gateway's published keys
// and returns its subject and org claim.
func orgClaim(t *testing.T, root, token string) (string, string) {
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
	var claims struct {
		jwt.Claims
		Org string `json:"org"`
	}
	if err := parsed.Claims(set, &claims); err != nil {
		t.Fatalf("identity JWT does not verify with the gateway's JWKS: %v", err)
	}
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

package conformance

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/oidcoptest"
	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/demo"
)

// presetCase is a sign-in from a golden recorded response
// (testdata/presets, shaped as the vendor documents it) with the
// organization's sso.preset set to the vendor.
type presetCase struct {
	preset, golden string
	verified       string // the organization's verified domain ("": none)
	// The person made (JIT), or the refusal's words.
	email, given, family string
	groups               []string // nil: no memberships
	refused              string
}

var samlPresetCases = []presetCase{
	{preset: "okta", golden: "okta-saml.xml", email: "ada@acme.example", given: "Ada", family: "Lovelace", groups: []string{"Engineering", "Everyone"}},
	{preset: "entra", golden: "entra-saml.xml", verified: "acme.example", email: "ada@acme.example", given: "Ada", family: "Lovelace",
		groups: []string{"2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d", "7d4c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09"}},
	// Entra lets a tenant's admin set any mail: outside the organization's
	// verified domains it is refused.
	{preset: "entra", golden: "entra-saml.xml", refused: "trusted only at this organization"},
	{preset: "entra", golden: "entra-overage-saml.xml", verified: "acme.example", email: "ada@acme.example", given: "Ada", family: "Lovelace"},
	{preset: "google", golden: "google-saml.xml", email: "ada@acme.example", given: "Ada", family: "Lovelace", groups: []string{"engineering@acme.example"}},
	{preset: "onelogin", golden: "onelogin-saml.xml", email: "ada@acme.example", given: "Ada", family: "Lovelace", groups: []string{"Admins", "Engineering"}},
	{preset: "jumpcloud", golden: "jumpcloud-saml.xml", email: "ada@acme.example", given: "Ada", family: "Lovelace", groups: []string{"Engineering"}},
	{preset: "generic", golden: "generic-saml.xml", email: "ada@acme.example", given: "Ada", family: "Lovelace", groups: []string{"Engineering"}},
}

var oidcPresetCases = []presetCase{
	{preset: "okta", golden: "okta-oidc.json", email: "ada@acme.example", given: "Ada", family: "Lovelace", groups: []string{"Engineering", "Everyone"}},
	{preset: "entra", golden: "entra-oidc.json", verified: "acme.example", email: "ada@acme.example", given: "Ada", family: "Lovelace",
		groups: []string{"2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d", "7d4c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09"}},
	// No email_verified, ever: refused outside the verified domains...
	{preset: "entra", golden: "entra-oidc.json", refused: "trusted only at this organization"},
	// ...unless Entra says the tenant owns the domain (xms_edov).
	{preset: "entra", golden: "entra-edov-oidc.json", email: "ada@contoso.example", given: "Ada", family: "Lovelace"},
	// email_verified false is never trusted, whatever else the token says.
	{preset: "entra", golden: "entra-unverified-oidc.json", verified: "acme.example", refused: "has not verified the email address"},
	{preset: "entra", golden: "entra-overage-oidc.json", verified: "acme.example", email: "ada@acme.example", given: "Ada", family: "Lovelace"},
	{preset: "google", golden: "google-oidc.json", email: "ada@acme.example", given: "Ada", family: "Lovelace"},
	// OneLogin sends no email_verified: trusted at a verified domain.
	{preset: "onelogin", golden: "onelogin-oidc.json", verified: "acme.example", email: "ada@acme.example", given: "Ada", family: "Lovelace", groups: []string{"Admins", "Engineering"}},
	{preset: "onelogin", golden: "onelogin-oidc.json", refused: "trusted only at this organization"},
	{preset: "jumpcloud", golden: "jumpcloud-oidc.json", email: "ada@acme.example", given: "Ada", family: "Lovelace", groups: []string{"Engineering"}},
	{preset: "generic", golden: "generic-oidc.json", email: "ada@acme.example", given: "Ada", family: "Lovelace", groups: []string{"Engineering"}},
}

func (c presetCase) name() string {
	n := strings.TrimSuffix(strings.TrimSuffix(c.golden, ".xml"), ".json")
	if c.refused != "" {
		n += " refused"
	}
	return n
}

// presetGateway starts a gateway with the preset, JIT, and the domain
// verified when the case says so.
func presetGateway(t *testing.T, c presetCase, addr string, env ...string) (*gatewayUnderTest, string) {
	t.Helper()
	zone := startDNS(t)
	root := "http://" + addr
	g := startGateway(t, "", append([]string{"GATEHOUSE_LISTEN=" + addr, "GATEHOUSE_PUBLIC_URL=" + root, "GATEHOUSE_SSO_PRESET=" + c.preset,
		"GATEHOUSE_PROVISIONING_METHOD=jit", "GATEHOUSE_ADMIN_TOKEN=" + adminToken, "GATEHOUSE_DOMAINS_RESOLVER=" + zone.addr}, env...)...)
	if c.verified != "" {
		adminRequest(t, g, "PATCH", "/orgs/default", `{"domains":["`+c.verified+`"]}`, bearer(adminToken)).must(t, 200)
		record := adminRequest(t, g, "GET", "/domains", "", bearer(adminToken)).must(t, 200).body["domains"].([]any)[0].(map[string]any)
		zone.set(record["txt_name"].(string), record["txt_value"].(string))
		adminRequest(t, g, "POST", "/domains/"+c.verified+"/verify", "", bearer(adminToken)).must(t, 200)
	}
	return g, root
}

// checkPresetOutcome checks the answer to the sign-in and what it left.
func checkPresetOutcome(t *testing.T, g *gatewayUnderTest, c presetCase, resp *http.Response) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	users, _, err := g.app.Store().Users().List(context.Background(), gateway.DefaultOrg, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if c.refused != "" {
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), c.refused) {
			t.Fatalf("want a refusal saying %q: %d %.600s", c.refused, resp.StatusCode, body)
		}
		if len(users) != 0 {
			t.Fatalf("a refused sign-in created %d users", len(users))
		}
		return
	}
	if len(users) != 1 {
		t.Fatalf("%d users after the sign-in (%d %.400s)", len(users), resp.StatusCode, body)
	}
	u := users[0]
	if u.UserName != c.email || u.GivenName != c.given || u.FamilyName != c.family || u.Source != gateway.SourceJIT {
		t.Fatalf("the JIT user: %q %q %q %s, want %q %q %q", u.UserName, u.GivenName, u.FamilyName, u.Source, c.email, c.given, c.family)
	}
	refs, err := g.app.Store().Groups().Memberships(context.Background(), gateway.DefaultOrg, []string{u.ID})
	if err != nil {
		t.Fatal(err)
	}
	var groups []string
	for _, r := range refs[u.ID] {
		groups = append(groups, r.DisplayName)
	}
	slices.Sort(groups)
	if !slices.Equal(groups, c.groups) {
		t.Fatalf("groups %v, want %v", groups, c.groups)
	}
}

// TestSAMLPresetsFromGoldenResponses: a sign-in for each preset from an
// assertion shaped as the vendor documents it (its NameID and attribute
// statement, signed by the test IdP), and Entra's refusal of an email
// outside the organization's verified domains.
func TestSAMLPresetsFromGoldenResponses(t *testing.T) {
	for _, c := range samlPresetCases {
		t.Run(c.name(), func(t *testing.T) {
			golden := etree.NewDocument()
			if err := golden.ReadFromFile("testdata/presets/" + c.golden); err != nil {
				t.Fatal(err)
			}
			nameID := golden.FindElement("//Subject/NameID")
			statement := golden.FindElement("//AttributeStatement")
			if nameID == nil || statement == nil {
				t.Fatalf("%s holds no NameID or AttributeStatement", c.golden)
			}
			idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
			g, root := presetGateway(t, c, freeAddr(t), "GATEHOUSE_PROVISIONING_METHOD=manual")
			mdURL := root + "/gatehouse/saml/metadata"
			adminRequest(t, g, "PUT", "/identity", mustJSON(t, map[string]any{
				"sso":          map[string]any{"protocol": "saml", "preset": c.preset, "saml": map[string]any{"idp_metadata_xml": string(idp.Metadata(t))}},
				"provisioning": map[string]any{"method": "jit", "default_pool": "default", "default_role": "user"},
			}), bearer(adminToken)).must(t, 200)
			idp.RegisterSP(t, "gatehouse", mdURL, false)
			browser := samlidptest.Browser(nil)
			acs, form := samlidptest.SignIn(t, browser, root+"/gatehouse/saml/login?return=/gatehouse/console/overview")
			form.Set("SAMLResponse", idp.Resign(t, form.Get("SAMLResponse"), func(a *etree.Element) {
				sent := a.FindElement("Subject/NameID")
				sent.SetText(nameID.Text())
				sent.CreateAttr("Format", nameID.SelectAttrValue("Format", ""))
				for _, old := range a.SelectElements("AttributeStatement") {
					a.RemoveChild(old)
				}
				a.AddChild(statement.Copy())
			}))
			browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, err := browser.PostForm(acs, form)
			if err != nil {
				t.Fatal(err)
			}
			checkPresetOutcome(t, g, c, resp)
		})
	}
}

// TestOIDCPresetsFromGoldenResponses: a sign-in for each preset from an
// ID token carrying the claims the vendor documents (issued by the test
// OP), and refusals of an email no claim and no verified domain vouches
// for.
func TestOIDCPresetsFromGoldenResponses(t *testing.T) {
	for _, c := range oidcPresetCases {
		t.Run(c.name(), func(t *testing.T) {
			raw, err := os.ReadFile("testdata/presets/" + c.golden)
			if err != nil {
				t.Fatal(err)
			}
			var claims map[string]any
			if err := json.Unmarshal(raw, &claims); err != nil {
				t.Fatal(err)
			}
			delete(claims, "_comment")
			email, _ := claims["email"].(string)
			login := "ada"
			if upn, ok := claims["preferred_username"].(string); ok {
				login = upn // the OP's own preferred_username is the login
			}
			person := demo.Person{Login: login, Password: "pw", Email: email, FirstName: "Ada", LastName: "Lovelace",
				Claims: claims, OmitEmailVerified: claims["email_verified"] == nil, EmailUnverified: claims["email_verified"] == false}
			addr := freeAddr(t)
			op := oidcoptest.StartWith(t, "http://"+addr+"/gatehouse/oidc/callback", person)
			g, root := presetGateway(t, c, addr, op.GatewayEnv()...)
			browser := samlidptest.Browser(func(r *http.Request) bool { return r.URL.Path == "/gatehouse/oidc/callback" })
			back := op.SignInAs(t, browser, root+"/gatehouse/oidc/login?return="+url.QueryEscape("/gatehouse/console/overview"), login, "pw")
			browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, err := browser.Get(back.String())
			if err != nil {
				t.Fatal(err)
			}
			checkPresetOutcome(t, g, c, resp)
		})
	}
}

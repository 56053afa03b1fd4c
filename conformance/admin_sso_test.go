package conformance

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/config"
	"github.com/gatehouse-id/gatehouse/conformance/oidcoptest"
	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/app"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/session"
)

// TestAdminLiveSwitchJITAndProtocol: a manager's changes take effect on
// the next sign-in, with no restart: JIT creates, then (method manual)
// refuses newcomers and creates nobody, then creates again; and the login
// method moves from SAML to OIDC, where the same browser journey works
// against the OP while the SAML endpoints are gone.
func TestAdminLiveSwitchJITAndProtocol(t *testing.T) {
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	idp.Put(t, "/users/bob", `{"password":"bob pass","email":"bob@example.com","given_name":"Bob"}`)
	idp.Put(t, "/users/cy", `{"password":"cy pass","email":"cy@example.com","given_name":"Cy"}`)
	g, root := startSAMLGateway(t, idp, "", "GATEHOUSE_PROVISIONING_METHOD=jit", "GATEHOUSE_ADMIN_TOKEN="+adminToken)
	auth := bearer(adminToken)
	users := func() int {
		_, n, err := g.app.Store().Users().List(context.Background(), gateway.DefaultOrg, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	signIn := func(user, password string) (int, string) {
		t.Helper()
		b := samlidptest.Browser(nil)
		acs, form := samlidptest.SignInAs(t, b, root+"/gatehouse/login?return=/", user, password)
		resp, err := b.PostForm(acs, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	setMethod := func(method string) {
		t.Helper()
		got := adminRequest(t, g, "PUT", "/identity", `{"provisioning":{"method":"`+method+`","default_pool":"default","default_role":"user"}}`, auth)
		if got.status != 200 {
			t.Fatalf("switch to %s: %d %s", method, got.status, got.raw)
		}
	}

	// No upstream: a successful sign-in ends on the gateway's 404 for "/".
	if status, _ := signIn(samlidptest.User, samlidptest.Password); status != http.StatusNotFound || users() != 1 {
		t.Fatalf("JIT sign-in: %d, %d users", status, users())
	}
	setMethod("manual")
	if status, body := signIn("bob", "bob pass"); status != http.StatusForbidden || !strings.Contains(body, "not been provisioned") || users() != 1 {
		t.Fatalf("a newcomer under manual: %d %q, %d users", status, body, users())
	}
	if status, _ := signIn(samlidptest.User, samlidptest.Password); status != http.StatusNotFound {
		t.Fatalf("an existing JIT user under manual: %d", status)
	}
	setMethod("jit")
	if status, _ := signIn("bob", "bob pass"); status != http.StatusNotFound || users() != 2 {
		t.Fatalf("JIT again: %d, %d users", status, users())
	}

	// SAML → OIDC, live. The OP trusts the gateway's callback.
	op := oidcoptest.Start(t, root+"/gatehouse/oidc/callback")
	got := adminRequest(t, g, "PUT", "/identity", `{"sso":{"protocol":"oidc","oidc":{"issuer":"`+op.Issuer+`","client_id":"`+
		oidcoptest.ClientID+`","client_secret":"`+oidcoptest.ClientSecret+`"}}}`, auth)
	if got.status != 200 || got.str("sso", "protocol") != "oidc" || got.str("sso", "oidc", "client_secret") != "[REDACTED]" || strings.Contains(got.raw, oidcoptest.ClientSecret) {
		t.Fatalf("switch to OIDC: %d %s", got.status, got.raw)
	}
	if resp, err := http.Get(root + "/gatehouse/saml/metadata"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("SAML metadata after the switch: %v %v", resp.StatusCode, err)
	}
	c := samlidptest.Browser(func(r *http.Request) bool { return r.URL.Path == "/gatehouse/oidc/callback" })
	back := op.SignIn(t, c, root+"/gatehouse/login?return=/")
	c.CheckRedirect = nil
	resp, err := c.Get(back.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || resp.Request.URL.Path != "/" || users() != 2 {
		t.Fatalf("OIDC sign-in of the same person: %d at %s, %d users", resp.StatusCode, resp.Request.URL, users())
	}
	// A SAML IdP whose metadata cannot be read is refused before it is
	// stored, and OIDC stays in force.
	got = adminRequest(t, g, "PUT", "/identity", `{"sso":{"protocol":"saml","saml":{"idp_metadata_xml":"<EntityDescriptor>broken"}}}`, auth)
	if got.status != 422 || got.str("sso", "protocol") != "" {
		t.Fatalf("unusable SAML metadata: %d %s", got.status, got.raw)
	}
	if v := adminRequest(t, g, "GET", "/identity", "", auth); v.str("sso", "protocol") != "oidc" {
		t.Fatalf("after a refused change: %s", v.raw)
	}
}

// laxBrowser is a browser as real ones treat the gateway's SameSite=Lax
// session cookie: not sent with the IdP's cross-site POST to the ACS,
// sent with top-level GETs.
func laxBrowser() *http.Client {
	b := samlidptest.Browser(nil)
	b.Transport = laxTransport{http.DefaultTransport}
	return b
}

type laxTransport struct{ next http.RoundTripper }

func (l laxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/saml/acs") {
		r = r.Clone(r.Context())
		var kept []string
		for _, c := range r.Cookies() {
			if c.Name != session.CookiePlain && c.Name != session.CookieSecure {
				kept = append(kept, c.String())
			}
		}
		r.Header.Set("Cookie", strings.Join(kept, "; "))
	}
	return l.next.RoundTrip(r)
}

// TestConsoleTestSignIn: a manager's test sign-in shows what the IdP
// sent for whoever signs in there, creates nobody and keeps the
// manager's session; in a browser that keeps the session cookie from
// the IdP's cross-site POST, as real ones do.
func TestConsoleTestSignIn(t *testing.T) {
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	idp.Put(t, "/users/bob", `{"password":"bob pass","email":"bob@example.com","given_name":"Bob","surname":"Builder","groups":["Support"]}`)
	g, root := startSAMLGateway(t, idp, "", "GATEHOUSE_PROVISIONING_METHOD=jit")
	cookie, csrf := sessionAs(t, g, "mia@example.com", "manager")
	b := laxBrowser()
	rootURL, _ := url.Parse(root)
	b.Jar.SetCookies(rootURL, []*http.Cookie{cookie})
	acs, form := samlidptest.SignInAs(t, b, "POST "+root+"/gatehouse/login/test?csrf="+url.QueryEscape(csrf), "bob", "bob pass")
	resp, err := b.PostForm(acs, form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/gatehouse/console/identity/test" || !strings.Contains(string(body), `id="last-sign-in"`) ||
		!strings.Contains(string(body), "bob@example.com") || !strings.Contains(string(body), "Builder") ||
		!strings.Contains(string(body), `id="raw-attributes"`) || !strings.Contains(string(body), "<code>NameID</code>") || !strings.Contains(string(body), "<code>firstName</code>") {
		t.Fatalf("test sign-in: %d at %s:\n%.2000s", resp.StatusCode, resp.Request.URL, body)
	}
	if ids, _ := g.app.Store().Users().Lookup(context.Background(), gateway.DefaultOrg, gateway.UserByUserName, "bob@example.com"); len(ids) != 0 {
		t.Fatal("a test sign-in created a user")
	}
}

// TestSignInStartsAreBounded: past sso.login_rate (bursts of twice as
// many) a sign-in start gets 429 with Retry-After, and is counted.
func TestSignInStartsAreBounded(t *testing.T) {
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	g, root := startSAMLGateway(t, idp, "", "GATEHOUSE_PROVISIONING_METHOD=jit", "GATEHOUSE_SSO_LOGIN_RATE=1", "GATEHOUSE_ADMIN_TOKEN="+adminToken)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var statuses []int
	for range 4 {
		resp, err := client.Get(root + "/gatehouse/saml/login?return=/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Fatal("a 429 without Retry-After")
		}
	}
	if statuses[0] != http.StatusFound || statuses[1] != http.StatusFound || statuses[3] != http.StatusTooManyRequests {
		t.Fatalf("statuses %v: a burst of 2, then 429", statuses)
	}
	if v := metricValue(t, "http://"+g.app.OpsAddr()+"/metrics", `gatehouse_sso_logins_total{protocol="saml",result="rate_limited"}`); v < 1 {
		t.Fatalf("rate-limited starts counted %v", v)
	}
	// The limit is each organization's: another's sign-ins still start
	// while the default organization's storm is refused.
	adminRequest(t, g, "POST", "/orgs", `{"id":"acme"}`, bearer(adminToken)).must(t, 201)
	metadata, _ := json.Marshal(string(idp.Metadata(t)))
	adminRequest(t, g, "PUT", "/orgs/acme/identity", `{"sso":{"protocol":"saml","saml":{"idp_metadata_xml":`+string(metadata)+`}}}`, bearer(adminToken)).must(t, 200)
	for i := range 2 {
		resp, err := client.Get(root + "/gatehouse/o/acme/saml/login?return=/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("acme's sign-in %d during the default organization's storm: %d", i, resp.StatusCode)
		}
	}
	if resp, err := client.Get(root + "/gatehouse/saml/login?return=/"); err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the default organization's storm: %v %v", resp.StatusCode, err)
	}
	// Organizations that do not exist get no limiter of their own.
	if resp, err := client.Get(root + "/gatehouse/o/nope/saml/login"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("an unknown organization: %v %v", resp.StatusCode, err)
	}
}

// TestAFailedFirstStartLocksNothingIn: a first start whose IdP metadata
// file cannot be read fails and stores nothing, check-config says what is
// wrong with the file, and the fixed file is what the next start uses;
// later changes of the file win while nobody changed the stored settings.
func TestAFailedFirstStartLocksNothingIn(t *testing.T) {
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	dir := t.TempDir()
	md := filepath.Join(t.TempDir(), "idp.xml")
	if err := os.WriteFile(md, idp.Metadata(t), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"GATEHOUSE_LISTEN=127.0.0.1:0", "GATEHOUSE_OPS_LISTEN=127.0.0.1:0", "GATEHOUSE_DATA_DIR=" + dir,
		"GATEHOUSE_PUBLIC_URL=https://app.example.test", "GATEHOUSE_STORE_FSYNC=false", "GATEHOUSE_SSO_PROTOCOL=saml",
		"GATEHOUSE_SSO_SAML_IDP_METADATA_FILE=" + md + ".typo", "GATEHOUSE_PROVISIONING_METHOD=jit"}
	start := func(env []string) (*app.App, error) {
		t.Helper()
		cfg, err := config.Load("", env)
		if err != nil {
			t.Fatal(err)
		}
		a, err := app.New(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			return nil, err
		}
		if err := a.Start(); err != nil {
			a.Store().Close()
			return nil, err
		}
		return a, nil
	}
	checkConfig := func(env []string) (int, string) {
		var out, errOut strings.Builder
		code := app.Main([]string{"check-config"}, env, &out, &errOut, "test")
		return code, errOut.String()
	}
	// The configuration names a file that is not there: check-config says
	// so, and so does the start.
	if code, out := checkConfig(env); code == 0 || !strings.Contains(out, "sso.saml.idp_metadata_file") {
		t.Fatalf("check-config with a missing metadata file: exit %d\n%s", code, out)
	}
	if _, err := start(env); err == nil {
		t.Fatal("the gateway started without its IdP metadata")
	}
	// Nothing was stored: fixing the configuration is enough.
	env = append(env, "GATEHOUSE_SSO_SAML_IDP_METADATA_FILE="+md)
	if code, out := checkConfig(env); code != 0 || !strings.Contains(out, "configuration is valid") {
		t.Fatalf("check-config after the fix: exit %d\n%s", code, out)
	}
	a, err := start(env)
	if err != nil {
		t.Fatalf("the start after the fix: %v", err)
	}
	st, _ := a.Service().Settings(gateway.DefaultOrg)
	if st.SSO.SAML.IDPMetadataFile != md || st.Version != 1 {
		t.Fatalf("settings in force: %+v", st)
	}
	_ = a.Shutdown(context.Background())
	// The file changes; the stored settings are still the file's own: the
	// file wins at the next start.
	a, err = start(append(env, "GATEHOUSE_PROVISIONING_METHOD=manual"))
	if err != nil {
		t.Fatal(err)
	}
	if m := a.Service().Policy(gateway.DefaultOrg).Method; m != gateway.SourceManual {
		t.Fatalf("an untouched seed kept method %s over the file's manual", m)
	}
	_ = a.Shutdown(context.Background())
}

// TestSettingsStoredElsewhereApplyOnNextRequest: settings another gateway
// sharing the store (here: a second service over the same store) writes
// are in force at the next request, which finds the stored version newer:
// the sign-in routes are rebuilt and SCIM switches, without a restart.
func TestSettingsStoredElsewhereApplyOnNextRequest(t *testing.T) {
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	g, root := startSAMLGateway(t, idp, "", "GATEHOUSE_PROVISIONING_METHOD=scim")
	ctx := context.Background()
	g.call("GET", "/Users", "").must(t, 200)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if resp, err := client.Get(root + "/gatehouse/saml/login?return=/"); err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("SAML sign-in before: %v %v", resp.StatusCode, err)
	}
	other := provision.New(g.app.Store(), nil, provision.Policy{})
	other.SetFileSCIMToken(gateway.DefaultOrg, testToken)
	cur, found, err := provision.StoredSettings(ctx, g.app.Store(), gateway.DefaultOrg)
	if err != nil || !found {
		t.Fatalf("stored settings: %v %v", found, err)
	}
	if _, err := other.LoadSettings(ctx, gateway.DefaultOrg, cur.IdentitySettings, provision.SettingsFromStore); err != nil {
		t.Fatal(err)
	}
	next := cur.IdentitySettings
	next.SSO.Protocol = "external"
	next.SSO.SAML = gateway.SAMLSettings{}
	if _, err := other.UpdateSettings(ctx, gateway.DefaultOrg, gateway.Actor{Kind: gateway.ActorToken, ID: "replica-2"}, "", cur.Version, next, false); err != nil {
		t.Fatal(err)
	}
	// The next sign-in start finds the newer version: SAML is gone.
	resp, err := client.Get(root + "/gatehouse/saml/login?return=/")
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("SAML sign-in after another gateway switched it off: %v %v", resp.StatusCode, err)
	}
	if resp, _ := client.Get(root + "/gatehouse/login"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("the sign-in page after the switch: %d", resp.StatusCode)
	}
	// And SCIM follows the method.
	next.Provisioning.Method = gateway.SourceManual
	if _, err := other.UpdateSettings(ctx, gateway.DefaultOrg, gateway.Actor{Kind: gateway.ActorToken, ID: "replica-2"}, "", cur.Version+1, next, false); err != nil {
		t.Fatal(err)
	}
	g.call("GET", "/Users", "").scimError(t, 403, "")
}

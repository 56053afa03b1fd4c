package conformance

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

// oktaOrg stands for an Okta org's Universal Logout side: it publishes
// its keys at {url}/oauth2/v1/keys (where Okta's org keys are) and signs
// Global Token Revocation requests with them.
type oktaOrg struct {
	url string
	key *rsa.PrivateKey
}

func startOktaOrg(t *testing.T) *oktaOrg {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	o := &oktaOrg{key: key}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oauth2/v1/keys" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "okta-1", Algorithm: "RS256", Use: "sig"}}})
	}))
	t.Cleanup(srv.Close)
	o.url = srv.URL
	return o
}

// token is a request token as Okta signs it, edited by edit, signed by
// key (the org's when nil).
func (o *oktaOrg) token(t *testing.T, audience string, key *rsa.PrivateKey, edit func(*jwt.Claims)) string {
	t.Helper()
	if key == nil {
		key = o.key
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "okta-1").WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c := jwt.Claims{Issuer: o.url, Subject: "0oa-app-instance", Audience: jwt.Audience{audience}, IssuedAt: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)), ID: rand.Text()}
	if edit != nil {
		edit(&c)
	}
	s, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestUniversalLogout: Okta's Universal Logout (its Global Token
// Revocation request, signed by the org) ends every session of the person
// it names, by email or by the IdP's subject, and only theirs; a request
// without a token, or with one forged, expired, for another endpoint,
// from another issuer or replayed, or a body it cannot read, changes
// nothing.
func TestUniversalLogout(t *testing.T) {
	okta := startOktaOrg(t)
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	idp.Put(t, "/users/grace", `{"password":"grace pass","email":"grace@example.com","given_name":"Grace"}`)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer upstream.Close()
	g, root := startSAMLGateway(t, idp, "", "GATEHOUSE_PROVISIONING_METHOD=jit", "GATEHOUSE_UPSTREAM_URL="+upstream.URL,
		"GATEHOUSE_SSO_UNIVERSAL_LOGOUT_ISSUER="+okta.url)
	endpoint := root + "/gatehouse/global-token-revocation"

	signIn := func(user, password string) *http.Client {
		c := samlidptest.Browser(nil)
		acs, form := samlidptest.SignInAs(t, c, root+"/dashboard", user, password)
		resp, err := c.PostForm(acs, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("sign-in of %s: %d", user, resp.StatusCode)
		}
		return c
	}
	served := func(c *http.Client) bool { return servedBy(t, c, root+"/dashboard") }
	ada1, ada2 := signIn(samlidptest.User, samlidptest.Password), signIn(samlidptest.User, samlidptest.Password)
	grace := signIn("grace", "grace pass")

	revoke := func(token, body string) (int, map[string]string) {
		req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	byEmail := func(email string) string { return `{"sub_id":{"format":"email","email":"` + email + `"}}` }
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	used := okta.token(t, endpoint, nil, nil)
	// A body the gateway cannot read leaves the token good for the retry.
	if status, _ := revoke(used, `{"sub_id":`); status != http.StatusBadRequest {
		t.Fatalf("an unreadable body: %d, want 400", status)
	}
	if status, out := revoke(used, byEmail("nobody@example.com")); status != http.StatusNotFound {
		t.Fatalf("an email without an account: %d %v, want 404", status, out)
	}
	for _, c := range []struct {
		name, token, body string
		want              int
	}{
		{"no token", "", byEmail(samlidptest.Email), http.StatusUnauthorized},
		{"signed by another key", okta.token(t, endpoint, otherKey, nil), byEmail(samlidptest.Email), http.StatusUnauthorized},
		{"for another endpoint", okta.token(t, "https://other.example/global-token-revocation", nil, nil), byEmail(samlidptest.Email), http.StatusUnauthorized},
		{"from another issuer", okta.token(t, endpoint, nil, func(c *jwt.Claims) { c.Issuer = "https://evil.okta.example" }), byEmail(samlidptest.Email), http.StatusUnauthorized},
		{"expired", okta.token(t, endpoint, nil, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(-5 * time.Minute)) }), byEmail(samlidptest.Email), http.StatusUnauthorized},
		{"valid for a day", okta.token(t, endpoint, nil, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(24 * time.Hour)) }), byEmail(samlidptest.Email), http.StatusUnauthorized},
		{"without jti", okta.token(t, endpoint, nil, func(c *jwt.Claims) { c.ID = "" }), byEmail(samlidptest.Email), http.StatusUnauthorized},
		{"replayed", used, byEmail(samlidptest.Email), http.StatusUnauthorized},
		{"not JSON", okta.token(t, endpoint, nil, nil), "email=ada", http.StatusBadRequest},
		{"an unknown format", okta.token(t, endpoint, nil, nil), `{"sub_id":{"format":"opaque","id":"00u1"}}`, http.StatusBadRequest},
		{"another IdP's subject", okta.token(t, endpoint, nil, nil), `{"sub_id":{"format":"iss_sub","iss":"https://evil.example","sub":"` + samlidptest.Email + `"}}`, http.StatusNotFound},
	} {
		if status, out := revoke(c.token, c.body); status != c.want || out["error"] == "" {
			t.Errorf("%s: %d %v, want %d with an error", c.name, status, out, c.want)
		}
	}
	if !served(ada1) || !served(ada2) || !served(grace) {
		t.Fatal("a refused Universal Logout request ended a session")
	}

	// By email: both of Ada's sessions end, Grace's stays.
	if status, out := revoke(okta.token(t, endpoint, nil, nil), byEmail(strings.ToUpper(samlidptest.Email))); status != http.StatusNoContent {
		t.Fatalf("Universal Logout by email: %d %v", status, out)
	}
	if served(ada1) || served(ada2) {
		t.Fatal("Ada is still served after Universal Logout")
	}
	if !served(grace) {
		t.Fatal("Grace's session ended with Ada's")
	}
	// By the IdP's subject (iss_sub: the SAML IdP and the NameID).
	body := `{"sub_id":{"format":"iss_sub","iss":"` + idp.URL + `/metadata","sub":"grace@example.com"}}`
	if status, out := revoke(okta.token(t, endpoint, nil, nil), body); status != http.StatusNoContent {
		t.Fatalf("Universal Logout by iss_sub: %d %v", status, out)
	}
	if served(grace) {
		t.Fatal("Grace is still served after Universal Logout")
	}
	metrics := "http://" + g.app.OpsAddr() + "/metrics"
	if v := metricValue(t, metrics, `gatehouse_sso_logout_seconds_count{protocol="universal"}`); v != 2 {
		t.Errorf("Universal Logout times observed %v, want 2", v)
	}
	if v := metricValue(t, metrics, `gatehouse_sso_logouts_total{protocol="universal",result="refused"}`); v != 11 {
		t.Errorf("refused Universal Logouts counted %v, want 11", v)
	}
	audits := idpLogoutAudits(t, g)
	if len(audits) != 2 || audits[0].Actor.ID != okta.url {
		t.Fatalf("Universal Logouts audited: %+v", audits)
	}
	if n, _ := g.app.Store().Sessions().Count(context.Background(), gateway.DefaultOrg); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
}

package conformance

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// tokenAt asks a token endpoint; basic sends the client by HTTP Basic,
// otherwise in the form.
func tokenAt(t *testing.T, endpoint string, basic bool, form url.Values, id, secret string) (int, map[string]any, http.Header) {
	t.Helper()
	if !basic && id != "" {
		form.Set("client_id", id)
		form.Set("client_secret", secret)
	}
	req, _ := http.NewRequest("POST", endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body, resp.Header
}

// TestSCIMWithClientCredentials: an Entra-style client gets an access
// token by OAuth 2.0 client credentials and provisions with it; the token
// endpoint answers RFC 6749's errors and changes nothing on them; a token
// is good for its organization alone; a rotation with two live secrets
// loses no request; a removed secret and a deleted client are refused.
func TestSCIMWithClientCredentials(t *testing.T) {
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken)
	operator := bearer(adminToken)
	root := "http://" + g.app.MainAddr() + "/gatehouse"
	created := adminRequest(t, g, "POST", "/scim-clients", `{"name":"Microsoft Entra ID"}`, operator)
	if created.status != 201 || !strings.HasSuffix(created.str("token_endpoint"), "/gatehouse/oauth/token") || created.str("client_secret") == "" {
		t.Fatalf("create a client: %d %s", created.status, created.raw)
	}
	id, secret := created.str("client_id"), created.str("client_secret")
	if list := adminRequest(t, g, "GET", "/scim-clients", "", operator); strings.Contains(list.raw, secret) || !strings.Contains(list.raw, id) {
		t.Fatalf("the list shows a secret, or not the client: %s", list.raw)
	}
	endpoint := root + "/oauth/token"
	grant := func() url.Values { return url.Values{"grant_type": {"client_credentials"}} }

	status, body, header := tokenAt(t, endpoint, true, grant(), id, secret)
	if status != 200 || body["token_type"] != "Bearer" || body["expires_in"] != float64(3600) || header.Get("Cache-Control") != "no-store" {
		t.Fatalf("token by Basic: %d %v %v", status, body, header)
	}
	token := body["access_token"].(string)
	auth := "Bearer " + token
	g.callAuth(auth, "POST", "/Users", oktaUser("oauth@example.com", "O", "Auth")).must(t, 201)
	g.callAuth(auth, "GET", "/Users?filter=userName+eq+%22oauth@example.com%22", "").must(t, 200)
	if status, _, _ := tokenAt(t, endpoint, false, grant(), id, secret); status != 200 {
		t.Fatalf("token by the form: %d", status)
	}

	// RFC 6749's errors, and nothing issued on them.
	for _, c := range []struct {
		name   string
		basic  bool
		form   url.Values
		id, pw string
		status int
		code   string
	}{
		{"wrong secret (Basic)", true, grant(), id, "nope", 401, "invalid_client"},
		{"wrong secret (form)", false, grant(), id, "nope", 401, "invalid_client"},
		{"unknown client", true, grant(), "scim_nobody", secret, 401, "invalid_client"},
		{"no grant type", true, url.Values{}, id, secret, 400, "invalid_request"},
		{"password grant", true, url.Values{"grant_type": {"password"}}, id, secret, 400, "unsupported_grant_type"},
		{"two ways at once", true, url.Values{"grant_type": {"client_credentials"}, "client_secret": {secret}}, id, secret, 400, "invalid_request"},
	} {
		status, body, header := tokenAt(t, endpoint, c.basic, c.form, c.id, c.pw)
		if status != c.status || body["error"] != c.code || body["access_token"] != nil {
			t.Errorf("%s: %d %v, want %d %s", c.name, status, body, c.status, c.code)
		}
		if c.status == 401 && c.basic && header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: a 401 to Basic without WWW-Authenticate", c.name)
		}
	}
	if resp, err := http.Get(endpoint); err != nil || resp.StatusCode != 405 {
		t.Errorf("GET of the token endpoint: %v %v", resp.StatusCode, err)
	}

	// Another organization: its own endpoint refuses acme's client, and
	// its SCIM refuses acme's token.
	adminRequest(t, g, "POST", "/orgs", `{"id":"globex"}`, operator).must(t, 201)
	if status, body, _ := tokenAt(t, root+"/o/globex/oauth/token", true, grant(), id, secret); status != 401 || body["error"] != "invalid_client" {
		t.Errorf("the default organization's client at globex: %d %v", status, body)
	}
	scimAt(t, root+"/o/globex/scim/v2", token, "GET", "/Users", "").must(t, 401)

	// Rotation: a second secret, the IdP moves to it, the first goes; no
	// request fails on the way.
	second := adminRequest(t, g, "POST", "/scim-clients/"+id+"/secrets", `{}`, operator)
	if second.status != 201 {
		t.Fatalf("add a secret: %d %s", second.status, second.raw)
	}
	_, b2, _ := tokenAt(t, endpoint, true, grant(), id, second.str("client_secret"))
	token2 := b2["access_token"].(string)
	g.callAuth(auth, "GET", "/Users", "").must(t, 200)
	g.callAuth("Bearer "+token2, "GET", "/Users", "").must(t, 200)
	var shown struct {
		Client struct {
			Secrets []struct {
				ID string `json:"id"`
			} `json:"secrets"`
		} `json:"client"`
	}
	if err := json.Unmarshal([]byte(created.raw), &shown); err != nil || len(shown.Client.Secrets) != 1 {
		t.Fatalf("the created client's secrets: %v %s", err, created.raw)
	}
	firstSecret := shown.Client.Secrets[0].ID
	adminRequest(t, g, "DELETE", "/scim-clients/"+id+"/secrets/"+firstSecret, "", operator).must(t, 204)
	g.callAuth("Bearer "+token2, "GET", "/Users", "").must(t, 200)
	g.callAuth(auth, "GET", "/Users", "").must(t, 401)
	if status, _, _ := tokenAt(t, endpoint, true, grant(), id, secret); status != 401 {
		t.Errorf("a removed secret bought a token: %d", status)
	}
	// The client deleted: its last token is refused at once.
	adminRequest(t, g, "DELETE", "/scim-clients/"+id, "", operator).must(t, 204)
	g.callAuth("Bearer "+token2, "GET", "/Users", "").must(t, 401)
	if audit := adminRequest(t, g, "GET", "/audit", "", operator); !strings.Contains(audit.raw, "scim_client.secret_remove") || strings.Contains(audit.raw, secret) {
		t.Errorf("the audit log: %s", audit.raw)
	}
}

// BenchmarkSCIMAuth compares a SCIM request's cost with the long-lived
// bearer token and with a client-credentials access token (an HMAC and
// the client's record read, where the bearer token's record is read):
//
//	go test ./conformance -run XXX -bench SCIMAuth -benchtime 5s -count 3
func BenchmarkSCIMAuth(b *testing.B) {
	t := &testing.T{}
	g := startGateway(t, b.TempDir(), "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_LOG_LEVEL=error", unshared)
	created := adminRequest(t, g, "POST", "/scim-clients", `{"name":"bench"}`, bearer(adminToken))
	_, body, _ := tokenAt(t, "http://"+g.app.MainAddr()+"/gatehouse/oauth/token", true, url.Values{"grant_type": {"client_credentials"}},
		created.str("client_id"), created.str("client_secret"))
	access, _ := body["access_token"].(string)
	id := g.call("POST", "/Users", oktaUser("bench@example.com", "B", "A")).str("id")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, c := range []struct{ name, token string }{{"bearer", testToken}, {"client-credentials", access}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", g.base+"/Users/"+id, nil)
					req.Header.Set("Authorization", "Bearer "+c.token)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

// TestSCIMWithClientAssertions: a client that authenticates by JWTs its
// IdP signs (RFC 7523, as Entra's workload identity federation sends
// them) gets an access token and provisions; forged, replayed, expired,
// foreign-audience, wrong-issuer and unsigned assertions buy nothing.
func TestSCIMWithClientAssertions(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	}))
	defer jwks.Close()
	g := startGateway(t, "", "GATEHOUSE_ADMIN_TOKEN="+adminToken)
	const issuer, subject = "https://login.microsoftonline.com/7f1c/v2.0", "0c5d-service-principal"
	created := adminRequest(t, g, "POST", "/scim-clients", `{"name":"Entra (federated)","assertion":{"issuer":"`+issuer+`","subject":"`+subject+`","jwks_url":"`+jwks.URL+`"}}`, bearer(adminToken))
	if created.status != 201 || created.str("client_secret") != "" {
		t.Fatalf("create a client that authenticates by assertion: %d %s", created.status, created.raw)
	}
	clientID := created.str("client_id")
	audience := created.str("token_endpoint") // the public URL
	endpoint := "http://" + g.app.MainAddr() + "/gatehouse/oauth/token"
	sign := func(k *rsa.PrivateKey, alg jose.SignatureAlgorithm, c jwt.Claims) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := jwt.Signed(signer).Claims(c).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	claims := func(mutate func(*jwt.Claims)) jwt.Claims {
		now := time.Now()
		c := jwt.Claims{Issuer: issuer, Subject: subject, Audience: jwt.Audience{audience}, Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)),
			IssuedAt: jwt.NewNumericDate(now), ID: fmt.Sprintf("jti-%d", now.UnixNano())}
		if mutate != nil {
			mutate(&c)
		}
		return c
	}
	ask := func(assertion string) (int, map[string]any) {
		status, body, _ := tokenAt(t, endpoint, false, url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}, "", "")
		return status, body
	}
	good := sign(key, jose.RS256, claims(nil))
	status, body := ask(good)
	if status != 200 || body["token_type"] != "Bearer" {
		t.Fatalf("a good assertion: %d %v", status, body)
	}
	g.callAuth("Bearer "+body["access_token"].(string), "POST", "/Users", oktaUser("fed@example.com", "F", "Ed")).must(t, 201)
	if status, _ := ask(good); status != 401 {
		t.Errorf("a replayed assertion: %d, want 401", status)
	}
	header, payload, _ := strings.Cut(sign(key, jose.RS256, claims(nil)), ".")
	_ = header
	unsigned := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"k1"}`)) + "." + strings.Split(payload, ".")[0] + "."
	for name, assertion := range map[string]string{
		"signed by another key":    sign(other, jose.RS256, claims(nil)),
		"another audience":         sign(key, jose.RS256, claims(func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://elsewhere.example/token"} })),
		"expired":                  sign(key, jose.RS256, claims(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(-5 * time.Minute)) })),
		"another issuer":           sign(key, jose.RS256, claims(func(c *jwt.Claims) { c.Issuer = "https://evil.example" })),
		"another subject":          sign(key, jose.RS256, claims(func(c *jwt.Claims) { c.Subject = "someone-else" })),
		"no jti":                   sign(key, jose.RS256, claims(func(c *jwt.Claims) { c.ID = "" })),
		"living more than an hour": sign(key, jose.RS256, claims(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(3 * time.Hour)) })),
		"unsigned (alg none)":      unsigned,
		"not a JWT":                "not-a-jwt",
	} {
		if status, body := ask(assertion); status != 401 || body["error"] != "invalid_client" || body["access_token"] != nil {
			t.Errorf("%s: %d %v, want 401 invalid_client", name, status, body)
		}
	}
	// A secret buys nothing for a client that has none.
	if status, _, _ := tokenAt(t, endpoint, true, url.Values{"grant_type": {"client_credentials"}}, clientID, ""); status != 401 {
		t.Errorf("the assertion client by secret: %d", status)
	}
	// An assertion for a client that trusts none (a secret client).
	plain := adminRequest(t, g, "POST", "/scim-clients", `{"name":"secret client"}`, bearer(adminToken))
	status, _, _ = tokenAt(t, endpoint, false, url.Values{"grant_type": {"client_credentials"}, "client_id": {plain.str("client_id")},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {sign(key, jose.RS256, claims(nil))}}, "", "")
	if status != 401 {
		t.Errorf("an assertion for a client that trusts none: %d", status)
	}
}

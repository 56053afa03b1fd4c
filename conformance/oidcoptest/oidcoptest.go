// Package oidcoptest runs a real OpenID provider (the demo's: zitadel/oidc's
// example OP on its op package) on 127.0.0.1 for tests, with one person
// and one client, and signs a browser in through its login form. Test
// code only.
package oidcoptest

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway/demo"
)

// The person and the client the OP knows.
const (
	User         = "ada"
	Password     = "correct horse"
	Email        = "ada@example.com"
	ClientID     = "gatehouse"
	ClientSecret = "s3cret"
)

// OP is a running OpenID provider: the demo's.
type OP struct {
	*demo.OP
}

// Start runs an OP trusting redirectURI for the client.
func Start(t testing.TB, redirectURI string) *OP {
	t.Helper()
	return StartWith(t, redirectURI, demo.Person{Login: User, Password: Password, Email: Email, FirstName: "Ada", LastName: "Lovelace", Groups: []string{"engineering", "admins"}},
		demo.Person{Login: "eve", Password: "eve pass", Email: "eve@example.com", FirstName: "Eve", EmailUnverified: true})
}

// StartWith runs an OP that knows these people.
func StartWith(t testing.TB, redirectURI string, people ...demo.Person) *OP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rpBase := strings.TrimSuffix(redirectURI, "/callback") // {public}{prefix}/oidc
	o, err := demo.StartOP(demo.OPOptions{Listener: ln, ClientID: ClientID, ClientSecret: ClientSecret, RedirectURI: redirectURI,
		PostLogoutRedirectURIs: []string{rpBase + "/logged-out"}, BackchannelLogoutURI: rpBase + "/backchannel-logout",
		People: people})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return &OP{o}
}

// GatewayEnv is the configuration of a gateway that signs in with this
// OP (as its client).
func (o *OP) GatewayEnv() []string {
	return []string{"GATEHOUSE_SSO_PROTOCOL=oidc", "GATEHOUSE_SSO_OIDC_ISSUER=" + o.Issuer,
		"GATEHOUSE_SSO_OIDC_CLIENT_ID=" + ClientID, "GATEHOUSE_SSO_OIDC_CLIENT_SECRET=" + ClientSecret}
}

var loginID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// SignIn follows loginURL to the OP's form, signs in and returns the
// OP's redirect back to the relying party (not followed).
func (o *OP) SignIn(t testing.TB, c *http.Client, loginURL string) *url.URL {
	t.Helper()
	return o.SignInAs(t, c, loginURL, User, Password)
}

// SignInAs is SignIn as another person.
func (o *OP) SignInAs(t testing.TB, c *http.Client, loginURL, user, password string) *url.URL {
	t.Helper()
	resp, err := samlidptest.Open(c, loginURL) // a link, or "POST <url>" for a button
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := loginID.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no OP login form at %s (%d): %.300s", resp.Request.URL, resp.StatusCode, body)
	}
	resp, err = c.PostForm(o.Issuer+"/login/username", url.Values{"id": {string(m[1])}, "username": {user}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("the OP did not redirect back: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	back, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	return back
}

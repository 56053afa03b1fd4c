// Package samlidptest runs a real SAML identity provider (crewjam/saml's
// samlidp) on 127.0.0.1 for tests, with one user, and drives a browser
// through its login form. Test code only.
package samlidptest

import (
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/gateway/demo"
)

// The user every IdP started here knows.
const (
	User     = "ada"
	Password = "correct horse"
	Email    = "ada@example.com"
)

// IdP is a running identity provider.
type IdP struct {
	*demo.IdP
}

// Start runs an IdP signing with signatureMethod (an XML-DSig URI): the
// demo's IdP (samlidp, Okta's attribute statements) with one user.
func Start(t testing.TB, signatureMethod string) *IdP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	i, err := demo.StartIdP(demo.IdPOptions{Listener: ln, SignatureMethod: signatureMethod, People: []demo.Person{
		{Login: User, Password: Password, Email: Email, FirstName: "Ada", LastName: "Lovelace", Groups: []string{"engineering", "admins"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { i.Close() })
	return &IdP{i}
}

// Put calls the IdP's admin API (users, services).
func (i *IdP) Put(t testing.TB, path, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, i.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("idp PUT %s: %d", path, resp.StatusCode)
	}
}

// Metadata is the IdP's SAML metadata.
func (i *IdP) Metadata(t testing.TB) []byte {
	t.Helper()
	resp, err := http.Get(i.URL + "/metadata")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

// RegisterSP fetches an SP's metadata and trusts it. Without encrypt the
// IdP is given no encryption key (Okta's default, "Unencrypted"), so
// assertions travel signed only.
func (i *IdP) RegisterSP(t testing.TB, name, metadataURL string, encrypt bool) {
	t.Helper()
	resp, err := http.Get(metadataURL)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SP metadata: %d", resp.StatusCode)
	}
	if !encrypt {
		md = regexp.MustCompile(`(?s)<KeyDescriptor use="encryption">.*?</KeyDescriptor>`).ReplaceAll(md, nil)
	}
	i.Put(t, "/services/"+name, string(md))
}

// Browser is a client with a cookie jar that follows redirects until stop
// says to hand a response back.
func Browser(stop func(*http.Request) bool) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > 8 || (stop != nil && stop(req)) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

var (
	hiddenInput = regexp.MustCompile(`<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"`)
	formAction  = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)
)

// FormOf reads the form of an HTML page: its action and hidden fields.
func FormOf(t testing.TB, resp *http.Response) (string, url.Values) {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := formAction.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no form in %d page: %.400s", resp.StatusCode, b)
	}
	v := url.Values{}
	for _, in := range hiddenInput.FindAllSubmatch(b, -1) {
		v.Set(string(in[1]), html.UnescapeString(string(in[2])))
	}
	return html.UnescapeString(string(m[1])), v
}

// SignIn starts at loginURL, signs in at the IdP's form (or rides its
// session) and returns the SAMLResponse form the browser is about to post
// to the ACS.
func SignIn(t testing.TB, c *http.Client, loginURL string) (string, url.Values) {
	t.Helper()
	return SignInAs(t, c, loginURL, User, Password)
}

// SignInAs is SignIn as another user of the IdP.
func SignInAs(t testing.TB, c *http.Client, loginURL, user, password string) (string, url.Values) {
	t.Helper()
	resp, err := c.Get(loginURL)
	if err != nil {
		t.Fatal(err)
	}
	action, fields := FormOf(t, resp)
	if fields.Get("SAMLResponse") != "" {
		return action, fields // already signed in at the IdP
	}
	fields.Set("user", user)
	fields.Set("password", password)
	resp, err = c.PostForm(action, fields)
	if err != nil {
		t.Fatal(err)
	}
	acs, form := FormOf(t, resp)
	if form.Get("SAMLResponse") == "" {
		t.Fatalf("the IdP did not answer with a SAMLResponse: %v", form)
	}
	return acs, form
}

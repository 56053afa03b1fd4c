// Package samlidptest runs a real SAML identity provider (crewjam/saml's
// samlidp) on 127.0.0.1 for tests, with one user, and drives a browser
// through its login form. Test code only.
package samlidptest

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/samlsp"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"

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
	md := spMetadata(t, metadataURL)
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
	if formAction.FindSubmatch(b) == nil {
		t.Fatalf("no form in %d page: %.400s", resp.StatusCode, b)
	}
	return formIn(b)
}

// formIn is the first form's action and hidden fields in page ("" and
// none when it has no form).
func formIn(page []byte) (string, url.Values) {
	v := url.Values{}
	m := formAction.FindSubmatch(page)
	if m == nil {
		return "", v
	}
	for _, in := range hiddenInput.FindAllSubmatch(page, -1) {
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

// SignInAs is SignIn as another user of the IdP. A loginURL written
// "POST <url>" is a page's sign-in button (a form post) rather than a
// link.
func SignInAs(t testing.TB, c *http.Client, loginURL, user, password string) (string, url.Values) {
	t.Helper()
	resp, err := Open(c, loginURL)
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

// Resign lets a test make a response the IdP itself could have signed:
// mutate edits the decoded response's assertion, which is then signed
// again with the IdP's key (as is the response, when it was signed). It
// takes and returns the SAMLResponse form value (base64).
func (i *IdP) Resign(t testing.TB, samlResponse string, mutate func(assertion *etree.Element)) string {
	t.Helper()
	doc, assertion := plainAssertion(t, samlResponse)
	resp := doc.Root()
	responseSigned := resp.SelectElement("Signature") != nil
	mutate(assertion)
	signed := i.sign(t, assertion)
	resp.RemoveChild(assertion)
	if s := resp.SelectElement("Signature"); s != nil {
		resp.RemoveChild(s)
	}
	resp.AddChild(signed)
	if responseSigned {
		resp = i.sign(t, resp)
		doc.SetRoot(resp)
	}
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(out)
}

// sign returns el signed (enveloped, RSA-SHA256, exclusive c14n) with the
// IdP's key, its old signature dropped and the new one after its Issuer,
// where SAML's schema puts it.
func (i *IdP) sign(t testing.TB, el *etree.Element) *etree.Element {
	t.Helper()
	if old := el.SelectElement("Signature"); old != nil {
		el.RemoveChild(old)
	}
	key, ok := i.Server.IDP.Key.(crypto.Signer)
	if !ok {
		t.Fatal("Resign: the IdP's key cannot sign")
	}
	ctx, err := dsig.NewSigningContext(key, [][]byte{i.Server.IDP.Certificate.Raw})
	if err != nil {
		t.Fatal(err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		t.Fatal(err)
	}
	signed, err := ctx.SignEnveloped(el)
	if err != nil {
		t.Fatal(err)
	}
	// goxmldsig appends the signature without making it a child proper.
	sig := signed.RemoveChildAt(len(signed.Child) - 1)
	at := 0
	if issuer := signed.SelectElement("Issuer"); issuer != nil {
		at = issuer.Index() + 1
	}
	signed.InsertChildAt(at, sig)
	return signed
}

// EncryptAssertion encrypts the response's plain assertion to the SP
// whose metadata is at metadataURL (RSA-OAEP, AES-256-GCM), as an IdP
// that encrypts does; a signed Response is signed again. It takes and
// returns the SAMLResponse form value.
func (i *IdP) EncryptAssertion(t testing.TB, samlResponse, metadataURL string) string {
	t.Helper()
	ed, err := samlsp.ParseMetadata(spMetadata(t, metadataURL))
	if err != nil || len(ed.SPSSODescriptors) == 0 {
		t.Fatalf("SP metadata: %v", err)
	}
	var cert *x509.Certificate
	for _, kd := range ed.SPSSODescriptors[0].KeyDescriptors {
		if kd.Use == "encryption" && len(kd.KeyInfo.X509Data.X509Certificates) > 0 {
			der, _ := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(kd.KeyInfo.X509Data.X509Certificates[0].Data), ""))
			if cert, err = x509.ParseCertificate(der); err != nil {
				t.Fatal(err)
			}
		}
	}
	if cert == nil {
		t.Fatal("the SP's metadata has no encryption certificate")
	}
	doc, assertion := plainAssertion(t, samlResponse)
	root := doc.Root()
	plain := etree.NewDocument()
	plain.SetRoot(assertion.Copy())
	plainBytes, err := plain.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	enc := xmlenc.OAEP()
	enc.BlockCipher = xmlenc.AES256GCM
	data, err := enc.Encrypt(cert, plainBytes, nil)
	if err != nil {
		t.Fatal(err)
	}
	data.CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#Element")
	wrapper := etree.NewElement("saml:EncryptedAssertion")
	wrapper.CreateAttr("xmlns:saml", "urn:oasis:names:tc:SAML:2.0:assertion")
	wrapper.AddChild(data)
	at := assertion.Index()
	root.RemoveChild(assertion)
	root.InsertChildAt(at, wrapper)
	if root.SelectElement("Signature") != nil {
		doc.SetRoot(i.sign(t, root))
	}
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(out)
}

// plainAssertion parses a SAMLResponse form value and finds its plain
// (unencrypted) assertion.
func plainAssertion(t testing.TB, samlResponse string) (*etree.Document, *etree.Element) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(samlResponse)
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	assertion := doc.Root().SelectElement("Assertion")
	if assertion == nil {
		t.Fatal("no plain assertion in the response (register the SP unencrypted)")
	}
	return doc, assertion
}

// spMetadata fetches an SP's metadata.
func spMetadata(t testing.TB, metadataURL string) []byte {
	t.Helper()
	resp, err := http.Get(metadataURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	md, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SP metadata: %d", resp.StatusCode)
	}
	return md
}

// Open follows a link, or presses a button when loginURL is written
// "POST <url>" (with the form's fields, if any, as in "POST <url>?<form>").
func Open(c *http.Client, loginURL string) (*http.Response, error) {
	target, ok := strings.CutPrefix(loginURL, "POST ")
	if !ok {
		return c.Get(loginURL)
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	form := u.Query()
	u.RawQuery = ""
	return c.PostForm(u.String(), form)
}

// FollowForms opens target and, as a browser running the pages' scripts
// would, posts every self-posting SAML form it is answered with (the
// bindings' HTTP-POST), returning the first response that is not one.
func FollowForms(c *http.Client, target string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	return FollowFormsFrom(c, req)
}

// FollowFormsFrom is FollowForms from a request of the caller's.
func FollowFormsFrom(c *http.Client, req *http.Request) (*http.Response, error) {
	resp, err := c.Do(req)
	for i := 0; err == nil && i < 8; i++ {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		action, fields := formIn(b)
		if fields.Get("SAMLRequest") == "" && fields.Get("SAMLResponse") == "" {
			resp.Body = io.NopCloser(strings.NewReader(string(b)))
			return resp, nil
		}
		next, perr := resp.Request.URL.Parse(action)
		if perr != nil {
			return nil, perr
		}
		resp, err = c.PostForm(next.String(), fields)
	}
	return resp, err
}

// Package demo holds what `gatehouse demo` runs beside the gateway: an
// Okta-like SAML identity provider (crewjam/saml's samlidp) with a few
// people, and a small app that shows the identity it received. Nothing
// here runs under `gatehouse serve`.
package demo

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	crewsaml "github.com/crewjam/saml"
	"github.com/crewjam/saml/samlidp"
	dsig "github.com/russellhaering/goxmldsig"
	"golang.org/x/crypto/bcrypt"
)

// Person is someone who can sign in at the IdP.
type Person struct {
	Login, Password, Email, FirstName, LastName string
	Groups                                      []string
	// EmailUnverified makes the OIDC provider say email_verified=false.
	EmailUnverified bool
}

// People are the demo's users (a fresh slice each call: nothing shared
// is mutable).
func People() []Person {
	return []Person{
		{Login: "ada", Password: "demo", Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace", Groups: []string{"Engineering", "Admins"}},
		{Login: "grace", Password: "demo", Email: "grace@example.com", FirstName: "Grace", LastName: "Hopper", Groups: []string{"Engineering"}},
	}
}

// IdPOptions configures an IdP.
type IdPOptions struct {
	Listener net.Listener
	People   []Person
	// SignatureMethod defaults to RSA-SHA256, as Okta signs.
	SignatureMethod string
}

// IdP is a running SAML identity provider.
type IdP struct {
	Server *samlidp.Server
	URL    string
	http   *http.Server
}

// StartIdP serves an IdP on the listener. Its login form posts straight
// to the SSO endpoint, so one form post signs in and answers the request.
// Assertions carry Okta's attribute statements (email, firstName,
// lastName, groups) besides samlidp's own.
func StartIdP(opts IdPOptions) (*IdP, error) {
	base := "http://" + opts.Listener.Addr().String()
	u, _ := url.Parse(base)
	key, cert, err := selfSigned("gatehouse demo idp")
	if err != nil {
		return nil, err
	}
	form, err := template.New("login").Parse(strings.Replace(loginPage, "SSO_URL", template.HTMLEscapeString(base+"/sso"), 1))
	if err != nil {
		return nil, err
	}
	srv, err := samlidp.New(samlidp.Options{URL: *u, Key: key, Certificate: cert, Store: &samlidp.MemoryStore{},
		LoginFormTemplate: form, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		return nil, fmt.Errorf("demo idp: %w", err)
	}
	srv.IDP.SignatureMethod = opts.SignatureMethod
	if srv.IDP.SignatureMethod == "" {
		srv.IDP.SignatureMethod = dsig.RSASHA256SignatureMethod
	}
	srv.IDP.AssertionMaker = oktaAttributes{}
	for _, p := range opts.People {
		hash, err := bcrypt.GenerateFromPassword([]byte(p.Password), bcrypt.MinCost)
		if err != nil {
			return nil, err
		}
		user := samlidp.User{Name: p.Login, HashedPassword: hash, Email: p.Email, GivenName: p.FirstName,
			Surname: p.LastName, CommonName: p.FirstName + " " + p.LastName, Groups: p.Groups}
		if err := srv.Store.Put("/users/"+p.Login, &user); err != nil {
			return nil, err
		}
	}
	i := &IdP{Server: srv, URL: base, http: &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = i.http.Serve(opts.Listener) }()
	return i, nil
}

// Close stops the IdP.
func (i *IdP) Close() error { return i.http.Close() }

// Trust registers a service provider from its metadata URL.
func (i *IdP) Trust(name, metadataURL string) error {
	resp, err := http.Get(metadataURL)
	if err != nil {
		return fmt.Errorf("demo idp: fetching SP metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("demo idp: SP metadata: %s", resp.Status)
	}
	req, _ := http.NewRequest(http.MethodPut, i.URL+"/services/"+name, resp.Body)
	put, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("demo idp: registering the SP: %w", err)
	}
	put.Body.Close()
	if put.StatusCode != http.StatusNoContent {
		return errors.New("demo idp: registering the SP: " + put.Status)
	}
	return nil
}

// oktaAttributes adds the attribute statements an Okta SAML app is set
// up with (see the README) to samlidp's assertion.
type oktaAttributes struct{}

func (oktaAttributes) MakeAssertion(req *crewsaml.IdpAuthnRequest, s *crewsaml.Session) error {
	if err := (crewsaml.DefaultAssertionMaker{}).MakeAssertion(req, s); err != nil {
		return err
	}
	attr := func(name string, values ...string) crewsaml.Attribute {
		a := crewsaml.Attribute{Name: name, NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"}
		for _, v := range values {
			a.Values = append(a.Values, crewsaml.AttributeValue{Type: "xs:string", Value: v})
		}
		return a
	}
	extra := []crewsaml.Attribute{attr("email", s.UserEmail), attr("firstName", s.UserGivenName), attr("lastName", s.UserSurname)}
	if len(s.Groups) > 0 {
		extra = append(extra, attr("groups", s.Groups...))
	}
	if len(req.Assertion.AttributeStatements) == 0 {
		req.Assertion.AttributeStatements = []crewsaml.AttributeStatement{{}}
	}
	st := &req.Assertion.AttributeStatements[0]
	st.Attributes = append(st.Attributes, extra...)
	return nil
}

func selfSigned(cn string) (*rsa.PrivateKey, *x509.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, err
}

var loginPage = strings.TrimSpace(`
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · Demo IdP</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:22rem;margin:4rem auto;padding:0 1rem}input{display:block;width:100%;margin:.3rem 0 .8rem;padding:.4rem}button{padding:.5rem 1rem}</style>
</head><body><main>
<h1>Demo IdP</h1><p>An Okta-like identity provider for the Gatehouse demo. Try <b>ada</b> or <b>grace</b>, password <b>demo</b>.</p>
{{with .Toast}}<p role="alert">{{.}}</p>{{end}}
<form method="post" action="SSO_URL">
<label>Username <input name="user" autocomplete="username" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<input type="hidden" name="SAMLRequest" value="{{.SAMLRequest}}"><input type="hidden" name="RelayState" value="{{.RelayState}}">
<button type="submit">Sign in</button>
</form></main></body></html>`)

// RotateKey gives the IdP a new signing key and certificate, as an IdP
// does at certificate rollover. Not safe while the IdP is answering.
func (i *IdP) RotateKey() error {
	key, cert, err := selfSigned("gatehouse demo idp")
	if err != nil {
		return err
	}
	i.Server.IDP.Key, i.Server.IDP.Certificate = key, cert
	return nil
}

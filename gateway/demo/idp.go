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
	// OmitEmailVerified leaves email_verified out of the ID token (as
	// Entra does); Claims are added to it as they are (an IdP's own, for
	// tests shaped as each vendor documents them).
	OmitEmailVerified bool
	Claims            map[string]any
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
	form, err := template.New("login").Parse(loginPage)
	if err != nil {
		return nil, err
	}
	srv, err := samlidp.New(samlidp.Options{URL: *u, Key: key, Certificate: cert, Store: &samlidp.MemoryStore{},
		Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		return nil, fmt.Errorf("demo idp: %w", err)
	}
	// Sign-in first, then back to the request as it came: the SP's
	// request is signed in its redirect URL, and the IdP checks that
	// signature on the request it answers (as Okta does), so the login
	// form may not post the request on its own.
	signIn := &loginFirst{srv: srv, form: form, action: base + signInPath}
	srv.IDP.SessionProvider = signIn
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
	mux := http.NewServeMux()
	mux.Handle("/", srv)
	mux.HandleFunc("POST "+signInPath, signIn.signIn)
	i := &IdP{Server: srv, URL: base, http: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
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
	return selfSignedUntil(cn, time.Now().AddDate(1, 0, 0))
}

func selfSignedUntil(cn string, notAfter time.Time) (*rsa.PrivateKey, *x509.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
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
<form method="post" action="{{.Action}}">
<label>Username <input name="user" autocomplete="username" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<input type="hidden" name="continue" value="{{.Continue}}">
<button type="submit">Sign in</button>
</form></main></body></html>`)

// RotateKey gives the IdP a new signing key and certificate, as an IdP
// does at certificate rollover. Not safe while the IdP is answering.
func (i *IdP) RotateKey() error {
	return i.RotateKeyUntil(time.Now().AddDate(1, 0, 0))
}

// RotateKeyUntil is RotateKey with a certificate valid until notAfter.
func (i *IdP) RotateKeyUntil(notAfter time.Time) error {
	key, cert, err := selfSignedUntil("gatehouse demo idp", notAfter)
	if err != nil {
		return err
	}
	i.Server.IDP.Key, i.Server.IDP.Certificate = key, cert
	return nil
}

// signInPath takes the demo IdP's login form.
const signInPath = "/signin"

// loginFirst is the IdP's session provider: a browser with a live IdP
// session is answered at once; any other is shown the login form, which
// signs in at signInPath and then sends the browser back to the request
// it came with (its redirect URL and signature intact).
type loginFirst struct {
	srv    *samlidp.Server
	form   *template.Template
	action string // the form's absolute URL
}

func (l *loginFirst) GetSession(w http.ResponseWriter, r *http.Request, req *crewsaml.IdpAuthnRequest) *crewsaml.Session {
	if req.Request.ForceAuthn == nil || !*req.Request.ForceAuthn {
		if c, err := r.Cookie("session"); err == nil {
			var s crewsaml.Session
			if l.srv.Store.Get("/sessions/"+c.Value, &s) == nil && time.Now().Before(s.ExpireTime) {
				return &s
			}
		}
	}
	if r.Method != http.MethodGet {
		// Only the redirect binding (what Gatehouse sends) and the
		// IdP-initiated link come back here after the form.
		http.Error(w, "sign in first", http.StatusBadRequest)
		return nil
	}
	l.page(w, r.URL.RequestURI(), "")
	return nil
}

// Single logout is samlidp's own: the sessions the form made are its
// sessions, so it tracks which service providers each was used for, ends
// them on a LogoutRequest and propagates its logout (/logout) to them.
func (l *loginFirst) AddSessionParticipant(r *http.Request, s *crewsaml.Session, p crewsaml.SessionParticipant) error {
	return l.srv.AddSessionParticipant(r, s, p)
}

func (l *loginFirst) SessionParticipants(r *http.Request, match func(*crewsaml.Session) bool) ([]crewsaml.SessionParticipant, error) {
	return l.srv.SessionParticipants(r, match)
}

func (l *loginFirst) InvalidateSession(w http.ResponseWriter, r *http.Request, req *crewsaml.IdpLogoutRequest) error {
	return l.srv.InvalidateSession(w, r, req)
}

func (l *loginFirst) page(w http.ResponseWriter, next, toast string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = l.form.Execute(w, struct{ Action, Continue, Toast string }{l.action, next, toast})
}

// signIn checks the login form with samlidp's own check (which sets the
// IdP's session cookie) and continues with the request the browser came
// with, or shows the form again.
func (l *loginFirst) signIn(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	next := r.PostForm.Get("continue")
	if !strings.HasPrefix(next, "/sso?") && !strings.HasPrefix(next, "/login/") {
		http.Error(w, "nothing to continue to", http.StatusBadRequest)
		return
	}
	held := &heldResponse{header: http.Header{}}
	if l.srv.GetSession(held, r, &crewsaml.IdpAuthnRequest{IDP: &l.srv.IDP}) == nil {
		if held.status == http.StatusForbidden {
			http.Error(w, "cross-origin sign-in refused", http.StatusForbidden)
			return
		}
		l.page(w, next, "Invalid username or password")
		return
	}
	for _, c := range held.header.Values("Set-Cookie") {
		w.Header().Add("Set-Cookie", c)
	}
	http.Redirect(w, r, next, http.StatusFound)
}

// heldResponse keeps what samlidp writes while it checks a password (its
// cookie); the body (its own login form) is dropped.
type heldResponse struct {
	header http.Header
	status int
}

func (h *heldResponse) Header() http.Header { return h.header }
func (h *heldResponse) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}
func (h *heldResponse) Write(b []byte) (int, error) { h.WriteHeader(http.StatusOK); return len(b), nil }

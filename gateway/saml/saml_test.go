package saml_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/login"
	"github.com/gatehouse-id/gatehouse/gateway/saml"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
)

// outcome records what the SP handed on.
type outcome struct {
	mu        sync.Mutex
	completed []gateway.Identity
	returns   []string
	intents   []login.Intent
	failures  []string
}

func (o *outcome) complete(w http.ResponseWriter, r *http.Request, id gateway.Identity, in login.Intent) {
	o.mu.Lock()
	o.completed = append(o.completed, id)
	o.returns = append(o.returns, in.Return)
	o.intents = append(o.intents, in)
	o.mu.Unlock()
	http.Redirect(w, r, in.Return, http.StatusFound)
}

func (o *outcome) fail(w http.ResponseWriter, _ *http.Request, status int, reason, message string) {
	o.mu.Lock()
	o.failures = append(o.failures, reason)
	o.mu.Unlock()
	http.Error(w, message, status)
}

type sp struct {
	sp    *saml.SP
	url   string
	out   *outcome
	store gateway.Store
}

func startSP(t *testing.T, i *samlidptest.IdP, encrypt bool, configure func(*saml.Options)) *sp {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	out := &outcome{}
	opts := saml.Options{Org: gateway.DefaultOrg, Store: st, PublicURL: base, PathPrefix: "/gatehouse", IDPMetadata: i.Metadata(t),
		FirstNameAttribute: "givenName", LastNameAttribute: "sn", GroupsAttribute: "eduPersonAffiliation",
		Complete: out.complete, Fail: out.fail}
	if configure != nil {
		configure(&opts)
	}
	s, err := saml.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Mount(mux)
	ts.Config.Handler = mux
	ts.Start()
	t.Cleanup(ts.Close)
	i.RegisterSP(t, strings.ReplaceAll(ts.Listener.Addr().String(), ":", "-"), base+"/gatehouse/saml/metadata", encrypt)
	return &sp{sp: s, url: base, out: out, store: st}
}

// stopAtSP hands back the ACS's answer (the test SP has no pages).
func stopAtSP(req *http.Request) bool {
	return strings.HasSuffix(req.URL.Path, "/acs") || !strings.HasPrefix(req.URL.Path, "/gatehouse/") && !strings.HasPrefix(req.URL.Path, "/sso")
}

func signIn(t *testing.T, c *http.Client, s *sp, returnTo string) (string, url.Values) {
	t.Helper()
	return samlidptest.SignIn(t, c, s.url+"/gatehouse/saml/login?return="+url.QueryEscape(returnTo))
}

func post(t *testing.T, c *http.Client, to string, form url.Values) *http.Response {
	t.Helper()
	resp, err := c.PostForm(to, form)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestSPInitiatedLogin: a browser signs in through the IdP's form and
// comes back to the page it asked for, with assertions signed only and
// signed and encrypted.
func TestSPInitiatedLogin(t *testing.T) {
	for _, encrypt := range []bool{false, true} {
		t.Run(map[bool]string{false: "signed", true: "encrypted"}[encrypt], func(t *testing.T) { testSPInitiatedLogin(t, encrypt) })
	}
}

func testSPInitiatedLogin(t *testing.T, encrypt bool) {
	i := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	s := startSP(t, i, encrypt, nil)
	c := samlidptest.Browser(stopAtSP)
	acs, form := signIn(t, c, s, "/dashboard?tab=2")
	if acs != s.url+"/gatehouse/saml/acs" {
		t.Fatalf("the IdP posts to %q", acs)
	}
	acsURL, _ := url.Parse(acs)
	requestCookies := c.Jar.Cookies(acsURL)
	resp := post(t, c, acs, form)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/dashboard?tab=2" {
		t.Fatalf("ACS: %d to %q (failures %v)", resp.StatusCode, resp.Header.Get("Location"), s.out.failures)
	}
	if encrypt != strings.Contains(string(mustDecode(t, form.Get("SAMLResponse"))), "EncryptedAssertion") {
		t.Fatalf("encrypt=%v but the response is not so", encrypt)
	}
	if len(s.out.completed) != 1 {
		t.Fatalf("completed %d sign-ins", len(s.out.completed))
	}
	id := s.out.completed[0]
	if id.Email != "ada@example.com" || id.GivenName != "Ada" || id.FamilyName != "Lovelace" || id.Protocol != "saml" ||
		id.Issuer != i.URL+"/metadata" || strings.Join(id.Groups, ",") != "engineering,admins" {
		t.Fatalf("identity: %+v", id)
	}

	// Replaying the same response, even from the same browser, is refused.
	if resp := post(t, c, acs, form); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("replay: %d", resp.StatusCode)
	}
	// An attacker who also copied the request cookie meets the replay cache.
	thief := samlidptest.Browser(stopAtSP)
	thief.Jar.SetCookies(acsURL, requestCookies)
	if resp := post(t, thief, acs, form); resp.StatusCode != http.StatusForbidden || s.out.failures[len(s.out.failures)-1] != "replay" {
		t.Fatalf("replay with the request cookie: %d %v", resp.StatusCode, s.out.failures)
	}
	if len(s.out.completed) != 1 {
		t.Fatal("a replayed response signed someone in")
	}
}

// TestAttacks: each forged or misdirected response is refused with 403
// and nobody is signed in.
func TestAttacks(t *testing.T) {
	i := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	s := startSP(t, i, false, nil)
	other := startSP(t, i, false, nil) // another application trusting the same IdP

	decode := func(form url.Values) string {
		b, _ := base64.StdEncoding.DecodeString(form.Get("SAMLResponse"))
		return string(b)
	}
	encode := func(form url.Values, xml string) url.Values {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("SAMLResponse", base64.StdEncoding.EncodeToString([]byte(xml)))
		return f
	}
	cases := []struct {
		name   string
		attack func(t *testing.T) (*http.Client, string, url.Values)
		reason string
	}{
		{"tampered email", func(t *testing.T) (*http.Client, string, url.Values) {
			c := samlidptest.Browser(stopAtSP)
			acs, form := signIn(t, c, s, "/")
			x := strings.ReplaceAll(decode(form), "ada@example.com", "root@example.com")
			return c, acs, encode(form, x)
		}, "invalid_response"},
		{"signature stripped", func(t *testing.T) (*http.Client, string, url.Values) {
			c := samlidptest.Browser(stopAtSP)
			acs, form := signIn(t, c, s, "/")
			x := regexp.MustCompile(`(?s)<ds:Signature.*?</ds:Signature>`).ReplaceAllString(decode(form), "")
			return c, acs, encode(form, x)
		}, "invalid_response"},
		{"wrapped second assertion", func(t *testing.T) (*http.Client, string, url.Values) {
			c := samlidptest.Browser(stopAtSP)
			acs, form := signIn(t, c, s, "/")
			x := decode(form)
			a := regexp.MustCompile(`(?s)<saml:Assertion.*</saml:Assertion>`).FindString(x)
			evil := strings.ReplaceAll(regexp.MustCompile(`(?s)<ds:Signature.*?</ds:Signature>`).ReplaceAllString(a, ""), "ada@example.com", "root@example.com")
			evil = strings.Replace(evil, `ID="`, `ID="evil`, 1)
			return c, acs, encode(form, strings.Replace(x, "<saml:Assertion", evil+"<saml:Assertion", 1))
		}, "invalid_response"},
		{"response for another browser", func(t *testing.T) (*http.Client, string, url.Values) {
			victim := samlidptest.Browser(stopAtSP)
			acs, form := signIn(t, victim, s, "/")
			attacker := samlidptest.Browser(stopAtSP)
			signIn(t, attacker, s, "/") // attacker has a request of its own in flight
			return attacker, acs, form
		}, "invalid_response"},
		{"unsolicited (IdP-initiated not allowed)", func(t *testing.T) (*http.Client, string, url.Values) {
			c := samlidptest.Browser(stopAtSP)
			acs, form := signIn(t, c, s, "/")
			return samlidptest.Browser(stopAtSP), acs, form
		}, "invalid_response"},
		{"response made for another application", func(t *testing.T) (*http.Client, string, url.Values) {
			c := samlidptest.Browser(stopAtSP)
			_, form := signIn(t, c, other, "/")
			// Same browser has a request pending at s too.
			signIn(t, c, s, "/")
			return c, s.url + "/gatehouse/saml/acs", form
		}, "invalid_response"},
		{"issuer removed (GO-2026-6909: no panic)", func(t *testing.T) (*http.Client, string, url.Values) {
			c := samlidptest.Browser(stopAtSP)
			acs, form := signIn(t, c, s, "/")
			x := regexp.MustCompile(`(?s)<saml:Issuer[^>]*>[^<]*</saml:Issuer>`).ReplaceAllString(decode(form), "")
			return c, acs, encode(form, x)
		}, "invalid_response"},
		{"wrapped: signed assertion moved under an unsigned one", func(t *testing.T) (*http.Client, string, url.Values) {
			c := samlidptest.Browser(stopAtSP)
			acs, form := signIn(t, c, s, "/")
			x := decode(form)
			a := regexp.MustCompile(`(?s)<saml:Assertion.*</saml:Assertion>`).FindString(x)
			evil := strings.ReplaceAll(regexp.MustCompile(`(?s)<ds:Signature.*?</ds:Signature>`).ReplaceAllString(a, ""), "ada@example.com", "root@example.com")
			evil = strings.Replace(evil, `ID="`, `ID="evil`, 1)
			evil = strings.Replace(evil, "</saml:Assertion>", "<saml:Advice>"+a+"</saml:Advice></saml:Assertion>", 1)
			return c, acs, encode(form, strings.Replace(x, a, evil, 1))
		}, "invalid_response"},
		{"not base64", func(t *testing.T) (*http.Client, string, url.Values) {
			return samlidptest.Browser(stopAtSP), s.url + "/gatehouse/saml/acs", url.Values{"SAMLResponse": {"%%%"}}
		}, "invalid_response"},
		{"XML entity bomb", func(t *testing.T) (*http.Client, string, url.Values) {
			bomb := `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&b;</samlp:Response>`
			return samlidptest.Browser(stopAtSP), s.url + "/gatehouse/saml/acs", url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString([]byte(bomb))}}
		}, "invalid_response"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.out.completed)
			c, acs, form := tc.attack(t)
			resp := post(t, c, acs, form)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
			if len(s.out.completed) != before {
				t.Fatal("the attack signed someone in")
			}
			if got := s.out.failures[len(s.out.failures)-1]; got != tc.reason {
				t.Fatalf("reason %q, want %q", got, tc.reason)
			}
		})
	}
}

// TestCommentInNameID: a comment inside the NameID (CVE-2017-11427
// class) does not truncate the email: the whole text is read, so an IdP
// user "ada@exa<!---->mple.com" is still ada@example.com and one named
// "ada@example.com<!---->.evil" is not ada@example.com.
func TestCommentInNameID(t *testing.T) {
	i := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	s := startSP(t, i, false, nil)
	c := samlidptest.Browser(stopAtSP)
	acs, form := signIn(t, c, s, "/")
	x := string(mustDecode(t, form.Get("SAMLResponse")))
	x = regexp.MustCompile(`(>ada@exa)(mple\.com</saml:NameID>)`).ReplaceAllString(x, "$1<!---->$2")
	if !strings.Contains(x, "<!---->") {
		t.Fatal("no NameID to put a comment in")
	}
	form.Set("SAMLResponse", base64.StdEncoding.EncodeToString([]byte(x)))
	resp := post(t, c, acs, form)
	if resp.StatusCode == http.StatusFound {
		if got := s.out.completed[0].Email; got != "ada@example.com" {
			t.Fatalf("the comment truncated the NameID to %q", got)
		}
	} else if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// TestWeakSignatureRefused: an IdP signing with RSA-SHA1 is refused, also
// when the signed assertion travels encrypted.
func TestWeakSignatureRefused(t *testing.T) {
	i := samlidptest.Start(t, dsig.RSASHA1SignatureMethod)
	for _, encrypt := range []bool{false, true} {
		s := startSP(t, i, encrypt, nil)
		c := samlidptest.Browser(stopAtSP)
		acs, form := signIn(t, c, s, "/")
		if encrypt != strings.Contains(string(mustDecode(t, form.Get("SAMLResponse"))), "EncryptedAssertion") {
			t.Fatalf("encrypt=%v but the response is not so", encrypt)
		}
		if resp := post(t, c, acs, form); resp.StatusCode != http.StatusForbidden || len(s.out.completed) != 0 {
			t.Fatalf("SHA-1 signed response (encrypted=%v): %d, %d sign-ins", encrypt, resp.StatusCode, len(s.out.completed))
		}
	}
}

// TestOpenRedirect: the page to return to must be on this site.
func TestOpenRedirect(t *testing.T) {
	i := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	s := startSP(t, i, false, nil)
	c := samlidptest.Browser(stopAtSP)
	acs, form := signIn(t, c, s, "https://evil.example/steal")
	if resp := post(t, c, acs, form); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Fatalf("ACS: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestKeySurvivesRestart: the SP's certificate, which the IdP holds, is
// generated once and kept.
func TestKeySurvivesRestart(t *testing.T) {
	i := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	metadata := func() []byte {
		s, err := saml.New(context.Background(), saml.Options{Org: gateway.DefaultOrg, Store: st, PublicURL: "https://app.example", PathPrefix: "/gatehouse", IDPMetadata: i.Metadata(t)})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		s.Mount(mux)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", "/gatehouse/saml/metadata", nil))
		return w.Body.Bytes()
	}
	cert := regexp.MustCompile(`X509Certificate>([^<]+)</`)
	a, b := metadata(), metadata()
	if ca, cb := cert.FindSubmatch(a), cert.FindSubmatch(b); ca == nil || cb == nil || !bytes.Equal(ca[1], cb[1]) || !bytes.Contains(a, []byte("https://app.example/gatehouse/saml/acs")) {
		t.Fatal("the SP metadata changed across a restart or lacks the ACS URL")
	}
}

func TestBadMetadata(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := saml.New(context.Background(), saml.Options{Org: gateway.DefaultOrg, Store: st, PublicURL: "https://app.example", IDPMetadata: []byte("<html>login</html>")}); err == nil {
		t.Fatal("HTML accepted as IdP metadata")
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIDPInitiated: a sign-in started from the IdP's dashboard is
// accepted only when allowed, and lands on a same-site RelayState.
func TestIDPInitiated(t *testing.T) {
	for _, allowed := range []bool{true, false} {
		t.Run(map[bool]string{true: "allowed", false: "refused by default"}[allowed], func(t *testing.T) {
			i := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
			s := startSP(t, i, false, func(o *saml.Options) { o.AllowIDPInitiated = allowed })
			// A RelayState naming another kind of sign-in's page changes
			// nothing: an unsolicited response is a plain sign-in.
			i.Put(t, "/shortcuts/app", `{"service_provider":"`+s.url+`/gatehouse/saml/metadata","relay_state":"/gatehouse/console/identity/test"}`)
			c := samlidptest.Browser(stopAtSP)
			// Sign in at the IdP itself, then open the app's tile.
			resp, err := c.PostForm(i.URL+"/login", url.Values{"user": {samlidptest.User}, "password": {samlidptest.Password}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			resp, err = c.Get(i.URL + "/login/app")
			if err != nil {
				t.Fatal(err)
			}
			acs, form := samlidptest.FormOf(t, resp)
			resp = post(t, c, acs, form)
			if allowed {
				if len(s.out.completed) != 1 || s.out.intents[0] != login.Plain("/gatehouse/console/identity/test") {
					t.Fatalf("IdP-initiated: %d, %d sign-ins as %+v (failures %v)", resp.StatusCode, len(s.out.completed), s.out.intents, s.out.failures)
				}
				return
			}
			if resp.StatusCode != http.StatusForbidden || len(s.out.completed) != 0 {
				t.Fatalf("IdP-initiated while not allowed: %d, %d sign-ins", resp.StatusCode, len(s.out.completed))
			}
		})
	}
}

// TestIDPCertificateRollover: after the IdP changes its signing key its
// responses are refused until the SP has the new metadata, then accepted;
// metadata naming another IdP is not taken.
func TestIDPCertificateRollover(t *testing.T) {
	i := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	s := startSP(t, i, false, nil)
	sp := s.sp
	if err := i.RotateKey(); err != nil {
		t.Fatal(err)
	}
	c := samlidptest.Browser(stopAtSP)
	acs, form := signIn(t, c, s, "/")
	if resp := post(t, c, acs, form); resp.StatusCode != http.StatusForbidden || len(s.out.completed) != 0 {
		t.Fatalf("a response signed with a key not in the metadata: %d", resp.StatusCode)
	}
	if changed, err := sp.SetIDPMetadata(i.Metadata(t)); err != nil || !changed {
		t.Fatalf("refresh: changed=%v %v", changed, err)
	}
	if changed, err := sp.SetIDPMetadata(i.Metadata(t)); err != nil || changed {
		t.Fatalf("the same metadata again: changed=%v %v", changed, err)
	}
	acs, form = signIn(t, c, s, "/")
	if resp := post(t, c, acs, form); resp.StatusCode != http.StatusFound || len(s.out.completed) != 1 {
		t.Fatalf("after the refresh: %d (failures %v)", resp.StatusCode, s.out.failures)
	}
	other := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	if _, err := sp.SetIDPMetadata(other.Metadata(t)); err == nil {
		t.Fatal("metadata of another IdP replaced the configured one")
	}
	if _, err := sp.SetIDPMetadata([]byte("<html/>")); err == nil {
		t.Fatal("garbage accepted as metadata")
	}
}

// TestACSRefusesOtherBindingsAndEchoesNothing: the artifact binding (a
// signed call to the IdP for anyone who asks) is refused, and a refusal
// page never repeats text from the request.
func TestACSRefusesOtherBindingsAndEchoesNothing(t *testing.T) {
	i := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	s := startSP(t, i, false, nil)
	c := samlidptest.Browser(stopAtSP)
	acs, form := signIn(t, c, s, "/")
	if resp := post(t, c, acs+"?SAMLart=AAQAA", form); resp.StatusCode != http.StatusForbidden || len(s.out.completed) != 0 {
		t.Fatalf("artifact in the query: %d", resp.StatusCode)
	}
	evil := `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">` +
		`<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:SignatureMethod Algorithm="Call 555-0100 to restore your account"/></ds:SignedInfo></ds:Signature></saml:Assertion></samlp:Response>`
	resp, err := c.PostForm(acs, url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString([]byte(evil))}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || strings.Contains(string(body), "555-0100") {
		t.Fatalf("refusal page: %d %s", resp.StatusCode, body)
	}
}

// TestTwoTabs: two sign-ins started in one browser (two tabs after the
// session ended) both complete, each back to its own page.
func TestTwoTabs(t *testing.T) {
	i := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	s := startSP(t, i, false, nil)
	c := samlidptest.Browser(stopAtSP)
	acs1, form1 := signIn(t, c, s, "/one")
	acs2, form2 := signIn(t, c, s, "/two")
	for _, tab := range []struct {
		acs, want string
		form      url.Values
	}{{acs2, "/two", form2}, {acs1, "/one", form1}} {
		if resp := post(t, c, tab.acs, tab.form); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != tab.want {
			t.Fatalf("tab %s: %d to %q (failures %v)", tab.want, resp.StatusCode, resp.Header.Get("Location"), s.out.failures)
		}
	}
}

// TestIdPSignedSubjectAndTime: assertions the IdP's key really signed
// but whose subject is ambiguous (a NameID outside SAML's assertion
// namespace, which a namespace-blind reader takes for the NameID; two
// NameIDs) or whose IssueInstant lies in the future beyond the allowed
// skew are refused. The unmodified re-signed response is accepted, so
// the refusals are the checks', not a broken signature's.
func TestIdPSignedSubjectAndTime(t *testing.T) {
	i := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	s := startSP(t, i, false, func(o *saml.Options) { o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil)) })
	subject := func(a *etree.Element) *etree.Element {
		sub := a.SelectElement("Subject")
		if sub == nil {
			t.Fatal("no Subject")
		}
		return sub
	}
	foreign := func(value string) *etree.Element {
		el := etree.NewElement("evil:NameID")
		el.CreateAttr("xmlns:evil", "urn:example:not-saml")
		el.SetText(value)
		return el
	}
	cases := []struct {
		name   string
		mutate func(a *etree.Element)
		accept bool
	}{
		{"unchanged (control)", func(*etree.Element) {}, true},
		{"foreign-namespace NameID after the real one", func(a *etree.Element) {
			sub := subject(a)
			sub.InsertChildAt(sub.SelectElement("NameID").Index()+1, foreign("root@example.com"))
		}, false},
		{"only a foreign-namespace NameID", func(a *etree.Element) {
			sub := subject(a)
			real := sub.SelectElement("NameID")
			sub.InsertChildAt(real.Index(), foreign("root@example.com"))
			sub.RemoveChild(real)
		}, false},
		{"two NameIDs", func(a *etree.Element) {
			sub := subject(a)
			second := sub.SelectElement("NameID").Copy()
			second.SetText("root@example.com")
			sub.InsertChildAt(sub.SelectElement("NameID").Index()+1, second)
		}, false},
		{"IssueInstant ten minutes ahead", func(a *etree.Element) {
			a.CreateAttr("IssueInstant", time.Now().Add(10*time.Minute).UTC().Format(time.RFC3339Nano))
		}, false},
	}
	for _, tc := range cases {
		for _, encrypt := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/encrypted=%v", tc.name, encrypt), func(t *testing.T) {
				before := len(s.out.completed)
				c := samlidptest.Browser(stopAtSP)
				acs, form := signIn(t, c, s, "/")
				resp := i.Resign(t, form.Get("SAMLResponse"), tc.mutate)
				if encrypt {
					resp = i.EncryptAssertion(t, resp, s.url+"/gatehouse/saml/metadata")
				}
				form.Set("SAMLResponse", resp)
				answer := post(t, c, acs, form)
				if tc.accept {
					if answer.StatusCode != http.StatusFound || len(s.out.completed) != before+1 {
						t.Fatalf("the re-signed response was refused: %d %v", answer.StatusCode, s.out.failures)
					}
					if got := s.out.completed[before].Email; got != samlidptest.Email {
						t.Fatalf("signed in as %q", got)
					}
					return
				}
				if answer.StatusCode != http.StatusForbidden || len(s.out.completed) != before {
					t.Fatalf("status %d, %d sign-ins (want 403, none): %+v", answer.StatusCode, len(s.out.completed)-before, s.out.completed[before:])
				}
				if got := s.out.failures[len(s.out.failures)-1]; got != "invalid_response" {
					t.Fatalf("reason %q", got)
				}
			})
		}
	}
}

// TestIntentTravelsWithTheRequest: the intent a page starts a sign-in
// with comes back with the response, from the store, whatever the
// browser or the IdP send.
func TestIntentTravelsWithTheRequest(t *testing.T) {
	i := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	s := startSP(t, i, false, nil)
	want := login.Intent{Kind: login.AcceptInvitation, Invitation: "tok-123"}
	start := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.sp.Start(w, r, want) }))
	t.Cleanup(start.Close)
	c := samlidptest.Browser(stopAtSP)
	acs, form := samlidptest.SignIn(t, c, start.URL)
	form.Set("RelayState", "/gatehouse/console/identity/test") // ignored: the request decides
	post(t, c, acs, form)
	if len(s.out.intents) != 1 || s.out.intents[0] != want {
		t.Fatalf("completed with %+v (failures %v), want %+v", s.out.intents, s.out.failures, want)
	}
}

// TestOneEncryptedData: an EncryptedAssertion carrying a second
// EncryptedData (in another namespace, which the library skips) is
// refused, whatever the second one holds: the subject check must read
// what the library read.
func TestOneEncryptedData(t *testing.T) {
	i := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	s := startSP(t, i, false, func(o *saml.Options) { o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil)) })
	for _, tc := range []struct {
		name   string
		extra  bool
		accept bool
	}{{"one EncryptedData (control)", false, true}, {"a second, foreign-namespace EncryptedData first", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.out.completed)
			c := samlidptest.Browser(stopAtSP)
			acs, form := signIn(t, c, s, "/")
			resp := i.EncryptAssertion(t, form.Get("SAMLResponse"), s.url+"/gatehouse/saml/metadata")
			if tc.extra {
				raw := string(mustDecode(t, resp))
				data := regexp.MustCompile(`(?s)<xenc:EncryptedData.*?</xenc:EncryptedData>`).FindString(raw)
				if data == "" {
					t.Fatalf("no EncryptedData in %s", raw)
				}
				// The attack needs a Response nobody signed (the signed
				// assertion inside the encryption is what the library
				// checks), and a Signature element anywhere to pass the
				// document's first check.
				raw = regexp.MustCompile(`(?s)<ds:Signature .*?</ds:Signature>`).ReplaceAllString(raw, "")
				foreign := strings.ReplaceAll(strings.ReplaceAll(data, "<xenc:EncryptedData", `<x:EncryptedData xmlns:x="urn:example:evil"`), "</xenc:EncryptedData>",
					`<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/></x:EncryptedData>`)
				resp = base64.StdEncoding.EncodeToString([]byte(strings.Replace(raw, data, foreign+data, 1)))
			}
			form.Set("SAMLResponse", resp)
			post(t, c, acs, form)
			if got := len(s.out.completed) - before; (got == 1) != tc.accept {
				t.Fatalf("%d sign-ins, failures %v", got, s.out.failures)
			}
		})
	}
}

// TestSecureRequestCookie: over https the sign-in's cookie is a __Host-
// cookie (Secure, Path=/, no Domain) sent with the IdP's cross-site POST.
func TestSecureRequestCookie(t *testing.T) {
	i := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := saml.New(context.Background(), saml.Options{Org: gateway.DefaultOrg, Store: st, PublicURL: "https://app.example", PathPrefix: "/gatehouse", IDPMetadata: i.Metadata(t)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Mount(mux)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "https://app.example/gatehouse/saml/login?return=/", nil))
	cookies := w.Result().Cookies()
	if w.Code != http.StatusFound || len(cookies) != 1 {
		t.Fatalf("login: %d with cookies %v", w.Code, cookies)
	}
	c := cookies[0]
	if !strings.HasPrefix(c.Name, "__Host-gatehouse_saml_request_") || c.Path != "/" || c.Domain != "" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteNoneMode {
		t.Fatalf("request cookie %s: want __Host-, Path=/, no Domain, Secure, HttpOnly, SameSite=None", c.String())
	}
}

// TestIDPSigningCertificateDuringRollover: metadata that still lists the
// IdP's old, expired certificate beside its new one is warned about by the
// new one; with only expired ones, by the last to expire.
func TestIDPSigningCertificateDuringRollover(t *testing.T) {
	i := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	current := i.Metadata(t)
	validUntil := i.Server.IDP.Certificate.NotAfter
	if err := i.RotateKeyUntil(time.Now().Add(-24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	expired := base64.StdEncoding.EncodeToString(i.Server.IDP.Certificate.Raw)
	// The old (expired) certificate listed first, as metadata during a
	// rollover lists both.
	both := strings.Replace(string(current), `<KeyDescriptor use="signing">`,
		`<KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>`+expired+
			`</X509Certificate></X509Data></KeyInfo></KeyDescriptor><KeyDescriptor use="signing">`, 1)
	for _, c := range []struct {
		name     string
		metadata string
		want     time.Time
	}{
		{"old and new", both, validUntil},
		{"only the expired one", string(i.Metadata(t)), i.Server.IDP.Certificate.NotAfter},
	} {
		s, err := saml.New(context.Background(), saml.Options{Org: gateway.DefaultOrg, Store: st, PublicURL: "https://app.example", PathPrefix: "/gatehouse", IDPMetadata: []byte(c.metadata)})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		cert, ok := s.IDPSigningCertificate()
		if !ok || !cert.NotAfter.Equal(c.want) {
			t.Fatalf("%s: the certificate warned about ends %v, want %v", c.name, cert.NotAfter, c.want)
		}
	}
}

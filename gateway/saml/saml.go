// Package saml is Gatehouse's SAML 2.0 service provider, on
// github.com/crewjam/saml: SP metadata, SP-initiated login (HTTP-Redirect,
// signed with RSA-SHA256), the assertion consumer (HTTP-POST), and the
// checks the library leaves to its caller. It turns a valid response into
// a gateway.Identity and hands it to the login funnel; nothing after that.
package saml

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"
	crewsaml "github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/login"
)

// Options configures the service provider.
type Options struct {
	Store      gateway.Store
	Org        gateway.OrgID
	PublicURL  string // scheme://host[:port]
	PathPrefix string
	// IDPMetadata is the IdP's SAML metadata (XML).
	IDPMetadata []byte
	// EntityID defaults to the SP metadata URL.
	EntityID          string
	AllowIDPInitiated bool
	// Attribute names; an attribute matches by Name or FriendlyName. An
	// empty name is the preset's; an empty EmailAttribute there too takes
	// the email from the NameID.
	EmailAttribute, FirstNameAttribute, LastNameAttribute, GroupsAttribute string
	// Preset is the IdP's (its names, its overage link, how its emails
	// are trusted); the zero value is generic.
	Preset gateway.IdPPreset
	// MaxBody bounds the ACS request body (default 256 KiB; Okta's
	// responses are a few KiB).
	MaxBody int64
	// Complete continues with a verified identity and the intent the
	// sign-in started with (the login funnel).
	Complete func(w http.ResponseWriter, r *http.Request, id gateway.Identity, in login.Intent)
	// Fail shows a sign-in error page.
	Fail func(w http.ResponseWriter, r *http.Request, status int, reason, message string)
	// The funnel's logout hooks (for the protocol's logout endpoints).
	login.LogoutHooks
	Logger *slog.Logger
}

// SP is the service provider.
type SP struct {
	opts Options
	cur  atomic.Pointer[provider] // swapped whole when the IdP metadata is refreshed
}

// provider is the library's SP with one version of the IdP's metadata;
// never changed once published.
type provider struct {
	sp  crewsaml.ServiceProvider
	idp string // the IdP's entity id
}

const (
	keyName   = "saml-sp"
	requestNS = "saml-request"
	replayNS  = "saml-assertion"
	// requestCookie prefixes one cookie per sign-in in flight (its name
	// ends with the request id), so that several tabs signing in at once
	// each find their own request.
	requestCookie  = httpx.CookiePrefix + "saml_request_"
	maxInFlight    = 8 // request cookies looked at; older ones expire
	requestTimeout = 10 * time.Minute
)

// New builds the SP, generating its key and certificate on first start.
func New(ctx context.Context, opts Options) (*SP, error) {
	if err := opts.Org.Check(); err != nil {
		return nil, fmt.Errorf("saml: %w", err)
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 256 << 10
	}
	if opts.Preset.Name == "" {
		opts.Preset, _ = gateway.Preset(gateway.PresetGeneric)
	}
	for _, d := range []struct {
		v   *string
		def string
	}{{&opts.EmailAttribute, opts.Preset.SAMLEmail}, {&opts.FirstNameAttribute, opts.Preset.SAMLFirstName},
		{&opts.LastNameAttribute, opts.Preset.SAMLLastName}, {&opts.GroupsAttribute, opts.Preset.SAMLGroups}} {
		if *d.v == "" {
			*d.v = d.def
		}
	}
	opts.LogoutHooks = opts.LogoutHooks.OrDefaults()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	base := strings.TrimRight(opts.PublicURL, "/") + opts.PathPrefix + "/saml"
	metadataURL, err := url.Parse(base + "/metadata")
	if err != nil || metadataURL.Host == "" {
		return nil, fmt.Errorf("saml: public_url %q does not make a metadata URL", opts.PublicURL)
	}
	acsURL, _ := url.Parse(base + "/acs")
	sloURL, _ := url.Parse(base + "/slo")
	if opts.EntityID == "" {
		opts.EntityID = metadataURL.String()
	}
	idp, err := parseIDPMetadata(opts.IDPMetadata)
	if err != nil {
		return nil, err
	}
	key, cert, err := spKey(ctx, opts.Store, opts.Org, acsURL.Host)
	if err != nil {
		return nil, err
	}
	s := &SP{opts: opts}
	s.cur.Store(&provider{idp: idp.EntityID, sp: crewsaml.ServiceProvider{
		EntityID:          opts.EntityID,
		Key:               key,
		Certificate:       cert,
		MetadataURL:       *metadataURL,
		AcsURL:            *acsURL,
		SloURL:            *sloURL,
		LogoutBindings:    []string{crewsaml.HTTPRedirectBinding, crewsaml.HTTPPostBinding},
		IDPMetadata:       idp,
		SignatureMethod:   dsig.RSASHA256SignatureMethod,
		AllowIDPInitiated: opts.AllowIDPInitiated,
		AuthnNameIDFormat: crewsaml.UnspecifiedNameIDFormat,
		// checkDocument cannot see a signature inside an encrypted
		// assertion; the library refuses SHA-1 there too.
		RejectSHA1Signatures: true,
	}})
	return s, nil
}

// ParseIDPMetadata checks that raw is usable SAML metadata of one IdP,
// as the service provider reads it, and returns its entity id.
func ParseIDPMetadata(raw []byte) (string, error) {
	idp, err := parseIDPMetadata(raw)
	if err != nil {
		return "", err
	}
	return idp.EntityID, nil
}

func parseIDPMetadata(raw []byte) (*crewsaml.EntityDescriptor, error) {
	idp, err := samlsp.ParseMetadata(raw)
	if err != nil {
		return nil, fmt.Errorf("saml: IdP metadata: %w", err)
	}
	if idp.EntityID == "" {
		return nil, errors.New("saml: the IdP metadata has no entityID")
	}
	if len(idp.IDPSSODescriptors) == 0 {
		return nil, errors.New("saml: the metadata describes no identity provider (no IDPSSODescriptor)")
	}
	return idp, nil
}

// spKey loads the SP's key and certificate, generating them once.
func spKey(ctx context.Context, store gateway.Store, org gateway.OrgID, host string) (*rsa.PrivateKey, *x509.Certificate, error) {
	type stored struct{ Key, Cert []byte }
	raw, err := store.Keys().Get(ctx, org, keyName)
	if err != nil {
		return nil, nil, err
	}
	if raw == nil {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, nil, err
		}
		serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
		tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: host},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0),
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			return nil, nil, err
		}
		raw, _ = json.Marshal(stored{Key: x509.MarshalPKCS1PrivateKey(key), Cert: der})
		if raw, err = store.Keys().PutIfAbsent(ctx, org, keyName, raw); err != nil {
			return nil, nil, err
		}
	}
	var st stored
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, nil, fmt.Errorf("saml: stored SP key: %w", err)
	}
	key, err := x509.ParsePKCS1PrivateKey(st.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("saml: stored SP key: %w", err)
	}
	cert, err := x509.ParseCertificate(st.Cert)
	if err != nil {
		return nil, nil, fmt.Errorf("saml: stored SP certificate: %w", err)
	}
	return key, cert, nil
}

// Mount adds the SP's endpoints under {prefix}/saml.
func (s *SP) Mount(mux *http.ServeMux) {
	p := s.opts.PathPrefix + "/saml"
	mux.HandleFunc("GET "+p+"/metadata", s.metadata)
	mux.HandleFunc("GET "+p+"/login", s.login)
	mux.HandleFunc("POST "+p+"/acs", s.acs)
	mux.HandleFunc("GET "+p+"/slo", s.slo)
	mux.HandleFunc("POST "+p+"/slo", s.slo)
}

// IDPEntityID is the IdP's entity id (the issuer of its assertions).
func (s *SP) IDPEntityID() string { return s.cur.Load().idp }

// EntityID is the SP's entity id (what the IdP is configured with).
func (s *SP) EntityID() string { return s.opts.EntityID }

// SetIDPMetadata replaces the IdP's metadata (a refresh picking up a new
// signing certificate). The IdP's entity id may not change: that is
// another IdP, and a restart with the new configuration.
func (s *SP) SetIDPMetadata(raw []byte) (changed bool, err error) {
	idp, err := samlsp.ParseMetadata(raw)
	if err != nil {
		return false, fmt.Errorf("saml: IdP metadata: %w", err)
	}
	cur := s.cur.Load()
	if idp.EntityID != cur.idp {
		return false, fmt.Errorf("saml: the refreshed IdP metadata names entity %q, not %q; restart to change IdPs", idp.EntityID, cur.idp)
	}
	if essentials(cur.sp.IDPMetadata) == essentials(idp) {
		return false, nil // validUntil and the like move on every fetch
	}
	next := &provider{idp: cur.idp, sp: cur.sp}
	next.sp.IDPMetadata = idp
	s.cur.Store(next)
	return true, nil
}

// IDPCertificateExpiry is when the first of the IdP's signing
// certificates in force expires (false: none could be read): past it,
// nobody signs in until the IdP's new certificate is here.
func (s *SP) IDPCertificateExpiry() (time.Time, bool) {
	cert, ok := s.IDPSigningCertificate()
	if !ok {
		return time.Time{}, false
	}
	return cert.NotAfter, true
}

// IDPSigningCertificate is the IdP's signing certificate in force that
// expires first, of those not expired yet (during a rollover the metadata
// may still list the old one after its end); when all have expired, the
// last to expire (false: none could be read).
func (s *SP) IDPSigningCertificate() (*x509.Certificate, bool) {
	var first, last *x509.Certificate
	now := time.Now()
	for _, d := range s.cur.Load().sp.IDPMetadata.IDPSSODescriptors {
		for _, k := range d.KeyDescriptors {
			if k.Use != "" && k.Use != "signing" {
				continue
			}
			for _, c := range k.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Data), ""))
				if err != nil {
					continue
				}
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					continue
				}
				if last == nil || cert.NotAfter.After(last.NotAfter) {
					last = cert
				}
				if cert.NotAfter.After(now) && (first == nil || cert.NotAfter.Before(first.NotAfter)) {
					first = cert
				}
			}
		}
	}
	if first == nil {
		first = last
	}
	return first, first != nil
}

// essentials is what of IdP metadata matters to the SP: the IdP's
// certificates and sign-in endpoints.
func essentials(ed *crewsaml.EntityDescriptor) string {
	var b strings.Builder
	for _, d := range ed.IDPSSODescriptors {
		for _, k := range d.KeyDescriptors {
			for _, c := range k.KeyInfo.X509Data.X509Certificates {
				b.WriteString(k.Use + "=" + strings.Join(strings.Fields(c.Data), "") + "\n")
			}
		}
		for _, e := range d.SingleSignOnServices {
			b.WriteString(e.Binding + "=" + e.Location + "\n")
		}
		for _, e := range d.SingleLogoutServices {
			b.WriteString("slo " + e.Binding + "=" + e.Location + " " + e.ResponseLocation + "\n")
		}
	}
	return b.String()
}

func (s *SP) metadata(w http.ResponseWriter, r *http.Request) {
	st := s.cur.Load()
	b, err := xml.MarshalIndent(st.sp.Metadata(), "", "  ")
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	_, _ = w.Write(b)
}

// pending is a sign-in request in flight, with what it is for.
type pending struct {
	Intent login.Intent `json:"intent"`
	Return string       `json:"return,omitempty"` // a request stored before intents were
}

func (p pending) intent() login.Intent {
	if p.Intent.Kind == "" {
		return login.Plain(p.Return)
	}
	return p.Intent
}

func (s *SP) secure() bool { return strings.HasPrefix(s.opts.PublicURL, "https://") }

// login starts a plain SP-initiated sign-in that returns to ?return.
func (s *SP) login(w http.ResponseWriter, r *http.Request) {
	s.Start(w, r, login.Plain(r.URL.Query().Get("return")))
}

// Start starts an SP-initiated sign-in for in: the AuthnRequest is
// remembered with the intent (single use, ten minutes) and bound to this
// browser by a cookie, so the response must answer this browser's own
// request, and is used as the page that started it decided.
func (s *SP) Start(w http.ResponseWriter, r *http.Request, in login.Intent) {
	st := s.cur.Load()
	req, err := st.sp.MakeAuthenticationRequest(st.sp.GetSSOBindingLocation(crewsaml.HTTPRedirectBinding), crewsaml.HTTPRedirectBinding, crewsaml.HTTPPostBinding)
	if err != nil {
		s.opts.Logger.ErrorContext(r.Context(), "saml: authn request", "error", err)
		s.opts.Fail(w, r, http.StatusInternalServerError, "internal", "The sign-in request could not be made.")
		return
	}
	val, _ := json.Marshal(pending{Intent: in})
	if _, err := s.opts.Store.Ephemeral().PutIfAbsent(r.Context(), s.opts.Org, requestNS, req.ID, val, time.Now().Add(requestTimeout)); err != nil {
		s.opts.Fail(w, r, http.StatusServiceUnavailable, "store", "The sign-in cannot start right now; try again shortly.")
		return
	}
	to, err := req.Redirect(req.ID, &st.sp)
	if err != nil {
		s.opts.Fail(w, r, http.StatusInternalServerError, "internal", "The sign-in request could not be made.")
		return
	}
	c := &http.Cookie{Name: s.requestCookie() + req.ID, Value: "1", Path: s.requestCookiePath(), MaxAge: int(requestTimeout.Seconds()),
		HttpOnly: true, Secure: s.secure(), SameSite: http.SameSiteLaxMode}
	if s.secure() {
		c.SameSite = http.SameSiteNoneMode // the IdP's POST back is cross-site
	}
	http.SetCookie(w, c)
	http.Redirect(w, r, to.String(), http.StatusFound)
}

// requestCookie prefixes the cookies of sign-ins in flight. Over https
// they are __Host- cookies (Path=/, no Domain), which a sibling subdomain
// cannot set: a planted cookie would let another's response, or eight
// junk ones, stand for this browser's request.
func (s *SP) requestCookie() string {
	if s.secure() {
		return "__Host-" + requestCookie
	}
	return requestCookie
}

func (s *SP) requestCookiePath() string {
	if s.secure() {
		return "/"
	}
	return s.opts.PathPrefix + "/saml"
}

// requestsInFlight are the ids of the requests this browser started
// (the first maxInFlight cookies of ours; older ones expire).
func (s *SP) requestsInFlight(r *http.Request) []string {
	var ids []string
	for _, c := range r.Cookies() {
		if id, ok := strings.CutPrefix(c.Name, s.requestCookie()); ok && id != "" && len(ids) < maxInFlight {
			ids = append(ids, id)
		}
	}
	return ids
}

// acs consumes a SAML response.
func (s *SP) acs(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBody)
	if err := r.ParseForm(); err != nil {
		s.opts.Fail(w, r, http.StatusBadRequest, "malformed", "The sign-in response is too large or malformed.")
		return
	}
	if r.Form.Has("SAMLart") || r.URL.RawQuery != "" {
		// The library would resolve an artifact (a signed call to the IdP
		// for anyone who asks) and skip checkDocument: only HTTP-POST here.
		s.refuse(w, r, "invalid_response", errors.New("only the HTTP-POST binding is accepted at the ACS"))
		return
	}
	possible := s.requestsInFlight(r)
	st := s.cur.Load()
	response, err := checkDocument(r.PostForm.Get("SAMLResponse"))
	if err != nil {
		s.refuse(w, r, "invalid_response", err)
		return
	}
	assertion, err := st.sp.ParseResponse(r, possible)
	if err != nil {
		var ire *crewsaml.InvalidResponseError
		if errors.As(err, &ire) {
			err = ire.PrivateErr
		}
		s.refuse(w, r, "invalid_response", err)
		return
	}
	if err := st.checkAssertion(assertion, s.opts.EntityID, st.sp.AcsURL.String(), time.Now()); err != nil {
		s.refuse(w, r, "invalid_response", err)
		return
	}
	if err := st.checkSubject(response); err != nil {
		s.refuse(w, r, "invalid_response", err)
		return
	}
	// Replay: an assertion is accepted once, for as long as the library
	// would still accept it (its latest expiry plus the allowed skew).
	if assertion.ID == "" {
		s.refuse(w, r, "invalid_response", errors.New("the assertion has no ID"))
		return
	}
	irt := inResponseTo(assertion)
	switch {
	case irt != "" && !slices.Contains(possible, irt):
		s.refuse(w, r, "invalid_response", errors.New("the response answers a sign-in this browser did not start"))
		return
	case irt == "" && !s.opts.AllowIDPInitiated:
		s.refuse(w, r, "invalid_response", errors.New("an unsolicited response and sso.saml.allow_idp_initiated is off"))
		return
	}
	// The assertion is recorded as used and its request taken in one
	// write (one commit per sign-in instead of two).
	fresh, val, err := s.opts.Store.Ephemeral().PutIfAbsentAndTake(r.Context(), s.opts.Org, replayNS, assertion.ID, nil, replayUntil(assertion), requestNS, irt)
	if err != nil {
		s.opts.Fail(w, r, http.StatusServiceUnavailable, "store", "The sign-in cannot be completed right now; try again shortly.")
		return
	}
	if !fresh {
		s.refuse(w, r, "replay", fmt.Errorf("assertion %s was already used", assertion.ID))
		return
	}
	// What the sign-in is for was recorded when it started; an
	// unsolicited response, which answers no request, is only ever a
	// plain sign-in, whatever its RelayState names.
	var in login.Intent
	if irt != "" {
		if val == nil {
			s.refuse(w, r, "invalid_response", fmt.Errorf("no sign-in request %s is waiting (used, expired, or never made here)", irt))
			return
		}
		var p pending
		if err := json.Unmarshal(val, &p); err != nil {
			s.refuse(w, r, "invalid_response", fmt.Errorf("sign-in request %s: %w", irt, err))
			return
		}
		in = p.intent()
	} else {
		in = login.Plain(r.PostForm.Get("RelayState"))
	}
	if irt != "" {
		http.SetCookie(w, &http.Cookie{Name: s.requestCookie() + irt, Path: s.requestCookiePath(), MaxAge: -1, HttpOnly: true, Secure: s.secure()})
	}
	id, err := s.identity(assertion, st.idp)
	if err != nil {
		s.refuse(w, r, "no_email", err)
		return
	}
	s.opts.Complete(w, r, id, in)
}

// refusals are the fixed sentences a person sees; the detail (which may
// hold text an attacker wrote) goes to the log only.
var refusals = map[string]string{
	"invalid_response": "The sign-in response from your identity provider was not accepted.",
	"replay":           "This sign-in response was already used.",
	"no_email":         "Your identity provider did not send an email address for your account.",
}

func (s *SP) refuse(w http.ResponseWriter, r *http.Request, reason string, err error) {
	s.opts.Logger.WarnContext(r.Context(), "saml: sign-in refused", "reason", reason, "error", err)
	s.opts.Fail(w, r, http.StatusForbidden, reason,
		refusals[reason]+" Start again from the application; if it keeps failing, your administrator can find the details in the gateway's log (reason "+reason+").")
}

// replayUntil is when the library stops accepting the assertion anyway:
// its latest NotOnOrAfter or IssueInstant plus the issue delay, plus the
// clock skew it allows.
func replayUntil(a *crewsaml.Assertion) time.Time {
	until := a.IssueInstant.Add(crewsaml.MaxIssueDelay)
	if c := a.Conditions; c != nil && c.NotOnOrAfter.After(until) {
		until = c.NotOnOrAfter
	}
	if a.Subject != nil {
		for _, sc := range a.Subject.SubjectConfirmations {
			if d := sc.SubjectConfirmationData; d != nil && d.NotOnOrAfter.After(until) {
				until = d.NotOnOrAfter
			}
		}
	}
	if min := time.Now().Add(crewsaml.MaxIssueDelay); until.Before(min) {
		until = min
	}
	return until.Add(crewsaml.MaxClockSkew + time.Minute)
}

func inResponseTo(a *crewsaml.Assertion) string {
	if a.Subject == nil {
		return ""
	}
	for _, sc := range a.Subject.SubjectConfirmations {
		if d := sc.SubjectConfirmationData; d != nil && d.InResponseTo != "" {
			return d.InResponseTo
		}
	}
	return ""
}

// strongSignature is the set of signature algorithms accepted (SHA-256
// or better).
var strongSignature = []string{
	dsig.RSASHA256SignatureMethod, dsig.RSASHA384SignatureMethod, dsig.RSASHA512SignatureMethod,
	dsig.ECDSASHA256SignatureMethod, dsig.ECDSASHA384SignatureMethod, dsig.ECDSASHA512SignatureMethod,
}

var strongDigest = []string{
	"http://www.w3.org/2001/04/xmlenc#sha256", "http://www.w3.org/2001/04/xmldsig-more#sha384", "http://www.w3.org/2001/04/xmlenc#sha512",
}

// checkDocument looks at the raw response before the library does:
// exactly one assertion, and every signature SHA-256 or better. It
// returns the parsed Response.
func checkDocument(encoded string) (*etree.Element, error) {
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, errors.New("the SAMLResponse is not base64")
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		return nil, errors.New("the SAMLResponse is not XML")
	}
	root := doc.Root()
	if root == nil || root.Tag != "Response" {
		return nil, errors.New("the SAMLResponse is not a Response")
	}
	n := len(root.FindElements("//Assertion")) + len(root.FindElements("//EncryptedAssertion"))
	if n != 1 {
		return nil, fmt.Errorf("the response holds %d assertions; exactly one is accepted", n)
	}
	for _, sm := range root.FindElements("//SignatureMethod") {
		if alg := sm.SelectAttrValue("Algorithm", ""); !slices.Contains(strongSignature, alg) {
			return nil, fmt.Errorf("signature algorithm %q is refused: SHA-256 or better is required", alg)
		}
	}
	for _, dm := range root.FindElements("//Reference/DigestMethod") {
		if alg := dm.SelectAttrValue("Algorithm", ""); !slices.Contains(strongDigest, alg) {
			return nil, fmt.Errorf("digest algorithm %q is refused: SHA-256 or better is required", alg)
		}
	}
	if len(root.FindElements("//Signature")) == 0 {
		return nil, errors.New("the response is not signed")
	}
	return root, nil
}

const assertionNS = "urn:oasis:names:tc:SAML:2.0:assertion"

// checkSubject reads the Subject of the response's one assertion as sent
// (decrypted, when it was encrypted) and requires exactly one identifier
// of the person, in SAML's assertion namespace. The library's reading
// takes the last of two NameIDs and skips one in another namespace, so an
// assertion an IdP signed with an extra or foreign NameID would name
// whichever person the reader picked; such an assertion is refused.
// It runs after the library accepted the response, so only an authentic
// EncryptedAssertion is decrypted here.
func (p *provider) checkSubject(response *etree.Element) error {
	assertion := response.FindElement("//Assertion")
	if assertion == nil {
		enc := response.FindElement("//EncryptedAssertion")
		if enc == nil {
			return errors.New("the response holds no assertion")
		}
		var err error
		if assertion, err = decrypt(p.sp.Key, enc); err != nil {
			return fmt.Errorf("the encrypted assertion could not be read again for its subject: %w", err)
		}
	}
	subjects := assertion.SelectElements("Subject")
	if len(subjects) != 1 || subjects[0].NamespaceURI() != assertionNS {
		return fmt.Errorf("the assertion holds %d Subject elements; exactly one, in SAML's assertion namespace, is accepted", len(subjects))
	}
	ids := 0
	for _, c := range subjects[0].ChildElements() {
		switch c.Tag {
		case "NameID", "EncryptedID", "BaseID":
			if ns := c.NamespaceURI(); ns != assertionNS {
				return fmt.Errorf("the Subject holds a %s in namespace %q, not SAML's assertion namespace", c.Tag, ns)
			}
			ids++
		}
	}
	if ids != 1 {
		return fmt.Errorf("the Subject names the person %d times; exactly one NameID is accepted", ids)
	}
	return nil
}

const xencNS = "http://www.w3.org/2001/04/xmlenc#"

// decrypt returns the plaintext element of an EncryptedAssertion whose
// key is wrapped for the SP's key (beside the EncryptedData or in its
// KeyInfo, as IdPs send it). It reads the one EncryptedData the library
// can have read: an EncryptedAssertion with more than one element of that
// name, in any namespace, is refused (the library skips one in another
// namespace, so a second one could carry a different assertion).
func decrypt(key crypto.Signer, enc *etree.Element) (*etree.Element, error) {
	datas := enc.SelectElements("EncryptedData")
	if len(datas) != 1 || datas[0].NamespaceURI() != xencNS {
		return nil, fmt.Errorf("the EncryptedAssertion holds %d EncryptedData elements; exactly one, in XML Encryption's namespace, is accepted", len(datas))
	}
	data := datas[0]
	var cek []byte
	var err error = errors.New("no EncryptedKey for this service provider")
	for _, wrapped := range append(enc.SelectElements("EncryptedKey"), data.FindElements("./KeyInfo/EncryptedKey")...) {
		if wrapped.NamespaceURI() != xencNS {
			continue
		}
		if cek, err = xmlenc.Decrypt(key, wrapped); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	data = data.Copy()
	if ki := data.SelectElement("KeyInfo"); ki != nil {
		data.RemoveChild(ki)
	}
	plain, err := xmlenc.Decrypt(cek, data)
	if err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(plain); err != nil || doc.Root() == nil {
		return nil, errors.New("the plaintext is not XML")
	}
	return doc.Root(), nil
}

// checkAssertion adds what the library does not require (or did not,
// in an earlier version: these hold whatever the library does): an
// issuer equal to the IdP's, an audience equal to this SP, an
// IssueInstant no later than now plus the allowed skew.
func (p *provider) checkAssertion(a *crewsaml.Assertion, entityID, acsURL string, now time.Time) error {
	if a.IssueInstant.After(now.Add(crewsaml.MaxClockSkew)) {
		return fmt.Errorf("the assertion was issued at %s, in the future beyond the allowed clock skew (%s)", a.IssueInstant.UTC().Format(time.RFC3339), crewsaml.MaxClockSkew)
	}
	if a.Issuer.Value != p.idp {
		return fmt.Errorf("the assertion's issuer %q is not the configured IdP %q", a.Issuer.Value, p.idp)
	}
	if a.Conditions == nil || len(a.Conditions.AudienceRestrictions) == 0 {
		return errors.New("the assertion names no audience")
	}
	for _, ar := range a.Conditions.AudienceRestrictions {
		if ar.Audience.Value != entityID {
			return fmt.Errorf("the assertion is for audience %q, not this application (%q)", ar.Audience.Value, entityID)
		}
	}
	if a.Subject == nil || a.Subject.NameID == nil || strings.TrimSpace(a.Subject.NameID.Value) == "" {
		return errors.New("the assertion has no NameID")
	}
	bearer := false
	for _, sc := range a.Subject.SubjectConfirmations {
		d := sc.SubjectConfirmationData
		if sc.Method == "urn:oasis:names:tc:SAML:2.0:cm:bearer" && d != nil && d.Recipient == acsURL && !d.NotOnOrAfter.IsZero() {
			bearer = true
		}
	}
	if !bearer {
		return errors.New("the assertion has no bearer SubjectConfirmation for this ACS with an expiry")
	}
	if len(a.AuthnStatements) == 0 {
		return errors.New("the assertion has no AuthnStatement")
	}
	return nil
}

// identity reads the person from the assertion's NameID and attributes.
func (s *SP) identity(a *crewsaml.Assertion, idp string) (gateway.Identity, error) {
	id := gateway.Identity{Protocol: "saml", Issuer: idp, Subject: a.Subject.NameID.Value, SubjectFormat: a.Subject.NameID.Format, EmailVerified: true,
		Raw: map[string][]string{"NameID": {a.Subject.NameID.Value}}}
	if s.opts.Preset.EmailProof == gateway.EmailProofVerifiedDomain {
		// This IdP lets its admins set any address: trusted only at the
		// organization's verified domains.
		id.EmailVerified, id.EmailAtVerifiedDomain = false, true
	}
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			if len(id.Raw) >= maxRawAttributes {
				break
			}
			for _, v := range at.Values {
				if len(id.Raw[at.Name]) < maxRawValues {
					id.Raw[at.Name] = append(id.Raw[at.Name], strings.TrimSpace(v.Value))
				}
			}
		}
	}
	for _, st := range a.AuthnStatements {
		if st.SessionIndex != "" {
			id.SessionID = st.SessionIndex
			break
		}
	}
	values := func(name string) []string {
		var out []string
		for _, st := range a.AttributeStatements {
			for _, at := range st.Attributes {
				if strings.EqualFold(at.Name, name) || strings.EqualFold(at.FriendlyName, name) {
					for _, v := range at.Values {
						out = append(out, strings.TrimSpace(v.Value))
					}
				}
			}
		}
		return out
	}
	first := func(name string) string {
		if v := values(name); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if s.opts.EmailAttribute == "" {
		id.Email = strings.TrimSpace(a.Subject.NameID.Value)
	} else {
		id.Email = first(s.opts.EmailAttribute)
	}
	if !strings.Contains(id.Email, "@") {
		return id, fmt.Errorf("no email address in the assertion (NameID or %q attribute)", s.opts.EmailAttribute)
	}
	id.GivenName = first(s.opts.FirstNameAttribute)
	id.FamilyName = first(s.opts.LastNameAttribute)
	id.Groups = values(s.opts.GroupsAttribute)
	if link := s.opts.Preset.SAMLGroupsLink; link != "" && len(values(link)) > 0 {
		// Too many groups to send: the IdP sent a link instead. The
		// memberships stay as they are (SCIM brings them).
		id.Groups, id.GroupsOverage = nil, true
	}
	return id, nil
}

// What of an assertion a test sign-in shows, at most.
const (
	maxRawAttributes = 64
	maxRawValues     = 50
)

// Package setup serves the setup link: the pages where a customer's IT
// admin, with no account here, connects their Okta or Entra ID to one
// organization (SAML or OIDC, then SCIM), with every value to paste in
// the IdP's own words, the IdP's settings checked live, a test sign-in
// showing what the IdP sent, and SCIM's first request ticked when it
// arrives. A link opens once, into a setup session bound to that browser
// (a cookie), which may change that organization's sign-in and SCIM and
// read nothing else.
package setup

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/admin"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/login"
	"github.com/gatehouse-id/gatehouse/gateway/pages"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

//go:embed templates
var templateFS embed.FS

// Options configures the setup pages.
type Options struct {
	Service *provision.Service
	Funnel  *login.Funnel
	// Starter is the organization's sign-in in force (its test sign-in
	// starts there).
	Starter func(ctx context.Context, org gateway.OrgID) (login.Starter, error)
	// PublicRoot is {public_url}{prefix}.
	PublicRoot string
	PathPrefix string
	// Assets is where the console's stylesheet and script are served
	// ({prefix}/console/static): the pages share them.
	Assets string
	// Secure: the public URL is https (a __Host- cookie).
	Secure bool
	// CSRFKey keys the setup session's anti-CSRF tokens.
	CSRFKey          []byte
	SCIMTokenGrace   time.Duration
	SettingsFromFile bool
	Logger           *slog.Logger
}

// Pages serves the setup link's pages.
type Pages struct {
	opts      Options
	page      *template.Template
	crossSite *http.CrossOriginProtection
}

// New builds the pages.
func New(opts Options) (*Pages, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	t, err := template.New("setup").ParseFS(templateFS, "templates/setup.html")
	if err != nil {
		return nil, err
	}
	return &Pages{opts: opts, page: t, crossSite: http.NewCrossOriginProtection()}, nil
}

const (
	cookieSecure = "__Host-" + httpx.CookiePrefix + "setup"
	cookiePlain  = httpx.CookiePrefix + "setup"
)

func (p *Pages) cookieName() string {
	if p.opts.Secure {
		return cookieSecure
	}
	return cookiePlain
}

// Mount adds the pages under an organization's base (Base(org)/setup):
//
//	GET  …/setup/link/{token}  what the link is for, and a button to start
//	POST …/setup/link/{token}  opens the link (once) into a setup session
//	GET  …/setup               the steps
//	POST …/setup/idp           the IdP and protocol the admin uses
//	POST …/setup/connect       the IdP's settings, checked live, put in force
//	POST …/setup/test          a test sign-in at the IdP
//	GET  …/setup/test/done     its result, in this setup session only
//	POST …/setup/scim          SCIM on, with a new token shown once
//	GET  …/setup/status        {"scim_seen": …} for the page to tick
func (p *Pages) Mount(mux *http.ServeMux) {
	for _, base := range []string{p.opts.PathPrefix, p.opts.PathPrefix + "/o/{org}"} {
		b := base + "/setup"
		mux.HandleFunc("GET "+b+"/link/{token}", p.linkPage)
		mux.Handle("POST "+b+"/link/{token}", p.crossSite.Handler(http.HandlerFunc(p.open)))
		mux.HandleFunc("GET "+b, p.inSession(p.stepsPage))
		mux.HandleFunc("GET "+b+"/test/done", p.inSession(p.testDone))
		mux.HandleFunc("GET "+b+"/status", p.inSession(p.status))
		for path, fn := range map[string]func(*visit){"/idp": p.chooseIdP, "/connect": p.connect, "/test": p.test, "/scim": p.scim} {
			mux.Handle("POST "+b+path, p.crossSite.Handler(p.inSession(p.checked(fn))))
		}
	}
}

// org is the organization the path names (the unprefixed one without),
// or false with a page written.
func (p *Pages) org(w http.ResponseWriter, r *http.Request) (gateway.OrgID, bool) {
	org, err := p.opts.Funnel.OrgOf(r)
	if err != nil {
		if code := gateway.ErrorCodeOf(err); code == gateway.ErrNotFound || code == gateway.ErrInvalid {
			p.message(w, r, http.StatusNotFound, "No such organization", "This link names an organization the application does not have.", "Ask the person who sent it for a new one.")
			return "", false
		}
		p.fail(w, r, err)
		return "", false
	}
	return org, true
}

func (p *Pages) message(w http.ResponseWriter, r *http.Request, status int, title, message, hint string) {
	pages.Show(w, status, pages.Message{Title: title, Message: message, Hint: hint, RequestID: httpx.RequestID(r.Context())})
}

// fail shows a refusal in the admin's words, or a generic failure.
func (p *Pages) fail(w http.ResponseWriter, r *http.Request, err error) {
	var refused *provision.LoginError
	if errors.As(err, &refused) {
		p.message(w, r, http.StatusForbidden, "Setup is not available", refused.Message, "")
		return
	}
	p.opts.Logger.ErrorContext(r.Context(), "setup: failed", "error", err)
	p.message(w, r, http.StatusServiceUnavailable, "Setup is not available right now", "The gateway could not complete this step.", "Try again in a moment.")
}

func (p *Pages) linkPage(w http.ResponseWriter, r *http.Request) {
	org, ok := p.org(w, r)
	if !ok {
		return
	}
	token := r.PathValue("token")
	if err := p.opts.Service.CheckSetupLink(r.Context(), org, token); err != nil {
		p.fail(w, r, err)
		return
	}
	name := string(org)
	if o, err := p.opts.Service.Org(r.Context(), org); err == nil {
		name = o.Name
	}
	pages.ShowAction(w, pages.Action{Title: "Connect " + name + " to this application", Post: true,
		Action:  p.opts.Funnel.Base(org) + "/setup/link/" + url.PathEscape(token),
		Message: "This link walks you through connecting " + name + "'s identity provider (Okta or Microsoft Entra ID): single sign-on, then SCIM provisioning if you want it. It works once, in the browser that starts it, for " + provision.SetupSessionTTL.String() + ".",
		Button:  "Start the setup"})
}

// open uses the link up and starts this browser's setup session.
func (p *Pages) open(w http.ResponseWriter, r *http.Request) {
	org, ok := p.org(w, r)
	if !ok {
		return
	}
	secret, se, err := p.opts.Service.OpenSetupLink(r.Context(), org, r.PathValue("token"), httpx.RequestID(r.Context()))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: p.cookieName(), Value: secret, Path: "/", Expires: se.Expires,
		Secure: p.opts.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	p.opts.Logger.InfoContext(r.Context(), "setup link opened", "org", string(org), "setup_link", se.LinkID)
	http.Redirect(w, r, p.opts.Funnel.Base(org)+"/setup", http.StatusSeeOther)
}

// visit is one request of a setup session.
type visit struct {
	w       http.ResponseWriter
	r       *http.Request
	org     gateway.OrgID
	session provision.SetupSession
	secret  string
}

func (v *visit) ctx() context.Context { return v.r.Context() }

// inSession admits the browser of an open setup session of the
// organization the path names.
func (p *Pages) inSession(fn func(*visit)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		org, ok := p.org(w, r)
		if !ok {
			return
		}
		c, err := r.Cookie(p.cookieName())
		if err != nil {
			p.message(w, r, http.StatusUnauthorized, "No setup in progress", "This browser has not opened a setup link for this organization.",
				"Open the setup link you were sent; ask for a new one if it was used already.")
			return
		}
		se, err := p.opts.Service.SetupSessionOf(r.Context(), org, c.Value)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		fn(&visit{w: w, r: r, org: org, session: se, secret: c.Value})
	}
}

// csrf is the setup session's anti-CSRF token (an HMAC of its secret).
func (p *Pages) csrf(v *visit) string {
	mac := hmac.New(sha256.New, p.opts.CSRFKey)
	mac.Write([]byte("gatehouse-setup\x00" + string(v.org) + "\x00" + v.secret))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// checked admits a form of this setup session's own page (its CSRF token).
func (p *Pages) checked(fn func(*visit)) func(*visit) {
	return func(v *visit) {
		v.r.Body = http.MaxBytesReader(v.w, v.r.Body, 1<<20+64<<10)
		if len(p.opts.CSRFKey) == 0 || !hmac.Equal([]byte(v.r.PostFormValue("csrf")), []byte(p.csrf(v))) {
			p.message(v.w, v.r, http.StatusForbidden, "Refused", "This form is out of date or was sent from another site.", "Reload the setup page and try again.")
			return
		}
		fn(v)
	}
}

func (p *Pages) chooseIdP(v *visit) {
	vendor, protocol := v.r.PostFormValue("vendor"), v.r.PostFormValue("protocol")
	if _, ok := vendors[vendor]; !ok || protocol != gateway.ProtocolSAML && protocol != gateway.ProtocolOIDC {
		p.render(v, http.StatusUnprocessableEntity, form{Problem: "Choose your identity provider and how people sign in."})
		return
	}
	if err := p.opts.Service.UpdateSetupSession(v.ctx(), v.session, func(vd *string, _ **gateway.Identity) { *vd = vendor + ":" + protocol }); err != nil {
		p.fail(v.w, v.r, err)
		return
	}
	http.Redirect(v.w, v.r, p.opts.Funnel.Base(v.org)+"/setup#create", http.StatusSeeOther)
}

// form is what the admin typed, kept when a step is refused.
type form struct {
	MetadataURL, MetadataXML, Issuer, ClientID string
	Problem                                    string
	Step                                       string // the step the problem is about
	Notice                                     string
	SCIMToken                                  string // shown once, after SCIM is turned on
}

// connect puts the IdP's settings in force, after the gateway checked
// them live (the metadata fetched and parsed, the issuer discovered).
func (p *Pages) connect(v *visit) {
	vendor, protocol := splitChoice(v.session.Vendor)
	f := form{Step: "connect", MetadataURL: strings.TrimSpace(v.r.PostFormValue("metadata_url")), MetadataXML: strings.TrimSpace(v.r.PostFormValue("metadata_xml")),
		Issuer: strings.TrimSpace(v.r.PostFormValue("issuer")), ClientID: strings.TrimSpace(v.r.PostFormValue("client_id"))}
	secret := v.r.PostFormValue("client_secret")
	if p.opts.SettingsFromFile {
		f.Problem = "This gateway's sign-in settings are fixed by its configuration file, so they cannot be changed here; the application's operator changes them."
		p.render(v, http.StatusConflict, f)
		return
	}
	cur, ok := p.opts.Service.Current(v.ctx(), v.org)
	if !ok {
		p.fail(v.w, v.r, gateway.Errorf(gateway.ErrUnavailable, "the settings are not loaded"))
		return
	}
	next := cur.IdentitySettings
	switch protocol {
	case gateway.ProtocolSAML:
		switch {
		case f.MetadataURL == "" && f.MetadataXML == "":
			f.Problem = "Paste the metadata URL " + vendors[vendor].Name + " shows for the app (or the metadata XML itself)."
		case f.MetadataURL != "":
			u, err := url.Parse(f.MetadataURL)
			if err != nil || u.Host == "" || u.Scheme != "https" && u.Scheme != "http" {
				f.Problem = "That is not a web address. Copy the whole metadata URL from " + vendors[vendor].Name + ", starting with https://."
			}
		}
		next.SSO.Protocol = gateway.ProtocolSAML
		next.SSO.SAML.IDPMetadataURL, next.SSO.SAML.IDPMetadataXML, next.SSO.SAML.IDPMetadataFile = f.MetadataURL, "", ""
		if f.MetadataURL == "" {
			next.SSO.SAML.IDPMetadataXML = f.MetadataXML
		}
		// The vendor's preset names its attributes (and says how far its
		// emails are trusted).
		next.SSO.Preset = vendor
		next.SSO.SAML.EmailAttribute, next.SSO.SAML.FirstNameAttribute, next.SSO.SAML.LastNameAttribute, next.SSO.SAML.GroupsAttribute = "", "", "", ""
	case gateway.ProtocolOIDC:
		if f.Issuer == "" || f.ClientID == "" || secret == "" && !(cur.SSO.OIDC.ClientSecret.IsSet() && cur.SSO.OIDC.Issuer == f.Issuer) {
			f.Problem = "Paste the issuer, the client ID and the client secret from " + vendors[vendor].Name + "."
		}
		next.SSO.Protocol, next.SSO.Preset = gateway.ProtocolOIDC, vendor
		next.SSO.OIDC.Issuer, next.SSO.OIDC.ClientID = f.Issuer, f.ClientID
		if secret != "" {
			next.SSO.OIDC.ClientSecret = gateway.NewSecret(secret)
		}
	default:
		f.Problem = "Choose your identity provider and how people sign in first (step 1)."
	}
	if f.Problem != "" {
		p.render(v, http.StatusUnprocessableEntity, f)
		return
	}
	_, err := p.opts.Service.UpdateSettings(v.ctx(), v.org, v.session.Actor(), httpx.RequestID(v.ctx()), cur.Version, next, false)
	if err != nil {
		f.Problem = p.plainWords(v, err, vendor)
		p.render(v, http.StatusUnprocessableEntity, f)
		return
	}
	p.opts.Logger.InfoContext(v.ctx(), "setup: sign-in connected", "org", string(v.org), "setup_link", v.session.LinkID, "protocol", protocol)
	http.Redirect(v.w, v.r, p.opts.Funnel.Base(v.org)+"/setup?done=connected#test", http.StatusSeeOther)
}

// plainWords says why a change was refused, in the admin's words (the
// rules' messages name the gateway's settings).
func (p *Pages) plainWords(v *visit, err error, vendor string) string {
	var rules *gateway.RuleError
	name := vendors[vendor].Name
	switch {
	case errors.As(err, &rules) && len(rules.Violations) == 1 && rules.Violations[0].Rule == gateway.RuleSingleIdP:
		// The gateway tried what was pasted with the IdP, and it failed.
		_, why, _ := strings.Cut(rules.Violations[0].Message, ": ")
		return "The gateway could not use what you pasted: " + why + ". Check that you copied it from " + name +
			" completely, and that the app is saved there (its metadata and keys exist only then); then try again."
	case errors.As(err, &rules):
		msgs := make([]string, len(rules.Violations))
		for i, r := range rules.Violations {
			msgs[i] = r.Message
		}
		return "The settings were refused: " + strings.Join(msgs, "; ") + "."
	case gateway.ErrorCodeOf(err) == gateway.ErrPreconditionFailed:
		return "Someone changed this organization's sign-in meanwhile; the page now shows it. Paste your values again."
	case admin.HTTPStatus(err) != http.StatusInternalServerError:
		return gateway.ErrorMessageOf(err)
	}
	p.opts.Logger.ErrorContext(v.ctx(), "setup: saving the settings", "error", err)
	return "The gateway could not save the settings right now; nothing was changed. Try again in a moment."
}

// test starts a test sign-in at the IdP; whoever signs in there, what it
// sends is shown in this setup session, and no one is signed in or made.
func (p *Pages) test(v *visit) {
	s, err := p.opts.Starter(v.ctx(), v.org)
	if err != nil {
		p.fail(v.w, v.r, err)
		return
	}
	if s == nil {
		p.render(v, http.StatusConflict, form{Step: "test", Problem: "Connect the sign-in first (step 3); then test it."})
		return
	}
	s.Start(v.w, v.r, login.Intent{Kind: login.SetupTest, Setup: v.session.LinkID})
}

func (p *Pages) testDone(v *visit) {
	setupID, id, ok := p.opts.Funnel.TakeSetupTest(v.ctx(), v.org, v.r.URL.Query().Get("t"))
	if !ok || setupID != v.session.LinkID {
		p.render(v, http.StatusForbidden, form{Step: "test", Problem: "This test sign-in's result was shown already, has expired, or was started in another setup session. Test again."})
		return
	}
	if err := p.opts.Service.UpdateSetupSession(v.ctx(), v.session, func(_ *string, t **gateway.Identity) { *t = &id }); err != nil {
		p.fail(v.w, v.r, err)
		return
	}
	if err := p.opts.Service.NoteSignInTested(v.ctx(), v.org); err != nil {
		p.opts.Logger.WarnContext(v.ctx(), "setup: recording the test sign-in", "error", err)
	}
	http.Redirect(v.w, v.r, p.opts.Funnel.Base(v.org)+"/setup?done=tested#test", http.StatusSeeOther)
}

// scim turns SCIM on: a new token (shown once, on this page) and the
// provisioning method scim.
func (p *Pages) scim(v *visit) {
	vendor, _ := splitChoice(v.session.Vendor)
	cur, ok := p.opts.Service.Current(v.ctx(), v.org)
	switch {
	case !ok:
		p.fail(v.w, v.r, gateway.Errorf(gateway.ErrUnavailable, "the settings are not loaded"))
		return
	case p.opts.SettingsFromFile:
		p.render(v, http.StatusConflict, form{Step: "scim", Problem: "This gateway's provisioning is fixed by its configuration file; the application's operator changes it."})
		return
	case !cur.SSOSignIn():
		p.render(v, http.StatusConflict, form{Step: "scim", Problem: "SCIM needs the sign-in connected first (step 3)."})
		return
	}
	token, _, err := p.opts.Service.RotateSCIMToken(v.ctx(), v.org, v.session.Actor(), httpx.RequestID(v.ctx()), p.opts.SCIMTokenGrace)
	if err != nil {
		p.render(v, http.StatusServiceUnavailable, form{Step: "scim", Problem: p.plainWords(v, err, vendor)})
		return
	}
	next := cur.IdentitySettings
	next.Provisioning.Method = gateway.SourceSCIM
	if cur.Provisioning.Method != gateway.SourceSCIM {
		if _, err := p.opts.Service.UpdateSettings(v.ctx(), v.org, v.session.Actor(), httpx.RequestID(v.ctx()), cur.Version, next, false); err != nil {
			// The new token is in force: show it, or it is lost.
			p.render(v, http.StatusUnprocessableEntity, form{Step: "scim", SCIMToken: token, Problem: p.plainWords(v, err, vendor) +
				" The new SCIM token below is in force already: paste it into " + vendors[vendor].Name + ", then turn on SCIM again."})
			return
		}
	}
	p.opts.Logger.InfoContext(v.ctx(), "setup: SCIM turned on", "org", string(v.org), "setup_link", v.session.LinkID)
	p.render(v, http.StatusOK, form{Step: "scim", SCIMToken: token, Notice: "SCIM is on. Paste the token below into " + vendors[vendor].Name + " now: it is shown only this once."})
}

func (p *Pages) status(v *visit) {
	seen, err := p.opts.Service.LastSCIMRequest(v.ctx(), v.org)
	if err != nil {
		p.fail(v.w, v.r, err)
		return
	}
	v.w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(v.w).Encode(map[string]any{"scim_seen": !seen.IsZero(), "scim_seen_at": seen})
}

func splitChoice(choice string) (vendor, protocol string) {
	vendor, protocol, _ = strings.Cut(choice, ":")
	return vendor, protocol
}

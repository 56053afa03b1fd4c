package console

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/admin"
)

// maxMetadata bounds an uploaded metadata file (IdP metadata is a few KB).
const maxMetadata = 1 << 20

type identityData struct {
	FromFile                 bool
	Protocols, Methods       []option
	SAMLURL                  string
	SAMLUploaded             bool
	OIDCIssuer, OIDCClientID string
	OIDCSecretSet            bool
	// The IdP preset, and the SAML attribute names set over it (empty:
	// the preset's, shown as placeholders).
	Presets                                            []option
	PresetNames                                        gateway.IdPPreset
	EmailAttr, FirstNameAttr, LastNameAttr, GroupsAttr string
	EmailDomains                                       string
	SCIMBaseURL                                        string
	SP                                                 admin.SPInfo
	LastSignIn                                         *gateway.Identity
	SCIMClients                                        []scimClientView
	TokenEndpoint                                      string
	CanTest                                            bool
	Version                                            uint64
	SCIMVersion                                        uint64
	MetadataFile                                       string
}

var methodLabels = map[gateway.Source]string{
	gateway.SourceManual:      "Manual: managers add or invite people",
	gateway.SourceSelfService: "Self-service: people of the organization's domain join through a link",
	gateway.SourceSCIM:        "SCIM: the identity provider provisions people",
	gateway.SourceJIT:         "SSO JIT: people get an account at their first sign-in",
}

func (c *Console) identityPage(q *req, status int, errText string) {
	c.identityPageTyped(q, status, errText, nil)
}

// identityPageTyped shows the identity page; after a refused change,
// typed puts back what the manager typed (the stored settings would
// silently drop it).
func (c *Console) identityPageTyped(q *req, status int, errText string, typed func(*identityData)) {
	st, ok := c.opts.Service.Current(q.ctx(), q.org())
	if !ok {
		c.fail(q.w, q.r, http.StatusServiceUnavailable, "The identity settings are not loaded yet.")
		return
	}
	choices, err := c.opts.Service.MethodChoices(q.ctx(), q.org())
	if err != nil {
		status, errText = c.errorText(q, err)
	}
	d := identityData{FromFile: c.opts.SettingsFromFile, SAMLURL: st.SSO.SAML.IDPMetadataURL, SAMLUploaded: st.SSO.SAML.IDPMetadataXML != "",
		OIDCIssuer: st.SSO.OIDC.Issuer, OIDCClientID: st.SSO.OIDC.ClientID, OIDCSecretSet: st.SSO.OIDC.ClientSecret.IsSet(),
		EmailAttr: st.SSO.SAML.EmailAttribute, FirstNameAttr: st.SSO.SAML.FirstNameAttribute, LastNameAttr: st.SSO.SAML.LastNameAttribute, GroupsAttr: st.SSO.SAML.GroupsAttribute,
		EmailDomains: strings.Join(st.Provisioning.EmailDomain, ", "), SCIMBaseURL: c.orgRoot(q) + "/scim/v2", SP: admin.SPInfoFor(c.orgRoot(q) + "/scim/v2"),
		CanTest: st.SSOSignIn(),
		Version: st.Version, MetadataFile: st.SSO.SAML.IDPMetadataFile}
	d.PresetNames, _ = gateway.Preset(st.SSO.Preset)
	for _, name := range gateway.PresetNames() {
		p, _ := gateway.Preset(name)
		d.Presets = append(d.Presets, option{Value: name, Label: p.Label, Checked: p.Name == d.PresetNames.Name})
	}
	if d.SCIMVersion, err = c.opts.Service.SCIMTokenVersion(q.ctx(), q.org()); err != nil {
		status, errText = c.errorText(q, err)
	}
	for _, p := range []struct{ v, l string }{{"none", "None"}, {"saml", "SAML 2.0"}, {"oidc", "OIDC"}, {"external", "External (the app or another proxy signs people in)"}} {
		d.Protocols = append(d.Protocols, option{Value: p.v, Label: p.l, Checked: st.SSO.Protocol == p.v})
	}
	for _, ch := range choices {
		d.Methods = append(d.Methods, option{Value: string(ch.Method), Label: methodLabels[ch.Method], Checked: st.Provisioning.Method == ch.Method,
			Allowed: ch.Allowed || st.Provisioning.Method == ch.Method, Reason: plainWords(ch.Violation)})
	}
	if c.opts.LastSignIn != nil {
		d.LastSignIn = c.opts.LastSignIn(q.ctx(), q.org(), q.user.ID)
	}
	d.TokenEndpoint = c.orgRoot(q) + "/oauth/token"
	if clients, err := c.opts.Service.SCIMClients(q.ctx(), q.org()); err != nil {
		status, errText = c.errorText(q, err)
	} else {
		d.SCIMClients = viewSCIMClients(clients, time.Now())
	}
	if typed != nil {
		typed(&d)
	}
	c.render(q, status, "identity", "Identity configuration", "identity", d, notice(q.r), errText)
}

// update applies change to the settings in force through the rules.
// update applies change to the settings in force through the rules, at
// the version the form was rendered from: a change another manager made
// meanwhile is not silently overwritten.
func (c *Console) update(q *req, change func(*gateway.IdentitySettings)) error {
	cur, ok := c.opts.Service.Current(q.ctx(), q.org())
	if !ok {
		return gateway.Errorf(gateway.ErrUnavailable, "the identity settings are not loaded yet")
	}
	version, err := strconv.ParseUint(q.r.PostFormValue("version"), 10, 64)
	if err != nil || version == 0 {
		return gateway.Errorf(gateway.ErrInvalid, "the form is incomplete; reload the page")
	}
	next := cur.IdentitySettings
	change(&next)
	mg := c.manager(q)
	_, err = c.opts.Service.UpdateSettings(q.ctx(), mg.Org, mg.Actor, mg.RequestID, version, next, c.opts.SettingsFromFile)
	if gateway.ErrorCodeOf(err) == gateway.ErrPreconditionFailed {
		return gateway.Errorf(gateway.ErrConflict, "another manager changed the identity configuration meanwhile; the page now shows it: check it and save again")
	}
	return err
}

func (c *Console) saveLogin(q *req) {
	f := q.r.PostForm
	var uploaded string
	if file, hdr, err := q.r.FormFile("saml_metadata_file"); err == nil {
		b, _ := io.ReadAll(io.LimitReader(file, maxMetadata+1))
		file.Close()
		if len(b) > maxMetadata || hdr.Size > maxMetadata {
			c.identityPage(q, http.StatusRequestEntityTooLarge, "The metadata file is larger than 1 MiB; IdP metadata is a few kilobytes: check the file.")
			return
		}
		uploaded = string(b)
	}
	err := c.update(q, func(s *gateway.IdentitySettings) {
		s.SSO.Protocol = f.Get("protocol")
		switch u := strings.TrimSpace(f.Get("saml_metadata_url")); {
		case uploaded != "": // an upload replaces the URL shown in the form
			s.SSO.SAML.IDPMetadataURL, s.SSO.SAML.IDPMetadataFile, s.SSO.SAML.IDPMetadataXML = "", "", uploaded
		case u != "" && u != s.SSO.SAML.IDPMetadataURL:
			s.SSO.SAML.IDPMetadataURL, s.SSO.SAML.IDPMetadataFile, s.SSO.SAML.IDPMetadataXML = u, "", ""
		}
		s.SSO.OIDC.Issuer = strings.TrimSpace(f.Get("oidc_issuer"))
		s.SSO.OIDC.ClientID = strings.TrimSpace(f.Get("oidc_client_id"))
		if secret := f.Get("oidc_client_secret"); secret != "" {
			s.SSO.OIDC.ClientSecret = gateway.NewSecret(secret)
		}
		if f.Has("preset") {
			s.SSO.Preset = f.Get("preset")
		}
		s.SSO.SAML.EmailAttribute = strings.TrimSpace(f.Get("email_attribute"))
		s.SSO.SAML.FirstNameAttribute = strings.TrimSpace(f.Get("first_name_attribute"))
		s.SSO.SAML.LastNameAttribute = strings.TrimSpace(f.Get("last_name_attribute"))
		s.SSO.SAML.GroupsAttribute = strings.TrimSpace(f.Get("groups_attribute"))
	})
	if err != nil {
		status, text := c.errorText(q, err)
		c.identityPageTyped(q, status, text, func(d *identityData) {
			for i := range d.Protocols {
				d.Protocols[i].Checked = d.Protocols[i].Value == f.Get("protocol")
			}
			for i := range d.Presets {
				d.Presets[i].Checked = d.Presets[i].Value == f.Get("preset")
			}
			d.SAMLURL, d.OIDCIssuer, d.OIDCClientID = f.Get("saml_metadata_url"), f.Get("oidc_issuer"), f.Get("oidc_client_id")
			d.EmailAttr, d.FirstNameAttr, d.LastNameAttr, d.GroupsAttr = f.Get("email_attribute"), f.Get("first_name_attribute"), f.Get("last_name_attribute"), f.Get("groups_attribute")
		})
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/identity", "login")
}

func (c *Console) saveMethod(q *req) {
	f := q.r.PostForm
	var domains []string
	for _, d := range strings.Split(f.Get("email_domain"), ",") {
		if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
			domains = append(domains, d)
		}
	}
	err := c.update(q, func(s *gateway.IdentitySettings) {
		s.Provisioning.Method = gateway.Source(f.Get("method"))
		s.Provisioning.EmailDomain = domains
	})
	if err != nil {
		status, text := c.errorText(q, err)
		c.identityPageTyped(q, status, text, func(d *identityData) {
			for i := range d.Methods {
				d.Methods[i].Checked = d.Methods[i].Value == f.Get("method")
			}
			d.EmailDomains = f.Get("email_domain")
		})
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/identity", "method")
}

func (c *Console) rotateSCIMToken(q *req) {
	mg := c.manager(q)
	version, perr := strconv.ParseUint(q.r.PostFormValue("scim_version"), 10, 64)
	grace := c.opts.SCIMTokenGrace
	if q.r.PostFormValue("end_previous") == "yes" {
		grace = 0
	}
	token, until, err := c.opts.Service.RotateSCIMTokenAt(q.ctx(), mg.Org, mg.Actor, mg.RequestID, version, grace)
	if perr != nil || gateway.ErrorCodeOf(err) == gateway.ErrPreconditionFailed {
		c.identityPage(q, http.StatusConflict, "The SCIM token was rotated already (a reload sends the form again); rotate again only if you mean to.")
		return
	}
	if err != nil {
		status, text := c.errorText(q, err)
		c.identityPage(q, status, text)
		return
	}
	c.render(q, http.StatusOK, "message", "New SCIM token", "identity", message{
		Message: "Paste this token into the identity provider's SCIM settings (without “Bearer ”). The previous token works until " +
			until.Format("2006-01-02 15:04 MST") + ".",
		Secret: token, SecretLabel: "SCIM token", Back: c.opts.PathPrefix + "/console/identity"}, "", "")
}

// setupLink makes a setup link for the organization's IT admin and shows
// it once.
func (c *Console) setupLink(q *req) {
	link, err := c.opts.Service.CreateSetupLink(q.ctx(), c.manager(q), 24*time.Hour, c.orgRoot(q)+"/setup/link")
	if err != nil {
		status, text := c.errorText(q, err)
		c.identityPage(q, status, text)
		return
	}
	c.render(q, http.StatusOK, "message", "Setup link", "identity", message{
		Message: "Send this link to the person who runs your Okta or Microsoft Entra ID. With no account here, they connect the sign-in (and SCIM) for this organization, step by step in their identity provider's words. It opens once, until " +
			link.Expires.Format("2006-01-02 15:04 MST") + ".",
		Secret: link.Link, SecretLabel: "Setup link", Back: c.opts.PathPrefix + "/console/identity"}, "", "")
}

func (c *Console) confirmEndSessions(q *req) {
	n, _ := c.opts.Store.Sessions().Count(q.ctx(), q.org())
	c.render(q, http.StatusOK, "confirm", "Sign everyone out?", "identity", confirmation{
		Question: fmt.Sprintf("End all %d sessions now, yours too? Everyone signs in again through the login method in force (do it after changing or distrusting the identity provider).", n),
		Action:   c.opts.PathPrefix + "/console/sessions/end", Button: "Sign everyone out", Back: c.opts.PathPrefix + "/console/identity"}, "", "")
}

func (c *Console) endSessions(q *req) {
	if q.r.PostFormValue("confirmed") != "yes" {
		c.confirmEndSessions(q)
		return
	}
	if _, err := c.opts.Service.EndAllSessions(q.ctx(), c.manager(q)); err != nil {
		status, text := c.errorText(q, err)
		c.identityPage(q, status, text)
		return
	}
	// The manager's own session ended too: sign in again, back here.
	http.Redirect(q.w, q.r, c.orgPath(q)+"/login?return="+url.QueryEscape(c.opts.PathPrefix+"/console/identity"), http.StatusSeeOther)
}

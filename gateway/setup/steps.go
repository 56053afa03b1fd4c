package setup

import (
	"bytes"
	"net/http"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/admin"
)

// vendor is how one IdP names what the admin pastes, and the SAML
// attribute names it sends by default.
type vendor struct {
	Name string
	// Where the admin creates the app, for each protocol.
	CreateSAML, CreateOIDC string
	// The IdP's own labels of the values to paste.
	EntityID, ACS, SignOn, Redirect string
	// Where the IdP shows what comes back, for each protocol.
	MetadataHint, IssuerHint, ClientIDLabel, SecretLabel string
	// SCIM: where to turn it on, and the labels of the URL and the token.
	SCIMWhere, SCIMURL, SCIMToken string
	// The attribute names of its SAML assertions are its preset's
	// (gateway.Preset, by the vendor's key).
	AttributesHint string
}

// vendors are the IdPs the setup speaks the words of.
var vendors = map[string]vendor{
	"okta": {
		Name:       "Okta",
		CreateSAML: "In the Okta Admin Console, go to Applications › Applications › Create App Integration, choose SAML 2.0, name the app, and on Configure SAML paste:",
		CreateOIDC: "In the Okta Admin Console, go to Applications › Applications › Create App Integration, choose OIDC - OpenID Connect and Web Application, and paste:",
		EntityID:   "Audience URI (SP Entity ID)", ACS: "Single sign-on URL (also for Recipient URL and Destination URL)", SignOn: "Initiate login URI (optional)",
		Redirect:       "Sign-in redirect URIs",
		AttributesHint: "Set Name ID format to EmailAddress and Application username to Email. Under Attribute Statements add firstName = user.firstName, lastName = user.lastName, email = user.email; under Group Attribute Statements add groups, filter Matches regex .* . Then assign the app to the people or groups who use it.",
		MetadataHint:   "On the app's Sign On tab, under SAML 2.0, copy the Metadata URL.",
		IssuerHint:     "Your Okta org's address, such as https://example.okta.com (or your custom authorization server's issuer).",
		ClientIDLabel:  "Client ID (General tab, Client Credentials)", SecretLabel: "Client secret (General tab, Client Credentials)",
		SCIMWhere: "On the app's General tab, under App Settings, set Provisioning to SCIM; then on the Provisioning tab › Integration, paste these, choose userName as the unique identifier field, push new users, profile updates and groups, and choose HTTP Header authentication:",
		SCIMURL:   "SCIM connector base URL", SCIMToken: "Authorization (HTTP Header, Bearer token)",
	},
	"entra": {
		Name:       "Microsoft Entra ID",
		CreateSAML: "In the Microsoft Entra admin center, go to Enterprise applications › New application › Create your own application (Integrate any other application you don't find in the gallery), then Single sign-on › SAML, and under Basic SAML Configuration paste:",
		CreateOIDC: "In the Microsoft Entra admin center, go to App registrations › New registration; under Redirect URI choose Web and paste:",
		EntityID:   "Identifier (Entity ID)", ACS: "Reply URL (Assertion Consumer Service URL)", SignOn: "Sign on URL",
		Redirect:       "Redirect URI (Web)",
		AttributesHint: "The default Attributes & Claims (emailaddress, givenname, surname) are what the gateway reads; add a group claim (Security groups) to send groups. Then under Users and groups assign the people or groups who use the app.",
		MetadataHint:   "Under SAML Certificates, copy the App Federation Metadata Url.",
		IssuerHint:     "https://login.microsoftonline.com/<Directory (tenant) ID>/v2.0, with the tenant ID from the app's Overview.",
		ClientIDLabel:  "Application (client) ID (Overview)", SecretLabel: "Client secret Value (Certificates & secrets › New client secret)",
		SCIMWhere: "In the enterprise application, go to Provisioning › Get started, set Provisioning Mode to Automatic, and under Admin Credentials paste these, then Test Connection:",
		SCIMURL:   "Tenant URL", SCIMToken: "Secret Token",
	},
}

// steps is what the page shows.
type steps struct {
	Org, Base, Assets, CSRF string
	Vendor                  string // okta, entra ("" until chosen)
	Protocol                string // saml, oidc ("" until chosen)
	V                       vendor
	SP                      admin.SPInfo
	LoginURL, SCIMBaseURL   string
	Connected               bool   // the organization signs in by SSO
	Connection              string // what is in force, in words
	Test                    *gateway.Identity
	SCIMOn                  bool
	SCIMSeen                string // when the first (last) SCIM request came, or ""
	Form                    form
}

// noticeWords are the sentences a redirect may show.
var noticeWords = map[string]string{
	"connected": "Sign-in connected and in force. Now test it.",
	"tested":    "Test sign-in received; what your identity provider sent is below.",
}

func (p *Pages) stepsPage(v *visit) {
	p.render(v, http.StatusOK, form{Notice: noticeWords[v.r.URL.Query().Get("done")]})
}

func (p *Pages) render(v *visit, status int, f form) {
	ctx := v.ctx()
	st, _ := p.opts.Service.Current(ctx, v.org)
	vend, protocol := splitChoice(v.session.Vendor)
	root := p.opts.PublicRoot
	if base := p.opts.Funnel.Base(v.org); base != p.opts.PathPrefix {
		root += base[len(p.opts.PathPrefix):]
	}
	d := steps{Org: string(v.org), Base: p.opts.Funnel.Base(v.org), Assets: p.opts.Assets, CSRF: p.csrf(v), Vendor: vend, Protocol: protocol,
		V: vendors[vend], SP: admin.SPInfoFor(root + "/scim/v2"), LoginURL: root + "/login", SCIMBaseURL: root + "/scim/v2",
		Connected: st.SSOSignIn(), Test: v.session.Test, SCIMOn: st.Provisioning.Method == gateway.SourceSCIM, Form: f}
	if o, err := p.opts.Service.Org(ctx, v.org); err == nil {
		d.Org = o.Name
	}
	switch {
	case st.SSO.Protocol == gateway.ProtocolSAML && st.SSO.SAML.IDPMetadataURL != "":
		d.Connection = "SAML, with the metadata at " + st.SSO.SAML.IDPMetadataURL
	case st.SSO.Protocol == gateway.ProtocolSAML:
		d.Connection = "SAML, with uploaded metadata"
	case st.SSO.Protocol == gateway.ProtocolOIDC:
		d.Connection = "OIDC, with the issuer " + st.SSO.OIDC.Issuer
	}
	if f.MetadataURL == "" && f.MetadataXML == "" && f.Issuer == "" && f.ClientID == "" {
		f.MetadataURL, f.Issuer, f.ClientID = st.SSO.SAML.IDPMetadataURL, st.SSO.OIDC.Issuer, st.SSO.OIDC.ClientID
		d.Form = f
	}
	if seen, err := p.opts.Service.LastSCIMRequest(ctx, v.org); err == nil && !seen.IsZero() {
		d.SCIMSeen = seen.UTC().Format("2 January 2006 at 15:04 UTC")
	}
	var buf bytes.Buffer
	if err := p.page.ExecuteTemplate(&buf, "setup", d); err != nil {
		p.fail(v.w, v.r, err)
		return
	}
	h := v.w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// No form-action: the test sign-in's form is answered by a redirect
	// to the IdP, which form-action 'self' would block.
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'")
	v.w.WriteHeader(status)
	_, _ = buf.WriteTo(v.w)
}

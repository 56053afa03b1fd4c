package admin

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

// SAMLBody is sso.saml as the API reads and writes it.
type SAMLBody struct {
	IDPMetadataURL     string `json:"idp_metadata_url,omitempty" doc:"the IdP's metadata URL (https; http only to loopback)"`
	IDPMetadataFile    string `json:"idp_metadata_file,omitempty" doc:"path of the IdP's metadata on the gateway's host"`
	IDPMetadataXML     string `json:"idp_metadata_xml,omitempty" doc:"the IdP's metadata itself (an upload)"`
	IDPMetadataRefresh string `json:"idp_metadata_refresh,omitempty" doc:"how often the URL is fetched again, e.g. 1h; 0s: never"`
	AllowIDPInitiated  bool   `json:"allow_idp_initiated,omitempty"`
	EmailAttribute     string `json:"email_attribute,omitempty" doc:"empty: the NameID"`
	FirstNameAttribute string `json:"first_name_attribute,omitempty"`
	LastNameAttribute  string `json:"last_name_attribute,omitempty"`
	GroupsAttribute    string `json:"groups_attribute,omitempty"`
}

// OIDCBody is sso.oidc; the client secret is written, never read back.
type OIDCBody struct {
	Issuer       string `json:"issuer,omitempty"`
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty" doc:"write-only: reads show [REDACTED] when one is set; leave it out to keep the stored one"`
}

// UniversalLogoutBody is sso.universal_logout.
type UniversalLogoutBody struct {
	Issuer  string `json:"issuer,omitempty" doc:"iss of the IdP's signed Universal Logout requests (Okta: https://{yourOktaDomain}); empty: off"`
	JWKSURL string `json:"jwks_url,omitempty" doc:"where the IdP publishes its keys; empty: {issuer}/oauth2/v1/keys"`
}

// SSOBody is the login method.
type SSOBody struct {
	Protocol        string              `json:"protocol" enum:"none,saml,oidc,external"`
	Preset          string              `json:"preset,omitempty" enum:"okta,entra,google,onelogin,jumpcloud,generic," doc:"the IdP: its attribute and claim names, its groups claim and how an email is trusted; names set under saml win"`
	SAML            SAMLBody            `json:"saml,omitempty"`
	OIDC            OIDCBody            `json:"oidc,omitempty"`
	UniversalLogout UniversalLogoutBody `json:"universal_logout,omitempty"`
}

// ProvisioningBody is the provisioning method and its defaults.
type ProvisioningBody struct {
	Method         string   `json:"method" enum:"manual,self_service,scim,jit"`
	DefaultPool    string   `json:"default_pool"`
	DefaultRole    string   `json:"default_role"`
	Roles          []string `json:"roles,omitempty" doc:"read-only: set in the configuration file"`
	EmailDomain    []string `json:"email_domain,omitempty"`
	AllowedDomains []string `json:"allowed_domains,omitempty"`
	// VerifiedDomainsOnly: see gateway.ProvisioningSettings.
	VerifiedDomainsOnly bool                `json:"verified_domains_only,omitempty" doc:"only people whose email is at one of the organization's verified domains may sign in (off: its IdP may assert any address)"`
	GroupPools          map[string]string   `json:"group_pools,omitempty"`
	GroupPoolsEnabled   bool                `json:"group_pools_enabled,omitempty"`
	GroupRoles          []gateway.GroupRole `json:"group_roles,omitempty" doc:"IdP group → organization role, in order of precedence: the first rule whose group a person is in gives their role, the default role when none does; a role a manager set wins"`
	GroupRolesEnabled   bool                `json:"group_roles_enabled,omitempty"`
}

// IdentityBody is a change of the identity configuration: a section left
// out stays as it is; a section sent replaces the stored one.
type IdentityBody struct {
	SSO          *SSOBody          `json:"sso,omitempty"`
	Provisioning *ProvisioningBody `json:"provisioning,omitempty"`
}

// SPInfo is what to paste into the IdP.
type SPInfo struct {
	EntityID     string `json:"entity_id"`
	MetadataURL  string `json:"metadata_url"`
	ACSURL       string `json:"acs_url"`
	OIDCRedirect string `json:"oidc_redirect_uri"`
	// Where the IdP's logouts go (see the README's "Logout everywhere").
	SingleLogoutURL       string `json:"single_logout_url"`
	PostLogoutRedirectURI string `json:"post_logout_redirect_uri"`
	BackchannelLogoutURI  string `json:"backchannel_logout_uri"`
	UniversalLogoutURL    string `json:"universal_logout_url"`
}

// IdentityView is the identity configuration in force.
type IdentityView struct {
	SSO          SSOBody          `json:"sso"`
	Provisioning ProvisioningBody `json:"provisioning"`
	Version      uint64           `json:"version"`
	UpdatedAt    time.Time        `json:"updated_at"`
	UpdatedBy    gateway.Actor    `json:"updated_by"`
	Source       string           `json:"source" doc:"store: the admin API changes it; file: the configuration file owns it"`
	SCIMBaseURL  string           `json:"scim_base_url"`
	SP           SPInfo           `json:"sp"`
}

func toBody(st gateway.IdentitySettings) (SSOBody, ProvisioningBody) {
	s, p := st.SSO, st.Provisioning
	secret := ""
	if s.OIDC.ClientSecret.IsSet() {
		secret = "[REDACTED]"
	}
	refresh := ""
	if s.SAML.IDPMetadataRefresh != 0 {
		refresh = time.Duration(s.SAML.IDPMetadataRefresh).String()
	}
	return SSOBody{Protocol: s.Protocol, Preset: s.Preset,
			SAML: SAMLBody{IDPMetadataURL: s.SAML.IDPMetadataURL, IDPMetadataFile: s.SAML.IDPMetadataFile, IDPMetadataXML: s.SAML.IDPMetadataXML,
				IDPMetadataRefresh: refresh, AllowIDPInitiated: s.SAML.AllowIDPInitiated, EmailAttribute: s.SAML.EmailAttribute,
				FirstNameAttribute: s.SAML.FirstNameAttribute, LastNameAttribute: s.SAML.LastNameAttribute, GroupsAttribute: s.SAML.GroupsAttribute},
			OIDC:            OIDCBody{Issuer: s.OIDC.Issuer, ClientID: s.OIDC.ClientID, ClientSecret: secret},
			UniversalLogout: UniversalLogoutBody{Issuer: s.UniversalLogout.Issuer, JWKSURL: s.UniversalLogout.JWKSURL}},
		ProvisioningBody{Method: string(p.Method), DefaultPool: p.DefaultPool, DefaultRole: p.DefaultRole, Roles: p.Roles,
			EmailDomain: p.EmailDomain, AllowedDomains: p.AllowedDomains, VerifiedDomainsOnly: p.VerifiedDomainsOnly, GroupPools: p.GroupPools, GroupPoolsEnabled: p.GroupPoolsEnabled,
			GroupRoles: p.GroupRoles, GroupRolesEnabled: p.GroupRolesEnabled}
}

// merge applies a change to the settings in force.
func merge(cur gateway.IdentitySettings, b IdentityBody) (gateway.IdentitySettings, error) {
	next := cur
	if s := b.SSO; s != nil {
		var refresh time.Duration
		if s.SAML.IDPMetadataRefresh != "" {
			d, err := time.ParseDuration(s.SAML.IDPMetadataRefresh)
			if err != nil {
				return next, gateway.Errorf(gateway.ErrInvalid, "sso.saml.idp_metadata_refresh: %q is not a duration such as 1h", s.SAML.IDPMetadataRefresh)
			}
			refresh = d
		}
		next.SSO = gateway.SSOSettings{Protocol: s.Protocol, Preset: s.Preset,
			SAML: gateway.SAMLSettings{IDPMetadataURL: s.SAML.IDPMetadataURL, IDPMetadataFile: s.SAML.IDPMetadataFile, IDPMetadataXML: s.SAML.IDPMetadataXML,
				IDPMetadataRefresh: gateway.Duration(refresh), AllowIDPInitiated: s.SAML.AllowIDPInitiated, EmailAttribute: s.SAML.EmailAttribute,
				FirstNameAttribute: s.SAML.FirstNameAttribute, LastNameAttribute: s.SAML.LastNameAttribute, GroupsAttribute: s.SAML.GroupsAttribute},
			OIDC:            gateway.OIDCSettings{Issuer: s.OIDC.Issuer, ClientID: s.OIDC.ClientID, ClientSecret: gateway.NewSecret(s.OIDC.ClientSecret)},
			UniversalLogout: gateway.UniversalLogoutSettings{Issuer: s.UniversalLogout.Issuer, JWKSURL: s.UniversalLogout.JWKSURL}}
	}
	if p := b.Provisioning; p != nil {
		next.Provisioning = gateway.ProvisioningSettings{Method: gateway.Source(p.Method), DefaultPool: p.DefaultPool, DefaultRole: p.DefaultRole,
			Roles: p.Roles, EmailDomain: p.EmailDomain, AllowedDomains: p.AllowedDomains, VerifiedDomainsOnly: p.VerifiedDomainsOnly, GroupPools: p.GroupPools, GroupPoolsEnabled: p.GroupPoolsEnabled,
			GroupRoles: p.GroupRoles, GroupRolesEnabled: p.GroupRolesEnabled}
	}
	return next, nil
}

func (a *API) identityView(ctx context.Context, st provision.Settings) *IdentityView {
	sso, prov := toBody(st.IdentitySettings)
	source := provision.SettingsFromStore
	if a.opts.SettingsFromFile {
		source = provision.SettingsFromFile
	}
	return &IdentityView{SSO: sso, Provisioning: prov, Version: st.Version, UpdatedAt: st.UpdatedAt, UpdatedBy: st.UpdatedBy,
		Source: source, SCIMBaseURL: a.scimBaseURL(ctx), SP: SPInfoFor(a.scimBaseURL(ctx))}
}

// SPInfoFor is what to paste into the IdP, from the SCIM base URL
// ({public_url}{prefix}/scim/v2): every endpoint shares its root.
func SPInfoFor(scimBaseURL string) SPInfo {
	root := strings.TrimSuffix(scimBaseURL, "/scim/v2")
	return SPInfo{EntityID: root + "/saml/metadata", MetadataURL: root + "/saml/metadata", ACSURL: root + "/saml/acs",
		OIDCRedirect: root + "/oidc/callback", SingleLogoutURL: root + "/saml/slo", PostLogoutRedirectURI: root + "/oidc/logged-out",
		BackchannelLogoutURI: root + "/oidc/backchannel-logout", UniversalLogoutURL: root + "/global-token-revocation"}
}

type identityOutput struct {
	ETag string `header:"ETag"`
	Body *IdentityView
}

func etag(version uint64) string { return `"` + strconv.FormatUint(version, 10) + `"` }

// ifMatch reads an If-Match version ("" or *: unconditional).
func ifMatch(h string) (uint64, error) {
	h = strings.TrimPrefix(strings.TrimSpace(h), "W/")
	if h == "" || h == "*" {
		return 0, nil
	}
	v, err := strconv.ParseUint(strings.Trim(h, `"`), 10, 64)
	if err != nil || v == 0 {
		return 0, gateway.Errorf(gateway.ErrInvalid, "If-Match must be the ETag of a read, e.g. \"3\"")
	}
	return v, nil
}

type putIdentityInput struct {
	IfMatch string `header:"If-Match" doc:"the ETag of the configuration read, to refuse a change made meanwhile"`
	Body    IdentityBody
}

type rotateSCIMTokenInput struct {
	// nameHint keeps the schema name the OpenAPI document has published.
	Body *struct {
		PreviousValidFor string `json:"previous_valid_for,omitempty" doc:"how long the token in use until now keeps working, e.g. 1h; 0s: not at all; default: admin.scim_token_grace"`
	} `required:"false" nameHint:"rotate-scim-tokenRequest"`
}

type tokenOutput struct {
	Body struct {
		Token              string    `json:"token" doc:"the new SCIM token, shown this once; paste it into the IdP without \"Bearer \""`
		SCIMBaseURL        string    `json:"scim_base_url"`
		PreviousValidUntil time.Time `json:"previous_valid_until" doc:"the token in use until now works until then"`
	}
}

type apiTokensOutput struct {
	Body struct {
		Tokens []provision.APIToken `json:"tokens"`
	}
}

type createAPITokenInput struct {
	// nameHint keeps the schema name the OpenAPI document has published.
	Body struct {
		Name      string `json:"name" minLength:"1" maxLength:"100" doc:"what uses it"`
		ExpiresIn string `json:"expires_in,omitempty" doc:"how long it works, e.g. 720h; empty: until revoked"`
	} `nameHint:"create-api-tokenRequest"`
}

type newAPIToken struct {
	Body struct {
		Token string             `json:"token" doc:"shown this once"`
		Info  provision.APIToken `json:"info"`
	}
}

type endedOutput struct {
	Body struct {
		Ended int `json:"ended" doc:"sessions ended"`
	}
}

type meOutput struct {
	Body struct {
		Actor     gateway.Actor `json:"actor"`
		CSRFToken string        `json:"csrf_token,omitempty" doc:"send it as X-CSRF-Token on changes made with the session cookie"`
	}
}

func (a *API) getIdentity(ctx context.Context, _ *struct{}) (*identityOutput, error) {
	st, ok := a.opts.Service.Current(ctx, a.org(ctx))
	if !ok {
		return nil, a.fail(ctx, gateway.Errorf(gateway.ErrUnavailable, "the identity settings are not loaded yet"))
	}
	return &identityOutput{ETag: etag(st.Version), Body: a.identityView(ctx, st)}, nil
}

func (a *API) putIdentity(ctx context.Context, in *putIdentityInput) (*identityOutput, error) {
	version, err := ifMatch(in.IfMatch)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	cur, ok := a.opts.Service.Current(ctx, a.org(ctx))
	if !ok {
		return nil, a.fail(ctx, gateway.Errorf(gateway.ErrUnavailable, "the identity settings are not loaded yet"))
	}
	next, err := merge(cur.IdentitySettings, in.Body)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	mg := a.manager(ctx)
	st, err := a.opts.Service.UpdateSettings(ctx, mg.Org, mg.Actor, mg.RequestID, version, next, a.opts.SettingsFromFile)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &identityOutput{ETag: etag(st.Version), Body: a.identityView(ctx, st)}, nil
}

func (a *API) rotateSCIMToken(ctx context.Context, in *rotateSCIMTokenInput) (*tokenOutput, error) {
	grace := a.opts.SCIMTokenGrace
	if in.Body != nil && in.Body.PreviousValidFor != "" {
		d, err := time.ParseDuration(in.Body.PreviousValidFor)
		if err != nil || d < 0 || d > 30*24*time.Hour {
			return nil, a.fail(ctx, gateway.Errorf(gateway.ErrInvalid, "previous_valid_for: %q is not a duration between 0s and 720h", in.Body.PreviousValidFor))
		}
		grace = d
	}
	mg := a.manager(ctx)
	token, until, err := a.opts.Service.RotateSCIMToken(ctx, mg.Org, mg.Actor, mg.RequestID, grace)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &tokenOutput{}
	out.Body.Token, out.Body.SCIMBaseURL, out.Body.PreviousValidUntil = token, a.scimBaseURL(ctx), until
	return out, nil
}

func (a *API) listAPITokens(ctx context.Context, _ *struct{}) (*apiTokensOutput, error) {
	ts, err := a.opts.Service.APITokens(ctx, a.org(ctx))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &apiTokensOutput{}
	out.Body.Tokens = append(ts, []provision.APIToken{}...)
	return out, nil
}

func (a *API) createAPIToken(ctx context.Context, in *createAPITokenInput) (*newAPIToken, error) {
	var ttl time.Duration
	if in.Body.ExpiresIn != "" {
		d, err := time.ParseDuration(in.Body.ExpiresIn)
		if err != nil || d <= 0 {
			return nil, a.fail(ctx, gateway.Errorf(gateway.ErrInvalid, "expires_in: %q is not a positive duration such as 720h", in.Body.ExpiresIn))
		}
		ttl = d
	}
	mg := a.manager(ctx)
	token, info, err := a.opts.Service.CreateAPIToken(ctx, mg.Org, mg.Actor, mg.RequestID, in.Body.Name, ttl)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &newAPIToken{}
	out.Body.Token, out.Body.Info = token, info
	return out, nil
}

func (a *API) revokeAPIToken(ctx context.Context, in *idInput) (*struct{}, error) {
	mg := a.manager(ctx)
	if err := a.opts.Service.RevokeAPIToken(ctx, mg.Org, mg.Actor, mg.RequestID, in.ID); err != nil {
		return nil, a.fail(ctx, err)
	}
	return nil, nil
}

func (a *API) endAllSessions(ctx context.Context, _ *struct{}) (*endedOutput, error) {
	n, err := a.opts.Service.EndAllSessions(ctx, a.manager(ctx))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &endedOutput{}
	out.Body.Ended = n
	return out, nil
}

func (a *API) getMe(ctx context.Context, _ *struct{}) (*meOutput, error) {
	out := &meOutput{}
	out.Body.Actor = a.manager(ctx).Actor
	if se, ok := ctx.Value(sessionKey{}).(gateway.Session); ok {
		out.Body.CSRFToken = a.opts.Sessions.CSRFToken(se)
	}
	return out, nil
}

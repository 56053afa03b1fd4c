package gateway

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// IdentitySettings is an organization's live identity configuration: how
// people sign in (one SSO protocol, one IdP) and how accounts come to
// exist (one provisioning method). The configuration file seeds it; the
// admin API changes it without a restart. Its JSON keys are the
// configuration file's.
type IdentitySettings struct {
	SSO          SSOSettings          `json:"sso"`
	Provisioning ProvisioningSettings `json:"provisioning"`
}

// SSOSignIn reports whether people sign in through the gateway's own
// single sign-on (SAML or OIDC), rather than not at all or elsewhere.
func (s IdentitySettings) SSOSignIn() bool {
	return s.SSO.Protocol == ProtocolSAML || s.SSO.Protocol == ProtocolOIDC
}

// SSO protocols.
const (
	ProtocolNone     = "none"     // no single sign-on
	ProtocolSAML     = "saml"     // the gateway is a SAML service provider
	ProtocolOIDC     = "oidc"     // the gateway is an OIDC relying party
	ProtocolExternal = "external" // the app or another proxy does login
)

// SSOSettings is the login method.
type SSOSettings struct {
	Protocol string `json:"protocol"`
	// Preset names the IdP (okta, entra, google, onelogin, jumpcloud,
	// generic; "" is generic): its attribute and claim names, and how an
	// email is trusted. Names set below win over the preset's.
	Preset          string                  `json:"preset,omitempty"`
	SAML            SAMLSettings            `json:"saml"`
	OIDC            OIDCSettings            `json:"oidc"`
	UniversalLogout UniversalLogoutSettings `json:"universal_logout"`
}

// UniversalLogoutSettings let the organization's IdP end a person's
// sessions by Okta's Universal Logout (a Global Token Revocation request
// it signs): off while Issuer is empty.
type UniversalLogoutSettings struct {
	// Issuer is the iss of the IdP's signed requests (Okta: the org's
	// URL, https://{yourOktaDomain}).
	Issuer string `json:"issuer,omitempty"`
	// JWKSURL is where the IdP publishes its keys (default
	// {issuer}/oauth2/v1/keys, Okta's org keys).
	JWKSURL string `json:"jwks_url,omitempty"`
}

// KeysURL is JWKSURL, or Okta's default for the issuer.
func (u UniversalLogoutSettings) KeysURL() string {
	if u.JWKSURL != "" {
		return u.JWKSURL
	}
	return strings.TrimRight(u.Issuer, "/") + "/oauth2/v1/keys"
}

// SAMLSettings configures the one SAML IdP.
type SAMLSettings struct {
	IDPMetadataURL  string `json:"idp_metadata_url,omitempty"`
	IDPMetadataFile string `json:"idp_metadata_file,omitempty"`
	// IDPMetadataXML is metadata uploaded through the admin API (instead
	// of a URL or a file).
	IDPMetadataXML     string   `json:"idp_metadata_xml,omitempty"`
	IDPMetadataRefresh Duration `json:"idp_metadata_refresh,omitempty"`
	AllowIDPInitiated  bool     `json:"allow_idp_initiated"`
	EmailAttribute     string   `json:"email_attribute,omitempty"`
	FirstNameAttribute string   `json:"first_name_attribute,omitempty"`
	LastNameAttribute  string   `json:"last_name_attribute,omitempty"`
	GroupsAttribute    string   `json:"groups_attribute,omitempty"`
}

// OIDCSettings configures the one OIDC provider.
type OIDCSettings struct {
	Issuer       string `json:"issuer,omitempty"`
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret Secret `json:"client_secret"`
}

// ProvisioningSettings is the provisioning method and what new accounts
// get.
type ProvisioningSettings struct {
	Method      Source `json:"method"`
	DefaultPool string `json:"default_pool"`
	DefaultRole string `json:"default_role"`
	// Roles are the roles a user may hold; the configuration file owns
	// them (they name what the app's code checks).
	Roles []string `json:"roles"`
	// EmailDomain lists the organization's domains a self-service link
	// accepts.
	EmailDomain []string `json:"email_domain,omitempty"`
	// AllowedDomains, when set, are the only email domains that may sign
	// in by SSO (and be created by JIT).
	AllowedDomains []string `json:"allowed_domains,omitempty"`
	// VerifiedDomainsOnly admits only people whose email is at a domain
	// the organization has verified (DNS TXT); otherwise an organization's
	// own IdP may assert any address.
	VerifiedDomainsOnly bool `json:"verified_domains_only,omitempty"`
	// GroupPools maps IdP group names to pools: a JIT user created at
	// sign-in joins the pools its groups map to, while GroupPoolsEnabled.
	GroupPools        map[string]string `json:"group_pools,omitempty"`
	GroupPoolsEnabled bool              `json:"group_pools_enabled"`
	// GroupRoles gives the members of IdP groups (SCIM or sign-in) an
	// organization role, in order of precedence: a person holds the role
	// of the first rule whose group they are in, and the default role when
	// they are in none. Off until GroupRolesEnabled (roles are the app's
	// managers'); a role a manager set wins over it.
	GroupRoles        []GroupRole `json:"group_roles,omitempty"`
	GroupRolesEnabled bool        `json:"group_roles_enabled,omitempty"`
}

// GroupRole is one rule of the groups-to-roles mapping.
type GroupRole struct {
	Group string `json:"group"`
	Role  string `json:"role"`
}

// Built-in roles: managers run the organization's identity; the app may
// add its own roles in configuration.
const (
	RoleManager = "manager"
	RoleUser    = "user"
)

// Methods are the provisioning methods, one of which is active.
var Methods = []Source{SourceManual, SourceSelfService, SourceSCIM, SourceJIT}

// Rules of the identity configuration, named in every refusal.
const (
	RuleOneMethod        = "one_method"          // exactly one known provisioning method
	RuleProtocol         = "sso_protocol"        // a known login method
	RuleSCIMNeedsSSO     = "scim_requires_sso"   // SCIM users sign in through SSO
	RuleJITNeedsSSOLogin = "jit_requires_sso"    // JIT creates accounts at an SSO sign-in of ours
	RuleSingleIdP        = "single_idp"          // exactly one IdP, fully described
	RuleSelfServiceNeeds = "self_service_domain" // the link is bound to the organization's domain
	RuleDomains          = "domains"             // domains are lower-case names
	RuleDefaults         = "defaults"            // default pool and role exist
	RuleGroupPools       = "group_pools"         // group mappings name pools
	RuleGroupRoles       = "group_roles"         // group mappings name roles, each group once
	RuleSCIMToken        = "scim_token"          // SCIM has a token to accept
)

// RuleViolation is one broken rule: which, where (the configuration
// path), and a sentence that says what to change.
type RuleViolation struct {
	Rule    string `json:"rule"`
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (v RuleViolation) String() string { return v.Path + ": " + v.Message }

// RuleError is a refused identity configuration.
type RuleError struct{ Violations []RuleViolation }

func (e *RuleError) Error() string {
	msgs := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		msgs[i] = v.String()
	}
	return "identity configuration refused: " + strings.Join(msgs, "; ")
}

// Unwrap makes a RuleError an invalid-input domain error.
func (e *RuleError) Unwrap() error {
	return &Error{Code: ErrInvalid, Message: e.Error()}
}

var domainPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)

// Validate checks every rule and returns each violation (none: valid).
func (s IdentitySettings) Validate() []RuleViolation {
	var vs []RuleViolation
	add := func(rule, path, format string, args ...any) {
		vs = append(vs, RuleViolation{Rule: rule, Path: path, Message: fmt.Sprintf(format, args...)})
	}
	sso, p := s.SSO, s.Provisioning
	switch sso.Protocol {
	case ProtocolNone, ProtocolSAML, ProtocolOIDC, ProtocolExternal:
	default:
		add(RuleProtocol, "sso.protocol", "%q is not a login method: choose one of none, saml, oidc, external", sso.Protocol)
	}
	if !slices.Contains(Methods, p.Method) {
		add(RuleOneMethod, "provisioning.method", "%q is not a provisioning method: exactly one of manual, self_service, scim, jit is active", p.Method)
	}
	if p.Method == SourceSCIM && sso.Protocol != ProtocolSAML && sso.Protocol != ProtocolOIDC && sso.Protocol != ProtocolExternal {
		add(RuleSCIMNeedsSSO, "provisioning.method", "SCIM needs SSO: people provisioned by the IdP sign in through it; set sso.protocol to saml, oidc or external first")
	}
	if p.Method == SourceJIT && sso.Protocol != ProtocolSAML && sso.Protocol != ProtocolOIDC {
		add(RuleJITNeedsSSOLogin, "provisioning.method", "SSO JIT needs SAML or OIDC sign-in through the gateway: accounts are created at sign-in; set sso.protocol to saml or oidc first")
	}
	switch sso.Protocol {
	case ProtocolSAML:
		c := sso.SAML
		n := 0
		for _, set := range []bool{c.IDPMetadataURL != "", c.IDPMetadataFile != "", c.IDPMetadataXML != ""} {
			if set {
				n++
			}
		}
		if n != 1 {
			add(RuleSingleIdP, "sso.saml", "describe exactly one IdP: set one of idp_metadata_url, idp_metadata_file and idp_metadata_xml (%d are set)", n)
		}
		if c.IDPMetadataURL != "" && !SecureOrLoopback(c.IDPMetadataURL) {
			add(RuleSingleIdP, "sso.saml.idp_metadata_url", "%q must be an https URL (http only to a loopback host): the metadata holds the IdP's signing certificate", c.IDPMetadataURL)
		}
		if r := time.Duration(c.IDPMetadataRefresh); r != 0 && r < time.Minute {
			add(RuleSingleIdP, "sso.saml.idp_metadata_refresh", "must be 0 (never) or at least 1m")
		}
		if c.IDPMetadataXML != "" && !strings.Contains(c.IDPMetadataXML, "EntityDescriptor") {
			add(RuleSingleIdP, "sso.saml.idp_metadata_xml", "is not SAML metadata (no EntityDescriptor); paste the IdP's metadata XML")
		}
	case ProtocolOIDC:
		if sso.OIDC.Issuer == "" {
			add(RuleSingleIdP, "sso.oidc.issuer", "is required when sso.protocol is \"oidc\"")
		} else if !SecureOrLoopback(sso.OIDC.Issuer) {
			add(RuleSingleIdP, "sso.oidc.issuer", "%q must be an https URL (http only to a loopback host)", sso.OIDC.Issuer)
		}
		if sso.OIDC.ClientID == "" {
			add(RuleSingleIdP, "sso.oidc.client_id", "is required when sso.protocol is \"oidc\"")
		}
	}
	if !ValidPreset(sso.Preset) {
		add(RuleSingleIdP, "sso.preset", "%q is not one of %s", sso.Preset, strings.Join(PresetNames(), ", "))
	}
	if u := sso.UniversalLogout; u.Issuer != "" || u.JWKSURL != "" {
		switch {
		case u.Issuer == "":
			add(RuleSingleIdP, "sso.universal_logout.issuer", "is required for Universal Logout (the IdP's URL, as its signed requests name it)")
		case !SecureOrLoopback(u.Issuer):
			add(RuleSingleIdP, "sso.universal_logout.issuer", "%q must be an https URL (http only to a loopback host)", u.Issuer)
		case u.JWKSURL != "" && !SecureOrLoopback(u.JWKSURL):
			add(RuleSingleIdP, "sso.universal_logout.jwks_url", "%q must be an https URL (http only to a loopback host)", u.JWKSURL)
		case sso.Protocol != ProtocolSAML && sso.Protocol != ProtocolOIDC:
			add(RuleSingleIdP, "sso.universal_logout.issuer", "Universal Logout ends the sessions of people who sign in by SAML or OIDC; set sso.protocol first")
		}
	}
	if p.Method == SourceSelfService && len(p.EmailDomain) == 0 {
		add(RuleSelfServiceNeeds, "provisioning.email_domain", "the self-service link is bound to the organization's email domain: set provisioning.email_domain first")
	}
	for path, domains := range map[string][]string{"provisioning.email_domain": p.EmailDomain, "provisioning.allowed_domains": p.AllowedDomains} {
		for i, d := range domains {
			if !domainPattern.MatchString(d) {
				add(RuleDomains, fmt.Sprintf("%s[%d]", path, i), "%q must be a lower-case domain such as example.com", d)
			}
		}
	}
	if p.DefaultPool == "" {
		add(RuleDefaults, "provisioning.default_pool", "must name a pool")
	}
	switch {
	case len(p.Roles) > 0 && !slices.Contains(p.Roles, RoleManager):
		add(RuleDefaults, "provisioning.roles", "must include %q", RoleManager)
	case p.DefaultRole == "":
		add(RuleDefaults, "provisioning.default_role", "must name a role")
	case len(p.Roles) > 0 && !slices.Contains(p.Roles, p.DefaultRole):
		add(RuleDefaults, "provisioning.default_role", "%q is not one of the roles %s", p.DefaultRole, strings.Join(p.Roles, ", "))
	}
	for group, pool := range p.GroupPools {
		if group == "" || !ValidPoolID(pool) {
			add(RuleGroupPools, "provisioning.group_pools", "%q → %q: map a group name to a pool id", group, pool)
		}
	}
	seenGroups := map[string]bool{}
	for i, gr := range p.GroupRoles {
		at := fmt.Sprintf("provisioning.group_roles[%d]", i)
		switch key := strings.ToLower(strings.TrimSpace(gr.Group)); {
		case key == "" || gr.Role == "":
			add(RuleGroupRoles, at, "map a group name to a role")
		case len(p.Roles) > 0 && !slices.Contains(p.Roles, gr.Role):
			add(RuleGroupRoles, at, "%q is not one of the roles %s", gr.Role, strings.Join(p.Roles, ", "))
		case seenGroups[key]:
			add(RuleGroupRoles, at, "group %q is mapped twice: the first rule would always win", gr.Group)
		default:
			seenGroups[key] = true
		}
	}
	slices.SortFunc(vs, func(a, b RuleViolation) int { return strings.Compare(a.Path+a.Message, b.Path+b.Message) })
	return vs
}

// SecureOrLoopback reports an https URL, or an http one to a loopback
// host (development).
func SecureOrLoopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	if u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var poolIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidPoolID reports a pool id: lower-case letters, digits, '-' and '_',
// at most 63 characters (it travels in headers and comma-separated lists).
func ValidPoolID(id string) bool { return poolIDPattern.MatchString(id) }

// Pool is a set of users the app treats alike (the product's agent
// pools). A user belongs to one or more pools; the app assigns them,
// never the IdP.
type Pool struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Role is the role its members hold in it, unless a membership says
	// otherwise ("": the organization's default role).
	Role    string    `json:"role,omitempty"`
	Created time.Time `json:"created"`
	Version uint64    `json:"version"`
}

// Role is a named set of permissions (words the app defines, such as
// agents.debug). A person holds a role in each pool they are in.
type Role struct {
	Name        string    `json:"name"`
	Permissions []string  `json:"permissions"`
	Modified    time.Time `json:"modified"`
	Version     uint64    `json:"version"`
}

// Access is what a person may do in one pool: the role they hold there
// and its permissions.
type Access struct {
	Pool        string   `json:"pool"`
	Role        string   `json:"role"`
	Permissions []string `json:"permissions"`
}

var (
	roleNamePattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	permissionPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._:-]{0,99}$`)
)

// ValidRoleName reports whether name can name a role: 1 to 63 lower-case
// letters, digits, '-' or '_', starting with a letter or digit.
func ValidRoleName(name string) bool { return roleNamePattern.MatchString(name) }

// ValidPermission reports whether p can be a permission: 1 to 100
// lower-case letters, digits, '.', '_', ':' or '-', starting with a
// letter or digit (agents.debug, billing:admin).
func ValidPermission(p string) bool { return permissionPattern.MatchString(p) }

// Duration is a time.Duration that reads and writes as "1h0m0s" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"1h\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// SCIMTokenRule is the rule that provisioning by SCIM has a token for the
// IdP to present (from the configuration file, or rotated and stored):
// without one, every SCIM request would be refused.
func SCIMTokenRule(method Source, hasToken bool) []RuleViolation {
	if method != SourceSCIM || hasToken {
		return nil
	}
	return []RuleViolation{{Rule: RuleSCIMToken, Path: "scim.token",
		Message: "SCIM needs a token for the IdP: set scim.token (GATEHOUSE_SCIM_TOKEN) or rotate one (POST /admin/api/v1/scim-token, or the console) first"}}
}

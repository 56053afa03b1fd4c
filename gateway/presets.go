package gateway

import (
	"slices"
	"sort"
)

// IdP presets: what each identity provider sends, so that an organization
// names its IdP (sso.preset) instead of every attribute. A name set in
// the settings wins over the preset's.

// Preset names.
const (
	PresetGeneric   = "generic"
	PresetOkta      = "okta"
	PresetEntra     = "entra"
	PresetGoogle    = "google"
	PresetOneLogin  = "onelogin"
	PresetJumpCloud = "jumpcloud"
)

// Email proof: how a sign-in's email address is trusted.
const (
	// EmailProofClaim: the IdP says it verified the address (OIDC
	// email_verified true; SAML: the IdP asserts its users' addresses). An
	// ID token without email_verified is trusted only at one of the
	// organization's verified domains; email_verified false never signs in.
	EmailProofClaim = "claim"
	// EmailProofVerifiedDomain: the IdP does not verify addresses (Entra
	// lets a tenant's admin set any mail): the address is trusted only at
	// one of the organization's verified domains, unless the IdP's
	// VerifiedDomainClaim says it owns the domain. An email_verified false
	// is refused whatever the domain.
	EmailProofVerifiedDomain = "verified_domain"
)

// IdPPreset is one identity provider's names and rules.
type IdPPreset struct {
	Name, Label string
	// SAML attribute names (an attribute matches by Name or
	// FriendlyName); an empty SAMLEmail takes the email from the NameID.
	SAMLEmail, SAMLFirstName, SAMLLastName, SAMLGroups string
	// SAMLGroupsLink is the attribute an IdP sends instead of the groups
	// when a person is in too many (Entra's group overage, past 150).
	SAMLGroupsLink string
	// OIDC claim names; OIDCEmailFallback is read when the email claim is
	// absent (Entra's preferred_username, often the UPN).
	OIDCEmail, OIDCEmailFallback, OIDCGivenName, OIDCFamilyName, OIDCGroups string
	// EmailProof is EmailProofClaim or EmailProofVerifiedDomain; with
	// the latter, SAML addresses are checked the same way.
	EmailProof string
	// VerifiedDomainClaim, when true in the ID token, says the IdP owns
	// the address's domain (Entra's optional claim xms_edov).
	VerifiedDomainClaim string
	// GroupIDs: the groups claim carries object ids, not names, unless
	// the IdP is told otherwise (Entra).
	GroupIDs bool
}

// Entra's SAML claim URIs.
const (
	entraClaims = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
	EntraGroups = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
	// EntraGroupsLink is sent instead of the groups past 150 (SAML).
	EntraGroupsLink = "http://schemas.microsoft.com/claims/groups.link"
)

var presets = map[string]IdPPreset{
	PresetGeneric: {Name: PresetGeneric, Label: "Another SAML or OIDC identity provider",
		SAMLFirstName: "firstName", SAMLLastName: "lastName", SAMLGroups: "groups",
		OIDCEmail: "email", OIDCGivenName: "given_name", OIDCFamilyName: "family_name", OIDCGroups: "groups", EmailProof: EmailProofClaim},
	PresetOkta: {Name: PresetOkta, Label: "Okta",
		SAMLFirstName: "firstName", SAMLLastName: "lastName", SAMLGroups: "groups",
		OIDCEmail: "email", OIDCGivenName: "given_name", OIDCFamilyName: "family_name", OIDCGroups: "groups", EmailProof: EmailProofClaim},
	PresetEntra: {Name: PresetEntra, Label: "Microsoft Entra ID",
		SAMLEmail: entraClaims + "emailaddress", SAMLFirstName: entraClaims + "givenname", SAMLLastName: entraClaims + "surname",
		SAMLGroups: EntraGroups, SAMLGroupsLink: EntraGroupsLink,
		OIDCEmail: "email", OIDCEmailFallback: "preferred_username", OIDCGivenName: "given_name", OIDCFamilyName: "family_name", OIDCGroups: "groups",
		EmailProof: EmailProofVerifiedDomain, VerifiedDomainClaim: "xms_edov", GroupIDs: true},
	PresetGoogle: {Name: PresetGoogle, Label: "Google Workspace",
		SAMLFirstName: "firstName", SAMLLastName: "lastName", SAMLGroups: "groups",
		OIDCEmail: "email", OIDCGivenName: "given_name", OIDCFamilyName: "family_name", OIDCGroups: "groups", EmailProof: EmailProofClaim},
	PresetOneLogin: {Name: PresetOneLogin, Label: "OneLogin",
		SAMLFirstName: "firstName", SAMLLastName: "lastName", SAMLGroups: "memberOf",
		OIDCEmail: "email", OIDCGivenName: "given_name", OIDCFamilyName: "family_name", OIDCGroups: "groups", EmailProof: EmailProofClaim},
	PresetJumpCloud: {Name: PresetJumpCloud, Label: "JumpCloud",
		SAMLEmail: "email", SAMLFirstName: "firstname", SAMLLastName: "lastname", SAMLGroups: "memberOf",
		OIDCEmail: "email", OIDCGivenName: "given_name", OIDCFamilyName: "family_name", OIDCGroups: "groups", EmailProof: EmailProofClaim},
}

// Preset returns the named preset; "" is generic.
func Preset(name string) (IdPPreset, bool) {
	if name == "" {
		name = PresetGeneric
	}
	p, ok := presets[name]
	return p, ok
}

// PresetNames are the presets, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ValidPreset reports a known preset ("" included).
func ValidPreset(name string) bool { return name == "" || slices.Contains(PresetNames(), name) }

package console

import (
	"strings"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// plainWords says what a refused identity change needs, in the words of
// the console's page (the rules' own messages name configuration keys
// and API paths, for the file and the API).
func plainWords(v gateway.RuleViolation) string {
	switch v.Rule {
	case "managed_by_file":
		return "the configuration file owns these settings: change the file and restart the gateway"
	case gateway.RuleSCIMToken:
		return "SCIM needs a token for your identity provider first: make one with “Rotate the SCIM token” under SCIM, then choose SCIM again"
	case gateway.RuleSCIMNeedsSSO:
		return "SCIM needs a login method first: choose SAML, OIDC or External under step 2 and save it, then choose SCIM"
	case gateway.RuleJITNeedsSSOLogin:
		return "accounts made at the first sign-in need people to sign in through the gateway: connect your identity provider with SAML or OIDC under step 2 first"
	case gateway.RuleSelfServiceNeeds:
		return "self-service is bound to your organization's email domain: fill in the email domains field (such as example.com)"
	case gateway.RuleDomains:
		return "the email domains must be domain names such as example.com, separated by commas"
	case gateway.RuleProtocol:
		return "choose one of the login methods"
	case gateway.RuleOneMethod:
		return "choose exactly one way people get accounts"
	case gateway.RuleSingleIdP:
		switch {
		case v.Path == "sso.saml":
			return "give the identity provider's metadata: its URL, or upload the file (one of the two)"
		case v.Path == "sso.saml.idp_metadata_url":
			return "the metadata URL must start with https:// (the metadata holds the identity provider's signing certificate)"
		case v.Path == "sso.saml.idp_metadata_file":
			return "a metadata file on the gateway's host can be named in the configuration file only: give the metadata URL or upload the file instead"
		case v.Path == "sso.saml.idp_metadata_xml":
			return "the uploaded file is not SAML metadata: download the metadata XML from your identity provider again"
		case v.Path == "sso.oidc.issuer" && strings.Contains(v.Message, "required"):
			return "fill in the issuer (your identity provider's address, such as https://example.okta.com)"
		case v.Path == "sso.oidc.issuer":
			return "the issuer must start with https://"
		case v.Path == "sso.oidc.client_id":
			return "fill in the client ID"
		case v.Path == "sso.oidc.client_secret" || strings.Contains(v.Message, "client secret"):
			return "type the client secret again: it is needed whenever the login method, the issuer or the client ID changes"
		case strings.Contains(v.Message, "cannot be used: "):
			_, why, _ := strings.Cut(v.Message, "cannot be used: ")
			return "the gateway could not use your identity provider's settings (" + why + "): check the metadata URL or file, or the issuer, client ID and secret, and that the app is saved in your identity provider"
		}
	}
	return v.Message
}

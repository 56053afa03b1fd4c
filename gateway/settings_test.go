package gateway_test

import (
	"slices"
	"testing"

	"github.com/gatehouse-id/gatehouse/gateway"
)

func TestIdentitySettingsRules(t *testing.T) {
	base := func() gateway.IdentitySettings {
		return gateway.IdentitySettings{
			SSO: gateway.SSOSettings{Protocol: "saml", SAML: gateway.SAMLSettings{IDPMetadataURL: "https://idp.example.com/metadata"}},
			Provisioning: gateway.ProvisioningSettings{Method: gateway.SourceJIT, DefaultPool: "default", DefaultRole: "user",
				Roles: []string{"manager", "user"}},
		}
	}
	cases := []struct {
		name   string
		change func(*gateway.IdentitySettings)
		rules  []string // the rules refused, sorted by path
	}{
		{"valid", func(*gateway.IdentitySettings) {}, nil},
		{"unknown method", func(s *gateway.IdentitySettings) { s.Provisioning.Method = "scim,jit" }, []string{gateway.RuleOneMethod}},
		{"empty method", func(s *gateway.IdentitySettings) { s.Provisioning.Method = "" }, []string{gateway.RuleOneMethod}},
		{"unknown protocol", func(s *gateway.IdentitySettings) { s.SSO.Protocol = "ldap" }, []string{gateway.RuleJITNeedsSSOLogin, gateway.RuleProtocol}},
		{"scim without sso", func(s *gateway.IdentitySettings) {
			s.SSO.Protocol, s.Provisioning.Method = "none", gateway.SourceSCIM
		}, []string{gateway.RuleSCIMNeedsSSO}},
		{"scim with external sso", func(s *gateway.IdentitySettings) {
			s.SSO.Protocol, s.Provisioning.Method = "external", gateway.SourceSCIM
		}, nil},
		{"jit with external sso", func(s *gateway.IdentitySettings) { s.SSO.Protocol = "external" }, []string{gateway.RuleJITNeedsSSOLogin}},
		{"jit without sso", func(s *gateway.IdentitySettings) { s.SSO.Protocol = "none" }, []string{gateway.RuleJITNeedsSSOLogin}},
		{"two saml metadata sources", func(s *gateway.IdentitySettings) {
			s.SSO.SAML.IDPMetadataXML = "<EntityDescriptor/>"
		}, []string{gateway.RuleSingleIdP}},
		{"no saml metadata", func(s *gateway.IdentitySettings) { s.SSO.SAML.IDPMetadataURL = "" }, []string{gateway.RuleSingleIdP}},
		{"metadata over http", func(s *gateway.IdentitySettings) {
			s.SSO.SAML.IDPMetadataURL = "http://idp.example.com/md"
		}, []string{gateway.RuleSingleIdP}},
		{"metadata over loopback http", func(s *gateway.IdentitySettings) { s.SSO.SAML.IDPMetadataURL = "http://127.0.0.1:8081/md" }, nil},
		{"oidc without client", func(s *gateway.IdentitySettings) {
			s.SSO = gateway.SSOSettings{Protocol: "oidc", OIDC: gateway.OIDCSettings{Issuer: "https://example.okta.com"}}
		}, []string{gateway.RuleSingleIdP}},
		{"self service without domain", func(s *gateway.IdentitySettings) {
			s.Provisioning.Method = gateway.SourceSelfService
		}, []string{gateway.RuleSelfServiceNeeds}},
		{"self service with domain", func(s *gateway.IdentitySettings) {
			s.Provisioning.Method, s.Provisioning.EmailDomain = gateway.SourceSelfService, []string{"example.com"}
		}, nil},
		{"upper-case domain", func(s *gateway.IdentitySettings) { s.Provisioning.AllowedDomains = []string{"Example.com"} }, []string{gateway.RuleDomains}},
		{"default role not a role", func(s *gateway.IdentitySettings) { s.Provisioning.DefaultRole = "admin" }, []string{gateway.RuleDefaults}},
		{"roles without manager", func(s *gateway.IdentitySettings) { s.Provisioning.Roles = []string{"user"} }, []string{gateway.RuleDefaults}},
		{"group mapped to a bad pool id", func(s *gateway.IdentitySettings) {
			s.Provisioning.GroupPools = map[string]string{"Support": "Support Team"}
		}, []string{gateway.RuleGroupPools}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base()
			c.change(&s)
			var rules []string
			for _, v := range s.Validate() {
				if v.Message == "" || v.Path == "" {
					t.Errorf("a violation without a path or message: %+v", v)
				}
				rules = append(rules, v.Rule)
			}
			slices.Sort(rules)
			if !slices.Equal(rules, c.rules) {
				t.Fatalf("rules %v, want %v (%v)", rules, c.rules, s.Validate())
			}
		})
	}
}

package scim

import "encoding/json"

// serviceProviderConfig says what this server really supports. The
// library's own document claims no ETag support and a bulk endpoint limit
// that does not apply, so we serve ours.
func serviceProviderConfig(opts Options) []byte {
	doc := map[string]any{
		"schemas":          []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"documentationUri": "https://github.com/gatehouse-id/gatehouse#scim",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": opts.MaxResults},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": false},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []map[string]any{{
			"type":        "oauthbearertoken",
			"name":        "OAuth Bearer Token",
			"description": "Authentication with the bearer token configured as scim.token.",
			"primary":     true,
		}},
		"meta": map[string]any{
			"resourceType": "ServiceProviderConfig",
			"location":     opts.BaseURL + "/ServiceProviderConfig",
		},
	}
	b, _ := json.Marshal(doc)
	return b
}

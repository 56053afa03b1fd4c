package scim

import "github.com/elimity-com/scim/schema"

// Schema URNs used on the wire.
const (
	userSchemaURN   = schema.UserSchema
	groupSchemaURN  = schema.GroupSchema
	errorURN        = "urn:ietf:params:scim:api:messages:2.0:Error"
	listResponseURN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
)

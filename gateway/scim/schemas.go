package scim

import (
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
)

// Schema URNs used on the wire.
const (
	userSchemaURN       = schema.UserSchema
	groupSchemaURN      = schema.GroupSchema
	enterpriseSchemaURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	listResponseURN     = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	errorURN            = "urn:ietf:params:scim:api:messages:2.0:Error"
)

// withCommon adds the common attributes (RFC 7643 §3.1) to a resource
// schema. The library validates list filters against the schema alone, so
// without them `externalId eq`, `id eq` and `meta.lastModified gt` filters
// would be rejected. id is declared optional here: it is read-only and the
// library would otherwise demand it in every POST body.
func withCommon(s schema.Schema) schema.Schema {
	id := schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
		CaseExact:   true,
		Description: optional.NewString("Unique identifier for the resource, assigned by the service provider."),
		Mutability:  schema.AttributeMutabilityReadOnly(),
		Name:        "id",
		Returned:    schema.AttributeReturnedAlways(),
		Uniqueness:  schema.AttributeUniquenessServer(),
	}))
	externalID := schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
		CaseExact:   true,
		Description: optional.NewString("Identifier of the resource as defined by the provisioning client."),
		Name:        "externalId",
	}))
	var meta schema.CoreAttribute
	for _, a := range schema.CommonAttributes() {
		if a.Name() == "meta" {
			meta = a
		}
	}
	s.Attributes = append(schema.Attributes{id, externalID, meta}, s.Attributes...)
	return s
}

func userSchema() schema.Schema       { return withCommon(schema.CoreUserSchema()) }
func groupSchema() schema.Schema      { return withCommon(schema.CoreGroupSchema()) }
func enterpriseSchema() schema.Schema { return schema.ExtensionEnterpriseUser() }

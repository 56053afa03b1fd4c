package query

import (
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
)

// EnterpriseUserURN is the enterprise User extension's schema id.
const EnterpriseUserURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

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
	attrs := schema.Attributes{id, externalID}
	for _, a := range schema.CommonAttributes() {
		if a.Name() == "meta" {
			attrs = append(attrs, a)
		}
	}
	s.Attributes = append(attrs, s.Attributes...)
	return s
}

// UserResource is the User resource type Gatehouse serves: the core
// schema with the common attributes, and the enterprise extension.
func UserResource() Resource {
	return Resource{Core: withCommon(schema.CoreUserSchema()), Extensions: []schema.Schema{schema.ExtensionEnterpriseUser()}}
}

// GroupResource is the Group resource type Gatehouse serves.
func GroupResource() Resource {
	return Resource{Core: withCommon(schema.CoreGroupSchema())}
}

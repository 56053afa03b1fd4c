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
	s.Attributes = append(schema.Attributes{id, externalID, metaAttribute()}, s.Attributes...)
	return s
}

// metaAttribute is the library's meta with referenceTypes on location
// (RFC 7643 §2.3.7: every reference attribute names what it refers to).
func metaAttribute() schema.CoreAttribute {
	return schema.ComplexCoreAttribute(schema.ComplexParams{
		Description: optional.NewString("A complex attribute containing resource metadata."),
		Mutability:  schema.AttributeMutabilityReadOnly(),
		Name:        "meta",
		SubAttributes: []schema.SimpleParams{
			schema.SimpleStringParams(schema.StringParams{
				CaseExact:   true,
				Description: optional.NewString("The name of the resource type of the resource."),
				Mutability:  schema.AttributeMutabilityReadOnly(),
				Name:        "resourceType",
			}),
			schema.SimpleDateTimeParams(schema.DateTimeParams{
				Description: optional.NewString("The DateTime that the resource was added to the service provider."),
				Mutability:  schema.AttributeMutabilityReadOnly(),
				Name:        "created",
			}),
			schema.SimpleDateTimeParams(schema.DateTimeParams{
				Description: optional.NewString("The most recent DateTime that the details of this resource were updated at the service provider."),
				Mutability:  schema.AttributeMutabilityReadOnly(),
				Name:        "lastModified",
			}),
			schema.SimpleReferenceParams(schema.ReferenceParams{
				Description:    optional.NewString("The URI of the resource being returned."),
				Mutability:     schema.AttributeMutabilityReadOnly(),
				Name:           "location",
				ReferenceTypes: []schema.AttributeReferenceType{schema.AttributeReferenceTypeURI},
			}),
			schema.SimpleStringParams(schema.StringParams{
				CaseExact:   true,
				Description: optional.NewString("The version (weak ETag) of the resource being returned."),
				Mutability:  schema.AttributeMutabilityReadOnly(),
				Name:        "version",
			}),
		},
	})
}

// replaceAttribute swaps the attribute of the same name.
func replaceAttribute(s schema.Schema, a schema.CoreAttribute) schema.Schema {
	attrs := make(schema.Attributes, len(s.Attributes))
	copy(attrs, s.Attributes)
	for i, cur := range attrs {
		if cur.Name() == a.Name() {
			attrs[i] = a
		}
	}
	s.Attributes = attrs
	return s
}

// userGroupsAttribute: a user's groups are the groups holding it directly
// (groups have no group members here), so $ref refers to Groups only.
func userGroupsAttribute() schema.CoreAttribute {
	return schema.ComplexCoreAttribute(schema.ComplexParams{
		Description: optional.NewString("The groups the user is a direct member of. Read-only: change memberships through the Group resource."),
		MultiValued: true,
		Mutability:  schema.AttributeMutabilityReadOnly(),
		Name:        "groups",
		SubAttributes: []schema.SimpleParams{
			schema.SimpleStringParams(schema.StringParams{
				Description: optional.NewString("The id of the group."),
				Mutability:  schema.AttributeMutabilityReadOnly(),
				Name:        "value",
			}),
			schema.SimpleReferenceParams(schema.ReferenceParams{
				Description:    optional.NewString("The URI of the Group resource."),
				Mutability:     schema.AttributeMutabilityReadOnly(),
				Name:           "$ref",
				ReferenceTypes: []schema.AttributeReferenceType{"Group"},
			}),
			schema.SimpleStringParams(schema.StringParams{
				Description: optional.NewString("The group's displayName."),
				Mutability:  schema.AttributeMutabilityReadOnly(),
				Name:        "display",
			}),
			schema.SimpleStringParams(schema.StringParams{
				CanonicalValues: []string{"direct"},
				Description:     optional.NewString("Always 'direct': groups do not nest."),
				Mutability:      schema.AttributeMutabilityReadOnly(),
				Name:            "type",
			}),
		},
	})
}

// groupMembersAttribute: members are users only; a Group member is refused.
func groupMembersAttribute() schema.CoreAttribute {
	return schema.ComplexCoreAttribute(schema.ComplexParams{
		Description: optional.NewString("The users that are members of the Group (groups cannot be members)."),
		MultiValued: true,
		Name:        "members",
		SubAttributes: []schema.SimpleParams{
			schema.SimpleStringParams(schema.StringParams{
				Description: optional.NewString("The id of the member User."),
				Mutability:  schema.AttributeMutabilityImmutable(),
				Name:        "value",
			}),
			schema.SimpleReferenceParams(schema.ReferenceParams{
				Description:    optional.NewString("The URI of the member User resource."),
				Mutability:     schema.AttributeMutabilityImmutable(),
				Name:           "$ref",
				ReferenceTypes: []schema.AttributeReferenceType{"User"},
			}),
			schema.SimpleStringParams(schema.StringParams{
				CanonicalValues: []string{"User"},
				Description:     optional.NewString("The type of the member: always 'User'."),
				Mutability:      schema.AttributeMutabilityImmutable(),
				Name:            "type",
			}),
			schema.SimpleStringParams(schema.StringParams{
				Description: optional.NewString("A human-readable name for the member, primarily used for display purposes."),
				Mutability:  schema.AttributeMutabilityImmutable(),
				Name:        "display",
			}),
		},
	})
}

// UserResource is the User resource type Gatehouse serves: the core
// schema with the common attributes, and the enterprise extension.
func UserResource() Resource {
	core := replaceAttribute(withCommon(schema.CoreUserSchema()), userGroupsAttribute())
	return Resource{Core: core, Extensions: []schema.Schema{schema.ExtensionEnterpriseUser()}}
}

// GroupResource is the Group resource type Gatehouse serves.
func GroupResource() Resource {
	return Resource{Core: replaceAttribute(withCommon(schema.CoreGroupSchema()), groupMembersAttribute())}
}

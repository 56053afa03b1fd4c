package scim

import (
	"strings"

	scimlib "github.com/elimity-com/scim"

	"github.com/gatehouse-id/gatehouse/gateway/scim/query"
)

// checkOperations refuses a PATCH with more operations than allowed,
// before any of them is applied.
func (s *Server) checkOperations(ops []scimlib.PatchOperation) error {
	if n := len(ops); n > s.opts.MaxPatchOperations {
		return valueError("The PATCH has %d operations; the limit is %d (scim.max_patch_operations): send them in several requests.", n, s.opts.MaxPatchOperations)
	}
	return nil
}

// checkMembers refuses a request that names more group members than
// allowed.
func (s *Server) checkMembers(n int) error {
	if n > s.opts.MaxMembersPerRequest {
		return valueError("The request names %d group members; the limit is %d (scim.max_members_per_request): send the change in several PATCH requests.", n, s.opts.MaxMembersPerRequest)
	}
	return nil
}

// patchMembers counts the member values a group PATCH names: in
// operations on members (with or without a filter) and in path-less
// values holding "members".
func patchMembers(ops []scimlib.PatchOperation) int {
	n := 0
	for _, op := range ops {
		if op.Path != nil {
			if strings.EqualFold(op.Path.AttributePath.AttributeName, "members") && op.Value != nil {
				n += len(query.AsList(op.Value))
			}
			continue
		}
		if m, ok := op.Value.(map[string]any); ok {
			for k, v := range m {
				// "members" or "urn:…:core:2.0:Group:members": the core
				// schema's URN may prefix any attribute.
				if strings.EqualFold(k, "members") || strings.EqualFold(k, groupSchemaURN+":members") {
					n += len(query.AsList(v))
				}
			}
		}
	}
	return n
}

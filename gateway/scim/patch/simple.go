package patch

import (
	"bytes"
	"encoding/json"
	"strings"

	scimlib "github.com/elimity-com/scim"
	"github.com/elimity-com/scim/schema"
	"github.com/scim2/filter-parser/v2"

	"github.com/gatehouse-id/gatehouse/gateway/scim/query"
)

// ParseSimple parses a (normalised) PATCH body into the operations the
// library would produce, for the shapes IdPs send on every sync:
// path-less add/replace with plain keys (Okta's {"active":false}) and
// plain paths (`active`, `name.givenName`, `members`, `urn:…:manager`).
// The library parses every path with a backtracking parser, which was a
// third of a PATCH's CPU. Anything else — value filters, any doubt, any
// error — returns false and goes through the library, so its validation
// and its error responses stay the reference.
func ParseSimple(body []byte, res Resource) ([]scimlib.PatchOperation, bool) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var req struct {
		Schemas    []string
		Operations []struct {
			Op    string
			Path  string
			Value any
		}
	}
	if d.Decode(&req) != nil || len(req.Schemas) != 1 || req.Schemas[0] != patchOpURN || len(req.Operations) == 0 {
		return nil, false
	}
	ops := make([]scimlib.PatchOperation, 0, len(req.Operations))
	for _, raw := range req.Operations {
		op := strings.ToLower(raw.Op)
		if op != "add" && op != "replace" && op != "remove" {
			return nil, false
		}
		if raw.Path == "" {
			m, ok := raw.Value.(map[string]any)
			if op == "remove" || !ok {
				return nil, false
			}
			// The library drops an "id" key (Okta sends it in group renames).
			for k := range m {
				if strings.EqualFold(k, "id") {
					delete(m, k)
				}
			}
			validated := make(map[string]any, len(m))
			for k, v := range m {
				p, ok := plainPath(k)
				if !ok {
					return nil, false
				}
				vv, ok := validateValue(p, v, res, false)
				if !ok {
					return nil, false
				}
				validated[k] = vv
			}
			ops = append(ops, scimlib.PatchOperation{Op: op, Value: validated})
			continue
		}
		p, ok := plainPath(raw.Path)
		if !ok {
			return nil, false
		}
		value, ok := validateValue(p, raw.Value, res, op == "remove")
		if !ok {
			return nil, false
		}
		ops = append(ops, scimlib.PatchOperation{Op: op, Path: &p, Value: value})
	}
	return ops, true
}

func plainPath(s string) (filter.Path, bool) {
	p, err := query.ParsePath(s)
	if err != nil || p.ValueExpression != nil || p.SubAttribute != nil {
		return filter.Path{}, false
	}
	return p, true
}

// validateValue validates v for the attribute at p the way the library's
// PATCH validator does, returning the canonical value.
func validateValue(p filter.Path, v any, res Resource, remove bool) (any, bool) {
	attrs := res.Core.Attributes
	if uri := p.AttributePath.URI(); uri != "" && uri != res.Core.ID {
		found := false
		for _, e := range res.Extensions {
			if e.ID == uri {
				attrs, found = e.Attributes, true
			}
		}
		if !found {
			return nil, false
		}
	}
	var def *schema.CoreAttribute
	for _, a := range attrs {
		if strings.EqualFold(a.Name(), p.AttributePath.AttributeName) {
			def = &a
			break
		}
	}
	if def == nil {
		return nil, false
	}
	if sub := p.AttributePath.SubAttributeName(); sub != "" {
		if !def.HasSubAttributes() {
			return nil, false
		}
		var sdef *schema.CoreAttribute
		for _, a := range def.SubAttributes() {
			if strings.EqualFold(a.Name(), sub) {
				sdef = &a
				break
			}
		}
		if sdef == nil {
			return nil, false
		}
		def = sdef
	}
	if v == nil {
		return nil, remove // the attribute exists; only remove may omit a value
	}
	if !def.MultiValued() {
		out, err := def.ValidateSingular(v)
		return out, err == nil
	}
	list, isList := v.([]any)
	if !isList {
		out, err := def.ValidateSingular(v)
		return []any{out}, err == nil
	}
	var out []any
	for _, e := range list {
		ve, err := def.ValidateSingular(e)
		if err != nil {
			return nil, false
		}
		out = append(out, ve)
	}
	return out, true
}

package patch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	scimerrors "github.com/elimity-com/scim/errors"

	"github.com/gatehouse-id/gatehouse/gateway/scim/query"
)

const patchOpURN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

func decode(body []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("unexpected data after the JSON value")
	}
	return v, nil
}

// NormalizeRequest rewrites IdP quirks in a raw PATCH body into forms the
// library validates, before it sees them:
//
//   - a missing (or null) "schemas" gets the PatchOp URN; any other value
//     is left for the library to judge;
//   - a path-less value holding an extension object
//     ({"urn:…:enterprise:2.0:User": {"department": "X"}}) is flattened to
//     URN-prefixed keys, which the library can parse as paths; the same for
//     an add or replace whose path is the bare extension URN;
//   - Entra's enterprise manager as a bare id string becomes {"value": id},
//     and an empty one ("") a removal of the manager;
//   - a remove without a path is rejected here with noTarget (the library
//     would report it as invalidValue).
//
// Everything else is re-encoded unchanged (numbers stay exact). A body that
// is not a JSON object is returned as is for the library to reject.
func NormalizeRequest(body []byte, res Resource) ([]byte, error) {
	v, err := decode(body)
	if err != nil {
		return nil, scimErr(scimerrors.ScimTypeInvalidSyntax, "the request body is not valid JSON: %v", err)
	}
	req, ok := v.(map[string]any)
	if !ok {
		return body, nil
	}
	if k, ok := lookupKeyName(req, "schemas"); !ok || req[k] == nil {
		if ok {
			delete(req, k)
		}
		req["schemas"] = []any{patchOpURN}
	}
	opsKey, _ := lookupKeyName(req, "Operations")
	ops, isList := req[opsKey].([]any)
	if !isList {
		return json.Marshal(req)
	}
	out := make([]any, 0, len(ops))
	for _, raw := range ops {
		out = append(out, raw)
		op, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		name, _ := lookupKey(op, "op")
		opName, _ := name.(string)
		pathKey, _ := lookupKeyName(op, "path")
		pathStr, _ := op[pathKey].(string)
		if err := query.CheckLimits(pathStr); err != nil {
			return nil, scimErr(scimerrors.ScimTypeInvalidPath, "the path of operation %q is refused: %v", opName, err)
		}
		if strings.EqualFold(opName, "remove") && pathStr == "" {
			return nil, scimErr(scimerrors.ScimTypeNoTarget, "a remove operation needs a path naming what to remove")
		}
		valueKey, hasValue := lookupKeyName(op, "value")
		if !hasValue {
			continue
		}
		if ext, ok := extensionURN(pathStr, res); ok && !strings.EqualFold(opName, "remove") {
			// {"op":"add","path":"urn:…:User","value":{"department":"X"}}:
			// the library cannot parse a bare URN as a path, but the same
			// operation path-less with prefixed keys means the same.
			if obj, ok := op[valueKey].(map[string]any); ok {
				delete(op, pathKey)
				pathStr = ""
				op[valueKey] = map[string]any{ext: obj}
			}
		}
		if pathStr == "" {
			m, ok := op[valueKey].(map[string]any)
			if !ok {
				continue
			}
			if err := flattenSchemaObjects(m, res); err != nil {
				return nil, err
			}
			for k, mv := range m {
				if !isManagerPath(k, res) {
					continue
				}
				if s, ok := mv.(string); ok && s == "" {
					// A path-less value cannot say "remove": split it out.
					delete(m, k)
					out = append(out, map[string]any{"op": "remove", "path": k})
					continue
				}
				m[k] = managerValue(mv)
			}
			continue
		}
		if isManagerPath(pathStr, res) {
			if s, ok := op[valueKey].(string); ok && s == "" {
				// Entra clears the manager with an empty id.
				out[len(out)-1] = map[string]any{"op": "remove", "path": pathStr}
				continue
			}
			op[valueKey] = managerValue(op[valueKey])
		}
	}
	req[opsKey] = out
	return json.Marshal(req)
}

// NormalizeResource rewrites IdP quirks in a POST/PUT body: Entra's
// enterprise manager as a bare id string becomes {"value": id} (an empty
// one: no manager). Everything else (roles: [], groups, meta, password) is
// left alone: the library drops readOnly attributes and the server drops
// the password.
func NormalizeResource(body []byte, res Resource) ([]byte, error) {
	if !bytes.Contains(bytes.ToLower(body), []byte(`"manager"`)) {
		return body, nil // the common case: nothing to rewrite, no re-encoding
	}
	v, err := decode(body)
	if err != nil {
		return nil, scimErr(scimerrors.ScimTypeInvalidSyntax, "the request body is not valid JSON: %v", err)
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return body, nil
	}
	changed := false
	for _, ext := range res.Extensions {
		key, ok := lookupKeyName(doc, ext.ID)
		if !ok {
			continue
		}
		m, _ := doc[key].(map[string]any)
		if mk, ok := lookupKeyName(m, "manager"); ok {
			switch s, isString := m[mk].(string); {
			case isString && s == "":
				delete(m, mk) // no manager
				changed = true
			case isString:
				m[mk] = managerValue(s)
				changed = true
			}
		}
	}
	if !changed {
		return body, nil
	}
	return json.Marshal(doc)
}

// flattenSchemaObjects turns {"urn:…:User": {"a": 1}} into {"urn:…:User:a": 1}
// for the extension schemas, and into {"a": 1} for the core schema. Keys
// are visited in order so that a collision resolves the same way every
// time (the nested form wins).
func flattenSchemaObjects(m map[string]any, res Resource) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		obj, ok := m[k].(map[string]any)
		if !ok {
			continue
		}
		prefix := ""
		if ext, ok := extensionURN(k, res); ok {
			prefix = ext + ":"
			if _, has := lookupKeyName(obj, "schemas"); has {
				return ExtensionSchemasError(ext)
			}
		} else if !strings.EqualFold(k, res.Core.ID) {
			continue
		}
		delete(m, k)
		for sk, sv := range obj {
			m[prefix+sk] = sv
		}
	}
	return nil
}

// ExtensionSchemasError refuses a "schemas" key inside an extension object;
// POST, PUT and PATCH share it so that the rule and its wording are one.
func ExtensionSchemasError(ext string) error {
	return scimErr(scimerrors.ScimTypeInvalidValue, "The %s object has an unexpected key \"schemas\": schema URNs belong only in the top-level \"schemas\" attribute.", ext)
}

// extensionURN reports whether p is the bare id of one of the extensions
// and returns its canonical spelling.
func extensionURN(p string, res Resource) (string, bool) {
	for _, ext := range res.Extensions {
		if strings.EqualFold(p, ext.ID) {
			return ext.ID, true
		}
	}
	return "", false
}

func isManagerPath(p string, res Resource) bool {
	for _, ext := range res.Extensions {
		if strings.EqualFold(p, ext.ID+":manager") {
			return true
		}
	}
	return false
}

// managerValue turns Entra's bare manager id into the complex form.
func managerValue(v any) any {
	if s, ok := v.(string); ok {
		return map[string]any{"value": s}
	}
	return v
}

func lookupKey(m map[string]any, name string) (any, bool) {
	k, ok := lookupKeyName(m, name)
	if !ok {
		return nil, false
	}
	return m[k], true
}

// lookupKeyName finds a key case-insensitively, as encoding/json matches
// struct fields (the library decodes "Operations" that way).
func lookupKeyName(m map[string]any, name string) (string, bool) {
	if _, ok := m[name]; ok {
		return name, true
	}
	for k := range m {
		if strings.EqualFold(k, name) {
			return k, true
		}
	}
	return "", false
}

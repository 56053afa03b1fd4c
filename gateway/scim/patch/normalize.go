package patch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	scimerrors "github.com/elimity-com/scim/errors"
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
//   - a missing "schemas" gets the PatchOp URN;
//   - a path-less value holding an extension object
//     ({"urn:…:enterprise:2.0:User": {"department": "X"}}) is flattened to
//     URN-prefixed keys, which the library can parse as paths;
//   - Entra's enterprise manager as a bare id string becomes {"value": id};
//   - a remove without a path is rejected here with noTarget (the library
//     would report it as invalidValue).
//
// A body that is not a JSON object is returned unchanged for the library
// to reject.
func NormalizeRequest(body []byte, res Resource) ([]byte, error) {
	v, err := decode(body)
	if err != nil {
		return nil, scimErr(scimerrors.ScimTypeInvalidSyntax, "the request body is not valid JSON: %v", err)
	}
	req, ok := v.(map[string]any)
	if !ok {
		return body, nil
	}
	if _, ok := lookupKey(req, "schemas"); !ok {
		req["schemas"] = []any{patchOpURN}
	}
	opsKey, _ := lookupKeyName(req, "Operations")
	ops, _ := req[opsKey].([]any)
	for _, raw := range ops {
		op, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		name, _ := lookupKey(op, "op")
		path, _ := lookupKey(op, "path")
		pathStr, _ := path.(string)
		if opName, _ := name.(string); strings.EqualFold(opName, "remove") && pathStr == "" {
			return nil, scimErr(scimerrors.ScimTypeNoTarget, "a remove operation needs a path naming what to remove")
		}
		valueKey, hasValue := lookupKeyName(op, "value")
		if !hasValue {
			continue
		}
		if pathStr == "" {
			if m, ok := op[valueKey].(map[string]any); ok {
				flattenSchemaObjects(m, res)
				for k, mv := range m {
					if isManagerPath(k, res) {
						m[k] = managerValue(mv)
					}
				}
			}
			continue
		}
		if isManagerPath(pathStr, res) {
			op[valueKey] = managerValue(op[valueKey])
		}
	}
	return json.Marshal(req)
}

// NormalizeResource rewrites IdP quirks in a POST/PUT body: Entra's
// enterprise manager as a bare id string becomes {"value": id}.
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
			if s, isString := m[mk].(string); isString {
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
// for the extension schemas, and into {"a": 1} for the core schema.
func flattenSchemaObjects(m map[string]any, res Resource) {
	for k, v := range m {
		obj, ok := v.(map[string]any)
		if !ok {
			continue
		}
		switch {
		case strings.EqualFold(k, res.Core.ID):
			delete(m, k)
			for sk, sv := range obj {
				m[sk] = sv
			}
		default:
			for _, ext := range res.Extensions {
				if strings.EqualFold(k, ext.ID) {
					delete(m, k)
					for sk, sv := range obj {
						m[ext.ID+":"+sk] = sv
					}
				}
			}
		}
	}
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
		if s == "" {
			return map[string]any{}
		}
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

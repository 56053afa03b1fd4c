// Package patch applies SCIM PATCH operations (RFC 7644 §3.5.2) to a
// resource document, with the forms Okta and Entra really send: path-less
// merges, dotted and schema-URN keys, filtered paths that create a missing
// element, Entra's "remove these members" and string booleans. The library
// parses and validates operations; this package decides what they mean.
package patch

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	scimlib "github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/schema"
	"github.com/scim2/filter-parser/v2"

	"github.com/gatehouse-id/gatehouse/gateway/scim/query"
)

// Resource describes the resource type being patched.
type Resource = query.Resource

func scimErr(t scimerrors.ScimType, format string, args ...any) error {
	return scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: t, Detail: fmt.Sprintf(format, args...)}
}

// Apply applies ops in order to a copy of doc and returns the result. It is
// all or nothing: on error doc is untouched and the error is a 400
// errors.ScimError value with a scimType.
func Apply(doc map[string]any, ops []scimlib.PatchOperation, res Resource) (map[string]any, error) {
	out := deepCopy(doc).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	for i, op := range ops {
		if err := applyOp(out, op, res); err != nil {
			if se, ok := err.(scimerrors.ScimError); ok {
				se.Detail = fmt.Sprintf("Operations[%d] (%s): %s", i, op.Op, se.Detail)
				return nil, se
			}
			return nil, err
		}
	}
	if err := validate(out, res); err != nil {
		return nil, err
	}
	return out, nil
}

func applyOp(doc map[string]any, op scimlib.PatchOperation, res Resource) error {
	kind := strings.ToLower(op.Op)
	switch kind {
	case "add", "replace", "remove":
	default:
		return scimErr(scimerrors.ScimTypeInvalidValue, "unknown op %q: use add, replace or remove", op.Op)
	}
	if op.Path != nil {
		return applyPath(doc, kind, *op.Path, op.Value, res)
	}
	if kind == "remove" {
		return scimErr(scimerrors.ScimTypeNoTarget, "remove needs a path")
	}
	values, ok := op.Value.(map[string]any)
	if !ok {
		return scimErr(scimerrors.ScimTypeInvalidValue, "a path-less %s needs an object value", kind)
	}
	// Path-less add/replace merges each key into the resource (Okta's
	// deactivation sends only {"active":false}). Keys may be dotted or
	// schema-URN-prefixed paths. Sorted for a deterministic result.
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p, err := query.ParsePath(k)
		if err != nil {
			return scimErr(scimerrors.ScimTypeInvalidPath, "cannot parse the key %q as an attribute path", k)
		}
		if err := applyPath(doc, kind, p, values[k], res); err != nil {
			return err
		}
	}
	return nil
}

// target is an attribute located in the document.
type target struct {
	container map[string]any // the map holding the attribute
	def       schema.CoreAttribute
	key       string // canonical name
	ext       string // extension URN when the attribute lives in one
}

func locate(doc map[string]any, p filter.AttributePath, res Resource, create bool) (target, error) {
	container, attrs, ext := doc, res.Core.Attributes, ""
	if uri := p.URI(); uri != "" && !strings.EqualFold(uri, res.Core.ID) {
		found := false
		for _, e := range res.Extensions {
			if strings.EqualFold(uri, e.ID) {
				found, attrs, ext = true, e.Attributes, e.ID
				m, _ := doc[e.ID].(map[string]any)
				if m == nil {
					m = map[string]any{}
					if create {
						doc[e.ID] = m
					}
				}
				container = m
			}
		}
		if !found {
			return target{}, scimErr(scimerrors.ScimTypeInvalidPath, "unknown schema %q", uri)
		}
	}
	def, ok := attrs.ContainsAttribute(p.AttributeName)
	if !ok {
		return target{}, scimErr(scimerrors.ScimTypeInvalidPath, "unknown attribute %q", p.AttributeName)
	}
	return target{container: container, def: def, key: def.Name(), ext: ext}, nil
}

func checkMutable(def schema.CoreAttribute, kind, name string) error {
	switch def.Mutability() {
	case "readOnly":
		return scimErr(scimerrors.ScimTypeMutability, "%q is read-only", name)
	case "immutable":
		if kind != "add" {
			return scimErr(scimerrors.ScimTypeMutability, "%q is immutable: it can be set once but not replaced or removed", name)
		}
	}
	return nil
}

func applyPath(doc map[string]any, kind string, p filter.Path, value any, res Resource) error {
	t, err := locate(doc, p.AttributePath, res, kind != "remove")
	if err != nil {
		return err
	}
	name := p.AttributePath.AttributeName
	if err := checkMutable(t.def, kind, name); err != nil {
		return err
	}
	attrSub := p.AttributePath.SubAttributeName()
	if p.ValueExpression != nil {
		return applyFiltered(t, kind, p, value)
	}
	if attrSub == "" {
		return applyWhole(t, kind, value)
	}
	sdef, ok := t.def.SubAttributes().ContainsAttribute(attrSub)
	if !ok {
		return scimErr(scimerrors.ScimTypeInvalidPath, "%q has no sub-attribute %q", t.key, attrSub)
	}
	if err := checkMutable(sdef, kind, name+"."+attrSub); err != nil {
		return err
	}
	if t.def.MultiValued() {
		// emails.value without a filter addresses every element.
		list := query.AsList(t.container[t.key])
		if kind == "remove" {
			for _, el := range list {
				if m, ok := el.(map[string]any); ok {
					delete(m, sdef.Name())
				}
			}
			return nil
		}
		if len(list) == 0 {
			return scimErr(scimerrors.ScimTypeNoTarget, "%q has no values to set %q on", t.key, sdef.Name())
		}
		for _, el := range list {
			if m, ok := el.(map[string]any); ok {
				m[sdef.Name()] = coerce(sdef, value)
			}
		}
		return nil
	}
	m, _ := t.container[t.key].(map[string]any)
	if kind == "remove" {
		if m != nil {
			delete(m, sdef.Name())
			if len(m) == 0 {
				delete(t.container, t.key)
			}
		}
		return nil
	}
	if m == nil {
		m = map[string]any{}
		t.container[t.key] = m
	}
	m[sdef.Name()] = coerce(sdef, value)
	return nil
}

// applyWhole handles a path naming an attribute without filter or
// sub-attribute.
func applyWhole(t target, kind string, value any) error {
	switch {
	case kind == "remove" && value != nil && t.def.MultiValued():
		// Entra: {"op":"Remove","path":"members","value":[{"value":"id"}]}
		// removes those members, not all of them.
		list := query.AsList(t.container[t.key])
		for _, v := range query.AsList(value) {
			list = slices.DeleteFunc(list, func(el any) bool { return sameElement(el, v) })
		}
		setList(t, list)
	case kind == "remove":
		delete(t.container, t.key)
	case t.def.MultiValued() && kind == "add":
		list := query.AsList(t.container[t.key])
		for _, v := range query.AsList(value) {
			v = coerce(t.def, v)
			if i := slices.IndexFunc(list, func(el any) bool { return sameElement(el, v) }); i >= 0 {
				list[i] = v // same member or value: keep one, the newer
				continue
			}
			list = append(list, v)
		}
		setList(t, list)
	case t.def.MultiValued():
		list := []any{}
		for _, v := range query.AsList(value) {
			list = append(list, coerce(t.def, v))
		}
		setList(t, list)
	case t.def.HasSubAttributes():
		// A complex attribute: the given sub-attributes replace or add;
		// the others are left unchanged (RFC 7644 §3.5.2.1 and .3).
		v, ok := value.(map[string]any)
		if !ok {
			return scimErr(scimerrors.ScimTypeInvalidValue, "%q needs an object value", t.key)
		}
		m, _ := t.container[t.key].(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		for k, sv := range v {
			sdef, ok := t.def.SubAttributes().ContainsAttribute(k)
			if !ok {
				return scimErr(scimerrors.ScimTypeInvalidPath, "%q has no sub-attribute %q", t.key, k)
			}
			m[sdef.Name()] = coerce(sdef, sv)
		}
		t.container[t.key] = m
	default:
		t.container[t.key] = coerce(t.def, value)
	}
	return nil
}

func setList(t target, list []any) {
	if len(list) == 0 {
		delete(t.container, t.key)
		return
	}
	t.container[t.key] = onePrimary(list)
}

// onePrimary keeps "primary": true on at most one element, the last one
// set (RFC 7643 §2.4), so an added primary email demotes the old one.
func onePrimary(list []any) []any {
	last := -1
	for i, el := range list {
		if m, ok := el.(map[string]any); ok && m["primary"] == true {
			last = i
		}
	}
	for i, el := range list {
		if m, ok := el.(map[string]any); ok && i != last && m["primary"] == true {
			m["primary"] = false
		}
	}
	return list
}

// sameElement says whether two values of a multi-valued attribute name the
// same thing: by "value" for complex elements that have one (members,
// emails), by equality otherwise.
func sameElement(a, b any) bool {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		av, ahas := am["value"]
		bv, bhas := bm["value"]
		if ahas && bhas {
			as, _ := av.(string)
			bs, _ := bv.(string)
			if as != "" || bs != "" {
				at, _ := am["type"].(string)
				bt, _ := bm["type"].(string)
				return as == bs && (at == "" || bt == "" || strings.EqualFold(at, bt))
			}
		}
	}
	return reflect.DeepEqual(a, b)
}

// applyFiltered handles attr[filter] and attr[filter].sub.
func applyFiltered(t target, kind string, p filter.Path, value any) error {
	if !t.def.MultiValued() || !t.def.HasSubAttributes() {
		return scimErr(scimerrors.ScimTypeInvalidPath, "a value filter needs a multi-valued complex attribute; %q is not one", t.key)
	}
	elemRes := query.Resource{Core: schema.Schema{Attributes: t.def.SubAttributes()}}
	list := query.AsList(t.container[t.key])
	var matched []int
	for i, el := range list {
		m, ok := el.(map[string]any)
		if !ok {
			continue
		}
		hit, err := query.Match(p.ValueExpression, m, elemRes)
		if err != nil {
			return scimErr(scimerrors.ScimTypeInvalidFilter, "the value filter of %q cannot be evaluated: %v", t.key, err)
		}
		if hit {
			matched = append(matched, i)
		}
	}
	// The library validates a value for attr[filter] as a list of one.
	if l, ok := value.([]any); ok && len(l) == 1 && p.SubAttributeName() == "" {
		value = l[0]
	}
	sub := p.SubAttributeName()
	var sdef schema.CoreAttribute
	if sub != "" {
		var ok bool
		if sdef, ok = t.def.SubAttributes().ContainsAttribute(sub); !ok {
			return scimErr(scimerrors.ScimTypeInvalidPath, "%q has no sub-attribute %q", t.key, sub)
		}
		if err := checkMutable(sdef, kind, t.key+"."+sub); err != nil {
			return err
		}
	}
	if kind == "remove" {
		// Removing what is not there is a no-op rather than noTarget: Okta
		// retries membership removals, and a retry must not fail.
		if sub == "" {
			for _, i := range slices.Backward(matched) {
				list = slices.Delete(list, i, i+1)
			}
			setList(t, list)
			return nil
		}
		for _, i := range matched {
			delete(list[i].(map[string]any), sdef.Name())
		}
		return nil
	}
	if len(matched) == 0 {
		// Entra: Replace emails[type eq "work"].value on a user without a
		// work email creates it from the filter's equalities.
		seed, ok := equalities(p.ValueExpression, t.def)
		if !ok {
			return scimErr(scimerrors.ScimTypeNoTarget, "no value of %q matches the filter", t.key)
		}
		if sub != "" {
			seed[sdef.Name()] = coerce(sdef, value)
		} else {
			v, ok := value.(map[string]any)
			if !ok {
				return scimErr(scimerrors.ScimTypeInvalidValue, "%q[filter] needs an object value", t.key)
			}
			if kind == "replace" {
				return scimErr(scimerrors.ScimTypeNoTarget, "no value of %q matches the filter", t.key)
			}
			for k, sv := range v {
				if d, ok := t.def.SubAttributes().ContainsAttribute(k); ok {
					seed[d.Name()] = coerce(d, sv)
				}
			}
		}
		setList(t, append(list, seed))
		return nil
	}
	for _, i := range matched {
		el := list[i].(map[string]any)
		if sub != "" {
			el[sdef.Name()] = coerce(sdef, value)
			continue
		}
		v, ok := value.(map[string]any)
		if !ok {
			return scimErr(scimerrors.ScimTypeInvalidValue, "%q[filter] needs an object value", t.key)
		}
		for k, sv := range v {
			d, ok := t.def.SubAttributes().ContainsAttribute(k)
			if !ok {
				return scimErr(scimerrors.ScimTypeInvalidPath, "%q has no sub-attribute %q", t.key, k)
			}
			el[d.Name()] = coerce(d, sv)
		}
	}
	setList(t, list)
	return nil
}

// equalities returns the sub-attribute values a filter made only of `eq`
// terms joined by `and` pins down, to seed a new element.
func equalities(e filter.Expression, def schema.CoreAttribute) (map[string]any, bool) {
	switch x := e.(type) {
	case *filter.AttributeExpression:
		d, ok := def.SubAttributes().ContainsAttribute(x.AttributePath.AttributeName)
		if x.Operator != filter.EQ || !ok || x.AttributePath.SubAttributeName() != "" || x.CompareValue == nil {
			return nil, false
		}
		return map[string]any{d.Name(): coerce(d, x.CompareValue)}, true
	case *filter.LogicalExpression:
		if x.Operator != filter.AND {
			return nil, false
		}
		l, lok := equalities(x.Left, def)
		r, rok := equalities(x.Right, def)
		if !lok || !rok {
			return nil, false
		}
		for k, v := range r {
			l[k] = v
		}
		return l, true
	}
	return nil, false
}

// coerce converts Entra's string booleans ("True", "False") for boolean
// attributes, recursing into complex values.
func coerce(def schema.CoreAttribute, v any) any {
	switch {
	case def.AttributeType() == "boolean":
		if s, ok := v.(string); ok {
			if b, err := strconv.ParseBool(strings.ToLower(s)); err == nil {
				return b
			}
		}
	case def.HasSubAttributes():
		if m, ok := v.(map[string]any); ok {
			out := make(map[string]any, len(m))
			for k, sv := range m {
				if sd, ok := def.SubAttributes().ContainsAttribute(k); ok {
					out[sd.Name()] = coerce(sd, sv)
				} else {
					out[k] = sv
				}
			}
			return out
		}
	}
	return v
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		if t == nil {
			return map[string]any(nil)
		}
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = deepCopy(x)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, x := range t {
			l[i] = deepCopy(x)
		}
		return l
	}
	return v
}

// validate checks the patched document against the schemas: required
// attributes present, values of the right types.
func validate(doc map[string]any, res Resource) error {
	check := func(s schema.Schema, part any) error {
		if _, se := s.Validate(part); se != nil {
			return scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: scimerrors.ScimTypeInvalidValue,
				Detail: "the result would not be a valid resource: " + requiredHint(s, part, se)}
		}
		return nil
	}
	if err := check(res.Core, doc); err != nil {
		return err
	}
	for _, e := range res.Extensions {
		if part, ok := doc[e.ID]; ok {
			if err := check(e, part); err != nil {
				return err
			}
		}
	}
	return nil
}

func requiredHint(s schema.Schema, part any, se *scimerrors.ScimError) string {
	m, _ := part.(map[string]any)
	for _, a := range s.Attributes {
		if a.Required() && a.Mutability() != "readOnly" && m[a.Name()] == nil {
			return fmt.Sprintf("%q is required", a.Name())
		}
	}
	return se.Detail
}

// Package patch applies SCIM PATCH operations (RFC 7644 §3.5.2) to a
// resource document, with the forms Okta and Entra really send: path-less
// merges, dotted and schema-URN keys, filtered paths that create a missing
// element, Entra's "remove these members" and string booleans. The library
// (elimity-com/scim) parses and validates operations; this package decides
// what they mean.
//
// A document is a map of SCIM attributes by canonical schema name, with
// extension attributes nested under their schema URN; it never holds id,
// meta or schemas values of its own.
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

// Resource describes the resource type being patched: its core schema
// (with the common attributes it accepts) and its extensions.
type Resource = query.Resource

const (
	opAdd     = "add"
	opReplace = "replace"
	opRemove  = "remove"
)

func scimErr(t scimerrors.ScimType, format string, args ...any) error {
	return scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: t, Detail: fmt.Sprintf(format, args...)}
}

// Apply applies ops in order to a copy of doc and returns the result. It is
// all or nothing: on error doc is untouched, no document is returned and
// the error is a 400 errors.ScimError value with a scimType (invalidPath,
// invalidValue, invalidFilter, noTarget or mutability).
func Apply(doc map[string]any, ops []scimlib.PatchOperation, res Resource) (map[string]any, error) {
	out, _ := deepCopy(doc).(map[string]any)
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
	prune(out, res)
	if err := validate(out, res); err != nil {
		return nil, err
	}
	return out, nil
}

func applyOp(doc map[string]any, op scimlib.PatchOperation, res Resource) error {
	kind := strings.ToLower(op.Op)
	switch kind {
	case opAdd, opReplace, opRemove:
	default:
		return scimErr(scimerrors.ScimTypeInvalidValue, "unknown op %q: use add, replace or remove", op.Op)
	}
	if kind != opRemove && op.Value == nil {
		return scimErr(scimerrors.ScimTypeInvalidValue, "%s needs a value", kind)
	}
	if op.Path != nil {
		return applyPath(doc, kind, *op.Path, op.Value, res)
	}
	if kind == opRemove {
		return scimErr(scimerrors.ScimTypeNoTarget, "remove needs a path")
	}
	values, ok := op.Value.(map[string]any)
	if !ok {
		return scimErr(scimerrors.ScimTypeInvalidValue, "a path-less %s needs an object value", kind)
	}
	// Path-less add/replace merges each key into the resource (Okta's
	// deactivation sends only {"active":false}); it never replaces the
	// resource. Keys may be dotted or schema-URN-prefixed paths. Sorted so
	// that "name" is applied before "name.givenName", deterministically.
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
}

func locate(doc map[string]any, p filter.AttributePath, res Resource, create bool) (target, error) {
	container, attrs := doc, res.Core.Attributes
	if uri := p.URI(); uri != "" && !strings.EqualFold(uri, res.Core.ID) {
		i := slices.IndexFunc(res.Extensions, func(e schema.Schema) bool { return strings.EqualFold(uri, e.ID) })
		if i < 0 {
			return target{}, scimErr(scimerrors.ScimTypeInvalidPath, "unknown schema %q", uri)
		}
		e := res.Extensions[i]
		attrs = e.Attributes
		m, _ := doc[e.ID].(map[string]any)
		if m == nil {
			// A remove must not leave an empty extension behind; for add and
			// replace an empty one is pruned after the operations.
			m = map[string]any{}
			if create {
				doc[e.ID] = m
			}
		}
		container = m
	}
	def, ok := attrs.ContainsAttribute(p.AttributeName)
	if !ok {
		return target{}, scimErr(scimerrors.ScimTypeInvalidPath, "unknown attribute %q", p.AttributeName)
	}
	return target{container: container, def: def, key: def.Name()}, nil
}

// checkMutable enforces RFC 7643 §2.2 for an operation that targets def
// by its path: readOnly is never writable, immutable only by add.
func checkMutable(def schema.CoreAttribute, kind, name string) error {
	switch def.Mutability() {
	case "readOnly":
		return scimErr(scimerrors.ScimTypeMutability, "%q is read-only", name)
	case "immutable":
		if kind != opAdd {
			return scimErr(scimerrors.ScimTypeMutability, "%q is immutable: it can be set once but not replaced or removed", name)
		}
	}
	return nil
}

func applyPath(doc map[string]any, kind string, p filter.Path, value any, res Resource) error {
	t, err := locate(doc, p.AttributePath, res, kind != opRemove)
	if err != nil {
		return err
	}
	name := p.AttributePath.AttributeName
	if err := checkMutable(t.def, kind, name); err != nil {
		return err
	}
	if p.ValueExpression != nil {
		return applyFiltered(t, kind, p, value)
	}
	attrSub := p.AttributePath.SubAttributeName()
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
		if kind == opRemove {
			for _, el := range list {
				if m, ok := el.(map[string]any); ok {
					delete(m, sdef.Name())
				}
			}
			return nil
		}
		n := 0
		for _, el := range list {
			if m, ok := el.(map[string]any); ok {
				m[sdef.Name()] = coerce(sdef, value)
				n++
			}
		}
		if n == 0 {
			return scimErr(scimerrors.ScimTypeNoTarget, "%q has no values to set %q on", t.key, sdef.Name())
		}
		setList(t, list)
		return nil
	}
	m, _ := t.container[t.key].(map[string]any)
	if kind == opRemove {
		if m != nil {
			delete(m, sdef.Name())
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
	case kind == opRemove && value != nil && t.def.MultiValued():
		// Entra: {"op":"Remove","path":"members","value":[{"value":"id"}]}
		// removes those members, not all of them.
		var gone elements
		for _, v := range query.AsList(value) {
			gone.add(coerce(t.def, v))
		}
		list := query.AsList(t.container[t.key])
		setList(t, slices.DeleteFunc(list, func(el any) bool { return gone.find(el) >= 0 }))
	case kind == opRemove:
		delete(t.container, t.key)
	case t.def.MultiValued() && kind == opAdd:
		list := query.AsList(t.container[t.key])
		var have elements
		for _, el := range list {
			have.add(el)
		}
		for _, v := range query.AsList(value) {
			v = coerce(t.def, v)
			if i := have.find(v); i >= 0 {
				list[i] = v // the same member or address again: keep one, the newer
				have.set(i, v)
				continue
			}
			have.add(v)
			list = append(list, v)
		}
		setList(t, list)
	case t.def.MultiValued():
		list := []any{}
		var have elements
		for _, v := range query.AsList(value) {
			v = coerce(t.def, v)
			if have.find(v) < 0 {
				have.add(v)
				list = append(list, v)
			}
		}
		setList(t, list)
	case t.def.HasSubAttributes():
		// A complex attribute: the given sub-attributes are added or
		// replaced, the others are kept (RFC 7644 §3.5.2.1; for replace this
		// is what Okta and Entra expect of `"name":{"givenName":"X"}`).
		m, _ := t.container[t.key].(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		if err := merge(m, t.def, kind, value); err != nil {
			return err
		}
		t.container[t.key] = m
	default:
		t.container[t.key] = coerce(t.def, value)
	}
	return nil
}

// merge sets the sub-attributes given in value (a complex value) on el.
// readOnly sub-attributes are dropped, as the library drops them from a
// POST or PUT (manager.displayName); an immutable one may be set once but
// not changed.
func merge(el map[string]any, def schema.CoreAttribute, kind string, value any) error {
	v, ok := value.(map[string]any)
	if !ok {
		return scimErr(scimerrors.ScimTypeInvalidValue, "%q needs an object value", def.Name())
	}
	for k, sv := range v {
		sdef, ok := def.SubAttributes().ContainsAttribute(k)
		if !ok {
			return scimErr(scimerrors.ScimTypeInvalidPath, "%q has no sub-attribute %q", def.Name(), k)
		}
		nv := coerce(sdef, sv)
		switch sdef.Mutability() {
		case "readOnly":
			continue
		case "immutable":
			old, has := el[sdef.Name()]
			if (has && !reflect.DeepEqual(old, nv)) || (!has && kind == opReplace) {
				return scimErr(scimerrors.ScimTypeMutability, "%q is immutable", def.Name()+"."+sdef.Name())
			}
		}
		el[sdef.Name()] = nv
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
// same thing: for complex elements that have a "value", by that value
// (compared exactly: member ids are caseExact) and by "type" when both
// carry one, so that a member or an address added twice is kept once and
// Entra's removal by {"value":id} finds the stored member whatever else it
// carries; by equality otherwise.
func sameElement(a, b any) bool {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		as, aIsStr := am["value"].(string)
		bs, bIsStr := bm["value"].(string)
		if aIsStr && bIsStr && (as != "" || bs != "") {
			at, _ := am["type"].(string)
			bt, _ := bm["type"].(string)
			return as == bs && (at == "" || bt == "" || strings.EqualFold(at, bt))
		}
	}
	return reflect.DeepEqual(a, b)
}

// elements indexes the values of a multi-valued attribute for sameElement
// look-ups in constant time: complex values by their "value" string,
// anything else in a short list compared one by one. Adding or removing
// 10,000 members is then linear, not quadratic.
type elements struct {
	byValue map[string][]int // value → positions (same value, other types)
	vals    []any            // by position
	other   []int            // positions of values without a string "value"
}

func elementValue(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return "", false
	}
	s, ok := m["value"].(string)
	return s, ok && s != ""
}

func (e *elements) add(v any) {
	i := len(e.vals)
	e.vals = append(e.vals, v)
	if key, ok := elementValue(v); ok {
		if e.byValue == nil {
			e.byValue = map[string][]int{}
		}
		e.byValue[key] = append(e.byValue[key], i)
		return
	}
	e.other = append(e.other, i)
}

// set replaces the value at position i with one of the same "value".
func (e *elements) set(i int, v any) { e.vals[i] = v }

// find returns the position of a value sameElement as v, or -1.
func (e *elements) find(v any) int {
	candidates := e.other
	if key, ok := elementValue(v); ok {
		candidates = e.byValue[key]
	}
	for _, i := range candidates {
		if sameElement(e.vals[i], v) {
			return i
		}
	}
	return -1
}

// elementAttrs is the schema a value filter on def is evaluated against.
// Member ids are compared exactly although RFC 7643's schema leaves
// members.value caseExact=false: two ids that differ only in case are two
// resources, and removing the wrong member is worse than removing none.
func elementAttrs(def schema.CoreAttribute) schema.Attributes {
	subs := def.SubAttributes()
	if !strings.EqualFold(def.Name(), "members") {
		return subs
	}
	out := slices.Clone(subs)
	for i, a := range out {
		if a.Name() == "value" && a.AttributeType() == "string" && !a.CaseExact() {
			out[i] = schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
				Name: a.Name(), CaseExact: true, Mutability: schema.AttributeMutabilityImmutable(),
			}))
		}
	}
	return out
}

// applyFiltered handles attr[filter] and attr[filter].sub.
func applyFiltered(t target, kind string, p filter.Path, value any) error {
	if !t.def.MultiValued() || !t.def.HasSubAttributes() {
		return scimErr(scimerrors.ScimTypeInvalidPath, "a value filter needs a multi-valued complex attribute; %q is not one", t.key)
	}
	elemRes := query.Resource{Core: schema.Schema{Attributes: elementAttrs(t.def)}}
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
	} else if kind != opRemove {
		// The library validates the value of attr[filter] as a list of
		// elements; a filtered path addresses one element's sub-attributes.
		l, isList := value.([]any)
		if isList && len(l) != 1 {
			return scimErr(scimerrors.ScimTypeInvalidValue, "%q[filter] needs one object value", t.key)
		}
		if isList {
			value = l[0]
		}
	}
	if kind == opRemove {
		// Removing what is not there is a no-op rather than RFC 7644's
		// noTarget: Okta and Entra retry membership removals, and a retry
		// of a removal that did happen must not fail.
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
		// work email creates it from the filter's equalities. A replace of
		// whole elements (no sub-attribute) has nothing to replace.
		seed, ok := equalities(p.ValueExpression, t.def)
		if !ok || (sub == "" && kind == opReplace) {
			return scimErr(scimerrors.ScimTypeNoTarget, "no value of %q matches the filter", t.key)
		}
		if sub != "" {
			seed[sdef.Name()] = coerce(sdef, value)
		} else if err := merge(seed, t.def, opAdd, value); err != nil {
			return err
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
		if err := merge(el, t.def, kind, value); err != nil {
			return err
		}
	}
	setList(t, list)
	return nil
}

// equalities returns the sub-attribute values that a filter made only of
// `eq` terms joined by `and` pins down, to seed a new element. Contradicting
// terms (type eq "a" and type eq "b") pin down nothing.
func equalities(e filter.Expression, def schema.CoreAttribute) (map[string]any, bool) {
	switch x := e.(type) {
	case *filter.AttributeExpression:
		if x == nil || x.Operator != filter.EQ || x.AttributePath.SubAttributeName() != "" || x.AttributePath.URI() != "" || x.CompareValue == nil {
			return nil, false
		}
		d, ok := def.SubAttributes().ContainsAttribute(x.AttributePath.AttributeName)
		if !ok || d.Mutability() == "readOnly" {
			return nil, false
		}
		return map[string]any{d.Name(): coerce(d, x.CompareValue)}, true
	case *filter.LogicalExpression:
		if x == nil || x.Operator != filter.AND {
			return nil, false
		}
		l, lok := equalities(x.Left, def)
		r, rok := equalities(x.Right, def)
		if !lok || !rok {
			return nil, false
		}
		for k, v := range r {
			if old, ok := l[k]; ok && !reflect.DeepEqual(old, v) {
				return nil, false
			}
			l[k] = v
		}
		return l, true
	}
	return nil, false
}

// coerce brings a value to the document's canonical form: Entra's string
// booleans ("True", "False") become booleans whatever the library's global
// SetAllowStringValues says, sub-attribute names take their schema
// spelling, and readOnly sub-attributes are dropped.
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
				sd, ok := def.SubAttributes().ContainsAttribute(k)
				switch {
				case !ok:
					out[k] = sv // left for validation to judge
				case sd.Mutability() != "readOnly":
					out[sd.Name()] = coerce(sd, sv)
				}
			}
			return out
		}
	}
	return v
}

// deepCopy copies a JSON-shaped value. Other slice and map types (a
// []map[string]any built in Go) are copied into []any and map[string]any,
// so that nothing in the result is shared with the input and the engine
// sees one shape.
func deepCopy(v any) any {
	switch t := v.(type) {
	case nil, string, bool, float64:
		return v
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
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return []any(nil)
		}
		l := make([]any, rv.Len())
		for i := range l {
			l[i] = deepCopy(rv.Index(i).Interface())
		}
		return l
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return v
		}
		m := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			m[it.Key().String()] = deepCopy(it.Value().Interface())
		}
		return m
	}
	return v
}

// prune drops unassigned values (null, {} and [] all mean "unassigned" in
// RFC 7643 §2.5) and empty extensions, so that removing the last
// sub-attribute or member leaves no husk behind.
func prune(doc map[string]any, res Resource) {
	for _, e := range res.Extensions {
		if m, ok := doc[e.ID].(map[string]any); ok {
			pruneMap(m)
		}
	}
	pruneMap(doc)
}

func pruneMap(m map[string]any) {
	for k, v := range m {
		switch t := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			if len(t) == 0 {
				delete(m, k)
			}
		case []any:
			if len(t) == 0 {
				delete(m, k)
			}
		}
	}
}

// ValidateResource checks a POST or PUT document against the resource's
// schemas as the library does, with the schemas built once, and returns
// the attributes as the library hands them to a handler (canonical names,
// readOnly attributes dropped, extensions under their URN).
func ValidateResource(doc map[string]any, res Resource) (map[string]any, error) {
	attrs, se := res.Core.Validate(doc)
	if se != nil {
		return nil, scimErr(scimerrors.ScimTypeInvalidValue, "the resource is not valid: %s", requiredHint(res.Core, doc, se))
	}
	for _, e := range res.Extensions {
		part := doc[e.ID]
		if part == nil {
			continue
		}
		ext, se := e.Validate(part)
		if se != nil {
			return nil, scimErr(scimerrors.ScimTypeInvalidValue, "the %s extension is not valid: %s", e.ID, requiredHint(e, part, se))
		}
		attrs[e.ID] = ext
	}
	return attrs, nil
}

// validate checks the patched document against the schemas: required
// attributes present, values of the right types; and that every group
// member names a resource.
func validate(doc map[string]any, res Resource) error {
	check := func(s schema.Schema, part any) error {
		if _, se := s.Validate(part); se != nil {
			return scimErr(scimerrors.ScimTypeInvalidValue, "the result would not be a valid resource: %s", requiredHint(s, part, se))
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
	// RFC 7643's schema does not mark members.value required, but a member
	// without one names nobody and the store could not resolve it.
	if def, ok := res.Core.Attributes.ContainsAttribute("members"); ok && def.MultiValued() {
		for _, el := range query.AsList(doc[def.Name()]) {
			m, _ := el.(map[string]any)
			if s, _ := m["value"].(string); s == "" {
				return scimErr(scimerrors.ScimTypeInvalidValue, "every member needs a non-empty \"value\"")
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
	if se.Detail != "" {
		return se.Detail
	}
	return string(se.ScimType)
}

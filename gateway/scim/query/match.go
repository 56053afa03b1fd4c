package query

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/elimity-com/scim/schema"
	"github.com/scim2/filter-parser/v2"

	"github.com/gatehouse-id/gatehouse/gateway/fold"
)

// Resource is what evaluation needs to know about a resource type: its core
// schema (with the common attributes) and its extensions.
type Resource struct {
	Core       schema.Schema
	Extensions []schema.Schema
}

// ErrNotComparable is returned for a comparison the attribute's type does
// not support (e.g. gt on a boolean); the server answers invalidFilter.
var ErrNotComparable = errors.New("comparison not supported for this attribute type")

// Match evaluates expr against doc: SCIM attributes by name (any case),
// extension attributes nested under their schema URN, plus id, externalId
// and meta. An attribute the document lacks simply does not match.
func Match(expr filter.Expression, doc map[string]any, res Resource) (bool, error) {
	return match(expr, scope{doc: doc, attrs: res.Core.Attributes, res: res, top: true})
}

// scope is where attribute names are resolved: the resource (top) or one
// element of a multi-valued complex attribute inside a value filter.
type scope struct {
	doc   map[string]any
	attrs schema.Attributes
	res   Resource
	top   bool
}

func match(expr filter.Expression, sc scope) (bool, error) {
	switch e := expr.(type) {
	case *filter.AttributeExpression:
		return matchAttr(e, sc)
	case *filter.ValuePath:
		val, def, ok := sc.resolve(e.AttributePath.URI(), e.AttributePath.AttributeName)
		if !ok {
			return false, nil
		}
		inner := scope{attrs: def.SubAttributes(), res: sc.res}
		for _, el := range AsList(val) {
			m, ok := el.(map[string]any)
			if !ok {
				continue
			}
			inner.doc = m
			hit, err := match(e.ValueFilter, inner)
			if err != nil || hit {
				return hit, err
			}
		}
		return false, nil
	case *filter.LogicalExpression:
		l, err := match(e.Left, sc)
		if err != nil {
			return false, err
		}
		if e.Operator == filter.AND && !l {
			return false, nil
		}
		if e.Operator == filter.OR && l {
			return true, nil
		}
		return match(e.Right, sc)
	case *filter.NotExpression:
		hit, err := match(e.Expression, sc)
		return !hit && err == nil, err
	case nil:
		return true, nil
	}
	return false, fmt.Errorf("unsupported filter expression %T", expr)
}

// resolve finds an attribute's value and definition in the scope.
func (sc scope) resolve(uri, name string) (any, schema.CoreAttribute, bool) {
	doc, attrs := sc.doc, sc.attrs
	if uri != "" && sc.top {
		switch {
		case strings.EqualFold(uri, sc.res.Core.ID):
		default:
			found := false
			for _, ext := range sc.res.Extensions {
				if strings.EqualFold(uri, ext.ID) {
					m, _ := lookup(sc.doc, ext.ID).(map[string]any)
					doc, attrs, found = m, ext.Attributes, true
				}
			}
			if !found {
				return nil, schema.CoreAttribute{}, false
			}
		}
	}
	def, ok := attrs.ContainsAttribute(name)
	if !ok {
		return nil, def, false
	}
	return lookup(doc, def.Name()), def, true
}

// lookup reads a key case-insensitively (documents use canonical names,
// but be lenient with what was stored).
func lookup(doc map[string]any, key string) any {
	if v, ok := doc[key]; ok {
		return v
	}
	for k, v := range doc {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

// AsList views a SCIM attribute value as a list: nil for absent, the
// elements of a multi-valued value, or the single value.
func AsList(v any) []any {
	switch t := v.(type) {
	case nil:
		return nil
	case []any:
		return t
	case []map[string]any:
		out := make([]any, len(t))
		for i, m := range t {
			out[i] = m
		}
		return out
	}
	return []any{v}
}

func matchAttr(e *filter.AttributeExpression, sc scope) (bool, error) {
	val, def, ok := sc.resolve(e.AttributePath.URI(), e.AttributePath.AttributeName)
	if !ok {
		return false, nil
	}
	// Collect the candidate values: a sub-attribute of each element (or of
	// the complex value), or the values themselves. A complex multi-valued
	// attribute compared without a sub-attribute compares its "value".
	sub := e.AttributePath.SubAttributeName()
	if sub == "" && def.HasSubAttributes() {
		sub = "value"
		if _, ok := def.SubAttributes().ContainsAttribute(sub); !ok {
			if e.Operator == filter.PR {
				return present(val), nil
			}
			return false, nil
		}
	}
	var values []any
	if sub != "" {
		sdef, ok := def.SubAttributes().ContainsAttribute(sub)
		if !ok {
			return false, nil
		}
		def = sdef
		for _, el := range AsList(val) {
			if m, ok := el.(map[string]any); ok {
				values = append(values, lookup(m, sdef.Name()))
			}
		}
	} else {
		values = AsList(val)
	}
	if e.Operator == filter.PR {
		for _, v := range values {
			if present(v) {
				return true, nil
			}
		}
		return false, nil
	}
	if e.Operator == filter.NE {
		// ne is true when no value equals (an absent attribute is ne).
		hit, err := anyCompare(values, filter.EQ, e.CompareValue, def)
		return !hit && err == nil, err
	}
	return anyCompare(values, e.Operator, e.CompareValue, def)
}

func present(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case string:
		return t != ""
	case []any:
		return len(t) > 0
	case map[string]any:
		return len(t) > 0
	}
	return true
}

func anyCompare(values []any, op filter.CompareOperator, want any, def schema.CoreAttribute) (bool, error) {
	if want == nil { // eq null: true when absent
		if op != filter.EQ {
			return false, ErrNotComparable
		}
		for _, v := range values {
			if present(v) {
				return false, nil
			}
		}
		return true, nil
	}
	for _, v := range values {
		if v == nil {
			continue
		}
		hit, err := compare(v, op, want, def)
		if err != nil || hit {
			return hit, err
		}
	}
	return false, nil
}

func compare(v any, op filter.CompareOperator, want any, def schema.CoreAttribute) (bool, error) {
	switch def.AttributeType() {
	case "boolean":
		b, ok := toBool(v)
		w, wok := toBool(want)
		if op != filter.EQ {
			return false, ErrNotComparable
		}
		return ok && wok && b == w, nil
	case "integer", "decimal":
		f, ok := toFloat(v)
		w, wok := toFloat(want)
		if !ok || !wok {
			return false, nil
		}
		return ordered(op, cmpFloat(f, w))
	case "dateTime":
		t, ok := toTime(v)
		w, wok := toTime(want)
		if !ok || !wok {
			return false, nil
		}
		return ordered(op, t.Compare(w))
	}
	s, ok := v.(string)
	w, wok := want.(string)
	if !ok || !wok {
		return false, nil
	}
	if !def.CaseExact() {
		// The same key the unique indexes use, so a filter finds what
		// uniqueness considers the same name (straße, STRASSE).
		s, w = fold.Key(s), fold.Key(w)
	}
	switch op {
	case filter.EQ:
		return s == w, nil
	case filter.CO:
		return strings.Contains(s, w), nil
	case filter.SW:
		return strings.HasPrefix(s, w), nil
	case filter.EW:
		return strings.HasSuffix(s, w), nil
	}
	return ordered(op, strings.Compare(s, w))
}

// ordered applies an ordering operator to a three-way comparison.
func ordered(op filter.CompareOperator, c int) (bool, error) {
	switch op {
	case filter.EQ:
		return c == 0, nil
	case filter.GT:
		return c > 0, nil
	case filter.GE:
		return c >= 0, nil
	case filter.LT:
		return c < 0, nil
	case filter.LE:
		return c <= 0, nil
	}
	return false, ErrNotComparable
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func toBool(v any) (bool, bool) {
	switch t := v.(type) {
	case bool:
		return t, true
	case string:
		b, err := strconv.ParseBool(strings.ToLower(t))
		return b, err == nil
	}
	return false, false
}

func toFloat(v any) (float64, bool) {
	switch t := v.(type) {
	case int:
		return float64(t), true
	case int64:
		return float64(t), true
	case float64:
		return t, !math.IsNaN(t)
	case interface{ Float64() (float64, error) }: // json.Number
		f, err := t.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(t, 64)
		return f, err == nil
	}
	return 0, false
}

func toTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, true
	case string:
		if p, err := time.Parse(time.RFC3339Nano, t); err == nil {
			return p, true
		}
	}
	return time.Time{}, false
}

package query

import (
	"strings"

	"github.com/scim2/filter-parser/v2"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// Kind is the resource type a filter runs over.
type Kind int

const (
	Users Kind = iota
	Groups
)

// IndexID is the plan index meaning "look the id up directly".
const IndexID = "id"

// QueryPlan says how to find candidates for a filter. Index "" means a
// full scan. Candidates are always re-checked with Match against the whole
// filter, so a plan only has to find a superset of the matches.
type QueryPlan struct {
	Index string // IndexID, a gateway.UserIndex or a gateway.GroupIndex
	Value string
	// Exact: the index lookup alone answers the filter (a single `eq` on
	// an attribute whose index folds case exactly as the filter compares).
	Exact bool
}

// preference orders indexes from most to least selective.
var preference = []string{
	IndexID,
	string(gateway.UserByUserName), string(gateway.UserByExternalID), string(gateway.UserByEmail),
	string(gateway.GroupByDisplayName), string(gateway.GroupByMember),
}

func rank(index string) int {
	for i, p := range preference {
		if p == index {
			return i
		}
	}
	return len(preference)
}

// Plan picks an index for expr: an `eq` on an indexed attribute, or the
// best one of the two sides of an `and`. Anything else is a scan.
func Plan(expr filter.Expression, kind Kind) QueryPlan {
	switch e := expr.(type) {
	case *filter.AttributeExpression:
		p := planEq(kind, e.AttributePath, e.Operator, e.CompareValue)
		p.Exact = p.Index != ""
		return p
	case *filter.ValuePath:
		return planValuePath(kind, e)
	case *filter.LogicalExpression:
		if e.Operator != filter.AND {
			return QueryPlan{}
		}
		l, r := Plan(e.Left, kind), Plan(e.Right, kind)
		// The other side still has to be checked on each candidate.
		l.Exact, r.Exact = false, false
		switch {
		case l.Index == "":
			return r
		case r.Index == "":
			return l
		case rank(r.Index) < rank(l.Index):
			return r
		}
		return l
	}
	return QueryPlan{}
}

// attrName returns the lower-cased attribute name of p if it belongs to the
// core schema of kind (no URN prefix, or the core URN).
func attrName(kind Kind, p filter.AttributePath) (string, bool) {
	if uri := p.URI(); uri != "" {
		core := "urn:ietf:params:scim:schemas:core:2.0:User"
		if kind == Groups {
			core = "urn:ietf:params:scim:schemas:core:2.0:Group"
		}
		if !strings.EqualFold(uri, core) {
			return "", false
		}
	}
	return strings.ToLower(p.AttributeName), true
}

func planEq(kind Kind, p filter.AttributePath, op filter.CompareOperator, v any) QueryPlan {
	s, ok := v.(string)
	if op != filter.EQ || !ok {
		return QueryPlan{}
	}
	name, ok := attrName(kind, p)
	if !ok {
		return QueryPlan{}
	}
	sub := strings.ToLower(p.SubAttributeName())
	switch {
	case name == "id" && sub == "":
		return QueryPlan{Index: IndexID, Value: s}
	case name == "externalid" && sub == "" && kind == Users:
		return QueryPlan{Index: string(gateway.UserByExternalID), Value: s}
	case name == "externalid" && sub == "" && kind == Groups:
		return QueryPlan{Index: string(gateway.GroupByExternalID), Value: s}
	case name == "username" && sub == "" && kind == Users:
		return QueryPlan{Index: string(gateway.UserByUserName), Value: s}
	case name == "emails" && sub == "value" && kind == Users:
		return QueryPlan{Index: string(gateway.UserByEmail), Value: strings.ToLower(s)}
	case name == "displayname" && sub == "" && kind == Groups:
		return QueryPlan{Index: string(gateway.GroupByDisplayName), Value: s}
	case name == "members" && sub == "value" && kind == Groups:
		return QueryPlan{Index: string(gateway.GroupByMember), Value: s}
	}
	return QueryPlan{}
}

// planValuePath handles emails[… value eq "x" …] and members[value eq "x"].
func planValuePath(kind Kind, vp *filter.ValuePath) QueryPlan {
	name, ok := attrName(kind, vp.AttributePath)
	if !ok || vp.AttributePath.SubAttributeName() != "" {
		return QueryPlan{}
	}
	if !(name == "emails" && kind == Users) && !(name == "members" && kind == Groups) {
		return QueryPlan{}
	}
	v, found := valueEq(vp.ValueFilter)
	if !found {
		return QueryPlan{}
	}
	sub := "value"
	return planEq(kind, filter.AttributePath{AttributeName: name, SubAttribute: &sub}, filter.EQ, v)
}

// valueEq finds `value eq "x"` in a value filter made of and-ed terms.
func valueEq(e filter.Expression) (string, bool) {
	switch t := e.(type) {
	case *filter.AttributeExpression:
		s, ok := t.CompareValue.(string)
		if ok && t.Operator == filter.EQ && strings.EqualFold(t.AttributePath.AttributeName, "value") && t.AttributePath.SubAttributeName() == "" {
			return s, true
		}
	case *filter.LogicalExpression:
		if t.Operator == filter.AND {
			if v, ok := valueEq(t.Left); ok {
				return v, true
			}
			return valueEq(t.Right)
		}
	}
	return "", false
}

// References reports whether expr mentions the top-level attribute attr.
func References(expr filter.Expression, attr string) bool {
	switch e := expr.(type) {
	case *filter.AttributeExpression:
		return strings.EqualFold(e.AttributePath.AttributeName, attr)
	case *filter.ValuePath:
		return strings.EqualFold(e.AttributePath.AttributeName, attr)
	case *filter.LogicalExpression:
		return References(e.Left, attr) || References(e.Right, attr)
	case *filter.NotExpression:
		return References(e.Expression, attr)
	}
	return false
}

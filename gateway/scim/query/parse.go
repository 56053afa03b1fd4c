package query

import (
	"strings"
	"unicode/utf8"

	"github.com/scim2/filter-parser/v2"
)

// Parse parses a (normalised) filter. The forms IdPs send on every
// provisioning cycle, `attr op "value"` and `attr pr`, are parsed here
// directly; the general parser backtracks and allocates heavily and cost a
// fifth of all CPU under lookup load. Everything else goes to it.
func Parse(f string) (filter.Expression, error) {
	if e, ok := parseSimple(f); ok {
		return e, nil
	}
	return filter.ParseFilter([]byte(f))
}

func parseSimple(f string) (filter.Expression, bool) {
	toks := tokenize(f)
	if len(toks) < 2 || len(toks) > 3 || toks[0].kind != tWord || toks[1].kind != tWord {
		return nil, false
	}
	// Exactly the grammar's single spaces between tokens, nothing around.
	if toks[0].start != 0 || toks[len(toks)-1].end != len(f) {
		return nil, false
	}
	for i := 1; i < len(toks); i++ {
		if toks[i].start != toks[i-1].end+1 || f[toks[i-1].end] != ' ' {
			return nil, false
		}
	}
	path, ok := simplePath(f[toks[0].start:toks[0].end])
	if !ok {
		return nil, false
	}
	op := strings.ToLower(f[toks[1].start:toks[1].end])
	if len(toks) == 2 {
		if op != "pr" {
			return nil, false
		}
		return &filter.AttributeExpression{AttributePath: path, Operator: filter.PR}, true
	}
	v := toks[2]
	raw := f[v.start:v.end]
	// Only a plain quoted string: escapes and literals take the general path.
	if !valueOperators[op] || v.kind != tString || len(raw) < 2 || raw[len(raw)-1] != '"' || strings.ContainsRune(raw, '\\') {
		return nil, false
	}
	val := raw[1 : len(raw)-1]
	if !utf8.ValidString(val) || strings.IndexFunc(val, func(r rune) bool { return r < 0x20 }) >= 0 {
		return nil, false // the grammar's "unescaped" excludes control characters
	}
	return &filter.AttributeExpression{AttributePath: path, Operator: filter.CompareOperator(op), CompareValue: val}, true
}

// simplePath parses attr[.sub] made of name characters only; URN-prefixed
// paths are left to the general parser.
func simplePath(s string) (filter.AttributePath, bool) {
	var p filter.AttributePath
	name, sub, hasSub := strings.Cut(s, ".")
	if !isName(name) || hasSub && !isName(sub) {
		return p, false
	}
	p.AttributeName = name
	if hasSub {
		p.SubAttribute = &sub
	}
	return p, true
}

// isName: ATTRNAME = ALPHA *(nameChar), nameChar = "-" / "_" / DIGIT / ALPHA
// (RFC 7644), plus "$ref".
func isName(s string) bool {
	if s == "$ref" {
		return true
	}
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !(c >= '0' && c <= '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// ParsePath parses a PATCH path or path-less key. Plain keys (`active`,
// `name.givenName`, `urn:…:User:employeeNumber`) are parsed here; anything
// with a value filter goes to the general parser.
func ParsePath(s string) (filter.Path, error) {
	rest, uri := s, ""
	if i := strings.LastIndexByte(s, ':'); i > 0 && strings.HasPrefix(s, "urn:") {
		uri, rest = s[:i], s[i+1:]
	}
	if ap, ok := simplePath(rest); ok && (uri == "" || isURI(uri)) {
		if uri != "" {
			ap.URIPrefix = &uri
		}
		return filter.Path{AttributePath: ap}, nil
	}
	return filter.ParsePath([]byte(s))
}

// isURI matches the parser's URI grammar: segments of [A-Za-z0-9.]+
// separated by colons.
func isURI(s string) bool {
	for _, seg := range strings.Split(s, ":") {
		if seg == "" {
			return false
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; !isAlpha(c) && !(c >= '0' && c <= '9') && c != '.' {
				return false
			}
		}
	}
	return true
}

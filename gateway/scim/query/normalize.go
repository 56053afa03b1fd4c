// Package query executes SCIM list filters: it rewrites the filter forms
// IdPs send that the parser rejects, plans an index lookup for the
// equality filters Okta and Entra use, and evaluates any filter against a
// resource document.
package query

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
)

// NormalizeFilter rewrites IdP quirks into RFC 7644 filter syntax the
// parser accepts; a valid filter comes back unchanged.
//
//   - Entra sometimes URL-encodes the filter twice. Every valid filter has
//     a space (`attr op value`, `attr pr`), so a value without one that
//     still holds escapes is decoded once more.
//   - Entra's `emails[type eq "work"].value eq "x"` (a sub-attribute after
//     a value filter) becomes `emails[type eq "work" and value eq "x"]`.
//   - An unquoted string comparison value (`externalId eq 5a3b…`) is quoted.
func NormalizeFilter(raw string) string {
	f := raw
	if !strings.ContainsAny(f, " \t") && strings.ContainsAny(f, "%+") {
		if d, err := url.QueryUnescape(f); err == nil {
			f = d
		}
	}
	f = quoteBareValues(f)
	return hoistSubAttribute(f)
}

type tokenKind int

const (
	tWord tokenKind = iota
	tString
	tOpen  // [
	tClose // ]
	tParen // ( or )
)

type token struct {
	kind       tokenKind
	start, end int // byte offsets in the filter
}

// tokenize splits a filter into words, quoted strings, brackets and
// parentheses. An unterminated string runs to the end.
func tokenize(f string) []token {
	var toks []token
	for i := 0; i < len(f); {
		c := f[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '"':
			j := i + 1
			for j < len(f) && f[j] != '"' {
				if f[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(f))
			toks = append(toks, token{tString, i, j})
			i = j
		case c == '[':
			toks = append(toks, token{tOpen, i, i + 1})
			i++
		case c == ']':
			toks = append(toks, token{tClose, i, i + 1})
			i++
		case c == '(' || c == ')':
			toks = append(toks, token{tParen, i, i + 1})
			i++
		default:
			j := i
			for j < len(f) && !strings.ContainsRune(" \t\"[]()", rune(f[j])) {
				j++
			}
			toks = append(toks, token{tWord, i, j})
			i = j
		}
	}
	return toks
}

var valueOperators = map[string]bool{"eq": true, "ne": true, "co": true, "sw": true, "ew": true, "gt": true, "ge": true, "lt": true, "le": true}

func isLiteral(w string) bool {
	switch strings.ToLower(w) {
	case "true", "false", "null":
		return true
	}
	_, err := strconv.ParseFloat(w, 64)
	return err == nil
}

// quoteBareValues quotes a bare word in value position.
func quoteBareValues(f string) string {
	toks := tokenize(f)
	var b strings.Builder
	last := 0
	for i := 1; i+1 < len(toks); i++ {
		op, val := toks[i], toks[i+1]
		if op.kind != tWord || !valueOperators[strings.ToLower(f[op.start:op.end])] || val.kind != tWord {
			continue
		}
		w := f[val.start:val.end]
		if isLiteral(w) {
			continue
		}
		q, _ := json.Marshal(w)
		b.WriteString(f[last:val.start])
		b.Write(q)
		last = val.end
	}
	if last == 0 {
		return f
	}
	b.WriteString(f[last:])
	return b.String()
}

// hoistSubAttribute moves `.sub op value` after a value filter's closing
// bracket inside it as `and sub op value`.
func hoistSubAttribute(f string) string {
	for range 8 { // each pass rewrites one occurrence; filters are short
		toks := tokenize(f)
		done := true
		for i, t := range toks {
			if t.kind != tClose || i+2 >= len(toks) {
				continue
			}
			sub := toks[i+1]
			if sub.kind != tWord || sub.start != t.end || f[sub.start] != '.' || sub.end-sub.start < 2 {
				continue
			}
			op := toks[i+2]
			opName := strings.ToLower(f[op.start:op.end])
			end := op.end
			if op.kind != tWord {
				continue
			}
			if opName != "pr" {
				if !valueOperators[opName] || i+3 >= len(toks) || (toks[i+3].kind != tWord && toks[i+3].kind != tString) {
					continue
				}
				end = toks[i+3].end
			}
			open := matchingOpen(toks, i)
			if open < 0 {
				continue
			}
			inner := strings.TrimSpace(f[toks[open].end:t.start])
			if containsWord(inner, "or") {
				// The parser has no parentheses to group F inside brackets,
				// so this form cannot be expressed; leave it for the parser
				// to reject as invalidFilter.
				continue
			}
			cond := f[sub.start+1:sub.end] + f[sub.end:end]
			f = f[:toks[open].end] + inner + " and " + cond + "]" + f[end:]
			done = false
			break
		}
		if done {
			break
		}
	}
	return f
}

func matchingOpen(toks []token, closeIdx int) int {
	depth := 0
	for j := closeIdx; j >= 0; j-- {
		switch toks[j].kind {
		case tClose:
			depth++
		case tOpen:
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

func containsWord(f, word string) bool {
	for _, t := range tokenize(f) {
		if t.kind == tWord && strings.EqualFold(f[t.start:t.end], word) {
			return true
		}
	}
	return false
}

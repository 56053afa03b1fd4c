package query

import "fmt"

// Limits on a filter, checked before any parser sees it. The general
// parser recurses once per nesting level and per logical operator: a few
// hundred thousand "(" overflowed the goroutine stack (a fatal error no
// recover can catch), and every level costs ~17 KB. Real IdP filters are a
// few dozen characters with no nesting at all.
const (
	MaxFilterLength = 4096 // bytes
	MaxFilterDepth  = 16   // nested ( and [
	MaxFilterTerms  = 64   // and, or, not
)

// CheckLimits reports a filter (or a PATCH path with a value filter) that
// exceeds the limits. It scans bytes once, skipping quoted strings.
func CheckLimits(f string) error {
	if len(f) > MaxFilterLength {
		return fmt.Errorf("it is %d bytes long; the limit is %d", len(f), MaxFilterLength)
	}
	depth, terms := 0, 0
	for i := 0; i < len(f); {
		c := f[i]
		switch {
		case c == '"':
			i = skipString(f, i+1)
			continue
		case isWordByte(c):
			j := i
			for j < len(f) && isWordByte(f[j]) {
				j++
			}
			if w := f[i:j]; equalFoldASCII(w, "and") || equalFoldASCII(w, "or") || equalFoldASCII(w, "not") {
				terms++
			}
			i = j
			continue
		case c == '(' || c == '[':
			depth++
			if depth > MaxFilterDepth {
				return fmt.Errorf("it nests more than %d levels of parentheses or brackets", MaxFilterDepth)
			}
		case c == ')' || c == ']':
			if depth > 0 {
				depth--
			}
		}
		i++
	}
	if terms > MaxFilterTerms {
		return fmt.Errorf("it has %d logical operators (and, or, not); the limit is %d", terms, MaxFilterTerms)
	}
	return nil
}

// skipString returns the index just past the string whose body starts at i.
func skipString(f string, i int) int {
	for i < len(f) {
		switch f[i] {
		case '\\':
			i += 2
			continue
		case '"':
			return i + 1
		}
		i++
	}
	return i
}

func isWordByte(c byte) bool {
	return isAlpha(c) || c >= '0' && c <= '9' || c == '.' || c == ':' || c == '-' || c == '_' || c == '$'
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i]|0x20, b[i]|0x20
		if x != y {
			return false
		}
	}
	return true
}

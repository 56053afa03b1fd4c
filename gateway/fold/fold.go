// Package fold gives case-insensitive names (userName, group displayName)
// their comparison key: full Unicode case folding on NFC-normalised text
// with full-width forms mapped to their usual width, the mappings of the
// PRECIS framework (RFC 8264/8265) with case folding instead of
// lower-casing. "straße" and "STRASSE", "ﬀ" and "ff", and NFC and NFD
// "café" each get one key, so uniqueness cannot be dodged by spelling.
package fold

import (
	"golang.org/x/text/cases"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

// profile is immutable and safe for concurrent use. RFC 8265's
// UsernameCaseMapped lower-cases (ß stays ß); full case folding is what
// makes straße and STRASSE one name.
var profile = precis.NewFreeform(precis.FoldWidth, precis.FoldCase(), precis.Norm(norm.NFC))

// Key returns the comparison key of a case-insensitive name. It never
// fails: text the PRECIS freeform class refuses (unassigned or control
// code points) gets the same mappings without the class check.
func Key(s string) string {
	if ascii(s) {
		return asciiLower(s) // what the mappings give for ASCII, without their cost
	}
	if k, err := profile.String(s); err == nil {
		return k
	}
	return norm.NFC.String(cases.Fold().String(width.Fold.String(norm.NFC.String(s))))
}

// Equal reports whether two names are the same name.
func Equal(a, b string) bool { return a == b || Key(a) == Key(b) }

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

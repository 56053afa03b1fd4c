package scim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	scimerrors "github.com/elimity-com/scim/errors"

	"github.com/gatehouse-id/gatehouse/gateway/scim/patch"
	"github.com/gatehouse-id/gatehouse/gateway/scim/query"
)

// maxJSONDepth bounds the nesting of request bodies. A SCIM resource is at
// most four levels deep (extension → manager → value); decoding deeper
// input only costs memory.
const maxJSONDepth = 32

func syntaxError(format string, args ...any) error {
	return scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: scimerrors.ScimTypeInvalidSyntax, Detail: fmt.Sprintf(format, args...)}
}

func valueError(format string, args ...any) error {
	return scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: scimerrors.ScimTypeInvalidValue, Detail: fmt.Sprintf(format, args...)}
}

// checkJSON accepts exactly one JSON object, in valid UTF-8, without
// escaped lone surrogates and nested at most maxJSONDepth levels. Invalid
// UTF-8 and lone surrogates would otherwise decode to U+FFFD, so two
// different byte strings (two userNames) could become the same value.
func checkJSON(body []byte) error {
	if !utf8.Valid(body) {
		return syntaxError("The request body is not valid UTF-8 (at byte %d): send JSON encoded in UTF-8.", invalidUTF8At(body))
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return syntaxError("The request body must be one JSON object.")
	}
	if err := scanJSON(body); err != nil {
		return err
	}
	if !json.Valid(body) {
		dec := json.NewDecoder(bytes.NewReader(body))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return syntaxError("The request body is not valid JSON: %v.", err)
		}
		return syntaxError("The request body has data after its JSON object: send exactly one JSON object.")
	}
	return nil
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// scanJSON checks nesting depth and \u escapes in one pass over the bytes.
func scanJSON(b []byte) error {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{', '[':
			depth++
			if depth > maxJSONDepth {
				return syntaxError("The request body nests more than %d levels of objects and arrays.", maxJSONDepth)
			}
		case '}', ']':
			depth--
		case '"':
			end, err := scanString(b, i+1)
			if err != nil {
				return err
			}
			i = end
		}
	}
	return nil
}

// scanString checks the escapes of the string whose body starts at i and
// returns the index of its closing quote (or len(b) when unterminated,
// which json.Valid reports).
func scanString(b []byte, i int) (int, error) {
	pendingHigh := false
	for ; i < len(b); i++ {
		c := b[i]
		if c == '"' {
			if pendingHigh {
				return 0, loneSurrogate()
			}
			return i, nil
		}
		if c != '\\' {
			if pendingHigh {
				return 0, loneSurrogate()
			}
			continue
		}
		if i+1 >= len(b) {
			return len(b), nil
		}
		if b[i+1] != 'u' {
			if pendingHigh {
				return 0, loneSurrogate()
			}
			i++
			continue
		}
		if i+6 > len(b) {
			return len(b), nil
		}
		var r rune
		for _, h := range b[i+2 : i+6] {
			r <<= 4
			switch {
			case h >= '0' && h <= '9':
				r |= rune(h - '0')
			case h >= 'a' && h <= 'f':
				r |= rune(h-'a') + 10
			case h >= 'A' && h <= 'F':
				r |= rune(h-'A') + 10
			default:
				return len(b), nil // not an escape: json.Valid reports it
			}
		}
		switch {
		case r >= 0xD800 && r <= 0xDBFF:
			if pendingHigh {
				return 0, loneSurrogate()
			}
			pendingHigh = true
		case r >= 0xDC00 && r <= 0xDFFF:
			if !pendingHigh {
				return 0, loneSurrogate()
			}
			pendingHigh = false
		default:
			if pendingHigh {
				return 0, loneSurrogate()
			}
		}
		i += 5
	}
	return len(b), nil
}

func loneSurrogate() error {
	return syntaxError("The request body has a \\u escape of a lone UTF-16 surrogate, which is not a character: escape characters outside the BMP as a surrogate pair.")
}

// checkSchemas requires the top-level "schemas" of a POST or PUT body to
// be an array of strings holding the resource's core schema URN and
// otherwise only its extensions, and refuses a "schemas" key inside an
// extension object (the same rule PATCH applies).
func checkSchemas(doc map[string]any, res query.Resource, endpoint string) error {
	raw, ok := lookupAny(doc, "schemas")
	if !ok || raw == nil {
		return valueError("The request body has no \"schemas\" attribute: send \"schemas\":[%q] (RFC 7643 §3).", res.Core.ID)
	}
	list, ok := raw.([]any)
	if !ok {
		return valueError("\"schemas\" must be an array of schema URN strings, such as [%q].", res.Core.ID)
	}
	hasCore := false
	for _, v := range list {
		urn, ok := v.(string)
		switch {
		case !ok:
			return valueError("\"schemas\" must be an array of schema URN strings, such as [%q].", res.Core.ID)
		case strings.EqualFold(urn, res.Core.ID):
			hasCore = true
		case isExtension(urn, res):
		default:
			return valueError("\"schemas\" lists %q, which %s does not serve; it serves %s.", urn, endpoint, strings.Join(servedSchemas(res), ", "))
		}
	}
	if !hasCore {
		return valueError("\"schemas\" must include %q for %s.", res.Core.ID, endpoint)
	}
	for k, v := range doc {
		ext, ok := canonicalExtension(k, res)
		if !ok {
			continue
		}
		if obj, ok := v.(map[string]any); ok {
			if _, has := lookupAny(obj, "schemas"); has {
				return patch.ExtensionSchemasError(ext)
			}
		}
	}
	return nil
}

// lookupAny finds a key of a decoded object case-insensitively (SCIM
// attribute names are case-insensitive).
func lookupAny(m map[string]any, name string) (any, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

func isExtension(urn string, res query.Resource) bool {
	_, ok := canonicalExtension(urn, res)
	return ok
}

func canonicalExtension(urn string, res query.Resource) (string, bool) {
	for _, ext := range res.Extensions {
		if strings.EqualFold(urn, ext.ID) {
			return ext.ID, true
		}
	}
	return "", false
}

func servedSchemas(res query.Resource) []string {
	out := []string{res.Core.ID}
	for _, ext := range res.Extensions {
		out = append(out, ext.ID)
	}
	return out
}

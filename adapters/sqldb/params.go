package sqldb

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// statement is a configured SQL statement with named parameters
// (:user.email) rewritten to PostgreSQL's positional ones ($1): values are
// always bound, never spliced into the SQL text.
type statement struct {
	sql       string
	params    []string // dotted paths into the event, in $n order
	perMember bool     // it names :member.id: run once per member id
}

// parseStatement finds the :name.path parameters outside quoted strings,
// quoted identifiers, comments and casts (::type).
func parseStatement(src string) (statement, error) {
	var st statement
	var b strings.Builder
	index := map[string]int{}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(src) {
				if src[j] == c {
					if j+1 < len(src) && src[j+1] == c { // doubled quote
						j += 2
						continue
					}
					break
				}
				j++
			}
			if j >= len(src) {
				return st, fmt.Errorf("unterminated %c quote", c)
			}
			b.WriteString(src[i : j+1])
			i = j + 1
		case c == '-' && i+1 < len(src) && src[i+1] == '-':
			return st, fmt.Errorf("comments are not allowed in statements")
		case c == ':' && i+1 < len(src) && src[i+1] == ':':
			b.WriteString("::") // a cast
			i += 2
		case c == ':' && i+1 < len(src) && isNameStart(src[i+1]):
			j := i + 1
			for j < len(src) && (isNameStart(src[j]) || src[j] >= '0' && src[j] <= '9' || src[j] == '.' || src[j] == '_') {
				j++
			}
			path := strings.TrimRight(src[i+1:j], ".")
			j = i + 1 + len(path)
			if !knownPath(path) {
				return st, fmt.Errorf("unknown parameter :%s (use :id, :type, :seq, :tenant, :source, :time, :requestId, :user.<field>, :group.<field>, :member.id, :memberIds, :changed)", path)
			}
			if path == "member.id" {
				st.perMember = true
			}
			n, ok := index[path]
			if !ok {
				st.params = append(st.params, path)
				n = len(st.params)
				index[path] = n
			}
			fmt.Fprintf(&b, "$%d", n)
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	st.sql = b.String()
	if strings.TrimSpace(st.sql) == "" {
		return st, fmt.Errorf("is empty")
	}
	return st, nil
}

func isNameStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// knownPath accepts the event's own fields (gateway.WireField: the wire
// form's names; any path under attributes) and the member of a per-member
// statement.
func knownPath(p string) bool {
	return p == "member.id" || gateway.WireField(p)
}

// values binds the statement's parameters for one event (and member).
func (st statement) values(doc map[string]any, member string) []any {
	out := make([]any, len(st.params))
	for i, p := range st.params {
		if p == "member.id" {
			out[i] = member
			continue
		}
		out[i] = lookup(doc, p)
	}
	return out
}

// lookup walks a dotted path through the event's JSON; objects and arrays
// bind as JSON text, a missing value as NULL.
func lookup(doc map[string]any, path string) any {
	var cur any = doc
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	switch v := cur.(type) {
	case map[string]any, []any:
		b, _ := json.Marshal(v)
		return string(b)
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		return v.String()
	}
	return cur
}

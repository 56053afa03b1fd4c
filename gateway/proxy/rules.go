package proxy

import (
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// Rule says that the paths it matches need a permission, in the pool it
// names (fixed, a path segment counted from 1, or a header) or, naming
// none, in any of the person's pools.
type Rule struct {
	// Path matches a request path: a trailing "/*" matches everything
	// under it (and itself); otherwise * matches within one segment
	// (path.Match).
	Path        string
	Permission  string
	Pool        string
	PoolSegment int
	PoolHeader  string
}

// compiledRule is a rule ready for every request: a pattern without
// wildcards is a string comparison.
type compiledRule struct {
	Rule
	literal bool   // the pattern has no wildcard
	under   string // for a trailing "/*": the part before it, else ""
}

// ruleTable holds the rules in order, indexed by the first path segment
// they can match, so that a request looks at the rules of its own first
// segment (and those whose first segment is a wildcard), in order.
type ruleTable struct {
	rules []compiledRule
	bySeg map[string][]int // literal first segment → rule indexes, ascending
	wild  []int            // rules whose first segment is a wildcard
}

const wildcards = `*?[\`

func compileRules(rules []Rule) ruleTable {
	t := ruleTable{rules: make([]compiledRule, len(rules)), bySeg: map[string][]int{}}
	for i, r := range rules {
		c := compiledRule{Rule: r}
		pattern := r.Path
		if under, ok := strings.CutSuffix(pattern, "/*"); ok {
			c.under, pattern = under, under
		}
		c.literal = !strings.ContainsAny(pattern, wildcards)
		t.rules[i] = c
		if first := firstSegment(pattern); pattern == "" || strings.ContainsAny(first, wildcards) {
			t.wild = append(t.wild, i)
		} else {
			t.bySeg[first] = append(t.bySeg[first], i)
		}
	}
	return t
}

func firstSegment(p string) string {
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return p
}

// candidates calls fn with the rules that can match p, in their order,
// until it returns false.
func (t *ruleTable) candidates(p string, fn func(*compiledRule) bool) {
	seg, wild := t.bySeg[firstSegment(p)], t.wild
	for len(seg) > 0 || len(wild) > 0 {
		var i int
		if len(wild) == 0 || len(seg) > 0 && seg[0] < wild[0] {
			i, seg = seg[0], seg[1:]
		} else {
			i, wild = wild[0], wild[1:]
		}
		if !fn(&t.rules[i]) {
			return
		}
	}
}

// matches reports whether the rule applies to p.
func (c *compiledRule) matches(p string) bool {
	if c.literal {
		if c.under == "" && c.Path != "/*" {
			return p == c.Path
		}
		return p == c.under || len(p) > len(c.under) && p[len(c.under)] == '/' && strings.HasPrefix(p, c.under)
	}
	return c.Rule.matches(p)
}

// matches reports whether the rule applies to p.
func (r Rule) matches(p string) bool {
	pattern := r.Path
	if under, ok := strings.CutSuffix(pattern, "/*"); ok {
		// The path's first segments, as many as the pattern has before
		// "/*", match it: everything under it (and itself).
		pattern = under
		depth := strings.Count(under, "/")
		for i, n := 0, 0; i < len(p); i++ {
			if p[i] == '/' {
				if n++; n > depth {
					p = p[:i]
					break
				}
			}
		}
	}
	ok, _ := path.Match(pattern, p)
	return ok
}

// noPool is the pool of a request that does not name the one the rule
// reads (no such segment, no header): it matches no pool.
const noPool = "\x00"

// pool is the pool the rule asks about for the request ("": any).
func (r Rule) pool(req *http.Request, p string) string {
	switch {
	case r.Pool != "":
		return r.Pool
	case r.PoolHeader != "":
		// Sent once, or it names no pool: servers read repeated headers
		// differently (the first, the last, or joined).
		if v := req.Header.Values(r.PoolHeader); len(v) == 1 && v[0] != "" {
			return v[0]
		}
		return noPool
	case r.PoolSegment > 0:
		segs := strings.Split(strings.Trim(p, "/"), "/")
		if r.PoolSegment <= len(segs) && segs[r.PoolSegment-1] != "" {
			return segs[r.PoolSegment-1]
		}
		return noPool
	}
	return ""
}

// plainPath reports whether a path (decoded p, and its raw form when it
// differs) means one thing to the gateway and to the app: no "." or ".."
// segments, no empty segment ("//"), no backslash, no encoded slash or
// backslash. Servers normalize those differently, and a path the rules
// read one way must not reach the app as another.
func plainPath(p, raw string) bool {
	if strings.Contains(p, "//") || strings.ContainsRune(p, '\\') {
		return false
	}
	if raw != "" {
		raw = strings.ToLower(raw)
		if strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") {
			return false
		}
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// refusal is the first rule matching p that access does not satisfy, if
// any (the first matching rule decides).
func refusal(rules ruleTable, req *http.Request, p string, access []gateway.Access) *Rule {
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/") // /reports/ is /reports
	}
	var refused *Rule
	rules.candidates(p, func(r *compiledRule) bool {
		if !r.matches(p) {
			return true
		}
		pool := r.pool(req, p)
		ok := pool == "" && slices.ContainsFunc(access, func(a gateway.Access) bool { return slices.Contains(a.Permissions, r.Permission) }) ||
			pool != "" && holds(access, pool, r.Permission)
		if !ok {
			refused = &r.Rule
		}
		return false // the first matching rule decides
	})
	return refused
}

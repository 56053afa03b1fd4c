package proxy

import (
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-id/gatehouse/gateway"
)

func TestRules(t *testing.T) {
	rules := compileRules([]Rule{
		{Path: "/admin/*", Permission: "app.admin"},
		{Path: "/pools/*/debug", Permission: "agents.debug", PoolSegment: 2},
		{Path: "/pools/*/debug/*", Permission: "agents.debug", PoolSegment: 2},
		{Path: "/billing/*", Permission: "billing.read", PoolHeader: "X-Pool"},
		{Path: "/reports", Permission: "reports.read", Pool: "default"},
		{Path: "/*", Permission: "never.checked"}, // after the others: everything else
	})
	access := []gateway.Access{
		{Pool: "default", Role: "user", Permissions: []string{"reports.read"}},
		{Pool: "prod", Role: "debugger", Permissions: []string{"agents.debug"}},
		{Pool: "finance", Role: "clerk", Permissions: []string{"billing.read", "app.admin"}},
	}
	for _, c := range []struct {
		path, header string
		refused      string // the permission a refusal names; "" allowed
	}{
		{"/", "", "never.checked"},
		{"/admin", "", ""}, // app.admin in finance: any pool will do
		{"/admin/users/1", "", ""},
		{"/administrator", "", "never.checked"}, // not under /admin
		{"/pools/prod/debug", "", ""},
		{"/pools/prod/debug/session/42", "", ""},
		{"/pools/staging/debug", "", "agents.debug"},
		{"/pools/staging/debug/session/42", "", "agents.debug"},
		{"/pools/prod/debugger", "", "never.checked"}, // another segment
		{"/pools/staging", "", "never.checked"},
		{"/pools/default/debug", "", "agents.debug"},
		{"/billing/invoices", "finance", ""},
		{"/billing/invoices", "prod", "billing.read"},
		{"/billing/invoices", "", "billing.read"},
		{"/reports", "", ""},
		{"/reports/2026", "", "never.checked"}, // /reports does not cover below it
	} {
		r := httptest.NewRequest("GET", c.path, nil)
		if c.header != "" {
			r.Header.Set("X-Pool", c.header)
		}
		got := refusal(rules, r, c.path, access)
		if (got == nil) != (c.refused == "") || got != nil && got.Permission != c.refused {
			t.Errorf("%s (X-Pool %q): refusal %+v, want %q", c.path, c.header, got, c.refused)
		}
	}
	// Someone without app.admin anywhere.
	if got := refusal(rules, httptest.NewRequest("GET", "/admin/x", nil), "/admin/x", access[:2]); got == nil || got.Permission != "app.admin" {
		t.Fatalf("app.admin in no pool: %+v", got)
	}
}

// TestRulesAreNotBypassed: paths that servers normalize differently are
// refused before any rule is read; a trailing slash is the same page; a
// pool header sent twice names no pool.
func TestRulesAreNotBypassed(t *testing.T) {
	for target, plain := range map[string]bool{
		"/admin/x":                true,
		"/public/%2e%2e/admin/x":  false,
		"/public/../admin/x":      false,
		"/public/..%2fadmin/x":    false,
		"/public/..%2Fadmin/x":    false,
		"/public/.%5cadmin":       false,
		"/public/./admin":         false,
		"//admin/x":               false,
		"/a%20b/c":                true,
		"/files/report.2026.pdf":  true,
		"/files/..report":         true,
		"/files/report..":         true,
		"/api/v1/items?next=../x": true, // the query is not the path
	} {
		r := httptest.NewRequest("GET", "http://app.example"+target, nil)
		if got := plainPath(r.URL.Path, r.URL.RawPath); got != plain {
			t.Errorf("%s: plain %v, want %v", target, got, plain)
		}
	}
	rules := compileRules([]Rule{{Path: "/reports", Permission: "reports.read"}, {Path: "/billing/*", Permission: "billing.read", PoolHeader: "X-Pool"}})
	access := []gateway.Access{{Pool: "finance", Permissions: []string{"billing.read"}}}
	if got := refusal(rules, httptest.NewRequest("GET", "/reports/", nil), "/reports/", access); got == nil || got.Permission != "reports.read" {
		t.Fatalf("/reports/ with a trailing slash: %+v", got)
	}
	twice := httptest.NewRequest("GET", "/billing/x", nil)
	twice.Header.Add("X-Pool", "finance")
	twice.Header.Add("X-Pool", "other")
	if got := refusal(rules, twice, "/billing/x", access); got == nil {
		t.Fatal("a pool header sent twice passed")
	}
}

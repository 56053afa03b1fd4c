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

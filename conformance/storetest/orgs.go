package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

func newOrg(id gateway.OrgID, domains ...string) *gateway.Organization {
	now := time.Now().UTC().Truncate(time.Millisecond)
	o := &gateway.Organization{ID: id, Name: string(id), Created: now, Modified: now, Version: 1}
	for _, d := range domains {
		o.Domains = append(o.Domains, gateway.Domain{Name: d})
	}
	return o
}

// testOrgRegistry: organizations are unique by id, a domain belongs to
// at most one of them (any case), versions guard changes, and the
// operator's audit entries are written with them.
func testOrgRegistry(t *testing.T, s gateway.Store) {
	reg := s.Orgs()
	entry := func(action string) gateway.AuditEntry {
		return gateway.AuditEntry{Actor: gateway.Actor{Kind: gateway.ActorToken, ID: "admin.token"}, Action: action, Target: "org:acme"}
	}
	if err := reg.Create(ctx(), newOrg("acme", "acme.com", "acme.io"), entry("org.create")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    *gateway.Organization
		want gateway.ErrorCode
	}{
		{"the same id", newOrg("acme"), gateway.ErrConflict},
		{"another's domain, in another case", newOrg("globex", "ACME.com"), gateway.ErrConflict},
		{"another's domain, fully qualified", newOrg("globex", "acme.com."), gateway.ErrConflict},
		{"not a slug", newOrg("Acme Inc"), gateway.ErrInvalid},
		{"not stamped", func() *gateway.Organization { o := newOrg("initech"); o.Version = 0; return o }(), gateway.ErrInternal},
	} {
		if err := reg.Create(ctx(), tc.o, entry("refused")); code(err) != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
	if id, err := reg.ByDomain(ctx(), "Acme.IO"); err != nil || id != "acme" {
		t.Fatalf("by domain: %q %v", id, err)
	}
	if id, _ := reg.ByDomain(ctx(), "globex.com"); id != "" {
		t.Fatalf("a refused create claimed its domain: %q", id)
	}
	got, err := reg.Get(ctx(), "acme")
	if err != nil || got.Name != "acme" || got.Version != 1 || len(got.Domains) != 2 {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := reg.Get(ctx(), "nope"); code(err) != gateway.ErrNotFound {
		t.Fatalf("get of none: %v", err)
	}
	// A change at the version read moves the domains; a stale one is refused.
	next := *got
	next.Domains, next.Suspended, next.Version = []gateway.Domain{{Name: "acme.com", VerifiedAt: time.Now().UTC().Truncate(time.Second)}}, true, 2
	if err := reg.Replace(ctx(), &next, 1, entry("org.update")); err != nil {
		t.Fatal(err)
	}
	stale := next
	stale.Version = 2
	if err := reg.Replace(ctx(), &stale, 1); code(err) != gateway.ErrPreconditionFailed {
		t.Fatalf("a stale replace: %v", err)
	}
	if id, _ := reg.ByDomain(ctx(), "acme.io"); id != "" {
		t.Fatalf("a dropped domain still routes to %q", id)
	}
	if err := reg.Create(ctx(), newOrg("globex", "acme.io"), entry("org.create")); err != nil {
		t.Fatalf("a freed domain: %v", err)
	}
	taken := next
	taken.Domains, taken.Version = append(taken.Domains, gateway.Domain{Name: "acme.io"}), 3
	if err := reg.Replace(ctx(), &taken, 2); code(err) != gateway.ErrConflict {
		t.Fatalf("a replace claiming another's domain: %v", err)
	}
	if got, _ := reg.Get(ctx(), "acme"); got.Version != 2 || !got.Suspended || len(got.Domains) != 1 || got.Domains[0].VerifiedAt.IsZero() {
		t.Fatalf("after the replace: %+v", got)
	}
	// Listing pages in id order with the total.
	for i := range 5 {
		if err := reg.Create(ctx(), newOrg(gateway.OrgID(fmt.Sprintf("org-%d", i)))); err != nil {
			t.Fatal(err)
		}
	}
	var ids []gateway.OrgID
	for after := gateway.OrgID(""); ; {
		page, total, err := reg.List(ctx(), after, 3)
		if err != nil || total != 7 {
			t.Fatalf("list: total %d %v", total, err)
		}
		if len(page) == 0 {
			break
		}
		for _, o := range page {
			ids = append(ids, o.ID)
		}
		after = page[len(page)-1].ID
	}
	if want := []gateway.OrgID{"acme", "globex", "org-0", "org-1", "org-2", "org-3", "org-4"}; !slices.Equal(ids, want) {
		t.Fatalf("listed %v, want %v", ids, want)
	}
	// Deleting frees the id and the domains.
	if err := reg.Delete(ctx(), "globex", 7); code(err) != gateway.ErrPreconditionFailed {
		t.Fatalf("a stale delete: %v", err)
	}
	if err := reg.Delete(ctx(), "globex", 1, entry("org.delete")); err != nil {
		t.Fatal(err)
	}
	if id, _ := reg.ByDomain(ctx(), "acme.io"); id != "" {
		t.Fatalf("a deleted organization's domain routes to %q", id)
	}
	if _, err := reg.Get(ctx(), "globex"); code(err) != gateway.ErrNotFound {
		t.Fatalf("a deleted organization: %v", err)
	}
	// The operator's audit: the changes that happened, none refused.
	if got, want := auditActions(t, s, gateway.OperatorScope), []string{"org.delete", "org.create", "org.update", "org.create"}; !slices.Equal(got, want) {
		t.Fatalf("operator audit %v, want %v", got, want)
	}
}

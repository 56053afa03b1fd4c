package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// BenchmarkOrgsPaging measures the operator's list of organizations with
// 10,000 of them registered: one page of 50 with each one's status,
// through real HTTP against an in-process gateway.
//
//	go test ./conformance -run XXX -bench OrgsPaging -benchtime 200x
func BenchmarkOrgsPaging(b *testing.B) {
	t := &testing.T{}
	g := startGateway(t, b.TempDir(), "GATEHOUSE_LOG_LEVEL=error", "GATEHOUSE_ADMIN_TOKEN="+adminToken)
	defer g.stop()
	ctx := context.Background()
	now := time.Now()
	for i := range 10_000 {
		o := &gateway.Organization{ID: gateway.OrgID(fmt.Sprintf("org-%05d", i)), Name: fmt.Sprint("Org ", i), Created: now, Modified: now, Version: 1,
			Domains: []gateway.Domain{{Name: fmt.Sprintf("org%d.example", i)}}}
		if err := g.app.Store().Orgs().Create(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	client := &http.Client{}
	after := ""
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest("GET", "http://"+g.app.MainAddr()+"/gatehouse/admin/api/v1/orgs?limit=50&after="+after, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var page struct {
			Orgs  []struct{ ID string } `json:"orgs"`
			Total int                   `json:"total"`
			Next  string                `json:"next"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || len(page.Orgs) == 0 || page.Total != 10_001 {
			b.Fatalf("page after %q: %d %v %+v", after, resp.StatusCode, err, page.Total)
		}
		after = page.Next // walks the registry, page by page, and starts over
	}
}

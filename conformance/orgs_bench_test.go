package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
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

// BenchmarkSCIMManyOrgs compares one organization's SCIM lookups (a
// filter by userName, and a read by id) in a store shared by many
// organizations with a store holding the same number of users in one
// organization. GHTEST_ORGS and GHTEST_ORG_USERS size it (default 100 ×
// 1,000):
//
//	go test ./conformance -run XXX -bench SCIMManyOrgs -benchtime 5000x
func BenchmarkSCIMManyOrgs(b *testing.B) {
	orgs, perOrg := envInt("GHTEST_ORGS", 100), envInt("GHTEST_ORG_USERS", 1000)
	for _, shape := range []struct {
		name  string
		orgs  int
		users int
	}{{"one-org", 1, orgs * perOrg}, {fmt.Sprintf("%d-orgs", orgs), orgs, perOrg}} {
		t := &testing.T{}
		g := startGateway(t, b.TempDir(), "GATEHOUSE_LOG_LEVEL=error", "GATEHOUSE_ADMIN_TOKEN="+adminToken, unshared)
		operator := bearer(adminToken)
		type target struct{ base, token string }
		var targets []target
		for i := range shape.orgs {
			if i == 0 {
				targets = append(targets, target{g.base, testToken})
				continue
			}
			id := fmt.Sprintf("org-%04d", i)
			adminRequest(t, g, "POST", "/orgs", `{"id":"`+id+`"}`, operator)
			token := adminRequest(t, g, "POST", "/orgs/"+id+"/scim-token", "", operator).str("token")
			adminRequest(t, g, "PUT", "/orgs/"+id+"/identity", `{"sso":{"protocol":"external"},"provisioning":{"method":"scim","default_pool":"default","default_role":"user"}}`, operator)
			targets = append(targets, target{"http://" + g.app.MainAddr() + "/gatehouse/o/" + id + "/scim/v2", token})
		}
		// Fill every organization, 8 requests at a time.
		var wg sync.WaitGroup
		work := make(chan [2]int)
		var firstIDs []string
		var mu sync.Mutex
		for range 8 {
			wg.Go(func() {
				for job := range work {
					tg := targets[job[0]]
					r := scimAt(t, tg.base, tg.token, "POST", "/Users", oktaUser(fmt.Sprintf("user%d@org%d.example", job[1], job[0]), "B", "K"))
					if r.status != 201 {
						b.Errorf("fill: %d %s", r.status, r.raw)
						return
					}
					if job[0] == 0 {
						mu.Lock()
						firstIDs = append(firstIDs, r.str("id"))
						mu.Unlock()
					}
				}
			})
		}
		for o := range shape.orgs {
			for u := range shape.users {
				work <- [2]int{o, u}
			}
		}
		close(work)
		wg.Wait()
		var n atomic.Int64
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		get := func(b *testing.B, path string) {
			req, _ := http.NewRequest("GET", targets[0].base+path, nil)
			req.Header.Set("Authorization", "Bearer "+targets[0].token)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("GET %s: %d", path, resp.StatusCode)
			}
		}
		b.Run("filter/"+shape.name, func(b *testing.B) {
			for b.Loop() {
				get(b, fmt.Sprintf("/Users?filter=userName+eq+%%22user%d@org0.example%%22", n.Add(7919)%int64(shape.users)))
			}
		})
		b.Run("get/"+shape.name, func(b *testing.B) {
			for b.Loop() {
				get(b, "/Users/"+firstIDs[n.Add(7919)%int64(len(firstIDs))])
			}
		})
		g.stop()
	}
}

// BenchmarkSCIMWritesManyOrgs measures one organization's SCIM creates
// (8 at a time) in a gateway that also serves many idle organizations,
// each with its delivery running, against a gateway serving that one
// alone: a commit must wake only its own organization's delivery.
// GHTEST_ORGS sizes it (default 1,000):
//
//	go test ./conformance -run XXX -bench SCIMWritesManyOrgs -benchtime 4000x
func BenchmarkSCIMWritesManyOrgs(b *testing.B) {
	orgs := envInt("GHTEST_ORGS", 1000)
	for _, n := range []int{1, orgs} {
		t := &testing.T{}
		g := startGateway(t, b.TempDir(), "GATEHOUSE_LOG_LEVEL=error", "GATEHOUSE_ADMIN_TOKEN="+adminToken, unshared)
		for i := 1; i < n; i++ {
			adminRequest(t, g, "POST", "/orgs", fmt.Sprintf(`{"id":"org-%05d"}`, i), bearer(adminToken))
		}
		var seq atomic.Int64
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		b.Run(fmt.Sprintf("orgs=%d", n), func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", g.base+"/Users", stringsReader(oktaUser(fmt.Sprintf("w%d@example.com", seq.Add(1)), "W", "K")))
					req.Header.Set("Authorization", "Bearer "+testToken)
					req.Header.Set("Content-Type", "application/scim+json")
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 201 {
						b.Fatalf("create: %d", resp.StatusCode)
					}
				}
			})
		})
		g.stop()
	}
}

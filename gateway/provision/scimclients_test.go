package provision_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
)

// TestSCIMClientCredentials: a client's secret buys an access token that
// SCIM accepts for its organization alone, until the token expires, the
// secret is removed or the client is deleted; an expired secret buys
// nothing; a forged or foreign token is refused.
func TestSCIMClientCredentials(t *testing.T) {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "p.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clock := &stepClock{at: time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)}
	svc := provision.New(store, clock, provision.Policy{Method: gateway.SourceSCIM, DefaultPool: "default", DefaultRole: "user"})
	ctx := context.Background()
	actor := gateway.Actor{Kind: gateway.ActorToken, ID: "t"}
	const acme, beta gateway.OrgID = "acme", "beta"
	check := func(org gateway.OrgID, token string) bool {
		t.Helper()
		ok, err := svc.CheckSCIMToken(ctx, org, token)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	c, secret, err := svc.CreateSCIMClient(ctx, acme, actor, "", "Entra", 48*time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Secrets) != 1 || c.Secrets[0].Hash != "" {
		t.Fatalf("the client as shown: %+v", c)
	}
	token, ttl, err := svc.IssueSCIMAccessToken(ctx, acme, c.ID, secret, 0)
	if err != nil || ttl != time.Hour || !strings.HasPrefix(token, "ghs.acme.") {
		t.Fatalf("issue: %q %v %v", token, ttl, err)
	}
	if !check(acme, token) {
		t.Fatal("a fresh token is refused")
	}
	parts := strings.Split(token, ".") // ghs, org, client, secret, exp, mac
	longer := append([]string(nil), parts...)
	longer[4] += "0" // ten times the expiry, the MAC kept
	otherOrg := append([]string(nil), parts...)
	otherOrg[1] = string(beta)
	for name, bad := range map[string]string{
		"another organization's endpoint": "",
		"forged MAC":                      token[:len(token)-2] + "xx",
		"longer life":                     strings.Join(longer, "."),
		"renamed to another organization": strings.Join(otherOrg, "."),
	} {
		org := acme
		if bad == "" {
			bad, org = token, beta
		}
		if name == "renamed to another organization" {
			org = beta
		}
		if check(org, bad) {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, try := range map[string][2]string{"wrong secret": {c.ID, "nope"}, "unknown client": {"scim_nobody", secret}, "empty": {"", ""}} {
		if _, _, err := svc.IssueSCIMAccessToken(ctx, acme, try[0], try[1], 0); err != provision.ErrInvalidClient {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, err := svc.IssueSCIMAccessToken(ctx, beta, c.ID, secret, 0); err != provision.ErrInvalidClient {
		t.Errorf("acme's client at beta: %v", err)
	}

	// The token expires; the secret too.
	clock.at = clock.at.Add(time.Hour)
	if check(acme, token) {
		t.Fatal("an expired token is accepted")
	}
	clock.at = clock.at.Add(47 * time.Hour)
	if _, _, err := svc.IssueSCIMAccessToken(ctx, acme, c.ID, secret, 0); err != provision.ErrInvalidClient {
		t.Fatalf("an expired secret bought a token: %v", err)
	}

	// Rotation: two live secrets, then the old one removed.
	sec2, secret2, err := svc.AddSCIMClientSecret(ctx, acme, actor, "", c.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	sec3, secret3, err := svc.AddSCIMClientSecret(ctx, acme, actor, "", c.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	tok2, _, err2 := svc.IssueSCIMAccessToken(ctx, acme, c.ID, secret2, 0)
	tok3, _, err3 := svc.IssueSCIMAccessToken(ctx, acme, c.ID, secret3, 0)
	if err2 != nil || err3 != nil || !check(acme, tok2) || !check(acme, tok3) {
		t.Fatalf("two live secrets: %v %v", err2, err3)
	}
	if err := svc.RemoveSCIMClientSecret(ctx, acme, actor, "", c.ID, sec2.ID); err != nil {
		t.Fatal(err)
	}
	if check(acme, tok2) || !check(acme, tok3) {
		t.Fatal("removing a secret: its tokens must go, the other's stay")
	}
	if _, _, err := svc.IssueSCIMAccessToken(ctx, acme, c.ID, secret2, 0); err != provision.ErrInvalidClient {
		t.Fatalf("a removed secret bought a token: %v", err)
	}
	_ = sec3
	// The client deleted: every token refused at once.
	if err := svc.DeleteSCIMClient(ctx, acme, actor, "", c.ID); err != nil {
		t.Fatal(err)
	}
	if check(acme, tok3) {
		t.Fatal("a deleted client's token is accepted")
	}
	if _, _, err := svc.CreateSCIMClient(ctx, acme, actor, "", "x", 10*365*24*time.Hour, nil); gateway.ErrorCodeOf(err) != gateway.ErrInvalid {
		t.Fatalf("a 10-year secret: %v", err)
	}
}

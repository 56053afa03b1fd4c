package provision_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

var manager = provision.Manager{Org: gateway.DefaultOrg, Actor: gateway.Actor{Kind: gateway.ActorToken, ID: "test"}, RequestID: "req-1"}

func samlJIT() gateway.IdentitySettings {
	return gateway.IdentitySettings{
		SSO: gateway.SSOSettings{Protocol: "saml", SAML: gateway.SAMLSettings{IDPMetadataURL: "https://idp.example.com/md"}},
		Provisioning: gateway.ProvisioningSettings{Method: gateway.SourceJIT, DefaultPool: "default", DefaultRole: "user",
			Roles: []string{"manager", "user"}},
	}
}

func loaded(t *testing.T, file gateway.IdentitySettings) (*provision.Service, gateway.Store) {
	t.Helper()
	svc, store := newService(t, gateway.SourceManual)
	if _, err := svc.LoadSettings(context.Background(), gateway.DefaultOrg, file, provision.SettingsFromStore); err != nil {
		t.Fatal(err)
	}
	// As the gateway does once it started with them.
	if err := svc.StoreSeed(context.Background(), gateway.DefaultOrg); err != nil {
		t.Fatal(err)
	}
	return svc, store
}

func rulesOf(err error) []string {
	var re *gateway.RuleError
	if !errors.As(err, &re) {
		return nil
	}
	var out []string
	for _, v := range re.Violations {
		out = append(out, v.Rule)
	}
	return out
}

// TestSettingsSeedAndStoreWins: the file seeds the store once; after a
// change through the service the store wins at the next load unless the
// file is the source of truth.
func TestSettingsSeedAndStoreWins(t *testing.T) {
	ctx := context.Background()
	svc, store := loaded(t, samlJIT())
	if p := svc.Policy(gateway.DefaultOrg); p.Method != gateway.SourceJIT {
		t.Fatalf("policy after seeding: %+v", p)
	}
	if _, err := svc.Pool(ctx, gateway.DefaultOrg, "default"); err != nil {
		t.Fatalf("the default pool is created with the settings: %v", err)
	}
	next := samlJIT()
	next.Provisioning.Method = gateway.SourceManual
	st, err := svc.UpdateSettings(ctx, gateway.DefaultOrg, manager.Actor, "r", 1, next, false)
	if err != nil || st.Version != 2 || svc.Policy(gateway.DefaultOrg).Method != gateway.SourceManual {
		t.Fatalf("update: %+v %v", st, err)
	}
	if _, err := svc.UpdateSettings(ctx, gateway.DefaultOrg, manager.Actor, "r", 1, next, false); gateway.ErrorCodeOf(err) != gateway.ErrPreconditionFailed {
		t.Fatalf("update at a stale version: %v", err)
	}
	if _, err := svc.UpdateSettings(ctx, gateway.DefaultOrg, manager.Actor, "r", 0, next, true); !slices.Equal(rulesOf(err), []string{"managed_by_file"}) {
		t.Fatalf("update while the file owns the settings: %v", err)
	}

	// A restart: the store's manual wins over the file's jit, and the
	// difference is reported; with source=file the file wins.
	again := provision.New(store, nil, provision.Policy{})
	res, err := again.LoadSettings(ctx, gateway.DefaultOrg, samlJIT(), provision.SettingsFromStore)
	if err != nil || res.Seeded || res.Applied || res.Settings.Provisioning.Method != gateway.SourceManual || !slices.Equal(res.Differs, []string{"provisioning.method"}) {
		t.Fatalf("store wins: %+v %v", res, err)
	}
	res, err = again.LoadSettings(ctx, gateway.DefaultOrg, samlJIT(), provision.SettingsFromFile)
	if err != nil || !res.Applied || again.Policy(gateway.DefaultOrg).Method != gateway.SourceJIT {
		t.Fatalf("file wins: %+v %v", res, err)
	}
	entries, _, err := store.Audit().List(ctx, gateway.DefaultOrg, gateway.AuditQuery{Target: "identity:settings", Limit: 10})
	if err != nil || len(entries) != 3 || entries[0].Actor.Kind != gateway.ActorConfig || entries[1].Actor != manager.Actor ||
		entries[1].RequestID != "r" || len(entries[1].Before) == 0 || len(entries[1].After) == 0 {
		t.Fatalf("audit of settings changes: %+v %v", entries, err)
	}
}

// TestSeedStoredAfterStartAndUntouchedSeedFollowsTheFile: the file's
// settings are stored only once the gateway started with them; while the
// stored ones are an earlier file's (no person changed them), a changed
// file wins at the next start; once a person changed them, the store wins
// and the difference is reported.
func TestSeedStoredAfterStartAndUntouchedSeedFollowsTheFile(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t, gateway.SourceManual)
	res, err := svc.LoadSettings(ctx, gateway.DefaultOrg, samlJIT(), provision.SettingsFromStore)
	if err != nil || !res.Seeded || svc.Policy(gateway.DefaultOrg).Method != gateway.SourceJIT {
		t.Fatalf("first load: %+v %v", res, err)
	}
	if _, found, _ := provision.StoredSettings(ctx, store, gateway.DefaultOrg); found {
		t.Fatal("the file's settings were stored before the gateway started with them")
	}
	// A failed start ends here; the fixed file is loaded anew.
	fixed := samlJIT()
	fixed.SSO.SAML.IDPMetadataURL = "https://idp.example/fixed"
	again := provision.New(store, nil, provision.Policy{})
	if res, err = again.LoadSettings(ctx, gateway.DefaultOrg, fixed, provision.SettingsFromStore); err != nil || !res.Seeded {
		t.Fatalf("after a failed start: %+v %v", res, err)
	}
	if err := again.StoreSeed(ctx, gateway.DefaultOrg); err != nil {
		t.Fatal(err)
	}
	stored, found, _ := provision.StoredSettings(ctx, store, gateway.DefaultOrg)
	if !found || stored.Version != 1 || stored.SSO.SAML.IDPMetadataURL != "https://idp.example/fixed" || !stored.FromFile() {
		t.Fatalf("stored after the start: %+v", stored)
	}
	// The file changes again; nobody touched the stored settings: the
	// file wins.
	changed := fixed
	changed.Provisioning.Method = gateway.SourceManual
	third := provision.New(store, nil, provision.Policy{})
	res, err = third.LoadSettings(ctx, gateway.DefaultOrg, changed, provision.SettingsFromStore)
	if err != nil || !res.Applied || !res.Untouched || third.Policy(gateway.DefaultOrg).Method != gateway.SourceManual {
		t.Fatalf("an untouched seed and a changed file: %+v %v", res, err)
	}
	// A manager changes them: now the store wins over the file.
	byManager := changed
	byManager.Provisioning.Method = gateway.SourceJIT
	if _, err := third.UpdateSettings(ctx, gateway.DefaultOrg, manager.Actor, "", 0, byManager, false); err != nil {
		t.Fatal(err)
	}
	fourth := provision.New(store, nil, provision.Policy{})
	res, err = fourth.LoadSettings(ctx, gateway.DefaultOrg, changed, provision.SettingsFromStore)
	if err != nil || res.Applied || fourth.Policy(gateway.DefaultOrg).Method != gateway.SourceJIT || !slices.Equal(res.Differs, []string{"provisioning.method"}) ||
		res.Settings.UpdatedBy != manager.Actor {
		t.Fatalf("a manager's change and a different file: %+v %v", res, err)
	}
}

// TestSettingsRulesNeedTheStore: rules that depend on stored state.
func TestSettingsRulesNeedTheStore(t *testing.T) {
	ctx := context.Background()
	svc, _ := loaded(t, samlJIT())
	cases := []struct {
		name   string
		change func(*gateway.IdentitySettings)
		rules  []string
	}{
		{"default pool that does not exist", func(s *gateway.IdentitySettings) { s.Provisioning.DefaultPool = "nope" }, []string{gateway.RuleDefaults}},
		{"group mapped to a missing pool", func(s *gateway.IdentitySettings) {
			s.Provisioning.GroupPools = map[string]string{"Support": "support"}
		}, []string{gateway.RuleGroupPools}},
		{"scim without any token", func(s *gateway.IdentitySettings) { s.Provisioning.Method = gateway.SourceSCIM }, []string{"scim_token"}},
		{"roles changed through the API", func(s *gateway.IdentitySettings) { s.Provisioning.Roles = []string{"manager"} }, []string{"roles_in_file"}},
		{"jit without sso", func(s *gateway.IdentitySettings) { s.SSO.Protocol = "none" }, []string{gateway.RuleJITNeedsSSOLogin}},
	}
	for _, c := range cases {
		next := samlJIT()
		c.change(&next)
		_, err := svc.UpdateSettings(ctx, gateway.DefaultOrg, manager.Actor, "", 0, next, false)
		if !slices.Equal(rulesOf(err), c.rules) || gateway.ErrorCodeOf(err) != gateway.ErrInvalid {
			t.Errorf("%s: %v, want rules %v", c.name, err, c.rules)
		}
	}
	if st, _ := svc.Settings(gateway.DefaultOrg); st.Version != 1 {
		t.Fatalf("refused changes moved the settings to version %d", st.Version)
	}
	// With a token, SCIM is allowed.
	if _, _, err := svc.RotateSCIMToken(ctx, gateway.DefaultOrg, manager.Actor, "", time.Hour); err != nil {
		t.Fatal(err)
	}
	next := samlJIT()
	next.Provisioning.Method = gateway.SourceSCIM
	if _, err := svc.UpdateSettings(ctx, gateway.DefaultOrg, manager.Actor, "", 0, next, false); err != nil {
		t.Fatal(err)
	}
}

// TestClientSecretKeptAndNeverAudited: a PUT without the secret keeps it;
// the audit log never holds it.
func TestClientSecretKeptAndNeverAudited(t *testing.T) {
	ctx := context.Background()
	const secret = "oidc-client-secret-value"
	file := samlJIT()
	file.SSO = gateway.SSOSettings{Protocol: "oidc", OIDC: gateway.OIDCSettings{Issuer: "https://example.okta.com", ClientID: "c", ClientSecret: gateway.NewSecret(secret)}}
	svc, store := loaded(t, file)
	next := file
	next.SSO.OIDC.ClientSecret = gateway.NewSecret("[REDACTED]")
	next.Provisioning.DefaultRole = "manager"
	st, err := svc.UpdateSettings(ctx, gateway.DefaultOrg, manager.Actor, "", 0, next, false)
	if err != nil || st.SSO.OIDC.ClientSecret.Value() != secret {
		t.Fatalf("secret after an update without it: %v", err)
	}
	reloaded := provision.New(store, nil, provision.Policy{})
	res, err := reloaded.LoadSettings(ctx, gateway.DefaultOrg, file, provision.SettingsFromStore)
	if err != nil || res.Settings.SSO.OIDC.ClientSecret.Value() != secret {
		t.Fatalf("secret after a reload: %v", err)
	}
	entries, _, _ := store.Audit().List(ctx, gateway.DefaultOrg, gateway.AuditQuery{Limit: 50})
	for _, e := range entries {
		if slices.ContainsFunc([]string{string(e.Before), string(e.After)}, func(s string) bool { return strings.Contains(s, secret) }) {
			t.Fatalf("audit entry %d holds the client secret", e.Seq)
		}
	}
}

func TestSCIMTokenRotation(t *testing.T) {
	ctx := context.Background()
	svc, store := loaded(t, samlJIT())
	const fileToken = "file-token-0123456789"
	svc.SetFileSCIMToken(gateway.DefaultOrg, fileToken)
	check := func(token string) bool {
		ok, err := svc.CheckSCIMToken(ctx, gateway.DefaultOrg, token)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !check(fileToken) || check("") || check(fileToken+"x") {
		t.Fatal("the file's token before any rotation")
	}
	first, until, err := svc.RotateSCIMToken(ctx, gateway.DefaultOrg, manager.Actor, "", time.Hour)
	if err != nil || len(first) < 40 || time.Until(until) < 59*time.Minute {
		t.Fatalf("rotate: %q %v %v", first, until, err)
	}
	if !check(first) || !check(fileToken) {
		t.Fatal("after a rotation both the new token and the old one (in its grace period) work")
	}
	second, _, err := svc.RotateSCIMToken(ctx, gateway.DefaultOrg, manager.Actor, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !check(second) || check(first) || check(fileToken) {
		t.Fatal("with no grace the old token stops at once; the file's token is long gone")
	}
	rec, _ := store.Records().Get(ctx, gateway.DefaultOrg, "credential", "scim")
	if strings.Contains(string(rec.Value), second) {
		t.Fatal("the token is stored in clear")
	}
}

func TestAPITokens(t *testing.T) {
	ctx := context.Background()
	svc, _ := loaded(t, samlJIT())
	token, meta, err := svc.CreateAPIToken(ctx, gateway.DefaultOrg, manager.Actor, "", "deploy script", 0)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		token:                          true,
		token + "x":                    false,
		token[:len(token)-1]:           false,
		"gha_" + meta.ID + "_":         false,
		"gha__secret":                  false,
		"gha_default." + meta.ID + "_": false,
		strings.Replace(token, "gha_default.", "gha_", 1):         true, // the form from before tokens named their organization
		strings.Replace(token, "gha_default.", "gha_acme.", 1):    false,
		strings.Replace(token, "gha_default.", "gha_Bad_Org.", 1): false,
		"":                false,
		"Bearer " + token: false,
	}
	for presented, want := range cases {
		id, ok, err := svc.CheckAPIToken(ctx, gateway.DefaultOrg, presented)
		if err != nil || ok != want || ok && id != meta.ID {
			t.Errorf("CheckAPIToken(%q) = %q %v %v, want %v", presented, id, ok, err, want)
		}
	}
	if org, ok := provision.APITokenOrg(token); !ok || org != gateway.DefaultOrg {
		t.Fatalf("APITokenOrg(%q) = %q %v", token, org, ok)
	}
	if _, ok, _ := svc.CheckAPIToken(ctx, "acme", token); ok {
		t.Fatal("a token works for another organization")
	}
	if err := svc.RevokeAPIToken(ctx, gateway.DefaultOrg, manager.Actor, "", meta.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := svc.CheckAPIToken(ctx, gateway.DefaultOrg, token); ok {
		t.Fatal("a revoked token still works")
	}
}

// TestManagersOwnRolesAndPools: defaults for every source, a manager's
// changes with their events and audit, and IdP data never overwriting
// role or pools.
func TestManagersOwnRolesAndPools(t *testing.T) {
	ctx := context.Background()
	svc, store := loaded(t, samlJIT())
	if _, err := svc.CreatePool(ctx, gateway.DefaultOrg, manager.Actor, "", "support", "Support", ""); err != nil {
		t.Fatal(err)
	}
	u, created, err := svc.Login(ctx, gateway.DefaultOrg, ident("ada@example.com"))
	if err != nil || !created || u.Role != "user" || !slices.Equal(u.Pools, []string{"default"}) {
		t.Fatalf("JIT defaults: %+v %v", u, err)
	}
	role, pools := "manager", []string{"support", "default", "support"}
	changed, err := svc.ChangeUser(ctx, manager, u.ID, 0, provision.UserPatch{Role: &role, Pools: &pools})
	if err != nil || changed.Role != "manager" || !slices.Equal(changed.Pools, []string{"default", "support"}) {
		t.Fatalf("change: %+v %v", changed, err)
	}
	for _, bad := range []provision.UserPatch{{Role: ptr("admin")}, {Pools: &[]string{"nope"}}, {Pools: &[]string{}}, {Role: ptr("")}} {
		if _, err := svc.ChangeUser(ctx, manager, u.ID, 0, bad); gateway.ErrorCodeOf(err) != gateway.ErrInvalid {
			t.Errorf("change %+v: %v", bad, err)
		}
	}
	// The IdP signs the person in again with new names: names follow, role
	// and pools stay.
	id := ident("ada@example.com")
	id.GivenName = "Augusta"
	again, _, err := svc.Login(ctx, gateway.DefaultOrg, id)
	if err != nil || again.GivenName != "Augusta" || again.Role != "manager" || !slices.Equal(again.Pools, []string{"default", "support"}) {
		t.Fatalf("after a sign-in: %+v %v", again, err)
	}
	events, _ := store.Outbox().After(ctx, gateway.DefaultOrg, 0, 100)
	var roleEvent *gateway.Event
	for i := range events {
		if events[i].Op == gateway.OpUserUpdated && slices.Contains(events[i].Changed, "role") {
			roleEvent = &events[i]
		}
	}
	if roleEvent == nil || !slices.Equal(roleEvent.Changed, []string{"access", "pools", "role"}) || roleEvent.Source != gateway.SourceManual || roleEvent.RequestID != "req-1" {
		t.Fatalf("user.updated naming role and pools: %+v", roleEvent)
	}
	entries, _, _ := store.Audit().List(ctx, gateway.DefaultOrg, gateway.AuditQuery{Target: "user:" + u.ID, Limit: 10})
	if len(entries) != 1 || entries[0].Action != "user.update" || entries[0].Actor != manager.Actor {
		t.Fatalf("audit of the change: %+v", entries)
	}
	// Deleting a pool with members, or the default pool, is refused.
	if err := svc.DeletePool(ctx, gateway.DefaultOrg, manager.Actor, "", "support", 0); gateway.ErrorCodeOf(err) != gateway.ErrConflict {
		t.Fatalf("delete a pool with members: %v", err)
	}
	if err := svc.DeletePool(ctx, gateway.DefaultOrg, manager.Actor, "", "default", 0); gateway.ErrorCodeOf(err) != gateway.ErrConflict {
		t.Fatalf("delete the default pool: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestAddUserOnlyWhileManual and the bootstrap managers.
func TestAddUserAndBootstrapManagers(t *testing.T) {
	ctx := context.Background()
	svc, _ := loaded(t, samlJIT())
	if _, err := svc.AddUser(ctx, manager, &gateway.User{UserName: "bob@example.com", Active: true}); !slices.Equal(rulesOf(err), []string{gateway.RuleOneMethod}) {
		t.Fatalf("manual add while the method is jit: %v", err)
	}
	manual := samlJIT()
	manual.Provisioning.Method = gateway.SourceManual
	if _, err := svc.UpdateSettings(ctx, gateway.DefaultOrg, manager.Actor, "", 0, manual, false); err != nil {
		t.Fatal(err)
	}
	u, err := svc.AddUser(ctx, manager, &gateway.User{UserName: "bob@example.com", Active: true, Emails: []string{"bob@example.com"}})
	if err != nil || u.Source != gateway.SourceManual || u.Role != "user" || !slices.Equal(u.Pools, []string{"default"}) {
		t.Fatalf("manual add: %+v %v", u, err)
	}
	svc.SetBootstrapManagers(gateway.DefaultOrg, []string{"Root@Example.com"})
	root, _, err := svc.Login(ctx, gateway.DefaultOrg, ident("root@example.com"))
	if err != nil || root.Role != "manager" || root.Source != gateway.SourceManual {
		t.Fatalf("a bootstrap manager's first sign-in under method manual: %+v %v", root, err)
	}
	if _, _, err := svc.Login(ctx, gateway.DefaultOrg, ident("carol@example.com")); err == nil {
		t.Fatal("an unknown person who is not a bootstrap manager signed in under method manual")
	}
	svc.SetBootstrapManagers(gateway.DefaultOrg, []string{"bob@example.com"})
	promoted, _, err := svc.Login(ctx, gateway.DefaultOrg, ident("bob@example.com"))
	if err != nil || promoted.Role != "manager" {
		t.Fatalf("a bootstrap manager who held another role: %+v %v", promoted, err)
	}
}

// TestGroupPoolsMapping: with the mapping switched on, a new JIT user
// joins the pools its IdP groups map to; switched off, the default pool.
func TestGroupPoolsMapping(t *testing.T) {
	ctx := context.Background()
	svc, _ := loaded(t, samlJIT())
	if _, err := svc.CreatePool(ctx, gateway.DefaultOrg, manager.Actor, "", "support", "", ""); err != nil {
		t.Fatal(err)
	}
	next := samlJIT()
	next.Provisioning.GroupPools = map[string]string{"Support Team": "support"}
	next.Provisioning.GroupPoolsEnabled = true
	if _, err := svc.UpdateSettings(ctx, gateway.DefaultOrg, manager.Actor, "", 0, next, false); err != nil {
		t.Fatal(err)
	}
	id := ident("ada@example.com")
	id.Groups = []string{"SUPPORT TEAM", "Everyone"}
	u, _, err := svc.Login(ctx, gateway.DefaultOrg, id)
	if err != nil || !slices.Equal(u.Pools, []string{"support"}) {
		t.Fatalf("mapped pools: %+v %v", u, err)
	}
	next.Provisioning.GroupPoolsEnabled = false
	if _, err := svc.UpdateSettings(ctx, gateway.DefaultOrg, manager.Actor, "", 0, next, false); err != nil {
		t.Fatal(err)
	}
	id = ident("grace@example.com")
	id.Groups = []string{"Support Team"}
	if u, _, err = svc.Login(ctx, gateway.DefaultOrg, id); err != nil || !slices.Equal(u.Pools, []string{"default"}) {
		t.Fatalf("mapping off: %+v %v", u, err)
	}
}

// TestSettingsChangesThatNeedMore: a changed OIDC issuer or client needs
// the secret again (else the new issuer would receive the stored one); a
// metadata file path is the configuration file's only; the resend of an
// invitation is bounded like its creation.
func TestSettingsChangesThatNeedMore(t *testing.T) {
	ctx := context.Background()
	file := samlJIT()
	file.SSO = gateway.SSOSettings{Protocol: "oidc", OIDC: gateway.OIDCSettings{Issuer: "https://a.example.com", ClientID: "c", ClientSecret: gateway.NewSecret("s3cret")}}
	svc, _ := loaded(t, file)
	for name, change := range map[string]func(*gateway.IdentitySettings){
		"another issuer": func(s *gateway.IdentitySettings) { s.SSO.OIDC.Issuer = "https://evil.example.com" },
		"another client": func(s *gateway.IdentitySettings) { s.SSO.OIDC.ClientID = "other" },
		"a metadata path": func(s *gateway.IdentitySettings) {
			s.SSO = gateway.SSOSettings{Protocol: "saml", SAML: gateway.SAMLSettings{IDPMetadataFile: "/etc/passwd"}}
		},
	} {
		next := file
		next.SSO.OIDC.ClientSecret = gateway.NewSecret("")
		change(&next)
		if _, err := svc.UpdateSettings(ctx, gateway.DefaultOrg, manager.Actor, "", 0, next, false); !slices.Equal(rulesOf(err), []string{gateway.RuleSingleIdP}) {
			t.Errorf("%s without the secret: %v", name, err)
		}
	}
	next := file
	next.SSO.OIDC.Issuer, next.SSO.OIDC.ClientSecret = "https://b.example.com", gateway.NewSecret("new-secret")
	if st, err := svc.UpdateSettings(ctx, gateway.DefaultOrg, manager.Actor, "", 0, next, false); err != nil || st.SSO.OIDC.ClientSecret.Value() != "new-secret" {
		t.Fatalf("another issuer with its secret: %v", err)
	}
	manual := next
	manual.Provisioning.Method = gateway.SourceManual
	if _, err := svc.UpdateSettings(ctx, gateway.DefaultOrg, manager.Actor, "", 0, manual, false); err != nil {
		t.Fatal(err)
	}
	inv, err := svc.CreateInvitation(ctx, manager, "bob@example.com", "", nil, time.Hour, "https://x/invite")
	if err != nil {
		t.Fatal(err)
	}
	for _, ttl := range []time.Duration{-time.Hour, 0, 1000 * 24 * time.Hour} {
		if _, err := svc.ResendInvitation(ctx, manager, inv.ID, ttl, "https://x/invite"); gateway.ErrorCodeOf(err) != gateway.ErrInvalid {
			t.Errorf("resend for %s: %v", ttl, err)
		}
	}
}

// TestLastManagerStays: the last active manager cannot be demoted,
// deactivated or deleted; with another manager each is allowed.
func TestLastManagerStays(t *testing.T) {
	ctx := context.Background()
	svc, _ := loaded(t, samlJIT())
	svc.SetBootstrapManagers(gateway.DefaultOrg, []string{"root@example.com", "second@example.com"})
	root, _, err := svc.Login(ctx, gateway.DefaultOrg, ident("root@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	user, inactive := "user", false
	for name, try := range map[string]func() error{
		"demote": func() error {
			_, err := svc.ChangeUser(ctx, manager, root.ID, 0, provision.UserPatch{Role: &user})
			return err
		},
		"deactivate": func() error {
			_, err := svc.ChangeUser(ctx, manager, root.ID, 0, provision.UserPatch{Active: &inactive})
			return err
		},
		"delete": func() error { return svc.RemoveUser(ctx, manager, root.ID, 0) },
	} {
		if err := try(); gateway.ErrorCodeOf(err) != gateway.ErrConflict || !strings.Contains(err.Error(), "last active manager") {
			t.Errorf("%s the last manager: %v", name, err)
		}
	}
	if _, _, err := svc.Login(ctx, gateway.DefaultOrg, ident("second@example.com")); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ChangeUser(ctx, manager, root.ID, 0, provision.UserPatch{Role: &user}); err != nil {
		t.Fatalf("demote with another manager: %v", err)
	}
}

// TestInvitationKeepsTheDomainRule: an invitation to an address outside
// provisioning.allowed_domains is refused at acceptance and stays pending.
func TestInvitationKeepsTheDomainRule(t *testing.T) {
	ctx := context.Background()
	file := samlJIT()
	file.Provisioning.Method, file.Provisioning.AllowedDomains = gateway.SourceManual, []string{"example.com"}
	svc, _ := loaded(t, file)
	inv, err := svc.CreateInvitation(ctx, manager, "bob@other.org", "", nil, time.Hour, "https://x/invite")
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimPrefix(inv.Link, "https://x/invite/")
	id := ident("bob@other.org")
	if _, err := svc.AcceptInvitation(ctx, gateway.DefaultOrg, token, &id); err == nil || !strings.Contains(err.Error(), "other.org") {
		t.Fatalf("accepting outside the allowed domains: %v", err)
	}
	if got, err := svc.CheckInvitation(ctx, gateway.DefaultOrg, token); err != nil || got.Status != gateway.InvitationPending {
		t.Fatalf("the invitation after a refused acceptance: %+v %v", got, err)
	}
}

// TestAPITokenExpiry: a token made with a lifetime stops working after it.
func TestAPITokenExpiry(t *testing.T) {
	ctx := context.Background()
	svc, _ := loaded(t, samlJIT())
	token, _, err := svc.CreateAPIToken(ctx, gateway.DefaultOrg, manager.Actor, "", "short-lived", time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if _, ok, err := svc.CheckAPIToken(ctx, gateway.DefaultOrg, token); ok || err != nil {
		t.Fatalf("an expired token: %v %v", ok, err)
	}
	if _, _, err := svc.CreateAPIToken(ctx, gateway.DefaultOrg, manager.Actor, "", "bad", -time.Hour); gateway.ErrorCodeOf(err) != gateway.ErrInvalid {
		t.Fatalf("a negative lifetime: %v", err)
	}
}

// TestSettingsReadByVersion: settings another gateway (or a command)
// stored over the same store are put in force by the next Current, which
// tells the watchers once; Settings alone does not read the store.
func TestSettingsReadByVersion(t *testing.T) {
	ctx := context.Background()
	a, store := loaded(t, samlJIT())
	var told []uint64
	a.OnSettings(func(_ gateway.OrgID, st provision.Settings) { told = append(told, st.Version) })
	// Another replica, started on the same store.
	b := provision.New(store, nil, provision.Policy{})
	if _, err := b.LoadSettings(ctx, gateway.DefaultOrg, samlJIT(), provision.SettingsFromStore); err != nil {
		t.Fatal(err)
	}
	next := samlJIT()
	next.Provisioning.Method = gateway.SourceManual
	if _, err := b.UpdateSettings(ctx, gateway.DefaultOrg, manager.Actor, "", 1, next, false); err != nil {
		t.Fatal(err)
	}
	if st, _ := a.Settings(gateway.DefaultOrg); st.Version != 1 || len(told) != 0 {
		t.Fatalf("before a read by version: v%d, told %v", st.Version, told)
	}
	st, _ := a.Current(ctx, gateway.DefaultOrg)
	if st.Version != 2 || a.Policy(gateway.DefaultOrg).Method != gateway.SourceManual || !slices.Equal(told, []uint64{2}) {
		t.Fatalf("after Current: v%d, method %s, told %v", st.Version, a.Policy(gateway.DefaultOrg).Method, told)
	}
	if st, _ := a.Current(ctx, gateway.DefaultOrg); st.Version != 2 || len(told) != 1 {
		t.Fatalf("a second Current: v%d, told %v", st.Version, told)
	}
	// A change through a, at the version it now holds, works.
	next.Provisioning.Method = gateway.SourceJIT
	if st, err := a.UpdateSettings(ctx, gateway.DefaultOrg, manager.Actor, "", 2, next, false); err != nil || st.Version != 3 {
		t.Fatalf("update at the refreshed version: %+v %v", st, err)
	}
}

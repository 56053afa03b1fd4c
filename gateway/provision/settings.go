package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/fold"
)

// Record kinds and ids the service keeps in the store's RecordStore.
const (
	kindSettings = "identity"
	settingsID   = "settings"
)

// Settings is the identity configuration in force and its bookkeeping.
type Settings struct {
	gateway.IdentitySettings
	Version   uint64        `json:"version"`
	UpdatedAt time.Time     `json:"updated_at"`
	UpdatedBy gateway.Actor `json:"updated_by"`
}

// storedSettings is the record: Settings with the OIDC client secret in
// clear (gateway.Secret marshals redacted), as the SP key is kept.
type storedSettings struct {
	Settings
	OIDCClientSecret string `json:"oidc_client_secret,omitempty"`
}

// settingsState holds each org's settings in force and who is told
// when they change.
type settingsState struct {
	mu       sync.Mutex
	current  map[gateway.OrgID]Settings
	watchers []func(org gateway.OrgID, st Settings)
	check    func(ctx context.Context, org gateway.OrgID, next gateway.IdentitySettings) error
	// newOrg is what an organization starts with (and its roles, the
	// file's, every organization's); nil until the wiring sets it.
	newOrg *gateway.IdentitySettings
	// roleSeeds are the permissions the file gives roles not stored yet.
	roleSeeds map[string][]string
}

// SetNewOrgSettings sets what a new organization's identity settings
// are (no sign-in, managers add people, the file's default pool, role
// and roles): the start of its setup.
func (s *Service) SetNewOrgSettings(st gateway.IdentitySettings) {
	s.settings.mu.Lock()
	defer s.settings.mu.Unlock()
	s.settings.newOrg = &st
}

// newOrgSettings is the start of a new organization's setup (false: the
// wiring set none).
func (s *Service) newOrgSettings() (gateway.IdentitySettings, bool) {
	s.settings.mu.Lock()
	defer s.settings.mu.Unlock()
	if s.settings.newOrg == nil {
		return gateway.IdentitySettings{}, false
	}
	st := *s.settings.newOrg
	st.Provisioning.Roles = slices.Clone(st.Provisioning.Roles)
	return st, true
}

// SetSettingsCheck registers a check a change must pass before it is
// stored, beyond the rules (the gateway loads the IdP's metadata).
func (s *Service) SetSettingsCheck(fn func(ctx context.Context, org gateway.OrgID, next gateway.IdentitySettings) error) {
	s.settings.mu.Lock()
	defer s.settings.mu.Unlock()
	s.settings.check = fn
}

// Source of truth for the identity configuration at start-up.
const (
	// SettingsFromStore: the file seeds the store on first start; after
	// that the store (changed through the admin API) wins.
	SettingsFromStore = "store"
	// SettingsFromFile: the file wins at every start and the admin API
	// may not change the identity configuration.
	SettingsFromFile = "file"
)

// policyOf derives the provisioning policy from settings.
func policyOf(st gateway.IdentitySettings) *Policy {
	p := st.Provisioning
	policy := &Policy{Method: p.Method, DefaultPool: p.DefaultPool, DefaultRole: p.DefaultRole,
		AllowedDomains: p.AllowedDomains, VerifiedDomainsOnly: p.VerifiedDomainsOnly, EmailDomains: p.EmailDomain}
	if p.GroupPoolsEnabled && len(p.GroupPools) > 0 {
		policy.GroupPools = make(map[string]string, len(p.GroupPools))
		for g, pool := range p.GroupPools {
			policy.GroupPools[fold.Key(g)] = pool
		}
	}
	if p.GroupRolesEnabled {
		for _, gr := range p.GroupRoles {
			policy.GroupRoles = append(policy.GroupRoles, gateway.GroupRole{Group: fold.Key(gr.Group), Role: gr.Role})
		}
	}
	return policy
}

// OnSettings registers fn to be told of every settings change (after it is
// stored), and of the settings loaded at start-up.
func (s *Service) OnSettings(fn func(org gateway.OrgID, st Settings)) {
	s.settings.mu.Lock()
	defer s.settings.mu.Unlock()
	s.settings.watchers = append(s.settings.watchers, fn)
}

// Settings returns the org's identity settings in force in this process,
// without reading the store (see Current).
func (s *Service) Settings(org gateway.OrgID) (Settings, bool) {
	s.settings.mu.Lock()
	defer s.settings.mu.Unlock()
	st, ok := s.settings.current[org]
	return st, ok
}

// Current returns the org's identity settings after reading the stored
// version: settings stored since by another gateway sharing the store, or
// by a command, are put in force (and the watchers told, so the sign-in
// routes follow) before they are used. A read that fails keeps what is in
// force.
func (s *Service) Current(ctx context.Context, org gateway.OrgID) (Settings, bool) {
	cur, ok := s.Settings(org)
	stored, found, err := s.readSettingsNewerThan(ctx, org, cur.Version)
	if !ok {
		// Not in force here yet: an organization set up through the API
		// (its settings stored, or not even that if its creation stopped
		// half-way) starts from the new organization's settings.
		start, known := s.newOrgSettings()
		if !known {
			return cur, false
		}
		if err != nil || !found {
			return Settings{IdentitySettings: start}, true
		}
		cur.Provisioning.Roles = start.Provisioning.Roles
	} else if err != nil || !found {
		return cur, ok
	}
	stored.Provisioning.Roles = cur.Provisioning.Roles // always the file's
	s.install(org, stored)
	return s.Settings(org)
}

// install makes st the settings in force and tells the watchers; a
// stored version no newer than the one in force is ignored (refreshes
// that raced, or came late).
func (s *Service) install(org gateway.OrgID, st Settings) {
	s.settings.mu.Lock()
	if cur, ok := s.settings.current[org]; ok && st.Version != 0 && cur.Version >= st.Version {
		s.settings.mu.Unlock()
		return
	}
	if s.settings.current == nil {
		s.settings.current = map[gateway.OrgID]Settings{}
	}
	s.settings.current[org] = st
	s.policies.Store(org, policyOf(st.IdentitySettings))
	s.changedAccess(org) // the default role may have changed
	watchers := slices.Clone(s.settings.watchers)
	s.settings.mu.Unlock()
	for _, w := range watchers {
		w(org, st)
	}
}

func (s *Service) readSettings(ctx context.Context, org gateway.OrgID) (Settings, bool, error) {
	return s.readSettingsNewerThan(ctx, org, 0)
}

// readSettingsNewerThan reads the stored settings when their version is
// newer than version (found false otherwise): the common case, nothing
// new, decodes nothing.
func (s *Service) readSettingsNewerThan(ctx context.Context, org gateway.OrgID, version uint64) (Settings, bool, error) {
	rec, err := s.store.Records().Get(ctx, org, kindSettings, settingsID)
	if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
		return Settings{}, false, nil
	}
	if err != nil {
		return Settings{}, false, err
	}
	if version != 0 && rec.Version <= version {
		return Settings{}, false, nil
	}
	var stored storedSettings
	if err := json.Unmarshal(rec.Value, &stored); err != nil {
		return Settings{}, false, fmt.Errorf("identity settings record: %w", err)
	}
	st := stored.Settings
	st.SSO.OIDC.ClientSecret = gateway.NewSecret(stored.OIDCClientSecret)
	st.Version = rec.Version
	return st, true, nil
}

func encodeSettings(st Settings) ([]byte, error) {
	return json.Marshal(storedSettings{Settings: st, OIDCClientSecret: st.SSO.OIDC.ClientSecret.Value()})
}

// LoadResult says what LoadSettings did.
type LoadResult struct {
	Settings  Settings
	Seeded    bool     // the store had none: the file's are in force, stored by StoreSeed once the gateway started
	Applied   bool     // the file won over different stored settings
	Untouched bool     // ...because the stored ones were the file's own, never changed by a person
	Differs   []string // paths where the file and the store disagree (the store won)
}

// fileActor is who wrote settings that came from the configuration file.
func fileActor() gateway.Actor { return gateway.Actor{Kind: gateway.ActorConfig, ID: "file"} }

// FromFile reports whether settings are the configuration file's own:
// seeded or applied from it, never changed by a person since.
func (st Settings) FromFile() bool { return st.UpdatedBy == fileActor() }

// LoadSettings brings the org's identity settings in force at
// start-up. file is what the configuration file says; source says which
// wins when the store already holds settings (SettingsFromStore or
// SettingsFromFile). Roles always come from the file. Pools named as
// defaults are created when missing.
func (s *Service) LoadSettings(ctx context.Context, org gateway.OrgID, file gateway.IdentitySettings, source string) (LoadResult, error) {
	if vs := file.Validate(); len(vs) > 0 {
		return LoadResult{}, &gateway.RuleError{Violations: vs}
	}
	stored, found, err := s.readSettings(ctx, org)
	if err != nil {
		return LoadResult{}, err
	}
	actor := fileActor()
	var res LoadResult
	differs := found && !reflect.DeepEqual(comparable(stored.IdentitySettings), comparable(file))
	switch {
	case !found:
		// In force now, stored only once the gateway started with them
		// (StoreSeed): a start that fails on them (an unreadable IdP
		// metadata file) leaves nothing behind to win over the fix.
		res.Seeded = true
		res.Settings = Settings{IdentitySettings: file, UpdatedAt: s.clock.Now(), UpdatedBy: actor}
	case differs && (source == SettingsFromFile || stored.FromFile()):
		// The file wins when told to, and while the store holds only what
		// an earlier file said: nobody chose those values over the file.
		res.Applied, res.Untouched = true, source != SettingsFromFile
		res.Differs = SettingsDiff(stored.IdentitySettings, file)
		res.Settings, err = s.storeSettings(ctx, org, actor, "", stored.Version, stored, file, "identity.update")
	default:
		res.Differs = SettingsDiff(stored.IdentitySettings, file)
		stored.Provisioning.Roles = file.Provisioning.Roles
		if vs := stored.Validate(); len(vs) > 0 {
			return LoadResult{}, fmt.Errorf("the stored identity settings no longer fit the configuration file: %w", &gateway.RuleError{Violations: vs})
		}
		res.Settings = stored
	}
	if err != nil {
		return LoadResult{}, err
	}
	hasToken, err := s.HasSCIMToken(ctx, org)
	if err != nil {
		return LoadResult{}, err
	}
	if vs := gateway.SCIMTokenRule(res.Settings.Provisioning.Method, hasToken); len(vs) > 0 {
		return LoadResult{}, &gateway.RuleError{Violations: vs}
	}
	if err := s.ensurePool(ctx, org, actor, res.Settings.Provisioning.DefaultPool); err != nil {
		return LoadResult{}, err
	}
	s.install(org, res.Settings)
	if err := s.ensureRoles(ctx, org, actor); err != nil {
		return LoadResult{}, err
	}
	return res, nil
}

// StoreSeed stores the file's settings that LoadSettings put in force
// without storing (the store held none), once the gateway has started with
// them. A change made meanwhile (through the admin API) is kept.
func (s *Service) StoreSeed(ctx context.Context, org gateway.OrgID) error {
	cur, ok := s.Settings(org)
	if !ok || cur.Version != 0 {
		return nil
	}
	st, err := s.storeSettings(ctx, org, cur.UpdatedBy, "", 0, Settings{}, cur.IdentitySettings, "identity.seed")
	switch gateway.ErrorCodeOf(err) {
	case "":
		s.install(org, st)
		return nil
	case gateway.ErrConflict:
		return nil // stored meanwhile
	}
	return fmt.Errorf("storing the identity settings: %w", err)
}

// comparable drops what compares unequal without a real difference.
func comparable(st gateway.IdentitySettings) gateway.IdentitySettings {
	st.SSO.OIDC.ClientSecret = gateway.NewSecret(st.SSO.OIDC.ClientSecret.Value())
	if len(st.Provisioning.GroupPools) == 0 {
		st.Provisioning.GroupPools = nil
	}
	for _, l := range []*[]string{&st.Provisioning.EmailDomain, &st.Provisioning.AllowedDomains, &st.Provisioning.Roles} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	return st
}

// SettingsDiff names the configuration paths where a and b differ
// (secrets compared, never shown).
func SettingsDiff(a, b gateway.IdentitySettings) []string {
	var out []string
	flatten := func(st gateway.IdentitySettings) map[string]string {
		m := map[string]string{}
		raw, _ := json.Marshal(comparable(st))
		var tree map[string]any
		_ = json.Unmarshal(raw, &tree)
		var walk func(prefix string, v any)
		walk = func(prefix string, v any) {
			if obj, ok := v.(map[string]any); ok {
				for k, c := range obj {
					walk(strings.TrimPrefix(prefix+"."+k, "."), c)
				}
				return
			}
			b, _ := json.Marshal(v)
			m[prefix] = string(b)
		}
		walk("", tree)
		m["sso.oidc.client_secret"] = st.SSO.OIDC.ClientSecret.Value()
		return m
	}
	fa, fb := flatten(a), flatten(b)
	for k := range fa {
		if fa[k] != fb[k] {
			out = append(out, k)
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ErrSettingsFromFile refuses a change when the file owns the settings.
var errSettingsFromFile = &gateway.RuleError{Violations: []gateway.RuleViolation{{Rule: "managed_by_file", Path: "admin.identity_source",
	Message: "the identity configuration is managed by the configuration file (admin.identity_source: file); change the file and restart, or set admin.identity_source to store"}}}

// UpdateSettings changes the org's identity settings at once (SCIM
// starts or stops answering, JIT starts or stops creating), after every
// rule holds; ifVersion 0 is unconditional. A client secret left empty
// (or as [REDACTED]) keeps the stored one; roles stay the file's. The
// change is audited with the settings before and after (secrets redacted).
func (s *Service) UpdateSettings(ctx context.Context, org gateway.OrgID, actor gateway.Actor, requestID string, ifVersion uint64, next gateway.IdentitySettings, fromFile bool) (Settings, error) {
	if fromFile {
		return Settings{}, errSettingsFromFile
	}
	cur, ok := s.Current(ctx, org)
	if !ok {
		return Settings{}, gateway.Errorf(gateway.ErrUnavailable, "the identity settings are not loaded yet")
	}
	if ifVersion != 0 && ifVersion != cur.Version {
		return Settings{}, gateway.Errorf(gateway.ErrPreconditionFailed, "the identity configuration has changed (its version is %d): read it again and retry", cur.Version)
	}
	if v := next.SSO.OIDC.ClientSecret.Value(); v == "" || v == "[REDACTED]" {
		// Kept only for the same client of the same issuer: otherwise a
		// changed issuer would receive the stored secret.
		o, n := cur.SSO.OIDC, next.SSO.OIDC
		if next.SSO.Protocol == gateway.ProtocolOIDC && (cur.SSO.Protocol != gateway.ProtocolOIDC || o.Issuer != n.Issuer || o.ClientID != n.ClientID) {
			return Settings{}, &gateway.RuleError{Violations: []gateway.RuleViolation{{Rule: gateway.RuleSingleIdP, Path: "sso.oidc.client_secret",
				Message: "send the client secret again when the login method, issuer or client id changes"}}}
		}
		next.SSO.OIDC.ClientSecret = cur.SSO.OIDC.ClientSecret
	}
	if next.SSO.SAML.IDPMetadataFile != cur.SSO.SAML.IDPMetadataFile && next.SSO.SAML.IDPMetadataFile != "" {
		return Settings{}, &gateway.RuleError{Violations: []gateway.RuleViolation{{Rule: gateway.RuleSingleIdP, Path: "sso.saml.idp_metadata_file",
			Message: "a metadata file on the gateway's host is set in the configuration file only; send idp_metadata_url or idp_metadata_xml"}}}
	}
	if next.Provisioning.Roles != nil && !slices.Equal(next.Provisioning.Roles, cur.Provisioning.Roles) {
		return Settings{}, &gateway.RuleError{Violations: []gateway.RuleViolation{{Rule: "roles_in_file", Path: "provisioning.roles",
			Message: "roles are set in the configuration file (provisioning.roles): the app's code checks them"}}}
	}
	next.Provisioning.Roles = cur.Provisioning.Roles
	if vs := next.Validate(); len(vs) > 0 {
		return Settings{}, &gateway.RuleError{Violations: vs}
	}
	if err := s.checkSettingsAgainstStore(ctx, org, next); err != nil {
		return Settings{}, err
	}
	s.settings.mu.Lock()
	check := s.settings.check
	s.settings.mu.Unlock()
	if check != nil {
		if err := check(ctx, org, next); err != nil {
			return Settings{}, &gateway.RuleError{Violations: []gateway.RuleViolation{{Rule: gateway.RuleSingleIdP, Path: "sso." + next.SSO.Protocol,
				Message: "the identity provider's settings cannot be used: " + settingsProblem(err)}}}
		}
	}
	st, err := s.storeSettings(ctx, org, actor, requestID, cur.Version, cur, next, "identity.update")
	if err != nil {
		return Settings{}, err
	}
	s.install(org, st)
	if before, after := policyOf(cur.IdentitySettings), policyOf(next); !slices.Equal(before.GroupRoles, after.GroupRoles) ||
		len(after.GroupRoles) > 0 && before.DefaultRole != after.DefaultRole {
		// The mapping changed: everyone's role follows it now.
		if err := s.applyGroupRolesToAll(ctx, org); err != nil {
			return st, fmt.Errorf("the settings are stored; applying the groups-to-roles mapping to everyone failed (it applies again at each group change): %w", err)
		}
	}
	return st, nil
}

// checkSettingsAgainstStore checks the rules that need the store: the
// default pool and group-mapped pools exist, and SCIM has a token.
func (s *Service) checkSettingsAgainstStore(ctx context.Context, org gateway.OrgID, next gateway.IdentitySettings) error {
	var vs []gateway.RuleViolation
	pools, err := s.poolSet(ctx, org)
	if err != nil {
		return err
	}
	if !pools[next.Provisioning.DefaultPool] {
		vs = append(vs, gateway.RuleViolation{Rule: gateway.RuleDefaults, Path: "provisioning.default_pool",
			Message: fmt.Sprintf("there is no pool %q: create it first", next.Provisioning.DefaultPool)})
	}
	for group, pool := range next.Provisioning.GroupPools {
		if !pools[pool] {
			vs = append(vs, gateway.RuleViolation{Rule: gateway.RuleGroupPools, Path: "provisioning.group_pools",
				Message: fmt.Sprintf("group %q maps to pool %q, which does not exist", group, pool)})
		}
	}
	if next.Provisioning.Method == gateway.SourceSCIM {
		ok, err := s.HasSCIMToken(ctx, org)
		if err != nil {
			return err
		}
		vs = append(vs, gateway.SCIMTokenRule(next.Provisioning.Method, ok)...)
	}
	if len(vs) > 0 {
		return &gateway.RuleError{Violations: vs}
	}
	return nil
}

// storeSettings writes next over cur (at cur's version) with its audit
// entry, and returns the stored settings.
func (s *Service) storeSettings(ctx context.Context, org gateway.OrgID, actor gateway.Actor, requestID string, version uint64, cur Settings, next gateway.IdentitySettings, action string) (Settings, error) {
	st := Settings{IdentitySettings: next, UpdatedAt: s.clock.Now(), UpdatedBy: actor}
	raw, err := encodeSettings(st)
	if err != nil {
		return Settings{}, fmt.Errorf("encode identity settings: %w", err)
	}
	entry := s.auditEntry(actor, requestID, action, "identity:"+settingsID, nil, next)
	if version != 0 {
		entry.Before = snapshot(cur.IdentitySettings)
	}
	if st.Version, err = s.store.Records().Put(ctx, org, kindSettings, settingsID, version, raw, gateway.Journal{Audit: []gateway.AuditEntry{entry}}); err != nil {
		return Settings{}, err
	}
	return st, nil
}

// auditEntry builds an audit entry; before and after are snapshots
// (secrets marshal redacted).
func (s *Service) auditEntry(actor gateway.Actor, requestID, action, target string, before, after any) gateway.AuditEntry {
	return gateway.AuditEntry{Time: s.clock.Now(), Actor: actor, Action: action, Target: target,
		Before: snapshot(before), After: snapshot(after), RequestID: requestID}
}

func snapshot(v any) json.RawMessage {
	if v == nil || reflect.ValueOf(v).Kind() == reflect.Pointer && reflect.ValueOf(v).IsNil() {
		return nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return raw
}

// audited is a Journal holding one audit entry.
func (s *Service) audited(actor gateway.Actor, requestID, action, target string, before, after any) gateway.Journal {
	return gateway.Journal{Audit: []gateway.AuditEntry{s.auditEntry(actor, requestID, action, target, before, after)}}
}

// StoredSettings reads the identity settings a store holds (found is
// false before the first start), for check-config.
func StoredSettings(ctx context.Context, store gateway.Store, org gateway.OrgID) (st Settings, found bool, err error) {
	return (&Service{store: store}).readSettings(ctx, org)
}

// MethodChoice is a provisioning method a manager may or may not switch
// to now, and why not.
type MethodChoice struct {
	Method  gateway.Source
	Allowed bool
	Reason  string // the first rule the switch would break
	// Violation is that rule, for a page to put in its own words.
	Violation gateway.RuleViolation
}

// MethodChoices says, for each provisioning method, whether switching to
// it now is allowed and, if not, the rule in the way (the console shows
// the disallowed ones disabled with this reason).
func (s *Service) MethodChoices(ctx context.Context, org gateway.OrgID) ([]MethodChoice, error) {
	cur, ok := s.Current(ctx, org)
	if !ok {
		return nil, gateway.Errorf(gateway.ErrUnavailable, "the identity settings are not loaded yet")
	}
	out := make([]MethodChoice, 0, len(gateway.Methods))
	for _, m := range gateway.Methods {
		next := cur.IdentitySettings
		next.Provisioning.Method = m
		c := MethodChoice{Method: m, Allowed: true}
		vs := next.Validate()
		if len(vs) == 0 {
			var re *gateway.RuleError
			if err := s.checkSettingsAgainstStore(ctx, org, next); errors.As(err, &re) {
				vs = re.Violations
			} else if err != nil {
				return nil, err
			}
		}
		if len(vs) > 0 {
			c.Allowed, c.Reason, c.Violation = false, vs[0].Message, vs[0]
		}
		out = append(out, c)
	}
	return out, nil
}

// SettingsProblem is an error from the settings check whose sentence is
// safe to show (what kind of problem); anything else is shown generically
// and its text only logged by the check.
type SettingsProblem struct{ Message string }

func (e *SettingsProblem) Error() string { return e.Message }

func settingsProblem(err error) string {
	var p *SettingsProblem
	if errors.As(err, &p) {
		return p.Message
	}
	return "they could not be loaded (the gateway log has the details)"
}

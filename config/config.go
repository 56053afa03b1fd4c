// Package config is Gatehouse's configuration: the YAML schema, defaults,
// strict decoding, GATEHOUSE_* environment overrides, secret references
// and validation that reports every problem at once.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// Config is the whole configuration. The doc tags feed Reference().
type Config struct {
	Listen        string        `yaml:"listen" doc:"main listener: SCIM, SSO and proxy"`
	OpsListen     string        `yaml:"ops_listen" doc:"operations listener: /metrics, /healthz, /readyz"`
	OpsPprof      bool          `yaml:"ops_pprof" doc:"also serve Go's profiles at /debug/pprof/ on ops_listen (keep that listener private)"`
	Domains       Domains       `yaml:"domains"`
	PublicURL     string        `yaml:"public_url" doc:"external URL of the gateway (scheme://host[:port]); meta.location and SSO URLs are built from it"`
	DataDir       string        `yaml:"data_dir" doc:"directory holding the bbolt database gatehouse.db"`
	PathPrefix    string        `yaml:"path_prefix" doc:"every gateway endpoint lives under this path (no '_': Okta refuses it)"`
	Log           Log           `yaml:"log"`
	SCIM          SCIM          `yaml:"scim"`
	SSO           SSO           `yaml:"sso"`
	Provisioning  Provisioning  `yaml:"provisioning"`
	Store         Store         `yaml:"store"`
	Delivery      Delivery      `yaml:"delivery"`
	Events        Events        `yaml:"events"`
	Upstream      Upstream      `yaml:"upstream"`
	Proxy         Proxy         `yaml:"proxy"`
	Session       Session       `yaml:"session"`
	Admin         Admin         `yaml:"admin"`
	Email         Email         `yaml:"email"`
	Adapters      Adapters      `yaml:"adapters" doc:"downstream adapters events are delivered to, a list of {id, type, config} (YAML, or JSON in the variable); none: the built-in directory alone"`
	Organizations Organizations `yaml:"organizations" doc:"organizations declared here, a list of {id, name, domains} (YAML, or JSON in the variable): created at start, and changed while nobody changed them through the admin API (or always, with admin.identity_source: file); others in the registry stay"`

	// Warnings are things Load noticed that do not stop the gateway, such
	// as GATEHOUSE_* variables that match no key (Kubernetes injects
	// GATEHOUSE_PORT and friends for a Service named gatehouse).
	Warnings []string `yaml:"-"`

	// lookupEnv reads the environment Load read, for secret references. A
	// function, not the map: fmt prints unexported fields as they are, and
	// the environment holds secrets.
	lookupEnv func(string) (string, bool)
}

// LookupEnv reads the environment the configuration was loaded with
// (secret references of adapters are resolved from it).
func (c *Config) LookupEnv(name string) (string, bool) {
	if c.lookupEnv == nil {
		return "", false
	}
	return c.lookupEnv(name)
}

// Log configures structured logging.
type Log struct {
	Level  string `yaml:"level" doc:"debug, info, warn or error"`
	Format string `yaml:"format" doc:"json or text"`
}

// SCIM configures the SCIM 2.0 server.
type SCIM struct {
	Token        Secret `yaml:"token" doc:"bearer token the IdP presents (secret; env:NAME and file:PATH allowed)"`
	MaxBodyBytes int64  `yaml:"max_body_bytes" doc:"larger request bodies are refused with 413"`
	MaxResults   int    `yaml:"max_results" doc:"largest page a list request returns"`
	// Caps per request, so that one request cannot occupy the gateway.
	MaxPatchOperations   int `yaml:"max_patch_operations" doc:"most operations one PATCH may carry"`
	MaxMembersPerRequest int `yaml:"max_members_per_request" doc:"most group members one POST, PUT or PATCH may name"`
	// AuthFailuresPerMinute slows a client guessing tokens without ever
	// slowing the right token.
	AuthFailuresPerMinute int `yaml:"auth_failures_per_minute" doc:"wrong-token requests allowed a minute from one client address before they get 429 with Retry-After; 0: no limit"`
	// OrgRequestsPerSecond shares the gateway fairly: one organization's
	// bulk push cannot take all of it.
	OrgRequestsPerSecond int `yaml:"org_requests_per_second" doc:"SCIM requests one organization may make a second (bursts of twice as many); more get 429 with Retry-After; 0: no limit"`
	// AccessTokenTTL is the lifetime of what the OAuth token endpoint
	// issues to a SCIM client (Entra expects 60 minutes to 6 hours).
	AccessTokenTTL Duration `yaml:"access_token_ttl" doc:"how long an access token from the SCIM OAuth token endpoint ({path_prefix}[/o/{org}]/oauth/token, client credentials) works, between 5m and 6h"`
}

// SSO configures single sign-on.
type SSO struct {
	Protocol string `yaml:"protocol" doc:"none, saml, oidc, or external (the app or another proxy does login)"`
	// Preset names the IdP: its attribute and claim names and how an
	// email is trusted.
	Preset string `yaml:"preset" doc:"the IdP: okta, entra, google, onelogin, jumpcloud or generic (its attribute and claim names, its groups claim, how an email is trusted); names set under saml win"`
	// LoginRate bounds the sign-ins started per second in each
	// organization (each costs a signature and a stored request), whoever
	// asks.
	LoginRate int `yaml:"login_rate" doc:"sign-ins started per second in each organization, all its clients together (bursts of twice as many); more get 429; 0: no limit"`
	// CachedOrgs bounds the organizations whose SAML SP or OIDC RP is
	// kept built in memory; the least recently used beyond it are dropped
	// and built again at their next sign-in.
	CachedOrgs      int                `yaml:"cached_orgs" doc:"organizations whose sign-in (SAML SP, OIDC RP) is kept built in memory; past it the least recently used is dropped and rebuilt on its next sign-in"`
	SAML            SSOSAML            `yaml:"saml"`
	OIDC            SSOOIDC            `yaml:"oidc"`
	UniversalLogout SSOUniversalLogout `yaml:"universal_logout"`
}

// SSOUniversalLogout lets the IdP end a person's sessions by Okta's
// Universal Logout.
type SSOUniversalLogout struct {
	Issuer  string `yaml:"issuer" doc:"iss of the IdP's signed Universal Logout requests (Okta: https://{yourOktaDomain}); empty: off"`
	JWKSURL string `yaml:"jwks_url" doc:"where the IdP publishes the keys it signs them with; empty: {issuer}/oauth2/v1/keys (Okta's)"`
}

// SSOSAML configures the SAML service provider.
type SSOSAML struct {
	IDPMetadataURL     string   `yaml:"idp_metadata_url" doc:"URL of the IdP's SAML metadata"`
	IDPMetadataFile    string   `yaml:"idp_metadata_file" doc:"path of the IdP's SAML metadata (instead of the URL)"`
	IDPMetadataRefresh Duration `yaml:"idp_metadata_refresh" doc:"how often the metadata URL is fetched again, for IdP certificate rollover; 0: never"`
	AllowIDPInitiated  bool     `yaml:"allow_idp_initiated" doc:"accept sign-ins the IdP starts (from its dashboard) without a request of ours"`
	EmailAttribute     string   `yaml:"email_attribute" doc:"attribute holding the email; empty: the preset's (the NameID for most)"`
	FirstNameAttribute string   `yaml:"first_name_attribute" doc:"attribute holding the first name; empty: the preset's"`
	LastNameAttribute  string   `yaml:"last_name_attribute" doc:"attribute holding the last name; empty: the preset's"`
	GroupsAttribute    string   `yaml:"groups_attribute" doc:"attribute holding the groups; empty: the preset's"`
}

// SSOOIDC configures the OIDC relying party.
type SSOOIDC struct {
	Issuer       string `yaml:"issuer" doc:"OIDC issuer URL, exactly as the IdP announces it"`
	ClientID     string `yaml:"client_id" doc:"OIDC client id"`
	ClientSecret Secret `yaml:"client_secret" doc:"OIDC client secret (secret)"`
}

// Provisioning configures how users come to exist.
type Provisioning struct {
	Method      string   `yaml:"method" doc:"manual, self_service, scim or jit: exactly one is active; scim needs SSO, jit needs saml or oidc"`
	DefaultPool string   `yaml:"default_pool" doc:"pool new users are put in (created when missing)"`
	DefaultRole string   `yaml:"default_role" doc:"role new users get"`
	Roles       []string `yaml:"roles" doc:"roles a user may hold (comma-separated in the variable); must include manager"`
	// RolePermissions seeds each role's permissions in an organization
	// that does not hold the role yet; managers change them afterwards.
	RolePermissions RolePermissions `yaml:"role_permissions" doc:"role → its permissions (the app's words, such as agents.debug), given to an organization's role when it is first stored; managers change them afterwards (YAML, or JSON in the variable)"`
	// EmailDomain is one domain or a list.
	EmailDomain StringList `yaml:"email_domain" doc:"organization email domains a self-service link accepts (one, or a list; comma-separated in the variable)"`
	// AllowedDomains limits SSO sign-in (and JIT creation) to these email
	// domains; empty: any domain the IdP vouches for.
	AllowedDomains []string `yaml:"allowed_domains" doc:"email domains allowed to sign in by SSO (comma-separated in the variable); empty: any"`
	// VerifiedDomainsOnly admits only the organization's verified domains.
	VerifiedDomainsOnly bool              `yaml:"verified_domains_only" doc:"only people whose email is at one of the organization's verified domains may sign in"`
	GroupPools          map[string]string `yaml:"group_pools" doc:"IdP group name → pool id: a JIT user created at sign-in joins the pools its groups map to (the default pool when none does) while group_pools_enabled; later changes are the managers' (Group A=pool-a,Group B=pool-b in the variable)"`
	GroupPoolsEnabled   bool              `yaml:"group_pools_enabled" doc:"apply group_pools at sign-in"`
	GroupRoles          GroupRoles        `yaml:"group_roles" doc:"IdP groups (SCIM or sign-in) → organization role, in order of precedence, a list of {group, role} (YAML, or JSON in the variable): a person holds the role of the first rule whose group they are in, the default role in none; a role a manager set wins"`
	GroupRolesEnabled   bool              `yaml:"group_roles_enabled" doc:"apply group_roles (off: roles are the managers' alone)"`
}

// Admin configures the admin API and who may use it first.
type Admin struct {
	Token             Secret   `yaml:"token" doc:"bootstrap admin API token, sent as Authorization: Bearer (secret; env:NAME and file:PATH allowed)"`
	BootstrapManagers []string `yaml:"bootstrap_managers" doc:"emails that get the manager role when they sign in, so a fresh deployment is never locked out (comma-separated in the variable)"`
	IdentitySource    string   `yaml:"identity_source" doc:"which wins for sso and provisioning.{method,…} at start-up: store (the file seeds the store on first start, then the admin API changes it) or file (the file wins at every start; the admin API may not change it)"`
	SCIMTokenGrace    Duration `yaml:"scim_token_grace" doc:"how long the previous SCIM token stays valid after a rotation"`
	InvitationTTL     Duration `yaml:"invitation_ttl" doc:"how long an invitation link works unless the manager says otherwise"`
}

// Email configures the gateway's own mail (invitations).
type Email struct {
	SMTP EmailSMTP `yaml:"smtp"`
}

// EmailSMTP is the SMTP server invitations are mailed through (as the
// built-in adapter "email", durably, from invitation.created).
type EmailSMTP struct {
	Host     string `yaml:"host" doc:"SMTP server that mails invitations; unset: the gateway mails nothing (the app or a webhook does, from invitation.created)"`
	Port     int    `yaml:"port" doc:"SMTP port; 0: 587 (starttls), 465 (tls), 25 (none)"`
	Username string `yaml:"username" doc:"SMTP user name; empty: no authentication"`
	Password Secret `yaml:"password" doc:"SMTP password (secret; env:NAME and file:PATH allowed)"`
	From     string `yaml:"from" doc:"sender address, e.g. Acme <no-reply@acme.example>"`
	TLS      string `yaml:"tls" doc:"starttls (required STARTTLS), tls (implicit TLS) or none (only to a loopback server)"`
}

// Domains configures the verification of organizations' domains.
type Domains struct {
	Resolver string `yaml:"resolver" doc:"host:port of the DNS server that verification asks for TXT _gatehouse.<domain>; empty: the system's resolver"`
}

// StringList is a list that YAML may also give as one scalar.
type StringList []string

// UnmarshalYAML accepts "example.com" as well as [example.com, example.org].
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Value == "" {
			*l = nil
		} else {
			*l = StringList{n.Value}
		}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return err
	}
	*l = list
	return nil
}

// Store configures where the gateway keeps its state.
type Store struct {
	Type        string        `yaml:"type" doc:"bolt (the embedded default: one process, a file in data_dir) or postgres (replicas sharing one PostgreSQL database)"`
	FSync       bool          `yaml:"fsync" doc:"bolt: fsync every commit; turn off only for tests"`
	OpenTimeout Duration      `yaml:"open_timeout" doc:"bolt: how long to wait for the database file lock"`
	Postgres    StorePostgres `yaml:"postgres"`
}

// schemaName is a PostgreSQL identifier that needs no quoting.
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// StorePostgres configures the PostgreSQL store.
type StorePostgres struct {
	DSN              Secret   `yaml:"dsn" doc:"connection string, e.g. postgres://gatehouse:PASSWORD@db:5432/gatehouse?sslmode=verify-full&sslrootcert=/etc/gatehouse/db-ca.pem (TLS is set here: sslmode, sslrootcert, sslcert, sslkey) (secret; env:NAME and file:PATH allowed)"`
	Schema           string   `yaml:"schema" doc:"schema holding the gateway's tables; empty: the connection's default (public)"`
	MaxConns         int      `yaml:"max_conns" doc:"connections this replica opens at most; 0: 4 or the number of CPUs, whichever is more"`
	StatementTimeout Duration `yaml:"statement_timeout" doc:"longest a statement may run before it fails (a stuck database fails requests fast)"`
}

// Delivery tunes the outbox dispatcher, for every adapter.
type Delivery struct {
	MaxAttempts int      `yaml:"max_attempts" doc:"attempts before an event goes to the dead letters"`
	BackoffMin  Duration `yaml:"backoff_min" doc:"wait after the first failed attempt; doubles, with jitter, each time"`
	BackoffMax  Duration `yaml:"backoff_max" doc:"longest wait between attempts (a Retry-After may ask for longer)"`
	Timeout     Duration `yaml:"timeout" doc:"longest one delivery attempt may take"`
	Lanes       int      `yaml:"lanes" doc:"events delivered at once per adapter; events of one user or group always share a lane, in order"`
	Retention   Duration `yaml:"retention" doc:"how long delivered events are kept (for replays and the events feed)"`
}

// Events configures the events feed ({path_prefix}/events).
type Events struct {
	Token   Secret   `yaml:"token" doc:"bearer token of the events feed; unset: the feed is off (secret; env:NAME and file:PATH allowed)"`
	MaxWait Duration `yaml:"max_wait" doc:"longest long poll (wait=) of the events feed"`
}

// Upstream is the app the gateway proxies to.
type Upstream struct {
	URL      string `yaml:"url" doc:"the app behind the gateway: requests outside path_prefix go there with the user's identity; unset: no proxy"`
	Audience string `yaml:"audience" doc:"aud of the identity JWT the app receives; default: public_url"`
}

// Proxy configures what the proxy checks beyond a session.
type Proxy struct {
	Rules ProxyRules `yaml:"rules" doc:"paths that need a permission, a list of {path, permission, pool | pool_segment | pool_header} (YAML, or JSON in the variable); the first rule whose path matches decides; none matches: any signed-in person passes"`
	// Groups is which of a person's groups the app is told.
	Groups string `yaml:"groups" doc:"which groups the app is told in X-Gatehouse-Groups and the JWT: all, mapped (only groups that map to a pool or a role) or none"`
	// HeaderBudget bounds the identity headers together.
	HeaderBudget int `yaml:"header_budget" doc:"bytes the identity headers may take together, the JWT included; past it the access header is left out, then the groups move to X-Gatehouse-Groups-Url"`
}

// GroupRoles are provisioning.group_roles, in order of precedence.
type GroupRoles []GroupRole

// GroupRole is one rule of provisioning.group_roles.
type GroupRole struct {
	Group string `yaml:"group" json:"group"`
	Role  string `yaml:"role" json:"role"`
}

// ProxyRules are the proxy's permission rules, in order.
type ProxyRules []ProxyRule

// ProxyRule says that paths matching Path need Permission, in the pool
// it names (fixed, a path segment, or a header), or in any pool.
type ProxyRule struct {
	Path        string `yaml:"path"`
	Permission  string `yaml:"permission"`
	Pool        string `yaml:"pool"`
	PoolSegment int    `yaml:"pool_segment"`
	PoolHeader  string `yaml:"pool_header"`
}

// Session configures the gateway's own browser sessions.
type Session struct {
	IdleTimeout     Duration `yaml:"idle_timeout" doc:"a session ends after this long without a request"`
	AbsoluteTimeout Duration `yaml:"absolute_timeout" doc:"a session ends this long after sign-in, whatever the activity"`
	CacheTTL        Duration `yaml:"cache_ttl" doc:"how long the proxy may answer a session and its person's groups from memory; any change in the organization (a sign-out, a deactivation, a group change, on any replica) ends it at once, so this only bounds how long the proxy keeps serving signed-in people while the store cannot be read; 0: read the store on every request"`
}

// RolePermissions maps roles to the permissions they start with.
type RolePermissions map[string][]string

// Organizations are the organizations the file declares.
type Organizations []OrgEntry

// OrgEntry is one organization the file declares.
type OrgEntry struct {
	ID      string   `yaml:"id"`
	Name    string   `yaml:"name"`
	Domains []string `yaml:"domains"`
}

// Adapters is the list of downstream adapters.
type Adapters []AdapterEntry

// AdapterEntry is one configured adapter. Config is decoded by the
// adapter's type (see package adapters), strictly.
type AdapterEntry struct {
	ID     string    `yaml:"id"`
	Type   string    `yaml:"type"`
	Config yaml.Node `yaml:"config"`
	// Orgs limits the adapter to these organizations' events (none: every
	// organization's).
	Orgs []string `yaml:"orgs"`

	// Decoded is the typed configuration once the adapter type has read
	// it; Redacted prints it (its secrets redacted), never the raw node.
	Decoded any `yaml:"-"`
}

// DecodeConfig decodes the entry's config into v, refusing unknown keys.
func (e AdapterEntry) DecodeConfig(v any) error {
	if e.Config.Kind == 0 {
		return nil // no config given
	}
	raw, err := yaml.Marshal(&e.Config)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// MarshalYAML prints the decoded config: the raw one may hold literal
// secrets.
func (e AdapterEntry) MarshalYAML() (any, error) {
	var cfg any = "(not decoded)"
	if e.Decoded != nil {
		cfg = e.Decoded
	}
	return struct {
		ID     string `yaml:"id"`
		Type   string `yaml:"type"`
		Config any    `yaml:"config"`
	}{e.ID, e.Type, cfg}, nil
}

func (a Adapters) String() string {
	if len(a) == 0 {
		return "(directory)"
	}
	ids := make([]string, len(a))
	for i, e := range a {
		ids[i] = e.ID + ":" + e.Type
	}
	return strings.Join(ids, ", ")
}

// Default returns the configuration with every default applied.
func Default() *Config {
	return &Config{
		Listen:       ":8080",
		OpsListen:    "127.0.0.1:9090",
		DataDir:      "./gatehouse-data",
		PathPrefix:   "/gatehouse",
		Log:          Log{Level: "info", Format: "json"},
		SCIM:         SCIM{MaxBodyBytes: 1 << 20, MaxResults: 200, MaxPatchOperations: 1000, MaxMembersPerRequest: 10000, AuthFailuresPerMinute: 20, OrgRequestsPerSecond: 1000, AccessTokenTTL: Duration(time.Hour)},
		SSO:          SSO{Protocol: "none", LoginRate: 100, CachedOrgs: 1000, SAML: SSOSAML{IDPMetadataRefresh: Duration(time.Hour)}},
		Provisioning: Provisioning{Method: "manual", DefaultPool: "default", DefaultRole: "user", Roles: []string{gateway.RoleManager, gateway.RoleUser}},
		Admin:        Admin{IdentitySource: "store", SCIMTokenGrace: Duration(24 * time.Hour), InvitationTTL: Duration(7 * 24 * time.Hour)},
		Store:        Store{Type: "bolt", FSync: true, OpenTimeout: Duration(5 * time.Second), Postgres: StorePostgres{StatementTimeout: Duration(10 * time.Second)}},
		// Retries stay frequent (every 1-2 s once backed off) so that a
		// downstream back from an outage is caught up within seconds, and
		// go on for about an hour before an event is set aside.
		Delivery: Delivery{MaxAttempts: 2400, BackoffMin: Duration(200 * time.Millisecond), BackoffMax: Duration(2 * time.Second),
			Timeout: Duration(10 * time.Second), Lanes: 4, Retention: Duration(7 * 24 * time.Hour)},
		Events:  Events{MaxWait: Duration(30 * time.Second)},
		Session: Session{IdleTimeout: Duration(8 * time.Hour), AbsoluteTimeout: Duration(24 * time.Hour), CacheTTL: Duration(time.Second)},
		Proxy:   Proxy{Groups: "all", HeaderBudget: 8 << 10},
	}
}

// Load builds the configuration: defaults, then the YAML file at path (if
// any, strictly decoded), then GATEHOUSE_* variables from environ, then
// secret references resolved. Problems with values are reported by
// Validate; Load fails only when input cannot be read or parsed.
//
// Every problem of the input is reported at once, as a *LoadError whose
// Problems name the key (and the file's line) and, for a misspelt key, the
// key meant; the configuration is returned with it, as far as it could be
// read, so that Validate can add its own problems to the list.
func Load(path string, environ []string) (*Config, error) {
	cfg := Default()
	var problems []Problem
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config file: %w", err)
		}
		problems = decodeFile(path, raw, cfg)
	}
	warnings, envProblems := applyEnv(cfg, environ)
	problems = append(problems, envProblems...)
	cfg.Warnings = append(warnings, cfg.plainPublicURL()...)
	env := envMap(environ)
	cfg.lookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	lookup := cfg.LookupEnv
	cfg.SCIM.Token.Resolve(lookup, os.ReadFile)
	cfg.SSO.OIDC.ClientSecret.Resolve(lookup, os.ReadFile)
	cfg.Events.Token.Resolve(lookup, os.ReadFile)
	cfg.Admin.Token.Resolve(lookup, os.ReadFile)
	cfg.Email.SMTP.Password.Resolve(lookup, os.ReadFile)
	if len(problems) > 0 {
		return cfg, &LoadError{Problems: problems}
	}
	return cfg, nil
}

// LoadError lists every problem found reading the configuration's input
// (the file and the GATEHOUSE_* variables).
type LoadError struct{ Problems []Problem }

func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// decodeFile reads the YAML file into cfg, setting by setting, and
// reports every unknown key (with its line, and the key meant when one is
// close) and every value that does not fit its setting (with its key and
// line), or the one syntax error that stops YAML.
func decodeFile(path string, raw []byte, cfg *Config) []Problem {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return []Problem{{Path: path, Message: strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	if len(doc.Content) == 0 {
		return nil // empty file
	}
	settings := map[string]reflect.Value{}
	known := map[string]bool{} // every key path, sections too
	for _, f := range fields(cfg) {
		settings[f.path] = f.v
		parts := strings.Split(f.path, ".")
		for i := range parts {
			known[strings.Join(parts[:i+1], ".")] = true
		}
	}
	var problems []Problem
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind != yaml.MappingNode {
			where := prefix
			if where == "" {
				where = path
			}
			problems = append(problems, Problem{Path: where, Message: fmt.Sprintf("line %d: must be a mapping of keys to values", n.Line)})
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			setting, isSetting := settings[p]
			switch {
			case !known[p]:
				problems = append(problems, Problem{Path: p, Message: fmt.Sprintf("line %d: unknown key%s", k.Line, didYouMean(p, known))})
			case !isSetting:
				walk(v, p)
			default:
				if err := v.Decode(setting.Addr().Interface()); err != nil {
					msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  ")
					if !strings.HasPrefix(msg, "line ") {
						msg = fmt.Sprintf("line %d: %s", v.Line, msg)
					}
					problems = append(problems, Problem{Path: p, Message: msg})
				}
			}
		}
	}
	walk(doc.Content[0], "")
	return problems
}

// didYouMean suggests the known key closest to p among its siblings (a
// typo, not another word), or says nothing.
func didYouMean(p string, known map[string]bool) string {
	prefix, name := "", p
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		prefix, name = p[:i+1], p[i+1:]
	}
	best, bestDist := "", 3
	for k := range known {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok || strings.Contains(rest, ".") {
			continue
		}
		if d := editDistance(name, rest); d < bestDist || d == bestDist && best != "" && k < best {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean " + best + "?"
}

// plainPublicURL warns of an http:// public URL on a host that is not this
// one: browsers would send the session cookie and SAML responses in the
// clear.
func (c *Config) plainPublicURL() []string {
	u, err := url.Parse(c.PublicURL)
	if err != nil || u.Scheme != "http" {
		return nil
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return nil
	}
	return []string{fmt.Sprintf("public_url %q is plain http on a host other than this one: session cookies and sign-in responses would cross the network unencrypted; use https://", c.PublicURL)}
}

// minTokenLength guards against guessable SCIM tokens: the token is the
// only credential between the internet and the user directory.
const minTokenLength = 16

// Problem is one thing wrong with the configuration.
type Problem struct {
	Path    string // dotted key, e.g. scim.max_results
	Message string
}

func (p Problem) String() string { return p.Path + ": " + p.Message }

// Validate returns every problem in the configuration.
func (c *Config) Validate() []Problem {
	var ps []Problem
	add := func(path, format string, args ...any) {
		ps = append(ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	for path, addr := range map[string]string{"listen": c.Listen, "ops_listen": c.OpsListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			add(path, "%q is not host:port (e.g. :8080 or 127.0.0.1:9090)", addr)
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			add("public_url", "%q must be an absolute http(s) URL without query, e.g. https://app.example.com", c.PublicURL)
		}
	} else if c.SSO.Protocol == "saml" || c.SSO.Protocol == "oidc" {
		add("public_url", "is required when sso.protocol is %q: the IdP redirects browsers to it", c.SSO.Protocol)
	}
	if c.DataDir == "" {
		add("data_dir", "must not be empty")
	}
	switch {
	case !strings.HasPrefix(c.PathPrefix, "/") || strings.HasSuffix(c.PathPrefix, "/"):
		add("path_prefix", "%q must start with / and not end with / (e.g. /gatehouse)", c.PathPrefix)
	case strings.Contains(c.PathPrefix, "_"):
		add("path_prefix", "%q must not contain '_': Okta refuses SCIM base URLs with underscores", c.PathPrefix)
	}
	oneOf := func(path, v string, allowed ...string) {
		for _, a := range allowed {
			if v == a {
				return
			}
		}
		add(path, "%q is not one of %s", v, strings.Join(allowed, ", "))
	}
	oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf("log.format", c.Log.Format, "json", "text")
	if c.SCIM.MaxBodyBytes <= 0 {
		add("scim.max_body_bytes", "must be greater than 0")
	}
	if c.SCIM.MaxResults < 1 || c.SCIM.MaxResults > 10000 {
		add("scim.max_results", "%d is outside 1..10000", c.SCIM.MaxResults)
	}
	if c.SCIM.MaxPatchOperations < 1 {
		add("scim.max_patch_operations", "must be at least 1")
	}
	if c.SCIM.MaxMembersPerRequest < 1 {
		add("scim.max_members_per_request", "must be at least 1")
	}
	if r := c.Domains.Resolver; r != "" {
		if _, port, err := net.SplitHostPort(r); err != nil || port == "" {
			add("domains.resolver", "%q is not host:port (e.g. 127.0.0.1:53)", r)
		}
	}
	if c.SCIM.OrgRequestsPerSecond < 0 {
		add("scim.org_requests_per_second", "must not be negative (0: no limit)")
	}
	if c.SCIM.AuthFailuresPerMinute < 0 {
		add("scim.auth_failures_per_minute", "must not be negative (0: no limit)")
	}
	secretProblems("scim.token", c.SCIM.Token, add)
	secretProblems("sso.oidc.client_secret", c.SSO.OIDC.ClientSecret, add)
	secretProblems("events.token", c.Events.Token, add)
	if v := c.Events.Token.Value(); v != "" && len(v) < minTokenLength {
		add("events.token", "is %d characters long; use at least %d random characters (e.g. openssl rand -base64 32)", len(v), minTokenLength)
	}
	if v := c.Events.Token.Value(); v != "" && v == c.SCIM.Token.Value() {
		add("events.token", "must differ from scim.token: the IdP must not read the app's feed")
	}
	if c.Upstream.URL != "" {
		if u, err := url.Parse(c.Upstream.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("upstream.url", "%q must be an absolute http or https URL, e.g. http://127.0.0.1:3000", c.Upstream.URL)
		}
		if c.PublicURL == "" {
			add("public_url", "is required when upstream.url is set: sign-in redirects and cookies are built from it")
		}
	}
	if c.Session.CacheTTL < 0 || c.Session.CacheTTL > Duration(time.Minute) {
		add("session.cache_ttl", "must be between 0 and 1m (it bounds how long the proxy serves without reading the store)")
	}
	if c.Session.IdleTimeout <= 0 || c.Session.AbsoluteTimeout < c.Session.IdleTimeout {
		add("session.idle_timeout", "must be positive and at most session.absolute_timeout (%s, %s)", c.Session.IdleTimeout, c.Session.AbsoluteTimeout)
	}
	if c.Events.MaxWait <= 0 || c.Events.MaxWait > Duration(50*time.Second) {
		add("events.max_wait", "must be between 1s and 50s (the listener's write timeout is 60s)")
	}
	// The identity rules live with the settings they govern (the admin
	// API enforces the same ones on every change).
	for _, v := range c.IdentitySettings().Validate() {
		add(v.Path, "%s", v.Message)
	}
	// SCIM's token may also have been rotated into the store: the start
	// checks gateway.SCIMTokenRule with both (check-config too).
	if v := c.SCIM.Token.Value(); v != "" && len(v) < minTokenLength {
		add("scim.token", "is %d characters long; use at least %d random characters (e.g. openssl rand -base64 32)", len(v), minTokenLength)
	}
	secretProblems("admin.token", c.Admin.Token, add)
	secretProblems("email.smtp.password", c.Email.SMTP.Password, add)
	if v := c.Admin.Token.Value(); v != "" && len(v) < minTokenLength {
		add("admin.token", "is %d characters long; use at least %d random characters (e.g. openssl rand -base64 32)", len(v), minTokenLength)
	}
	if v := c.Admin.Token.Value(); v != "" && (v == c.SCIM.Token.Value() || v == c.Events.Token.Value()) {
		add("admin.token", "must differ from scim.token and events.token")
	}
	oneOf("admin.identity_source", c.Admin.IdentitySource, "store", "file")
	if c.Admin.SCIMTokenGrace < 0 {
		add("admin.scim_token_grace", "must not be negative")
	}
	if c.Admin.InvitationTTL <= 0 || c.Admin.InvitationTTL > Duration(90*24*time.Hour) {
		add("admin.invitation_ttl", "must be between 1s and 90 days (2160h)")
	}
	for i, m := range c.Admin.BootstrapManagers {
		if at := strings.LastIndexByte(m, '@'); at <= 0 || at == len(m)-1 || strings.ContainsAny(m, " ,") {
			add(fmt.Sprintf("admin.bootstrap_managers[%d]", i), "%q is not an email address", m)
		}
	}
	if c.SSO.LoginRate < 0 {
		add("sso.login_rate", "must not be negative (0: no limit)")
	}
	switch c.Proxy.Groups {
	case "all", "mapped", "none":
	default:
		add("proxy.groups", "%q must be all, mapped or none", c.Proxy.Groups)
	}
	if c.Proxy.HeaderBudget < 2048 {
		add("proxy.header_budget", "must be at least 2048 bytes (the identity JWT alone takes about 1 KiB)")
	}
	for i, r := range c.Proxy.Rules {
		at := fmt.Sprintf("proxy.rules[%d]", i)
		pools := 0
		for _, set := range []bool{r.Pool != "", r.PoolSegment != 0, r.PoolHeader != ""} {
			if set {
				pools++
			}
		}
		switch {
		case !strings.HasPrefix(r.Path, "/"):
			add(at+".path", "%q must be a path starting with / (a trailing /* matches everything under it; * matches one segment)", r.Path)
		case !gateway.ValidPermission(r.Permission):
			add(at+".permission", "%q is not a permission (lower-case letters, digits, '.', '_', ':' and '-')", r.Permission)
		case pools > 1:
			add(at, "name the pool one way: pool, pool_segment or pool_header")
		case r.PoolSegment < 0:
			add(at+".pool_segment", "counts path segments from 1")
		case r.Pool != "" && !gateway.ValidPoolID(r.Pool):
			add(at+".pool", "%q is not a pool id", r.Pool)
		}
		if _, err := path.Match(strings.TrimSuffix(r.Path, "/*"), "/"); err != nil {
			add(at+".path", "%q is not a path pattern: %v", r.Path, err)
		}
	}
	for role, perms := range c.Provisioning.RolePermissions {
		if !gateway.ValidRoleName(role) {
			add("provisioning.role_permissions", "%q is not a role name (lower-case letters, digits, '-' and '_')", role)
		}
		for _, p := range perms {
			if !gateway.ValidPermission(p) {
				add("provisioning.role_permissions."+role, "%q is not a permission (lower-case letters, digits, '.', '_', ':' and '-', such as agents.debug)", p)
			}
		}
	}
	if c.SSO.CachedOrgs < 1 {
		add("sso.cached_orgs", "must be at least 1")
	}
	if c.SCIM.AccessTokenTTL < Duration(5*time.Minute) || c.SCIM.AccessTokenTTL > Duration(6*time.Hour) {
		add("scim.access_token_ttl", "must be between 5m and 6h")
	}
	if c.Store.OpenTimeout <= 0 {
		add("store.open_timeout", "must be a positive duration such as 5s")
	}
	switch c.Store.Type {
	case "bolt":
	case "postgres":
		if !c.Store.Postgres.DSN.IsConfigured() {
			add("store.postgres.dsn", "is required with store.type postgres (e.g. env:GATEHOUSE_DB_DSN naming a variable that holds postgres://user:password@host:5432/db?sslmode=verify-full)")
		}
		if c.Store.Postgres.Schema != "" && !schemaName.MatchString(c.Store.Postgres.Schema) {
			add("store.postgres.schema", "must be a plain identifier (lower-case letters, digits and _)")
		}
		if c.Store.Postgres.MaxConns < 0 {
			add("store.postgres.max_conns", "must be 0 (the default) or more")
		}
		if c.Store.Postgres.StatementTimeout <= 0 {
			add("store.postgres.statement_timeout", "must be a positive duration such as 10s")
		}
	default:
		add("store.type", "must be bolt or postgres, not %q", c.Store.Type)
	}
	if c.Delivery.MaxAttempts < 1 {
		add("delivery.max_attempts", "must be at least 1")
	}
	if c.Delivery.BackoffMin <= 0 || c.Delivery.BackoffMax < c.Delivery.BackoffMin {
		add("delivery.backoff_min", "must be positive and at most delivery.backoff_max (%s, %s)", c.Delivery.BackoffMin, c.Delivery.BackoffMax)
	}
	if c.Delivery.Timeout <= 0 {
		add("delivery.timeout", "must be a positive duration such as 10s")
	}
	if c.Delivery.Lanes < 1 || c.Delivery.Lanes > 256 {
		add("delivery.lanes", "%d is outside 1..256", c.Delivery.Lanes)
	}
	if c.Delivery.Retention < 0 {
		add("delivery.retention", "must not be negative")
	}
	orgSeen, domainSeen := map[string]int{}, map[string]string{}
	for i, o := range c.Organizations {
		path := fmt.Sprintf("organizations[%d]", i)
		if err := gateway.OrgID(o.ID).Check(); err != nil {
			add(path+".id", "%s", gateway.ErrorMessageOf(err))
		} else if j, dup := orgSeen[o.ID]; dup {
			add(path+".id", "%q is also the id of organizations[%d]", o.ID, j)
		}
		orgSeen[o.ID] = i
		for j, d := range o.Domains {
			key := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
			if owner, dup := domainSeen[key]; dup && owner != o.ID {
				add(fmt.Sprintf("%s.domains[%d]", path, j), "%q is also a domain of organization %q: a domain belongs to one organization", d, owner)
			}
			domainSeen[key] = o.ID
		}
	}
	seen := map[string]int{}
	for i, a := range c.Adapters {
		path := fmt.Sprintf("adapters[%d]", i)
		switch {
		case a.ID == "":
			add(path+".id", "is required (a name for this adapter, e.g. app-hook)")
		case !validAdapterID(a.ID):
			add(path+".id", "%q may hold only letters, digits, '-' and '_'", a.ID)
		case seen[a.ID] > 0:
			add(path+".id", "%q is also the id of adapters[%d]: ids are unique (each keeps its own delivery cursor)", a.ID, seen[a.ID]-1)
		}
		seen[a.ID] = i + 1
		if a.Type == "" {
			add(path+".type", "is required")
		}
	}
	return ps
}

// IdentitySettings is the identity configuration the file describes
// (what seeds the store, or wins over it with admin.identity_source: file).
func (c *Config) IdentitySettings() gateway.IdentitySettings {
	s, p := c.SSO, c.Provisioning
	return gateway.IdentitySettings{
		SSO: gateway.SSOSettings{
			Protocol: s.Protocol, Preset: s.Preset,
			SAML: gateway.SAMLSettings{IDPMetadataURL: s.SAML.IDPMetadataURL, IDPMetadataFile: s.SAML.IDPMetadataFile,
				IDPMetadataRefresh: gateway.Duration(s.SAML.IDPMetadataRefresh), AllowIDPInitiated: s.SAML.AllowIDPInitiated,
				EmailAttribute: s.SAML.EmailAttribute, FirstNameAttribute: s.SAML.FirstNameAttribute,
				LastNameAttribute: s.SAML.LastNameAttribute, GroupsAttribute: s.SAML.GroupsAttribute},
			OIDC:            gateway.OIDCSettings{Issuer: s.OIDC.Issuer, ClientID: s.OIDC.ClientID, ClientSecret: s.OIDC.ClientSecret},
			UniversalLogout: gateway.UniversalLogoutSettings{Issuer: s.UniversalLogout.Issuer, JWKSURL: s.UniversalLogout.JWKSURL},
		},
		Provisioning: gateway.ProvisioningSettings{Method: gateway.Source(p.Method), DefaultPool: p.DefaultPool, DefaultRole: p.DefaultRole,
			Roles: p.Roles, EmailDomain: p.EmailDomain, AllowedDomains: p.AllowedDomains, VerifiedDomainsOnly: p.VerifiedDomainsOnly,
			GroupPools: p.GroupPools, GroupPoolsEnabled: p.GroupPoolsEnabled, GroupRoles: groupRoles(p.GroupRoles), GroupRolesEnabled: p.GroupRolesEnabled},
	}
}

func groupRoles(rules GroupRoles) []gateway.GroupRole {
	var out []gateway.GroupRole
	for _, r := range rules {
		out = append(out, gateway.GroupRole{Group: r.Group, Role: r.Role})
	}
	return out
}

// Redacted renders the effective configuration as YAML, secrets hidden.
func (c *Config) Redacted() string {
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Sprintf("# cannot render configuration: %v\n", err)
	}
	return string(b)
}

// Secret is a sensitive value (see gateway.Secret): it prints, marshals
// and logs as [REDACTED], and env:NAME or file:PATH references are
// resolved by Load.
type Secret = gateway.Secret

// NewSecret wraps a literal value.
func NewSecret(v string) Secret { return gateway.NewSecret(v) }

func secretProblems(path string, s Secret, add func(string, string, ...any)) {
	if p := s.Problem(); p != "" {
		add(path, "%s", p)
	}
}

// Duration is a time.Duration written as "5s" in YAML and env.
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var v string
	if err := n.Decode(&v); err != nil {
		return err
	}
	p, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 5s)", n.Line, v)
	}
	*d = Duration(p)
	return nil
}

// EnvPrefix starts every environment override.
const EnvPrefix = "GATEHOUSE_"

// field is one configuration key found by walking the struct.
type field struct {
	path string // dotted
	doc  string
	v    reflect.Value
}

func fields(cfg *Config) []field {
	var out []field
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			fv := v.Field(i)
			if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeOf(Secret{}) && fv.Type() != reflect.TypeOf(AdapterEntry{}) {
				walk(path, fv)
				continue
			}
			out = append(out, field{path: path, doc: sf.Tag.Get("doc"), v: fv})
		}
	}
	walk("", reflect.ValueOf(cfg).Elem())
	return out
}

// EnvName is the environment variable overriding a dotted key.
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// applyEnv sets the keys named by GATEHOUSE_* variables. A variable that
// matches no key is a warning, not an error: the environment is shared
// with the platform (Kubernetes service links) and must not stop the
// gateway. A bad value for a real key is an error.
func applyEnv(cfg *Config, environ []string) (warnings []string, problems []Problem) {
	byEnv := map[string]field{}
	for _, f := range fields(cfg) {
		byEnv[EnvName(f.path)] = f
	}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, EnvPrefix) {
			continue
		}
		f, known := byEnv[k]
		if !known {
			warnings = append(warnings, unknownEnv(k, byEnv))
			continue
		}
		if err := setValue(f.v, v); err != nil {
			problems = append(problems, Problem{Path: f.path, Message: k + ": " + err.Error()})
		}
	}
	sort.Strings(warnings)
	return warnings, problems
}

// unknownEnv explains a GATEHOUSE_* variable that sets nothing.
func unknownEnv(name string, known map[string]field) string {
	rest := strings.TrimPrefix(name, EnvPrefix)
	if rest == "PORT" || strings.HasPrefix(rest, "PORT_") || strings.HasPrefix(rest, "SERVICE_") {
		return name + " matches no configuration key and is ignored (it looks like a Kubernetes service link variable)"
	}
	best, bestDist := "", 3 // suggest only close matches: typos, not other words
	for k := range known {
		if d := editDistance(name, k); d < bestDist || d == bestDist && best != "" && k < best {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf("%s matches no configuration key and is ignored; did you mean %s?", name, best)
	}
	return name + " matches no configuration key and is ignored"
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func setValue(v reflect.Value, s string) error {
	switch p := v.Addr().Interface().(type) {
	case *string:
		*p = s
	case *Secret:
		*p = gateway.ParseSecret(s)
	case *bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean (true or false)", s)
		}
		*p = b
	case *int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		*p = n
	case *int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		*p = n
	case *Organizations:
		var list Organizations
		if err := yaml.Unmarshal([]byte(s), &list); err != nil {
			return fmt.Errorf("is not a YAML or JSON list of {id, name, domains}: %v", err)
		}
		*p = list
	case *GroupRoles:
		var list GroupRoles
		if err := yaml.Unmarshal([]byte(s), &list); err != nil {
			return fmt.Errorf("is not a YAML or JSON list of {group, role}: %v", err)
		}
		*p = list
	case *ProxyRules:
		var list ProxyRules
		if err := yaml.Unmarshal([]byte(s), &list); err != nil {
			return fmt.Errorf("is not a YAML or JSON list of {path, permission, pool}: %v", err)
		}
		*p = list
	case *RolePermissions:
		var m RolePermissions
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			return fmt.Errorf(`is not a YAML or JSON map of role to permissions ({"debugger": ["agents.debug"]}): %v`, err)
		}
		*p = m
	case *Adapters:
		var list Adapters
		if err := yaml.Unmarshal([]byte(s), &list); err != nil {
			return fmt.Errorf("is not a YAML or JSON list of {id, type, config}: %v", err)
		}
		*p = list
	case *[]string:
		*p = splitList(s)
	case *StringList:
		*p = splitList(s)
	case *map[string]string:
		m := map[string]string{}
		for _, part := range splitList(s) {
			k, v, ok := strings.Cut(part, "=")
			if !ok || strings.TrimSpace(k) == "" {
				return fmt.Errorf("%q is not a list of name=value pairs (Group A=pool-a,Group B=pool-b)", s)
			}
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		*p = m
	case *Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 5s)", s)
		}
		*p = Duration(d)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// KeyDoc documents one configuration key.
type KeyDoc struct {
	Path, Env, Default, Description string
}

// Reference lists every key with its environment variable, default and
// description, generated from the struct so docs and code cannot drift.
func Reference() []KeyDoc {
	var out []KeyDoc
	for _, f := range fields(Default()) {
		def := fmt.Sprint(f.v.Interface())
		out = append(out, KeyDoc{Path: f.path, Env: EnvName(f.path), Default: def, Description: f.doc})
	}
	return out
}

func validAdapterID(id string) bool {
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return len(id) <= 64
}

// splitList reads a comma-separated list, dropping empty parts.
func splitList(s string) []string {
	var list []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			list = append(list, part)
		}
	}
	return list
}

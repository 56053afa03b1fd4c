package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/config"
	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/demo"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	samlsp "github.com/gatehouse-id/gatehouse/gateway/saml"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
)

// NewLogger builds the structured logger the configuration asks for.
func NewLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "text" {
		return slog.New(httpx.LogHandler(slog.NewTextHandler(w, opts)))
	}
	return slog.New(httpx.LogHandler(slog.NewJSONHandler(w, opts)))
}

// Serve loads the configuration and runs the gateway until ctx is done;
// version is the release set at link time.
func Serve(ctx context.Context, configPath string, environ []string, logOut io.Writer, version string) error {
	cfg, err := config.Load(configPath, environ)
	if err != nil {
		return err
	}
	log := NewLogger(cfg, logOut)
	tuneRuntime(environ, log)
	a, err := New(cfg, log)
	if err != nil {
		return err
	}
	a.SetRelease(version)
	return a.Run(ctx)
}

// CheckConfig prints the effective configuration (secrets redacted) and
// every problem in it; it exits non-zero when there is any.
func CheckConfig(configPath string, environ []string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(configPath, environ)
	var loadErr *config.LoadError
	if err != nil && !errors.As(err, &loadErr) {
		fmt.Fprintln(stderr, "gatehouse: config:", err)
		return 1
	}
	_, adapterProblems := loadAdapters(cfg) // before printing: it shows them decoded
	fmt.Fprint(stdout, cfg.Redacted())
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	// Every problem at once: the input's (unknown keys, wrong types), then
	// the values'.
	var problems []config.Problem
	if loadErr != nil {
		problems = loadErr.Problems
	}
	problems = append(append(problems, cfg.Validate()...), adapterProblems...)
	if len(problems) == 0 {
		problems = append(checkIdPMetadata(context.Background(), cfg), checkSCIMToken(cfg)...)
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, "problem:", p.String())
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "%d problem(s) found\n", len(problems))
		return 1
	}
	compareIdentity(cfg, stderr)
	fmt.Fprintln(stderr, "configuration is valid")
	return 0
}

// compareIdentity shows the identity settings the store holds beside the
// file's, and which are in force at the next start.
func compareIdentity(cfg *config.Config, out io.Writer) {
	if cfg.Store.Type == "postgres" {
		fmt.Fprintf(out, "identity: store.type is postgres, which this check does not open; GET %s/admin/api/v1/identity on a running gateway shows the settings in force\n", cfg.PathPrefix)
		return
	}
	path := filepath.Join(cfg.DataDir, DBFile)
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintf(out, "identity: no store at %s yet: the file's sso and provisioning settings are stored at the first start\n", path)
		return
	}
	store, err := bolt.Open(path, bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		fmt.Fprintf(out, "identity: the store cannot be read (%v); while Gatehouse runs, GET %s/admin/api/v1/identity shows the settings in force\n", err, cfg.PathPrefix)
		return
	}
	defer store.Close()
	stored, found, err := provision.StoredSettings(context.Background(), store, gateway.DefaultOrg)
	switch {
	case err != nil:
		fmt.Fprintf(out, "identity: reading the stored settings: %v\n", err)
		return
	case !found:
		fmt.Fprintln(out, "identity: the store holds no identity settings yet: the file's are stored at the next start")
		return
	}
	fmt.Fprintf(out, "identity: the store holds version %d (changed by %s at %s): sso.protocol %q, provisioning.method %q\n",
		stored.Version, stored.UpdatedBy, stored.UpdatedAt.Format(time.RFC3339), stored.SSO.Protocol, stored.Provisioning.Method)
	diff := provision.SettingsDiff(stored.IdentitySettings, cfg.IdentitySettings())
	diff = slices.DeleteFunc(diff, func(p string) bool { return p == "provisioning.roles" }) // always the file's
	switch {
	case len(diff) == 0:
		fmt.Fprintln(out, "identity: the file and the store agree")
	case cfg.Admin.IdentitySource == provision.SettingsFromFile:
		fmt.Fprintf(out, "identity: the file differs from the store at %s; admin.identity_source is file, so the file's win at the next start\n", strings.Join(diff, ", "))
	case stored.FromFile():
		fmt.Fprintf(out, "identity: the file differs from the store at %s; the stored values are an earlier file's, never changed by a person, so the file's win at the next start\n", strings.Join(diff, ", "))
	default:
		fmt.Fprintln(out, "identity:", IdentityConflict(stored, diff))
	}
}

// checkSCIMToken applies the rule that SCIM has a token, as the start
// does: the file's, or one rotated into the store.
func checkSCIMToken(cfg *config.Config) []config.Problem {
	has := cfg.SCIM.Token.IsConfigured()
	if !has && cfg.Store.Type == "postgres" {
		return nil // a token rotated into the database counts; the start checks
	}
	if path := filepath.Join(cfg.DataDir, DBFile); !has && cfg.Provisioning.Method == string(gateway.SourceSCIM) {
		if _, err := os.Stat(path); err == nil {
			store, err := bolt.Open(path, bolt.Options{ReadOnly: true, Timeout: time.Second})
			if err != nil {
				return nil // held by the running gateway: it started, so it has one
			}
			has, _ = provision.StoredSCIMToken(context.Background(), store, gateway.DefaultOrg)
			store.Close()
		}
	}
	var out []config.Problem
	for _, v := range gateway.SCIMTokenRule(gateway.Source(cfg.Provisioning.Method), has) {
		out = append(out, config.Problem{Path: v.Path, Message: v.Message})
	}
	return out
}

// checkIdPMetadata reads the SAML IdP metadata the file names (its file,
// or its URL, fetched) as a start would, and says what is wrong with it.
func checkIdPMetadata(ctx context.Context, cfg *config.Config) []config.Problem {
	st := cfg.IdentitySettings()
	if st.SSO.Protocol != gateway.ProtocolSAML {
		return nil
	}
	path := "sso.saml.idp_metadata_url"
	if st.SSO.SAML.IDPMetadataFile != "" {
		path = "sso.saml.idp_metadata_file"
	}
	raw, err := loadMetadata(ctx, st.SSO.SAML)
	if err == nil {
		_, err = samlsp.ParseIDPMetadata(raw)
	}
	if err != nil {
		return []config.Problem{{Path: path, Message: err.Error()}}
	}
	return nil
}

// Demo runs the whole journey on one machine: the gateway, an embedded
// Okta-like SAML IdP with demo people and a sample app behind the
// gateway that shows the identity it receives. method is "jit" (people are
// created at their first sign-in) or "scim" (a fresh SCIM token is
// printed; sign-in then needs the person provisioned first). Data lives
// in ./gatehouse-demo; settings from the environment or --config still
// apply.
func Demo(ctx context.Context, configPath string, environ []string, method, sso string, stdout, logOut io.Writer) error {
	if method != "jit" && method != "scim" {
		return fmt.Errorf("demo: --method must be jit or scim, not %q", method)
	}
	token := make([]byte, 24)
	if _, err := rand.Read(token); err != nil {
		return err
	}
	if sso != "saml" && sso != "oidc" {
		return fmt.Errorf("demo: --sso must be saml or oidc, not %q", sso)
	}
	idpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo idp: %w", err)
	}
	idpURL := "http://" + idpLn.Addr().String()
	var ssoEnv []string
	var trust func(a *App, cfg *config.Config) error
	switch sso {
	case "saml":
		idp, err := demo.StartIdP(demo.IdPOptions{Listener: idpLn, People: demo.People()})
		if err != nil {
			idpLn.Close()
			return err
		}
		defer idp.Close()
		ssoEnv = []string{"GATEHOUSE_SSO_PROTOCOL=saml", "GATEHOUSE_SSO_SAML_IDP_METADATA_URL=" + idp.URL + "/metadata"}
		trust = func(a *App, cfg *config.Config) error {
			return idp.Trust("gatehouse", a.publicURL+cfg.PathPrefix+"/saml/metadata")
		}
	case "oidc":
		secret := make([]byte, 24)
		if _, err := rand.Read(secret); err != nil {
			return err
		}
		clientSecret := base64.RawURLEncoding.EncodeToString(secret)
		ssoEnv = []string{"GATEHOUSE_SSO_PROTOCOL=oidc", "GATEHOUSE_SSO_OIDC_ISSUER=" + idpURL,
			"GATEHOUSE_SSO_OIDC_CLIENT_ID=gatehouse-demo", "GATEHOUSE_SSO_OIDC_CLIENT_SECRET=" + clientSecret}
		// The OP starts once the gateway's callback URL is known; until
		// then its port is held, and a sign-in waits for it.
		trust = func(a *App, cfg *config.Config) error {
			op, err := demo.StartOP(demo.OPOptions{Listener: idpLn, People: demo.People(), ClientID: "gatehouse-demo",
				ClientSecret: clientSecret, RedirectURI: a.publicURL + cfg.PathPrefix + "/oidc/callback",
				// Signing out reaches the OP and comes back; the OP tells
				// the gateway by back-channel logout, as Okta can.
				PostLogoutRedirectURIs: []string{a.publicURL + cfg.PathPrefix + "/oidc/logged-out"},
				BackchannelLogoutURI:   a.publicURL + cfg.PathPrefix + "/oidc/backchannel-logout"})
			if err != nil {
				return err
			}
			go func() { <-ctx.Done(); op.Close() }()
			return nil
		}
	}
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo app: %w", err)
	}
	listen := lookupEnv(environ, "GATEHOUSE_LISTEN", "127.0.0.1:8080")
	if strings.HasSuffix(listen, ":0") {
		// The IdP needs the gateway's URL before it listens: pick the port now.
		if listen, err = freePort(listen); err != nil {
			appLn.Close()
			return err
		}
	}
	defaults := []string{
		"GATEHOUSE_PROVISIONING_METHOD=" + method,
		"GATEHOUSE_SCIM_TOKEN=" + base64.RawURLEncoding.EncodeToString(token),
		"GATEHOUSE_DATA_DIR=" + filepath.Join(".", "gatehouse-demo"),
		"GATEHOUSE_LISTEN=" + listen,
		"GATEHOUSE_PUBLIC_URL=http://" + listen,
		"GATEHOUSE_UPSTREAM_URL=http://" + appLn.Addr().String(),
		"GATEHOUSE_LOG_FORMAT=text",
		"GATEHOUSE_ADMIN_BOOTSTRAP_MANAGERS=ada@example.com",
	}
	defaults = append(defaults, ssoEnv...)
	env := append(overridable(defaults, environ), environ...)
	env = append(env, "GATEHOUSE_LISTEN="+listen)
	cfg, err := config.Load(configPath, env)
	if err != nil {
		appLn.Close()
		return err
	}
	sampleApp := &http.Server{Handler: demo.App(cfg.PathPrefix), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = sampleApp.Serve(appLn) }()
	defer sampleApp.Close()
	a, err := New(cfg, NewLogger(cfg, logOut))
	if err != nil {
		return err
	}
	// The demo's IdP listens on a new port each run: its flags win over
	// what an earlier run stored (the console can still change them).
	if err := a.loadIdentity(ctx, provision.SettingsFromFile); err != nil {
		a.store.Close()
		return err
	}
	if err := a.Start(); err != nil {
		a.store.Close()
		return err
	}
	if err := trust(a, cfg); err != nil {
		_ = a.Shutdown(context.Background())
		return err
	}
	fmt.Fprintf(stdout, `
Gatehouse demo is running.

  Open in a browser : %s/
  Sign in as        : ada or grace, password demo (at the demo %s)
  Console           : %s/console (ada is a manager; grace is not)
  Provisioning      : %s
  metrics           : http://%s/metrics
  data              : %s
`, a.publicURL, strings.ToUpper(sso)+" IdP, "+idpURL, a.publicURL+cfg.PathPrefix, methodLine(method), a.OpsAddr(), cfg.DataDir)
	if method == "scim" {
		token, note, err := a.demoSCIMToken(ctx, cfg.SCIM.Token.Value())
		if err != nil {
			_ = a.Shutdown(context.Background())
			return err
		}
		base := a.SCIMBaseURL()
		fmt.Fprintf(stdout, `  SCIM base URL     : %s
  SCIM token        : %s%s

Provision Ada, then sign in as ada:
  curl -s -H "Authorization: Bearer %s" -H "Content-Type: application/scim+json" \
       -d '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com","name":{"givenName":"Ada","familyName":"Lovelace"},"emails":[{"value":"ada@example.com","type":"work","primary":true}],"active":true}' \
       %s/Users
`, base, token, note, token, base)
	}
	fmt.Fprintln(stdout, "\nPress Ctrl-C to stop.")
	<-ctx.Done()
	return a.Shutdown(context.Background())
}

func methodLine(method string) string {
	if method == "scim" {
		return "SCIM (only provisioned people can sign in; `gatehouse demo` without --method scim creates them at first sign-in)"
	}
	return "SSO JIT (people are created at their first sign-in; `gatehouse demo --method scim` provisions by SCIM instead)"
}

// lookupEnv is the last value of key in environ, or def.
func lookupEnv(environ []string, key, def string) string {
	v := def
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// freePort turns host:0 into host:<a free port>.
func freePort(listen string) (string, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// overridable drops the defaults the caller's environment already sets.
func overridable(defaults, environ []string) []string {
	set := map[string]bool{}
	for _, kv := range environ {
		if k, _, ok := strings.Cut(kv, "="); ok {
			set[k] = true
		}
	}
	var out []string
	for _, kv := range defaults {
		k, _, _ := strings.Cut(kv, "=")
		if !set[k] {
			out = append(out, kv)
		}
	}
	return out
}

// demoSCIMToken is a SCIM token that works now: the run's own, unless a
// token rotated in an earlier run (the console, the admin API) superseded
// it, in which case the demo rotates a new one and says so.
func (a *App) demoSCIMToken(ctx context.Context, fromRun string) (token, note string, err error) {
	ok, err := a.service.CheckSCIMToken(ctx, gateway.DefaultOrg, fromRun)
	if err != nil || ok {
		return fromRun, "", err
	}
	token, _, err = a.service.RotateSCIMToken(ctx, gateway.DefaultOrg, gateway.Actor{Kind: gateway.ActorConfig, ID: "demo"}, "", 0)
	if err != nil {
		return "", "", fmt.Errorf("demo: a SCIM token: %w", err)
	}
	return token, "\n                      (a token rotated in an earlier run was in use; the demo rotated this one)", nil
}

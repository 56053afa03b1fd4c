// Package app wires Gatehouse together: configuration to options, the
// store, the provisioning core, the protocol servers, the operations
// listener, and graceful shutdown.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-id/gatehouse/config"
	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/login"
	"github.com/gatehouse-id/gatehouse/gateway/metrics"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/session"
)

// DBFile is the bbolt file inside data_dir.
const DBFile = "gatehouse.db"

// App is a running gateway.
type App struct {
	cfg      *config.Config
	log      *slog.Logger
	store    gateway.Store
	registry *prometheus.Registry
	metrics  *metrics.Metrics
	service  *provision.Service

	main, ops       *http.Server
	mainLn, opsLn   net.Listener
	publicURL       string
	shutdownTimeout time.Duration
	serveErr        chan error
	workers         []Worker // stopped in reverse order, after the servers

	adapters []configuredAdapter
	delivery *deliveries
	sessions *session.Manager

	// sso holds each organization's sign-in routes of the identity
	// settings in force.
	sso   *ssoSet
	conns connections // the IdP connections' health

	funnel *login.Funnel

	// opsCredential is what the operations listener's outbox endpoints
	// require (the token this process wrote to OpsTokenFile).
	opsCredential httpx.Bearer
}

// Sessions is the gateway's session manager (for in-process tests and
// the coming sign-in handlers).
func (a *App) Sessions() *session.Manager { return a.sessions }

// New opens the store and builds the servers; it does not listen yet.
func New(cfg *config.Config, log *slog.Logger) (*App, error) {
	configured, adapterProblems := loadAdapters(cfg)
	if problems := append(cfg.Validate(), adapterProblems...); len(problems) > 0 {
		msgs := make([]string, len(problems))
		for i, p := range problems {
			msgs[i] = p.String()
		}
		return nil, fmt.Errorf("invalid configuration:\n  %s", strings.Join(msgs, "\n  "))
	}
	for _, w := range cfg.Warnings {
		log.Warn("configuration: " + w)
	}
	reg := prometheus.NewRegistry()
	store, err := openStore(context.Background(), cfg, log, reg)
	if err != nil {
		return nil, err
	}
	a := &App{
		adapters:        configured,
		cfg:             cfg,
		log:             log,
		store:           store,
		registry:        reg,
		metrics:         metrics.New(reg),
		shutdownTimeout: 15 * time.Second,
		sso:             newSSOSet(cfg.SSO.CachedOrgs, gateway.DefaultOrg),
		serveErr:        make(chan error, 2),
	}
	a.SetRelease("")
	a.service = provision.New(store, gateway.SystemClock{}, provision.Policy{
		Method:         gateway.Source(cfg.Provisioning.Method),
		DefaultPool:    cfg.Provisioning.DefaultPool,
		DefaultRole:    cfg.Provisioning.DefaultRole,
		AllowedDomains: cfg.Provisioning.AllowedDomains,
	})
	a.service.SetRoleSeeds(cfg.Provisioning.RolePermissions) // before any organization stores its roles
	a.service.SetJWKSFetcher(fetchJWKS)
	// The organization served at the unprefixed URLs is in the registry
	// like any other (a gateway from before organizations gains it here).
	if err := a.service.EnsureOrg(context.Background(), gateway.DefaultOrg, "Default organization"); err != nil {
		store.Close()
		return nil, fmt.Errorf("register the default organization: %w", err)
	}
	file := cfg.IdentitySettings()
	a.service.SetNewOrgSettings(gateway.IdentitySettings{SSO: gateway.SSOSettings{Protocol: gateway.ProtocolNone},
		Provisioning: gateway.ProvisioningSettings{Method: gateway.SourceManual, DefaultPool: file.Provisioning.DefaultPool,
			DefaultRole: file.Provisioning.DefaultRole, Roles: file.Provisioning.Roles}})
	specs := make([]provision.OrgSpec, len(cfg.Organizations))
	for i, o := range cfg.Organizations {
		specs[i] = provision.OrgSpec{ID: gateway.OrgID(o.ID), Name: o.Name, Domains: o.Domains}
	}
	conflicts, err := a.service.ApplyFileOrgs(context.Background(), specs, cfg.Admin.IdentitySource == provision.SettingsFromFile)
	if err != nil {
		store.Close()
		return nil, err
	}
	for _, c := range conflicts {
		log.Warn("organizations: " + c)
	}
	a.service.SetTXTResolver(txtResolver(cfg.Domains.Resolver))
	a.service.SetFileSCIMToken(gateway.DefaultOrg, cfg.SCIM.Token.Value())
	a.service.SetBootstrapManagers(gateway.DefaultOrg, cfg.Admin.BootstrapManagers)
	if superseded, err := a.service.FileSCIMTokenSuperseded(context.Background(), gateway.DefaultOrg); err == nil && superseded {
		log.Warn("scim.token in the configuration is not used: a token was rotated through the admin API or console since; " +
			"rotate again (POST /admin/api/v1/scim-token, previous_valid_for 0s to cut the old one off) rather than editing the file")
	}
	if err := a.loadIdentity(context.Background(), cfg.Admin.IdentitySource); err != nil {
		store.Close()
		return nil, err
	}
	return a, nil
}

// loadIdentity brings the identity settings in force: the file's on first
// start, then the store's unless source is "file".
func (a *App) loadIdentity(ctx context.Context, source string) error {
	res, err := a.service.LoadSettings(ctx, gateway.DefaultOrg, a.cfg.IdentitySettings(), source)
	if err != nil {
		return fmt.Errorf("identity settings: %w", err)
	}
	switch {
	case res.Seeded:
		a.log.Info("identity settings from the configuration file; stored once the gateway has started with them", "sso_protocol", res.Settings.SSO.Protocol,
			"provisioning_method", res.Settings.Provisioning.Method)
	case res.Applied && res.Untouched:
		a.log.Info("identity settings: the configuration file's changes are in force (the stored settings were an earlier file's, never changed by a person)", "changed", res.Differs)
	case res.Applied:
		a.log.Info("identity settings: the configuration file wins (admin.identity_source: file)", "changed", res.Differs)
	case len(res.Differs) > 0:
		a.log.Warn("identity settings: "+IdentityConflict(res.Settings, res.Differs), "differs", res.Differs)
	}
	return nil
}

// IdentityConflict says which keys of the file lose to settings a person
// changed, and how to settle it.
func IdentityConflict(stored provision.Settings, differs []string) string {
	return fmt.Sprintf("the configuration file sets %s differently from what %s changed at %s through the admin API or console, which stays in force. "+
		"To keep the stored values, make the file say the same (or drop those keys); to take the file's, change them in the console or the admin API "+
		"(PUT /admin/api/v1/identity), or start once with admin.identity_source: file",
		strings.Join(differs, ", "), stored.UpdatedBy.String(), stored.UpdatedAt.UTC().Format(time.RFC3339))
}

// Start binds both listeners and serves in the background. With a port of
// 0 the bound addresses are available from MainAddr and OpsAddr.
func (a *App) Start() error {
	var err error
	if a.mainLn, err = net.Listen("tcp", a.cfg.Listen); err != nil {
		return fmt.Errorf("listen %q: %w", a.cfg.Listen, err)
	}
	if a.opsLn, err = net.Listen("tcp", a.cfg.OpsListen); err != nil {
		a.mainLn.Close()
		return fmt.Errorf("listen ops %q: %w", a.cfg.OpsListen, err)
	}
	a.publicURL = strings.TrimRight(a.cfg.PublicURL, "/")
	if a.publicURL == "" {
		a.publicURL = "http://" + a.mainLn.Addr().String()
		a.log.Warn("public_url is not set; SCIM meta.location uses the listen address", "public_url", a.publicURL)
	}
	if a.opsCredential, err = writeOpsToken(a.cfg.DataDir); err != nil {
		a.mainLn.Close()
		a.opsLn.Close()
		return err
	}
	handler, err := a.routes()
	if err != nil {
		a.mainLn.Close()
		a.opsLn.Close()
		return err
	}
	a.main = a.newServer(handler)
	a.ops = a.newServer(a.opsRoutes())
	if err := a.startDelivery(); err != nil {
		a.mainLn.Close()
		a.opsLn.Close()
		return err
	}
	// The file's identity settings are stored only now that the gateway
	// started with them (their IdP metadata loaded, their routes built).
	if err := a.service.StoreSeed(context.Background(), gateway.DefaultOrg); err != nil {
		a.mainLn.Close()
		a.opsLn.Close()
		return err
	}
	a.startSweeper()
	go a.serve(a.main, a.mainLn)
	go a.serve(a.ops, a.opsLn)
	a.log.Info("gatehouse started", "listen", a.mainLn.Addr().String(), "ops_listen", a.opsLn.Addr().String(),
		"scim_base", a.SCIMBaseURL(), "provisioning_method", a.cfg.Provisioning.Method, "sso_protocol", a.cfg.SSO.Protocol)
	return nil
}

// newServer applies the same timeouts to every listener: without them an
// idle keep-alive connection, or a client that sends headers slowly, holds
// a goroutine and a file descriptor forever.
func (a *App) newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
}

func (a *App) serve(s *http.Server, ln net.Listener) {
	if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.serveErr <- err
	}
}

// Run starts the gateway and blocks until ctx is done or a listener fails,
// then shuts down gracefully.
func (a *App) Run(ctx context.Context) error {
	if err := a.Start(); err != nil {
		a.store.Close()
		return err
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-a.serveErr:
	}
	return errors.Join(runErr, a.Shutdown(context.Background()))
}

// Worker is a background task the gateway runs beside its servers (the
// outbox dispatcher, metadata refresh). Stop returns once it has stopped.
type Worker interface {
	Stop(ctx context.Context) error
}

// Shutdown stops in dependency order: the servers first (no new requests,
// in-flight ones finish, bounded), then the background workers (which may
// still need the store), then the store, so that every committed write is
// on disk.
func (a *App) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, a.shutdownTimeout)
	defer cancel()
	var errs []error
	if a.main != nil {
		errs = append(errs, a.main.Shutdown(ctx))
		// Serve may not have taken the listener over yet (a Shutdown right
		// after Start): close it here so that no connection is accepted.
		_ = a.mainLn.Close()
	}
	if a.ops != nil {
		errs = append(errs, a.ops.Shutdown(ctx))
		_ = a.opsLn.Close()
	}
	for i := len(a.workers) - 1; i >= 0; i-- {
		errs = append(errs, a.workers[i].Stop(ctx))
	}
	a.sso.close()
	errs = append(errs, a.store.Close())
	a.log.Info("gatehouse stopped")
	return errors.Join(errs...)
}

// MainAddr is the bound address of the main listener.
func (a *App) MainAddr() string { return a.mainLn.Addr().String() }

// OpsHandler is the operations listener's handler (for in-process tests).
func (a *App) OpsHandler() http.Handler { return a.ops.Handler }

// OpsAddr is the bound address of the operations listener.
func (a *App) OpsAddr() string { return a.opsLn.Addr().String() }

// SCIMBaseURL is the public SCIM base URL IdPs are configured with.
func (a *App) SCIMBaseURL() string { return a.publicURL + a.cfg.PathPrefix + "/scim/v2" }

// SetRelease names the release for gatehouse_build_info: the version set
// at link time ("" or "dev": the one Go recorded, with its commit).
func (a *App) SetRelease(linked string) {
	a.metrics.BuildInfo.Reset()
	a.metrics.BuildInfo.WithLabelValues(BuildVersion(linked), runtime.Version()).Set(1)
}

// Store exposes the store to in-process tests and tools.
func (a *App) Store() gateway.Store { return a.store }

func (a *App) ready(ctx context.Context) error {
	// One indexed read: the store answers (PostgreSQL is reachable).
	_, err := a.store.Outbox().LastSeq(ctx, gateway.DefaultOrg)
	return err
}

// Service is the provisioning service (for in-process tests and tools).
func (a *App) Service() *provision.Service { return a.service }

// txtResolver asks DNS for TXT records: the system's resolver, or the
// server at addr (host:port) when one is configured.
func txtResolver(addr string) provision.TXTResolver {
	r := &net.Resolver{PreferGo: true}
	if addr != "" {
		r.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
	}
	return func(ctx context.Context, name string) ([]string, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return r.LookupTXT(ctx, name)
	}
}

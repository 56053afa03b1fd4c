package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/config"
)

// ExitError carries a process exit code out of a command.
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Main runs the command line and returns the process exit code: 0 on
// success, 1 when a command fails, 2 for a usage error.
func Main(args, environ []string, stdout, stderr io.Writer, version string) int {
	root := NewCommand(environ, stdout, stderr, version)
	root.SetArgs(args)
	err := root.Execute()
	var exit ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.Code
	case isUsageError(err):
		fmt.Fprintf(stderr, "gatehouse: %v\nRun 'gatehouse --help' for usage.\n", err)
		return 2
	default:
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 1
	}
}

type usageError struct{ error }

func isUsageError(err error) bool {
	var u usageError
	return errors.As(err, &u) || strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "accepts ")
}

// NewCommand builds the command tree. environ is the process environment
// (GATEHOUSE_* overrides are read from it, never from os.Getenv).
func NewCommand(environ []string, stdout, stderr io.Writer, version string) *cobra.Command {
	var configPath string
	root := &cobra.Command{
		Use:   "gatehouse",
		Short: "SCIM 2.0 and SSO gateway deployed beside a web app",
		Long: `Gatehouse is a sidecar that gives an existing web app enterprise identity:
a SCIM 2.0 server for Okta and Microsoft Entra ID, SSO by SAML or OIDC with
JIT provisioning, and delivery of every change to the app.

Configuration comes from a YAML file (--config) and GATEHOUSE_* environment
variables, which override the file.`,
		Version:       BuildVersion(version),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_ = cmd.Help()
			return ExitError{Code: 2}
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&configPath, "config", "", "path to the YAML configuration file")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SetVersionTemplate("gatehouse {{.Version}}\n")
	root.SetUsageTemplate(root.UsageTemplate() + envHelp())

	run := func(fn func(ctx context.Context) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return fn(ctx)
		}
	}
	var ready bool
	root.AddCommand(
		&cobra.Command{
			Use:   "serve",
			Short: "Run the gateway (production)",
			Args:  cobra.NoArgs,
			RunE: run(func(ctx context.Context) error {
				return Serve(ctx, configPath, environ, stderr, version)
			}),
		},
		demoCommand(run, &configPath, environ, stdout, stderr),
		&cobra.Command{
			Use:   "check-config",
			Short: "Print the effective configuration (secrets redacted), every problem and every warning",
			Args:  cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error {
				if code := CheckConfig(configPath, environ, stdout, stderr); code != 0 {
					return ExitError{Code: code}
				}
				return nil
			},
		},
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			Run: func(*cobra.Command, []string) {
				fmt.Fprintln(stdout, "gatehouse", BuildVersion(version))
			},
		},
		healthcheckCommand(&configPath, &ready, environ, stderr),
		outboxCommand(&configPath, environ, stdout),
		migrateCommand(&configPath, environ, stdout),
		storeCommand(&configPath, environ, stdout),
		backupCommand(&configPath, environ, stdout),
		restoreCommand(&configPath, environ, stdout),
	)
	return root
}

func healthcheckCommand(configPath *string, ready *bool, environ []string, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when the gateway on this host answers /healthz (for a container HEALTHCHECK)",
		Long: `Asks the operations listener (ops_listen) of the gateway on this host whether
it is alive (/healthz) or, with --ready, ready to serve (/readyz). Exits 0 when
it is, 1 otherwise. Made for distroless images, which have no curl.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(*configPath, environ)
			if err != nil {
				return err
			}
			path := "/healthz"
			if *ready {
				path = "/readyz"
			}
			if err := Healthcheck(cmd.Context(), cfg.OpsListen, path); err != nil {
				fmt.Fprintln(stderr, "gatehouse: unhealthy:", err)
				return ExitError{Code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(ready, "ready", false, "check readiness (/readyz) instead of liveness")
	return cmd
}

// Healthcheck asks the operations listener at opsListen (host:port as
// configured; an empty or wildcard host means this host) for path.
func Healthcheck(ctx context.Context, opsListen, path string) error {
	base, err := opsURL(opsListen)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d: %s", path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// opsURL is the base URL of the operations listener of the gateway on
// this host: an empty or wildcard host means loopback.
func opsURL(opsListen string) (string, error) {
	host, port, err := net.SplitHostPort(opsListen)
	if err != nil {
		return "", fmt.Errorf("ops_listen %q: %w", opsListen, err)
	}
	switch host {
	case "", "0.0.0.0", "::", "[::]":
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// BuildVersion names the release and the commit it was built from: the
// version set at link time (-X main.version, main.commit), or else the
// module version and the VCS revision Go recorded in the binary
// ("dev+<commit>" for a build from a checkout).
func BuildVersion(linked string) string {
	if linked != "" && linked != "dev" {
		if strings.Contains(linked, "commit ") {
			return linked
		}
		if rev, _ := vcsRevision(); rev != "" {
			return linked + " (commit " + rev + ")"
		}
		return linked
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	v := info.Main.Version
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	rev, modified := vcsRevision()
	if rev != "" && v == "dev" {
		return "dev+" + rev + modified
	}
	if rev != "" {
		return v + " (commit " + rev + ")"
	}
	return v
}

// vcsRevision is the commit Go recorded in the binary (12 digits), and
// "-dirty" when the tree had changes.
func vcsRevision() (rev, modified string) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "", ""
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return rev, modified
}

// envHelp lists every environment variable with the key it overrides.
func envHelp() string {
	var b strings.Builder
	b.WriteString("\nEnvironment variables (each overrides the configuration key beside it):\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, k := range config.Reference() {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", k.Env, k.Path, k.Description)
	}
	_ = tw.Flush()
	b.WriteString("Secrets also accept env:NAME and file:PATH. Variables that match no key are ignored with a warning.\n")
	return b.String()
}

func demoCommand(run func(func(context.Context) error) func(*cobra.Command, []string) error, configPath *string, environ []string, stdout, stderr io.Writer) *cobra.Command {
	var method, sso string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the gateway with an embedded Okta-like IdP (SAML or OIDC) and a sample app (data in ./gatehouse-demo)",
		Args:  cobra.NoArgs,
		RunE: run(func(ctx context.Context) error {
			return Demo(ctx, *configPath, environ, method, sso, stdout, stderr)
		}),
	}
	cmd.Flags().StringVar(&method, "method", "jit", "provisioning method: jit (created at first sign-in) or scim (prints a SCIM token)")
	cmd.Flags().StringVar(&sso, "sso", "saml", "sign-in protocol of the embedded IdP: saml or oidc")
	return cmd
}

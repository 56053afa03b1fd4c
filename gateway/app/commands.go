package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/gatehouse-id/gatehouse/config"
)

// NewLogger builds the structured logger the configuration asks for.
func NewLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Serve loads the configuration and runs the gateway until ctx is done.
func Serve(ctx context.Context, configPath string, environ []string, logOut io.Writer) error {
	cfg, err := config.Load(configPath, environ)
	if err != nil {
		return err
	}
	a, err := New(cfg, NewLogger(cfg, logOut))
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// CheckConfig prints the effective configuration (secrets redacted) and
// every problem in it; it exits non-zero when there is any.
func CheckConfig(configPath string, environ []string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(configPath, environ)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse: config:", err)
		return 1
	}
	_, adapterProblems := loadAdapters(cfg) // before printing: it shows them decoded
	fmt.Fprint(stdout, cfg.Redacted())
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	problems := append(cfg.Validate(), adapterProblems...)
	for _, p := range problems {
		fmt.Fprintln(stderr, "problem:", p.String())
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "%d problem(s) found\n", len(problems))
		return 1
	}
	if ok, reason := cfg.SCIMEnabled(); !ok {
		fmt.Fprintln(stderr, "note:", reason)
	}
	fmt.Fprintln(stderr, "configuration is valid")
	return 0
}

// Demo runs a local gateway with SCIM provisioning on, SSO delegated to the
// app, a fresh random SCIM token and data in ./gatehouse-demo, and prints
// how to talk to it. Settings from the environment or --config still apply.
func Demo(ctx context.Context, configPath string, environ []string, stdout, logOut io.Writer) error {
	token := make([]byte, 24)
	if _, err := rand.Read(token); err != nil {
		return err
	}
	defaults := []string{
		"GATEHOUSE_SSO_PROTOCOL=external",
		"GATEHOUSE_PROVISIONING_METHOD=scim",
		"GATEHOUSE_SCIM_TOKEN=" + base64.RawURLEncoding.EncodeToString(token),
		"GATEHOUSE_DATA_DIR=" + filepath.Join(".", "gatehouse-demo"),
		"GATEHOUSE_LISTEN=127.0.0.1:8080",
		"GATEHOUSE_LOG_FORMAT=text",
	}
	env := append(overridable(defaults, environ), environ...)
	cfg, err := config.Load(configPath, env)
	if err != nil {
		return err
	}
	a, err := New(cfg, NewLogger(cfg, logOut))
	if err != nil {
		return err
	}
	if err := a.Start(); err != nil {
		a.store.Close()
		return err
	}
	base := a.SCIMBaseURL()
	fmt.Fprintf(stdout, `
Gatehouse demo is running.

  SCIM base URL : %s
  SCIM token    : %s
  metrics       : http://%s/metrics
  data          : %s

Try it:
  curl -s -H "Authorization: Bearer %s" %s/Users
  curl -s -H "Authorization: Bearer %s" -H "Content-Type: application/scim+json" \
       -d '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com","name":{"givenName":"Ada","familyName":"Lovelace"},"emails":[{"value":"ada@example.com","type":"work","primary":true}],"active":true}' \
       %s/Users

Press Ctrl-C to stop.
`, base, cfg.SCIM.Token.Value(), a.OpsAddr(), cfg.DataDir, cfg.SCIM.Token.Value(), base, cfg.SCIM.Token.Value(), base)
	<-ctx.Done()
	return a.Shutdown(context.Background())
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

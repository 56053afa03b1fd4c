package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"listen": ":8080", "ops_listen": "127.0.0.1:9090", "data_dir": "./gatehouse-data", "path_prefix": "/gatehouse",
		"max_body": int64(1 << 20), "max_results": 200, "protocol": "none", "method": "manual", "pool": "default", "role": "user",
		"fsync": true, "timeout": 5 * time.Second,
	}
	got := map[string]any{
		"listen": cfg.Listen, "ops_listen": cfg.OpsListen, "data_dir": cfg.DataDir, "path_prefix": cfg.PathPrefix,
		"max_body": cfg.SCIM.MaxBodyBytes, "max_results": cfg.SCIM.MaxResults, "protocol": cfg.SSO.Protocol, "method": cfg.Provisioning.Method,
		"pool": cfg.Provisioning.DefaultPool, "role": cfg.Provisioning.DefaultRole, "fsync": cfg.Store.FSync, "timeout": time.Duration(cfg.Store.OpenTimeout),
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("default %s = %v, want %v", k, got[k], w)
		}
	}
	if ps := cfg.Validate(); len(ps) != 0 {
		t.Errorf("defaults have problems: %v", ps)
	}
}

func TestLoadFileAndEnv(t *testing.T) {
	path := writeFile(t, `
listen: ":9000"
public_url: https://app.example.com
scim:
  token: literal-token
  max_results: 50
sso:
  protocol: external
provisioning:
  method: scim
store:
  open_timeout: 2s
`)
	cfg, err := Load(path, []string{"GATEHOUSE_SCIM_MAX_RESULTS=75", "GATEHOUSE_PROVISIONING_DEFAULT_ROLE=viewer", "OTHER=1"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":9000" || cfg.SCIM.Token.Value() != "literal-token" || cfg.SCIM.MaxResults != 75 ||
		cfg.Provisioning.DefaultRole != "viewer" || time.Duration(cfg.Store.OpenTimeout) != 2*time.Second {
		t.Fatalf("loaded %+v", cfg)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, file string
		env        []string
		want       string
	}{
		{"unknown yaml key", "scim:\n  tokn: x\n", nil, "tokn"},
		{"bad yaml type", "scim:\n  max_results: many\n", nil, "line 2"},
		{"bad duration", "store:\n  open_timeout: soon\n", nil, "duration"},
		{"bad env int", "", []string{"GATEHOUSE_SCIM_MAX_RESULTS=abc"}, "GATEHOUSE_SCIM_MAX_RESULTS"},
		{"bad env bool", "", []string{"GATEHOUSE_STORE_FSYNC=maybe"}, "GATEHOUSE_STORE_FSYNC"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = writeFile(t, tc.file)
			}
			_, err := Load(path, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestLoadListsEveryProblem: a file with several mistakes gets them all
// at once, each with its key path and line, a misspelt key with the key
// meant, and the environment's with the file's.
func TestLoadListsEveryProblem(t *testing.T) {
	path := writeFile(t, `lisen: ":8080"
scim:
  tokn: secret-secret-secret
  max_results: many
sso:
  protocol: saml
  saml:
    idp_metadata_ulr: https://idp.example/metadata
store:
  open_timeout: soon
colour: red
`)
	cfg, err := Load(path, []string{"GATEHOUSE_STORE_FSYNC=maybe"})
	var le *LoadError
	if !errors.As(err, &le) || cfg == nil {
		t.Fatalf("Load: %v", err)
	}
	got := map[string]string{}
	for _, p := range le.Problems {
		got[p.Path] = p.Message
	}
	want := map[string][]string{
		"lisen":                     {"line 1", "unknown key", "did you mean listen?"},
		"scim.tokn":                 {"line 3", "did you mean scim.token?"},
		"scim.max_results":          {"line 4", "many"},
		"sso.saml.idp_metadata_ulr": {"line 8", "did you mean sso.saml.idp_metadata_url?"},
		"store.open_timeout":        {"soon"},
		"colour":                    {"line 11", "unknown key"},
		"store.fsync":               {"GATEHOUSE_STORE_FSYNC"},
	}
	for path, parts := range want {
		msg, ok := got[path]
		if !ok {
			t.Errorf("no problem reported for %s (got %v)", path, got)
			continue
		}
		for _, part := range parts {
			if !strings.Contains(msg, part) {
				t.Errorf("%s: %q does not say %q", path, msg, part)
			}
		}
	}
	if len(le.Problems) != len(want) {
		t.Errorf("%d problems, want %d: %v", len(le.Problems), len(want), le.Problems)
	}
	if strings.Contains(got["colour"], "did you mean") {
		t.Errorf("a far-off key got a suggestion: %q", got["colour"])
	}
	// What could be read was: the valid keys are in force.
	if cfg.SSO.Protocol != "saml" {
		t.Errorf("the rest of the file was not read: sso.protocol %q", cfg.SSO.Protocol)
	}
	// A syntax error stops YAML: one problem, with its line.
	if _, err := Load(writeFile(t, "scim:\n  token: [unclosed\n"), nil); !errors.As(err, &le) || len(le.Problems) != 1 || !strings.Contains(le.Problems[0].Message, "line") {
		t.Fatalf("syntax error: %v", err)
	}
}

// TestPlainPublicURLIsFlagged: http:// is fine on loopback only.
func TestPlainPublicURLIsFlagged(t *testing.T) {
	for u, flagged := range map[string]bool{
		"http://app.example.com": true, "http://10.0.0.5:8080": true, "https://app.example.com": false,
		"http://127.0.0.1:8080": false, "http://localhost:8080": false, "http://[::1]:8080": false,
	} {
		cfg, err := Load("", []string{"GATEHOUSE_PUBLIC_URL=" + u})
		if err != nil {
			t.Fatal(err)
		}
		warned := false
		for _, w := range cfg.Warnings {
			warned = warned || strings.Contains(w, "plain http")
		}
		if warned != flagged {
			t.Errorf("%s: warned %v, want %v", u, warned, flagged)
		}
	}
}

func TestSecretReferences(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("from-file-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, ref string
		env       []string
		value     string
		problem   string
	}{
		{"env ref", "env:MY_TOKEN", []string{"MY_TOKEN=from-env-0123456789"}, "from-env-0123456789", ""},
		{"missing env", "env:NOPE", nil, "", "NOPE"},
		{"file ref trims newline", "file:" + tokenFile, nil, "from-file-0123456789", ""},
		{"missing file", "file:" + filepath.Join(dir, "absent"), nil, "", "cannot be read"},
		{"literal", "plain-0123456789abc", nil, "plain-0123456789abc", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := append([]string{"GATEHOUSE_SCIM_TOKEN=" + tc.ref, "GATEHOUSE_SSO_PROTOCOL=external", "GATEHOUSE_PROVISIONING_METHOD=scim"}, tc.env...)
			cfg, err := Load("", env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.SCIM.Token.Value() != tc.value {
				t.Errorf("value = %q, want %q", cfg.SCIM.Token.Value(), tc.value)
			}
			ps := fmt.Sprint(cfg.Validate())
			if tc.problem == "" && ps != "[]" || tc.problem != "" && !strings.Contains(ps, "scim.token: ") && !strings.Contains(ps, tc.problem) {
				t.Errorf("problems = %s, want one about %q", ps, tc.problem)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg, err := Load("", []string{
		"GATEHOUSE_LISTEN=nonsense", "GATEHOUSE_PATH_PREFIX=/gate_house", "GATEHOUSE_SCIM_MAX_RESULTS=0",
		"GATEHOUSE_PROVISIONING_METHOD=scim", "GATEHOUSE_LOG_LEVEL=loud", "GATEHOUSE_PUBLIC_URL=ftp://x",
	})
	short, _ := Load("", []string{"GATEHOUSE_SCIM_TOKEN=abc123"})
	if ps := fmt.Sprint(short.Validate()); !strings.Contains(ps, "scim.token: is 6 characters long") {
		t.Errorf("a short token must be a problem: %s", ps)
	}
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, p := range cfg.Validate() {
		paths = append(paths, p.Path)
	}
	got := strings.Join(paths, " ")
	// (SCIM's token is checked where the store is known: at the start and
	// in check-config.)
	for _, want := range []string{"listen", "path_prefix", "scim.max_results", "provisioning.method", "log.level", "public_url"} {
		if !strings.Contains(" "+got+" ", " "+want+" ") {
			t.Errorf("problems %v lack %s", paths, want)
		}
	}
	for _, p := range cfg.Validate() {
		if p.Path == "provisioning.method" && !strings.Contains(p.Message, "sso.protocol") {
			t.Errorf("scim without SSO must name sso.protocol: %s", p)
		}
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	const secret = "s3cr3t-value-xyz"
	cfg, err := Load("", []string{"GATEHOUSE_SCIM_TOKEN=" + secret, "GATEHOUSE_SSO_OIDC_CLIENT_SECRET=" + secret})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("cfg", "token", cfg.SCIM.Token, "cfg", cfg)
	js, _ := json.Marshal(cfg)
	outputs := map[string]string{
		"Redacted": cfg.Redacted(), "Sprint": fmt.Sprint(cfg.SCIM.Token), "Sprintf %+v": fmt.Sprintf("%+v %#v", cfg, cfg.SCIM.Token),
		"slog": logs.String(), "json": string(js),
	}
	for name, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("%s leaks the secret: %s", name, out)
		}
	}
	if !strings.Contains(cfg.Redacted(), "[REDACTED]") {
		t.Errorf("Redacted() does not mark the secret: %s", cfg.Redacted())
	}
}

func TestReferenceDocumentsEveryKey(t *testing.T) {
	ref := Reference()
	if len(ref) < 15 {
		t.Fatalf("only %d keys", len(ref))
	}
	for _, k := range ref {
		if k.Description == "" {
			t.Errorf("%s has no doc tag", k.Path)
		}
		if k.Env != EnvName(k.Path) {
			t.Errorf("%s env %s", k.Path, k.Env)
		}
	}
}

// TestUnknownEnvIsAWarning: Kubernetes injects GATEHOUSE_SERVICE_HOST,
// GATEHOUSE_PORT and GATEHOUSE_PORT_8080_TCP… for a Service named
// gatehouse; they, and typos, must not stop the gateway, and each is
// explained.
func TestUnknownEnvIsAWarning(t *testing.T) {
	cfg, err := Load("", []string{
		"GATEHOUSE_SERVICE_HOST=10.0.0.7",
		"GATEHOUSE_SERVICE_PORT=8080",
		"GATEHOUSE_PORT=tcp://10.0.0.7:8080",
		"GATEHOUSE_PORT_8080_TCP=tcp://10.0.0.7:8080",
		"GATEHOUSE_PORT_8080_TCP_PROTO=tcp",
		"GATEHOUSE_SCIM_TOKNE=x",
		"GATEHOUSE_SCIM_MAX_RESULTS=50",
	})
	if err != nil {
		t.Fatalf("unknown variables must not fail Load: %v", err)
	}
	if cfg.SCIM.MaxResults != 50 {
		t.Fatalf("known variables still apply: %d", cfg.SCIM.MaxResults)
	}
	if len(cfg.Warnings) != 6 {
		t.Fatalf("want one warning per unknown variable, got %q", cfg.Warnings)
	}
	all := strings.Join(cfg.Warnings, "\n")
	for _, want := range []string{
		"GATEHOUSE_SERVICE_HOST matches no configuration key and is ignored (it looks like a Kubernetes service link variable)",
		"GATEHOUSE_PORT_8080_TCP_PROTO matches no configuration key and is ignored (it looks like a Kubernetes",
		"GATEHOUSE_SCIM_TOKNE matches no configuration key and is ignored; did you mean GATEHOUSE_SCIM_TOKEN?",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	if problems := cfg.Validate(); len(problems) != 0 {
		t.Errorf("warnings are not problems: %v", problems)
	}
}

func TestAllowedDomains(t *testing.T) {
	cfg, err := Load("", []string{"GATEHOUSE_PROVISIONING_ALLOWED_DOMAINS= example.com, Example.ORG ,,"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Provisioning.AllowedDomains, "|"); got != "example.com|Example.ORG" {
		t.Fatalf("parsed %q", got)
	}
	problems := cfg.Validate()
	if len(problems) != 1 || problems[0].Path != "provisioning.allowed_domains[1]" {
		t.Fatalf("problems: %v", problems)
	}
}

func TestSAMLMetadataURLMustBeSecure(t *testing.T) {
	for rawURL, ok := range map[string]bool{
		"https://example.okta.com/app/x/sso/saml/metadata": true,
		"http://127.0.0.1:9000/metadata":                   true,
		"http://localhost/metadata":                        true,
		"http://[::1]/metadata":                            true,
		"http://example.okta.com/app/x/sso/saml/metadata":  false,
		"http://127.0.0.1.evil.example/metadata":           false,
		"ftp://example.com/metadata":                       false,
		"example.com/metadata":                             false,
	} {
		cfg, err := Load("", []string{"GATEHOUSE_SSO_PROTOCOL=saml", "GATEHOUSE_PUBLIC_URL=https://app.example.com",
			"GATEHOUSE_SSO_SAML_IDP_METADATA_URL=" + rawURL})
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, p := range cfg.Validate() {
			found = found || p.Path == "sso.saml.idp_metadata_url"
		}
		if found == ok {
			t.Errorf("%s: accepted=%v, want %v", rawURL, !found, ok)
		}
	}
}

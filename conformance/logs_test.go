package conformance

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/config"
	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway/app"
)

// TestLogLinesCarryTheRequest: a refused sign-in and an admin change log
// lines that carry the request id (the one on the refusal page), the
// client's address and user agent; request durations say their unit.
func TestLogLinesCarryTheRequest(t *testing.T) {
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	addr := freeAddr(t)
	md := filepath.Join(t.TempDir(), "idp.xml")
	if err := os.WriteFile(md, idp.Metadata(t), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("", []string{"GATEHOUSE_LISTEN=" + addr, "GATEHOUSE_OPS_LISTEN=127.0.0.1:0", "GATEHOUSE_DATA_DIR=" + t.TempDir(),
		"GATEHOUSE_PUBLIC_URL=http://" + addr, "GATEHOUSE_STORE_FSYNC=false", "GATEHOUSE_SSO_PROTOCOL=saml",
		"GATEHOUSE_SSO_SAML_IDP_METADATA_FILE=" + md, "GATEHOUSE_PROVISIONING_METHOD=manual", "GATEHOUSE_ADMIN_TOKEN=" + adminToken})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	a, err := app.New(cfg, app.NewLogger(cfg, logs))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	root := "http://" + addr
	idp.RegisterSP(t, "gatehouse", root+"/gatehouse/saml/metadata", false)

	// Ada is not provisioned: refused, with a reference on the page.
	b := samlidptest.Browser(nil)
	acs, form := samlidptest.SignIn(t, b, root+"/gatehouse/login?return=/")
	req, _ := http.NewRequest("POST", acs, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "TestBrowser/1.0")
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ref := regexp.MustCompile(`Reference for support: ([0-9a-f]+)`).FindSubmatch(page)
	if resp.StatusCode != http.StatusForbidden || ref == nil || resp.Header.Get("X-Request-Id") != string(ref[1]) {
		t.Fatalf("refusal page: %d %s", resp.StatusCode, page)
	}
	// A change through the admin API.
	put, _ := http.NewRequest("POST", root+"/gatehouse/admin/api/v1/pools", strings.NewReader(`{"id":"support"}`))
	put.Header.Set("Authorization", "Bearer "+adminToken)
	put.Header.Set("Content-Type", "application/json")
	put.Header.Set("User-Agent", "ops-script/2")
	if resp, err := http.DefaultClient.Do(put); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create a pool: %v %v", resp.StatusCode, err)
	}

	lines := map[string]map[string]any{}
	var access []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			t.Fatalf("not a JSON log line: %s", sc.Text())
		}
		msg, _ := rec["msg"].(string)
		lines[msg] = rec
		if msg == "http request" {
			access = append(access, rec)
		}
	}
	for msg, want := range map[string]map[string]string{
		"sign-in refused": {"request_id": string(ref[1]), "user_agent": "TestBrowser/1.0", "client": "127.0.0.1", "reason": "not_provisioned"},
		"admin change":    {"user_agent": "ops-script/2", "client": "127.0.0.1", "operation": "create-pool", "actor": "token:admin.token"},
	} {
		rec, ok := lines[msg]
		if !ok {
			t.Errorf("no %q line in:\n%s", msg, logs.String())
			continue
		}
		for k, v := range want {
			if rec[k] != v {
				t.Errorf("%q: %s = %v, want %v", msg, k, rec[k], v)
			}
		}
		if id, _ := rec["request_id"].(string); id == "" {
			t.Errorf("%q has no request id", msg)
		}
	}
	if len(access) == 0 {
		t.Fatal("no access log")
	}
	for _, rec := range access {
		if _, ok := rec["duration_ms"].(float64); !ok || rec["duration"] != nil {
			t.Fatalf("an access log line without duration_ms: %v", rec)
		}
	}
}

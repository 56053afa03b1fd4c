package conformance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

// TestIdPCertificateHealth: an IdP signing certificate 20 days from its
// end is a metric, a connection.certificate_expiring event (threshold 30,
// once however often it is checked), a line in /readyz and a banner in
// the console; a new certificate 5 days from its end is told again
// (threshold 7); a metadata URL that starts failing keeps the last good
// metadata (people still sign in) and says so.
func TestIdPCertificateHealth(t *testing.T) {
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	notAfter := time.Now().Add(20*24*time.Hour + time.Hour).Truncate(time.Second)
	if err := idp.RotateKeyUntil(notAfter); err != nil {
		t.Fatal(err)
	}
	var failing atomic.Bool
	metadata := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "upstream down", http.StatusBadGateway)
			return
		}
		resp, err := http.Get(idp.URL + "/metadata")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		_, _ = io.Copy(w, resp.Body)
	}))
	defer metadata.Close()
	addr := freeAddr(t)
	root := "http://" + addr
	g := startGateway(t, "", "GATEHOUSE_LISTEN="+addr, "GATEHOUSE_PUBLIC_URL="+root, "GATEHOUSE_SSO_PROTOCOL=saml",
		"GATEHOUSE_SSO_SAML_IDP_METADATA_URL="+metadata.URL+"/metadata", "GATEHOUSE_PROVISIONING_METHOD=jit")
	idp.RegisterSP(t, "gatehouse", root+"/gatehouse/saml/metadata", false)
	ctx := context.Background()

	warnings := func() []gateway.Event {
		var out []gateway.Event
		for _, e := range g.events() {
			if e.Op == gateway.OpCertificateExpiring {
				out = append(out, e)
			}
		}
		return out
	}
	g.app.CheckConnections(ctx)
	g.app.CheckConnections(ctx)
	if !g.app.RefreshIdPMetadata(ctx, gateway.DefaultOrg) {
		t.Fatal("the metadata is fetched from a URL: it must refresh")
	}
	evs := warnings()
	if len(evs) != 1 {
		t.Fatalf("%d certificate warnings after three checks, want 1", len(evs))
	}
	c := evs[0].Connection
	sum := sha256.Sum256(idp.Server.IDP.Certificate.Raw)
	if c == nil || c.ThresholdDays != 30 || c.DaysLeft != 20 || !c.CertificateNotAfter.Equal(notAfter) || c.Protocol != "saml" ||
		c.IdP != idp.URL+"/metadata" || c.CertificateFingerprint != hex.EncodeToString(sum[:]) || evs[0].Source != gateway.SourceGateway {
		t.Fatalf("the warning: %+v %+v", evs[0], c)
	}
	wire := evs[0].Wire()
	raw, _ := json.Marshal(wire)
	validateEvent(t, eventSchema(t), raw)
	if wire.Connection == nil || wire.Connection.Certificate.Fingerprint != c.CertificateFingerprint || wire.Connection.Threshold != 30 {
		t.Fatalf("the warning as the app sees it: %+v", wire.Connection)
	}
	metrics := "http://" + g.app.OpsAddr() + "/metrics"
	if v := metricValue(t, metrics, `gatehouse_sso_idp_certificate_expiry_timestamp_seconds{org="default"}`); v != float64(notAfter.Unix()) {
		t.Errorf("the expiry metric is %v, want %d", v, notAfter.Unix())
	}
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + g.app.OpsAddr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := readyz(); status != 200 || !strings.Contains(body, "org default: the IdP signing certificate expires "+notAfter.UTC().Format(time.DateOnly)+", in 20 days") {
		t.Fatalf("/readyz: %d %q", status, body)
	}
	cookie, _ := sessionAs(t, g, "mia@example.com", "manager")
	page := func(path string) string {
		req, _ := http.NewRequest("GET", root+path, nil)
		req.AddCookie(cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if body := page("/gatehouse/console/users"); !strings.Contains(body, `id="connection-banner"`) || !strings.Contains(body, "in 20 days") {
		t.Fatalf("no certificate banner on a console page: %.600s", body)
	}

	// The IdP rolls over to a certificate 5 days from its end: told again.
	if err := idp.RotateKeyUntil(time.Now().Add(5 * 24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	g.app.RefreshIdPMetadata(ctx, gateway.DefaultOrg)
	if evs := warnings(); len(evs) != 2 || evs[1].Connection.ThresholdDays != 7 || evs[1].Connection.CertificateFingerprint == c.CertificateFingerprint {
		t.Fatalf("after the rollover: %d warnings, the last %+v", len(evs), evs[len(evs)-1].Connection)
	}

	// The metadata URL fails: the last good metadata stays in use.
	failing.Store(true)
	g.app.RefreshIdPMetadata(ctx, gateway.DefaultOrg)
	if status, body := readyz(); status != 200 || !strings.Contains(body, "org default: the IdP metadata has not refreshed since") || !strings.Contains(body, "the last good one is in use") {
		t.Fatalf("/readyz with the metadata failing: %d %q", status, body)
	}
	if v := metricValue(t, metrics, `gatehouse_sso_idp_metadata_refresh_failures_total{org="default"}`); v != 1 {
		t.Errorf("refresh failures %v, want 1", v)
	}
	if body := page("/gatehouse/console/overview"); !strings.Contains(body, "The metadata URL has failed since") {
		t.Fatalf("the overview does not say the metadata fails: %.2000s", body)
	}
	browser := samlidptest.Browser(nil)
	acs, form := samlidptest.SignIn(t, browser, root+"/gatehouse/saml/login?return=/gatehouse/console/overview")
	resp, err := browser.PostForm(acs, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n, _ := g.app.Store().Sessions().Count(ctx, gateway.DefaultOrg); n < 1 || resp.Request.URL.Path == "/gatehouse/saml/acs" {
		t.Fatalf("sign-in with the last good metadata: %d at %s, %d sessions", resp.StatusCode, resp.Request.URL, n)
	}
	failing.Store(false)
	g.app.RefreshIdPMetadata(ctx, gateway.DefaultOrg)
	if _, body := readyz(); strings.Contains(body, "has not refreshed") {
		t.Fatalf("/readyz still says the metadata fails once it works: %q", body)
	}
}

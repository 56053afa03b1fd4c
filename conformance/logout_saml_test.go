package conformance

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	crewsaml "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

// TestSAMLSingleLogout: a LogoutRequest the IdP signed ends the session of
// its NameID and SessionIndex that the proxy was serving, and is answered;
// unsigned, foreign-signed, misaddressed, expired, foreign-issuer and
// replayed ones change nothing. Both directions run against samlidp:
// its own logout (IdP-initiated, through the browser) and the gateway's
// sign-out (SP-initiated: a LogoutRequest to the IdP, its LogoutResponse
// back).
func TestSAMLSingleLogout(t *testing.T) {
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.Header.Get("X-Gatehouse-Email"))
	}))
	defer upstream.Close()
	g, root := startSAMLGateway(t, idp, "", "GATEHOUSE_PROVISIONING_METHOD=jit", "GATEHOUSE_UPSTREAM_URL="+upstream.URL)
	slo := root + "/gatehouse/saml/slo"

	// The SP's metadata offers single logout with both bindings.
	resp, err := http.Get(root + "/gatehouse/saml/metadata")
	if err != nil {
		t.Fatal(err)
	}
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, binding := range []string{crewsaml.HTTPRedirectBinding, crewsaml.HTTPPostBinding} {
		if !strings.Contains(string(md), `<SingleLogoutService Binding="`+binding+`" Location="`+slo+`"`) {
			t.Fatalf("the SP metadata lacks the %s single logout service: %s", binding, md)
		}
	}

	signIn := func() *http.Client {
		c := samlidptest.Browser(nil)
		acs, form := samlidptest.SignIn(t, c, root+"/dashboard")
		resp, err := c.PostForm(acs, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/dashboard" {
			t.Fatalf("sign-in: %d at %s", resp.StatusCode, resp.Request.URL)
		}
		return c
	}
	served := func(c *http.Client) bool { return servedBy(t, c, root+"/dashboard") }
	first, second, third := signIn(), signIn(), signIn()
	users, _, _ := g.app.Store().Users().List(context.Background(), gateway.DefaultOrg, 0, 10)
	sessions, _ := g.app.Store().Sessions().ListUser(context.Background(), gateway.DefaultOrg, users[0].ID)
	if len(sessions) != 3 {
		t.Fatalf("%d sessions", len(sessions))
	}
	for _, se := range sessions {
		if se.IdPSubject != samlidptest.Email || se.IdPSession == "" {
			t.Fatalf("the session does not keep the NameID and SessionIndex: %+v", se)
		}
	}

	// LogoutRequests made with the library as an IdP would, signed with
	// the IdP's key or another.
	idpEntity := idp.URL + "/metadata"
	signer := func(key *rsa.PrivateKey, cert *x509.Certificate) *crewsaml.ServiceProvider {
		return &crewsaml.ServiceProvider{EntityID: idpEntity, Key: key, Certificate: cert, SignatureMethod: dsig.RSASHA256SignatureMethod,
			IDPMetadata: &crewsaml.EntityDescriptor{EntityID: "urn:gatehouse"}}
	}
	real := signer(idp.Server.IDP.Key.(*rsa.PrivateKey), idp.Server.IDP.Certificate)
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &otherKey.PublicKey, otherKey)
	otherCert, _ := x509.ParseCertificate(der)
	forger := signer(otherKey, otherCert)
	request := func(by *crewsaml.ServiceProvider, sessionIndex string, edit func(*crewsaml.LogoutRequest), sign bool) string {
		req, err := by.MakeLogoutRequest(slo, samlidptest.Email, crewsaml.WithSessionIndex(sessionIndex))
		if err != nil {
			t.Fatal(err)
		}
		req.Signature = nil
		if edit != nil {
			edit(req)
		}
		if sign {
			if err := by.SignLogoutRequest(req); err != nil {
				t.Fatal(err)
			}
		}
		doc := etree.NewDocument()
		doc.SetRoot(req.Element())
		raw, err := doc.WriteToBytes()
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(raw)
	}
	post := func(samlRequest string) int {
		resp, err := http.PostForm(slo, url.Values{"SAMLRequest": {samlRequest}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	index := sessions[0].IdPSession
	attacks := map[string]string{
		"unsigned":              request(real, index, nil, false),
		"signed by another key": request(forger, index, nil, true),
		"for another SP":        request(real, index, func(r *crewsaml.LogoutRequest) { r.Destination = "https://other.example/saml/slo" }, true),
		"expired":               request(real, index, func(r *crewsaml.LogoutRequest) { past := time.Now().Add(-10 * time.Minute); r.NotOnOrAfter = &past }, true),
		"issued long ago":       request(real, index, func(r *crewsaml.LogoutRequest) { r.IssueInstant = time.Now().Add(-2 * time.Hour) }, true),
		"from another issuer":   request(real, index, func(r *crewsaml.LogoutRequest) { r.Issuer.Value = "https://evil.example/idp" }, true),
		"not base64":            "%%%",
		"not XML":               base64.StdEncoding.EncodeToString([]byte("not xml")),
	}
	for name, samlRequest := range attacks {
		if status := post(samlRequest); status != http.StatusForbidden && status != http.StatusBadRequest {
			t.Errorf("%s: %d, want a refusal", name, status)
		}
	}
	if !served(first) || !served(second) || !served(third) {
		t.Fatal("a refused LogoutRequest ended a session")
	}
	metrics := "http://" + g.app.OpsAddr() + "/metrics"
	if v := metricValue(t, metrics, `gatehouse_sso_logouts_total{protocol="saml",result="refused"}`); v != float64(len(attacks)) {
		t.Errorf("refused logouts counted %v, want %d", v, len(attacks))
	}

	// A valid one (HTTP-POST) ends the session of that SessionIndex and
	// is answered by a signed LogoutResponse form; sent again, it is a
	// replay.
	valid := request(real, index, nil, true)
	resp, err = http.PostForm(slo, url.Values{"SAMLRequest": {valid}, "RelayState": {"r1"}})
	if err != nil {
		t.Fatal(err)
	}
	action, fields := samlidptest.FormOf(t, resp)
	if resp.StatusCode != http.StatusOK || action != idp.URL+"/slo" || fields.Get("SAMLResponse") == "" || fields.Get("RelayState") != "r1" {
		t.Fatalf("the answer to a LogoutRequest: %d, form to %q with %v", resp.StatusCode, action, fields)
	}
	answer, _ := base64.StdEncoding.DecodeString(fields.Get("SAMLResponse"))
	if !strings.Contains(string(answer), crewsaml.StatusSuccess) || !strings.Contains(string(answer), "Signature") {
		t.Fatalf("the LogoutResponse is not a signed success: %s", answer)
	}
	ended := 0
	for _, c := range []*http.Client{first, second, third} {
		if !served(c) {
			ended++
		}
	}
	if ended != 1 {
		t.Fatalf("%d sessions ended by a LogoutRequest naming one SessionIndex", ended)
	}
	if status := post(valid); status != http.StatusForbidden {
		t.Fatalf("a replayed LogoutRequest: %d, want 403", status)
	}

	// IdP-initiated at samlidp: its /logout ends the browser's IdP session
	// and sends the browser to every SP it signed in to, the gateway
	// included, which ends its session and answers.
	var live []*http.Client
	for _, c := range []*http.Client{first, second, third} {
		if served(c) {
			live = append(live, c)
		}
	}
	resp, err = samlidptest.FollowForms(live[0], idp.URL+"/logout")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Host != strings.TrimPrefix(idp.URL, "http://") {
		t.Fatalf("the IdP's logout: %d at %s: %.300s", resp.StatusCode, resp.Request.URL, page)
	}
	if served(live[0]) {
		t.Fatal("the browser is still served after the IdP's single logout")
	}
	if !served(live[1]) {
		t.Fatal("the IdP's logout of one browser ended the other's session")
	}

	// SP-initiated: the gateway's sign-out sends a LogoutRequest to the
	// IdP, which ends its session and answers; the browser lands on the
	// gateway's signed-out page.
	c := live[1]
	resp, err = c.Get(root + "/gatehouse/logout")
	if err != nil {
		t.Fatal(err)
	}
	action, fields = samlidptest.FormOf(t, resp)
	var toIdP *url.URL
	c.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if toIdP == nil && strings.HasPrefix(r.URL.String(), idp.URL+"/slo") {
			toIdP = r.URL
		}
		return nil
	}
	req, _ := http.NewRequest("POST", root+action, strings.NewReader(url.Values{"csrf": {fields.Get("csrf")}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", root)
	resp, err = samlidptest.FollowFormsFrom(c, req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if toIdP == nil || toIdP.Query().Get("SAMLRequest") == "" || toIdP.Query().Get("Signature") == "" {
		t.Fatalf("the sign-out did not send a signed LogoutRequest to the IdP: %v", toIdP)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "signed out of this application and of your identity provider") {
		t.Fatalf("back from the IdP: %d at %s: %.400s", resp.StatusCode, resp.Request.URL, page)
	}
	if served(c) {
		t.Fatal("still served after signing out")
	}
	if n, _ := g.app.Store().Sessions().Count(context.Background(), gateway.DefaultOrg); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
	if v := metricValue(t, metrics, `gatehouse_sso_logout_seconds_count{protocol="saml"}`); v != 2 {
		t.Errorf("SAML logout times observed %v, want 2 (the POSTed request and the IdP's own logout)", v)
	}
	if n := len(idpLogoutAudits(t, g)); n != 2 {
		t.Errorf("%d IdP logouts audited, want 2", n)
	}
}

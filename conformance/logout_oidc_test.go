package conformance

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/conformance/oidcoptest"
	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

// TestOIDCLogout: the OP's back-channel logout ends the session of its
// sid (and only it) that the proxy was serving; forged, replayed,
// expired, foreign-audience and malformed logout tokens change nothing;
// RP-initiated logout signs the person out at the OP, which tells the
// gateway back by back-channel, and returns to the gateway.
func TestOIDCLogout(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.Header.Get("X-Gatehouse-Email"))
	}))
	defer upstream.Close()
	addr := freeAddr(t)
	root := "http://" + addr
	op := oidcoptest.Start(t, root+"/gatehouse/oidc/callback")
	g := startGateway(t, "", append(op.GatewayEnv(), "GATEHOUSE_LISTEN="+addr, "GATEHOUSE_PUBLIC_URL="+root,
		"GATEHOUSE_PROVISIONING_METHOD=jit", "GATEHOUSE_UPSTREAM_URL="+upstream.URL)...)
	ctx := context.Background()

	// Two browsers signed in as Ada, each in its own OP session.
	signIn := func() *http.Client {
		c := samlidptest.Browser(func(r *http.Request) bool { return r.URL.Path == "/gatehouse/oidc/callback" })
		back := op.SignIn(t, c, root+"/dashboard")
		c.CheckRedirect = nil
		resp, err := c.Get(back.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/dashboard" {
			t.Fatalf("sign-in: %d at %s", resp.StatusCode, resp.Request.URL)
		}
		return c
	}
	first := signIn()
	second := signIn()
	served := func(c *http.Client) bool { return servedBy(t, c, root+"/dashboard") }
	if !served(first) || !served(second) {
		t.Fatal("both browsers should be served before any logout")
	}
	users, _, _ := g.app.Store().Users().List(ctx, gateway.DefaultOrg, 0, 10)
	if len(users) != 1 {
		t.Fatalf("%d users", len(users))
	}
	sessions, err := g.app.Store().Sessions().ListUser(ctx, gateway.DefaultOrg, users[0].ID)
	if err != nil || len(sessions) != 2 {
		t.Fatalf("sessions: %v %v", sessions, err)
	}
	for _, se := range sessions {
		if se.IdPSubject != oidcoptest.User || !strings.HasPrefix(se.IdPSession, "op-session-") {
			t.Fatalf("the session does not keep the OP's sub and sid: %+v", se)
		}
	}
	secondSID := op.Session(oidcoptest.User) // the OP session of the last sign-in
	firstSID, firstSession := sessions[0].IdPSession, sessions[0].ID
	if firstSID == secondSID {
		firstSID, firstSession = sessions[1].IdPSession, sessions[1].ID
	}

	backchannel := root + "/gatehouse/oidc/backchannel-logout"
	post := func(token string) (int, map[string]string) {
		resp, err := http.PostForm(backchannel, url.Values{"logout_token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("a back-channel answer without Cache-Control: no-store")
		}
		return resp.StatusCode, body
	}
	now := time.Now()
	claims := func(edit func(map[string]any)) map[string]any {
		c := map[string]any{"iss": op.Issuer, "sub": oidcoptest.User, "aud": []string{oidcoptest.ClientID},
			"iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": rand.Text(), "sid": firstSID,
			"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}
		if edit != nil {
			edit(c)
		}
		return c
	}
	signed := func(c map[string]any) string {
		tok, err := op.SignLogoutToken(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	forged := func(c map[string]any) string {
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: otherKey}, nil)
		raw, _ := json.Marshal(c)
		jws, _ := signer.Sign(raw)
		s, _ := jws.CompactSerialize()
		return s
	}
	unsigned := func(c map[string]any) string {
		raw, _ := json.Marshal(c)
		enc := base64URL
		return enc([]byte(`{"alg":"none","typ":"logout+jwt"}`)) + "." + enc(raw) + "."
	}
	valid := signed(claims(nil))
	attacks := map[string]string{
		"signed by another key":      forged(claims(nil)),
		"unsigned (alg none)":        unsigned(claims(nil)),
		"for another client":         signed(claims(func(c map[string]any) { c["aud"] = []string{"another-app"} })),
		"from another issuer":        signed(claims(func(c map[string]any) { c["iss"] = "https://evil.example" })),
		"expired":                    signed(claims(func(c map[string]any) { c["exp"] = now.Add(-5 * time.Minute).Unix() })),
		"issued long ago":            signed(claims(func(c map[string]any) { c["iat"] = now.Add(-time.Hour).Unix() })),
		"without exp":                signed(claims(func(c map[string]any) { delete(c, "exp") })),
		"without jti":                signed(claims(func(c map[string]any) { delete(c, "jti") })),
		"with a nonce":               signed(claims(func(c map[string]any) { c["nonce"] = "n-0S6_WzA2Mj" })),
		"without the event":          signed(claims(func(c map[string]any) { delete(c, "events") })),
		"with another event":         signed(claims(func(c map[string]any) { c["events"] = map[string]any{"urn:other": map[string]any{}} })),
		"naming neither sub nor sid": signed(claims(func(c map[string]any) { delete(c, "sub"); delete(c, "sid") })),
		"not a JWT":                  "not-a-token",
		"empty":                      "",
	}
	for name, token := range attacks {
		status, body := post(token)
		if status != http.StatusBadRequest || body["error"] != "invalid_request" {
			t.Errorf("%s: %d %v, want 400 invalid_request", name, status, body)
		}
	}
	if !served(first) || !served(second) {
		t.Fatal("a refused logout token ended a session")
	}
	metrics := "http://" + g.app.OpsAddr() + "/metrics"
	if v := metricValue(t, metrics, `gatehouse_sso_logouts_total{protocol="oidc",result="refused"}`); v != float64(len(attacks)) {
		t.Errorf("refused logouts counted %v, want %d", v, len(attacks))
	}

	// The OP's logout of the first browser's session: that one ends, on
	// its next request; the other stays.
	if status, body := post(valid); status != http.StatusOK {
		t.Fatalf("a valid logout token: %d %v", status, body)
	}
	if served(first) {
		t.Fatal("the first browser is still served after the OP's back-channel logout of its session")
	}
	if !served(second) {
		t.Fatal("the other session ended too: a logout with a sid ends that session only")
	}
	if status, _ := post(valid); status != http.StatusBadRequest {
		t.Fatalf("a replayed logout token: %d, want 400", status)
	}
	if kept, err := g.app.Store().Ephemeral().Take(ctx, gateway.DefaultOrg, gateway.IDTokenNamespace, firstSession); err != nil || kept != nil {
		t.Fatalf("the ended session's ID token is still kept: %d bytes, %v", len(kept), err)
	}
	if v := metricValue(t, metrics, `gatehouse_sso_logout_seconds_count{protocol="oidc"}`); v != 1 {
		t.Errorf("logout time observed %v times, want 1", v)
	}
	entries := idpLogoutAudits(t, g)
	if len(entries) != 1 || entries[0].Actor.Kind != gateway.ActorIdP || entries[0].Actor.ID != op.Issuer || entries[0].Target != "user:"+users[0].ID {
		t.Fatalf("audit of the IdP logout: %+v", entries)
	}

	// RP-initiated: the second browser signs out here, is sent to the
	// OP's end_session_endpoint with its ID token as the hint, the OP
	// ends its session (and says so by back-channel), and sends the
	// browser back to the gateway.
	resp, err := second.Get(root + "/gatehouse/logout")
	if err != nil {
		t.Fatal(err)
	}
	action, fields := samlidptest.FormOf(t, resp)
	var toOP *url.URL
	second.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if toOP == nil && strings.HasPrefix(r.URL.String(), op.Issuer) {
			toOP = r.URL
		}
		return nil
	}
	req, _ := http.NewRequest("POST", root+action, strings.NewReader(url.Values{"csrf": {fields.Get("csrf")}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", root)
	resp, err = second.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if toOP == nil || toOP.Query().Get("id_token_hint") == "" || toOP.Query().Get("client_id") != oidcoptest.ClientID ||
		toOP.Query().Get("post_logout_redirect_uri") != root+"/gatehouse/oidc/logged-out" {
		t.Fatalf("the sign-out did not go to the OP's end_session_endpoint with the hint: %v", toOP)
	}
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/gatehouse/oidc/logged-out" || !strings.Contains(string(body), "signed out") {
		t.Fatalf("back from the OP: %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	if served(second) {
		t.Fatal("the second browser is still served after signing out")
	}
	if n, _ := g.app.Store().Sessions().Count(ctx, gateway.DefaultOrg); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
	if v := metricValue(t, metrics, `gatehouse_sso_logouts_total{protocol="oidc",result="none"}`); v != 1 {
		t.Errorf("the OP's back-channel after the RP-initiated logout: counted %v as finding no session, want 1", v)
	}
}

// servedBy reports whether the app answers the browser's request for
// page itself (a signed-in session), rather than the gateway sending it
// to sign in.
func servedBy(t *testing.T, c *http.Client, page string) bool {
	t.Helper()
	noFollow := *c
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noFollow.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// idpLogoutAudits are the default organization's audit entries of IdP
// logouts.
func idpLogoutAudits(t *testing.T, g *gatewayUnderTest) []gateway.AuditEntry {
	t.Helper()
	all, _, err := g.app.Store().Audit().List(context.Background(), gateway.DefaultOrg, gateway.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(all, func(e gateway.AuditEntry) bool { return e.Action != "sessions.idp_logout" })
}

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// BenchmarkBackchannelLogout: one OP's back-channel logout request
// through the gateway's HTTP endpoint, from the POST to the answer: the
// token's signature, claims and jti checked, the session of its sid
// ended and audited (three store writes). Each request ends a live
// session of its own.
//
//	go test ./conformance -run XXX -bench BackchannelLogout -benchtime 2000x
func BenchmarkBackchannelLogout(b *testing.B) {
	addr := freeAddr(b)
	root := "http://" + addr
	op := oidcoptest.Start(b, root+"/gatehouse/oidc/callback")
	t := &testing.T{} // the harness takes a *testing.T, as BenchmarkSCIMAuth does
	g := startGateway(t, b.TempDir(), append(op.GatewayEnv(), "GATEHOUSE_LISTEN="+addr, "GATEHOUSE_PUBLIC_URL="+root, "GATEHOUSE_LOG_LEVEL=error",
		"GATEHOUSE_PROVISIONING_METHOD=jit", unshared)...)
	ctx := context.Background()
	// One sign-in builds the RP (discovery, keys) and makes the person.
	c := samlidptest.Browser(func(r *http.Request) bool { return r.URL.Path == "/gatehouse/oidc/callback" })
	back := op.SignIn(b, c, root+"/gatehouse/oidc/login?return=/")
	c.CheckRedirect = nil
	if resp, err := c.Get(back.String()); err == nil {
		resp.Body.Close()
	}
	users, _, _ := g.app.Store().Users().List(ctx, gateway.DefaultOrg, 0, 1)
	if len(users) != 1 {
		b.Fatal("no user signed in")
	}
	now := time.Now()
	tokens := make([]string, b.N)
	for i := range tokens {
		sid := fmt.Sprintf("bench-%d", i)
		w := httptest.NewRecorder()
		if _, err := g.app.Sessions().StartSignIn(ctx, w, httptest.NewRequest("GET", "/", nil), gateway.DefaultOrg, users[0].ID,
			gateway.Identity{Protocol: "oidc", Subject: oidcoptest.User, SessionID: sid}); err != nil {
			b.Fatal(err)
		}
		tok, err := op.SignLogoutToken(map[string]any{"iss": op.Issuer, "sub": oidcoptest.User, "aud": oidcoptest.ClientID,
			"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "jti": rand.Text(), "sid": sid,
			"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}})
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = tok
	}
	client := &http.Client{}
	took := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		resp, err := client.PostForm(root+"/gatehouse/oidc/backchannel-logout", url.Values{"logout_token": {tokens[i]}})
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took[i] = time.Since(start)
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("logout %d: %d", i, resp.StatusCode)
		}
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-us")
	if n, _ := g.app.Store().Sessions().Count(ctx, gateway.DefaultOrg); n > 1 {
		b.Fatalf("%d sessions left", n)
	}
}

// TestBackchannelLogoutBeforeAnySignIn: a gateway that has not signed
// anyone in since it started (a restarted replica) takes the OP's logout
// token even right after a forged one with an unknown key: the OP's key
// ids are read when its relying party is built.
func TestBackchannelLogoutBeforeAnySignIn(t *testing.T) {
	addr := freeAddr(t)
	root := "http://" + addr
	op := oidcoptest.Start(t, root+"/gatehouse/oidc/callback")
	g := startGateway(t, "", append(op.GatewayEnv(), "GATEHOUSE_LISTEN="+addr, "GATEHOUSE_PUBLIC_URL="+root,
		"GATEHOUSE_PROVISIONING_METHOD=manual")...)
	ctx := context.Background()
	signedInCookie(t, g) // Ada, with a session that names no IdP session
	userID := mustUserID(t, g, "ada@example.com")
	// Her OIDC session from before the restart, as the store keeps it.
	if _, err := g.app.Sessions().StartSignIn(ctx, httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), gateway.DefaultOrg, userID,
		gateway.Identity{Protocol: "oidc", Subject: oidcoptest.User, SessionID: "op-session-before"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := map[string]any{"iss": op.Issuer, "sub": oidcoptest.User, "aud": []string{oidcoptest.ClientID}, "iat": now.Unix(),
		"exp": now.Add(time.Minute).Unix(), "jti": rand.Text(), "sid": "op-session-before",
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: otherKey}, (&jose.SignerOptions{}).WithHeader("kid", "attacker"))
	raw, _ := json.Marshal(claims)
	jws, _ := signer.Sign(raw)
	forged, _ := jws.CompactSerialize()
	post := func(token string) int {
		resp, err := http.PostForm(root+"/gatehouse/oidc/backchannel-logout", url.Values{"logout_token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := post(forged); status != http.StatusBadRequest {
		t.Fatalf("a forged token: %d", status)
	}
	claims["jti"] = rand.Text()
	valid, err := op.SignLogoutToken(claims)
	if err != nil {
		t.Fatal(err)
	}
	if status := post(valid); status != http.StatusOK {
		t.Fatalf("the OP's token right after a forged one: %d, want 200", status)
	}
	if left, _ := g.app.Store().Sessions().ListUser(ctx, gateway.DefaultOrg, userID); len(left) != 1 {
		t.Fatalf("%d sessions left, want the one the logout did not name", len(left))
	}
}

func mustUserID(t *testing.T, g *gatewayUnderTest, userName string) string {
	t.Helper()
	ids, err := g.app.Store().Users().Lookup(context.Background(), gateway.DefaultOrg, gateway.UserByUserName, userName)
	if err != nil || len(ids) != 1 {
		t.Fatalf("user %s: %v %v", userName, ids, err)
	}
	return ids[0]
}

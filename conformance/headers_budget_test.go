package conformance

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway/proxy"
)

// startStrictApp runs the app as a server with a default-sized header
// limit: it refuses requests whose headers pass 16 KiB together (what
// Node.js refuses by default; nginx's default refuses a header line over
// 8 KiB, checked on every identity header below). It records the
// identity headers it was sent.
func startStrictApp(t *testing.T) (string, func() http.Header) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var last http.Header
	srv := &http.Server{
		// Go adds 4 KiB of slack to MaxHeaderBytes: 12 KiB here refuses
		// past 16 KiB, with 431.
		MaxHeaderBytes:    12 << 10,
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			last = r.Header.Clone()
			_, _ = io.WriteString(w, "the app")
		}),
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), func() http.Header { return last }
}

// TestIdentityHeadersWithinBudget: a person in 2,000 groups reaches an app
// with default header limits: the identity headers stay within 8 KiB
// together, the groups move to X-Gatehouse-Groups-Url (and the JWT's
// groups_url), where the app reads all 2,000 with the JWT. Without the
// budget the same request is refused by the app.
func TestIdentityHeadersWithinBudget(t *testing.T) {
	for _, c := range []struct {
		name   string
		budget string
		fits   bool
	}{{"default budget", "", true}, {"no budget to speak of", "1048576", false}} {
		t.Run(c.name, func(t *testing.T) {
			app, seen := startStrictApp(t)
			addr := freeAddr(t)
			root := "http://" + addr
			env := []string{"GATEHOUSE_LISTEN=" + addr, "GATEHOUSE_PUBLIC_URL=" + root, "GATEHOUSE_UPSTREAM_URL=" + app}
			if c.budget != "" {
				env = append(env, "GATEHOUSE_PROXY_HEADER_BUDGET="+c.budget)
			}
			g := startGateway(t, "", env...)
			cookie := signedInCookie(t, g)
			users := g.call("GET", "/Users", "").must(t, 200)
			ada := users.get("Resources").([]any)[0].(map[string]any)["id"].(string)
			const n = 2000
			for i := range n {
				g.call("POST", "/Groups", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Engineering Platform Team %04d (EMEA)","members":[{"value":"%s"}]}`, i, ada)).must(t, 201)
			}
			req, _ := http.NewRequest("GET", root+"/dashboard", nil)
			req.AddCookie(cookie)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if !c.fits {
				if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
					t.Fatalf("without a budget the app should refuse 2,000 groups' headers: %d", resp.StatusCode)
				}
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("the app answered %d", resp.StatusCode)
			}
			h := seen()
			total := 0
			for k, vs := range h {
				if strings.HasPrefix(k, "X-Gatehouse-") {
					for _, v := range vs {
						total += len(k) + len(v) + 4
						if len(k)+len(v)+4 > 8<<10 {
							t.Errorf("%s takes %d bytes, over nginx's 8 KiB line", k, len(k)+len(v)+4)
						}
					}
				}
			}
			if total > proxy.DefaultHeaderBudget {
				t.Fatalf("the identity headers take %d bytes, over the %d budget", total, proxy.DefaultHeaderBudget)
			}
			url := h.Get(proxy.HeaderGroupsURL)
			if h.Get(proxy.HeaderGroups) != "" || url != root+"/gatehouse/identity/groups" {
				t.Fatalf("the groups did not move to the groups URL: groups %.80q, url %q", h.Get(proxy.HeaderGroups), url)
			}
			if h.Get(proxy.HeaderAccessOmitted) == "" && h.Get(proxy.HeaderAccess) == "" {
				t.Fatal("neither the access header nor its omission note")
			}
			t.Logf("identity headers: %d bytes for a person in %d groups", total, n)
			assertion := h.Get(proxy.HeaderAssertion)
			claims := jwtClaims(t, assertion)
			if claims["groups"] != nil || claims["groups_url"] != url {
				t.Fatalf("the JWT should carry groups_url instead of groups: %v", claims)
			}
			// The app reads them with the JWT.
			get := func(token string) (int, map[string]any) {
				req, _ := http.NewRequest("GET", url, nil)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var out map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&out)
				return resp.StatusCode, out
			}
			status, out := get(assertion)
			if status != 200 || len(out["groups"].([]any)) != n || out["sub"] != ada {
				t.Fatalf("groups URL: %d, %d groups, sub %v", status, len(out["groups"].([]any)), out["sub"])
			}
			for name, token := range map[string]string{"no token": "", "a forged token": assertion[:len(assertion)-4] + "AAAA", "not a JWT": "abc"} {
				if status, _ := get(token); status != http.StatusUnauthorized {
					t.Errorf("groups URL with %s: %d, want 401", name, status)
				}
			}
		})
	}
}

// jwtClaims reads a JWT's claims without checking it (the app's side is
// checked elsewhere).
func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.40q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

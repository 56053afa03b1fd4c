// Package oidcoptest runs a real OpenID provider (zitadel/oidc's example
// OP on its op package) on 127.0.0.1 for tests, with one user and one
// client, and signs a browser in through its login form. Test code only.
package oidcoptest

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The example storage's user and the client registered here.
const (
	User         = "test-user@127.0.0.1"
	Password     = "verysecure"
	ClientID     = "gatehouse"
	ClientSecret = "s3cret"
)

// OP is a running OpenID provider.
type OP struct {
	Issuer  string
	storage *claimsStorage
}

// claimsStorage puts the userinfo claims (email, names) and a groups
// claim into the ID token, as Okta does with the groups claim configured,
// and can make tokens that are already expired.
type claimsStorage struct {
	*storage.Storage
	mu       sync.Mutex
	groups   []string
	lifetime time.Duration
}

type claimsClient struct {
	op.Client
	lifetime time.Duration
}

func (claimsClient) IDTokenUserinfoClaimsAssertion() bool { return true }

func (c claimsClient) IDTokenLifetime() time.Duration {
	if c.lifetime != 0 {
		return c.lifetime
	}
	return c.Client.IDTokenLifetime()
}

func (s *claimsStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return claimsClient{Client: c, lifetime: s.lifetime}, nil
}

func (s *claimsStorage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, req, scopes); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups != nil {
		ui.AppendClaims("groups", s.groups)
	}
	return nil
}

// Start runs an OP trusting redirectURI for the client.
func Start(t testing.TB, redirectURI string) *OP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	st := &claimsStorage{Storage: storage.NewStorageWithClients(storage.NewUserStore(issuer),
		map[string]*storage.Client{ClientID: storage.WebClient(ClientID, ClientSecret, redirectURI)}),
		groups: []string{"engineering", "admins"}}
	srv := &http.Server{Handler: exampleop.SetupServer(issuer, st, nil, false), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return &OP{Issuer: issuer, storage: st}
}

// ExpireTokens makes the next ID tokens expired on issue (or not).
func (o *OP) ExpireTokens(expired bool) {
	o.storage.mu.Lock()
	defer o.storage.mu.Unlock()
	o.storage.lifetime = 0
	if expired {
		o.storage.lifetime = -time.Minute
	}
}

var loginID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// SignIn follows loginURL to the OP's form, signs in and returns the
// OP's redirect back to the relying party (not followed).
func (o *OP) SignIn(t testing.TB, c *http.Client, loginURL string) *url.URL {
	t.Helper()
	resp, err := c.Get(loginURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := loginID.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no OP login form at %s (%d): %.300s", resp.Request.URL, resp.StatusCode, body)
	}
	resp, err = c.PostForm(o.Issuer+"/login/username", url.Values{"id": {string(m[1])}, "username": {User}, "password": {Password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("the OP did not redirect back: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	back, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	return back
}

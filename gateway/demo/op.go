package demo

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// OPOptions configures an OpenID provider.
type OPOptions struct {
	Listener     net.Listener
	People       []Person
	ClientID     string
	ClientSecret string
	RedirectURI  string
}

// OP is a running OpenID provider: zitadel/oidc's example OP (its op
// package, a login form) with the demo people and one web client.
type OP struct {
	Issuer  string
	http    *http.Server
	storage *opStorage
}

// StartOP serves an OP on the listener. Its ID tokens carry email,
// email_verified, given_name, family_name and a groups claim, as an Okta
// OIDC app with the groups claim configured does.
func StartOP(opts OPOptions) (*OP, error) {
	issuer := "http://" + opts.Listener.Addr().String()
	people := peopleStore{byID: map[string]*storage.User{}, byName: map[string]*storage.User{}, groups: map[string][]string{}}
	for _, p := range opts.People {
		u := &storage.User{ID: p.Login, Username: p.Login, Password: p.Password, FirstName: p.FirstName, LastName: p.LastName,
			Email: p.Email, EmailVerified: !p.EmailUnverified, PreferredLanguage: language.English}
		people.byID[u.ID], people.byName[strings.ToLower(u.Username)], people.groups[u.ID] = u, u, p.Groups
	}
	st := &opStorage{Storage: storage.NewStorageWithClients(people,
		map[string]*storage.Client{opts.ClientID: storage.WebClient(opts.ClientID, opts.ClientSecret, opts.RedirectURI)}), people: people}
	o := &OP{Issuer: issuer, storage: st,
		http: &http.Server{Handler: exampleop.SetupServer(issuer, st, nil, false), ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = o.http.Serve(opts.Listener) }()
	return o, nil
}

// Close stops the OP.
func (o *OP) Close() error { return o.http.Close() }

// ExpireTokens makes the next ID tokens expired on issue (or not again),
// for tests of the relying party.
func (o *OP) ExpireTokens(expired bool) {
	o.storage.mu.Lock()
	defer o.storage.mu.Unlock()
	o.storage.lifetime = 0
	if expired {
		o.storage.lifetime = -time.Minute
	}
}

// peopleStore is the example storage's user store over the demo people.
type peopleStore struct {
	byID, byName map[string]*storage.User
	groups       map[string][]string
}

func (p peopleStore) GetUserByID(id string) *storage.User { return p.byID[id] }
func (p peopleStore) GetUserByUsername(name string) *storage.User {
	return p.byName[strings.ToLower(name)]
}
func (peopleStore) ExampleClientID() string { return "" }

// opStorage puts the userinfo claims and the groups into the ID token.
type opStorage struct {
	*storage.Storage
	people   peopleStore
	mu       sync.Mutex
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

func (s *opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return claimsClient{Client: c, lifetime: s.lifetime}, nil
}

func (s *opStorage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, req, scopes); err != nil {
		return err
	}
	if groups := s.people.groups[req.GetSubject()]; len(groups) > 0 {
		ui.AppendClaims("groups", groups)
	}
	return nil
}

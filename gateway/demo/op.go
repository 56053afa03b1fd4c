package demo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
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
	// PostLogoutRedirectURIs are where the OP's end_session_endpoint
	// may send the browser back to.
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI, when set, is sent a logout token (OpenID
	// Connect Back-Channel Logout) when a person signs out at the OP.
	BackchannelLogoutURI string
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
	people := peopleStore{byID: map[string]*storage.User{}, byName: map[string]*storage.User{}, groups: map[string][]string{}, persons: map[string]Person{}}
	for _, p := range opts.People {
		u := &storage.User{ID: p.Login, Username: p.Login, Password: p.Password, FirstName: p.FirstName, LastName: p.LastName,
			Email: p.Email, EmailVerified: !p.EmailUnverified, PreferredLanguage: language.English}
		people.byID[u.ID], people.byName[strings.ToLower(u.Username)], people.groups[u.ID] = u, u, p.Groups
		people.persons[u.ID] = p
	}
	st := &opStorage{Storage: storage.NewStorageWithClients(people,
		map[string]*storage.Client{opts.ClientID: storage.WebClient(opts.ClientID, opts.ClientSecret, opts.RedirectURI)}), people: people,
		issuer: issuer, opts: opts, sids: map[string]string{}}
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
	persons      map[string]Person
}

func (p peopleStore) GetUserByID(id string) *storage.User { return p.byID[id] }
func (p peopleStore) GetUserByUsername(name string) *storage.User {
	return p.byName[strings.ToLower(name)]
}
func (peopleStore) ExampleClientID() string { return "" }

// opStorage puts the userinfo claims, the groups and a session id (sid)
// into the ID token, and sends back-channel logout tokens.
type opStorage struct {
	*storage.Storage
	people   peopleStore
	issuer   string
	opts     OPOptions
	mu       sync.Mutex
	lifetime time.Duration
	sids     map[string]string // subject → the OP session of its last sign-in
}

type claimsClient struct {
	op.Client
	lifetime    time.Duration
	postLogouts []string
}

func (c claimsClient) PostLogoutRedirectURIs() []string { return c.postLogouts }

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
	return claimsClient{Client: c, lifetime: s.lifetime, postLogouts: s.opts.PostLogoutRedirectURIs}, nil
}

func (s *opStorage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, req, scopes); err != nil {
		return err
	}
	if groups := s.people.groups[req.GetSubject()]; len(groups) > 0 {
		ui.AppendClaims("groups", groups)
	}
	p := s.people.persons[req.GetSubject()]
	switch {
	case p.OmitEmailVerified:
		ui.EmailVerified = false // omitted
	case p.EmailUnverified:
		ui.AppendClaims("email_verified", false) // said, as IdPs do
	}
	for k, v := range p.Claims {
		ui.AppendClaims(k, v)
	}
	ui.AppendClaims("sid", s.session(req.GetSubject(), true))
	return nil
}

// session is the subject's OP session: a new one at each sign-in.
func (s *opStorage) session(subject string, signIn bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if signIn || s.sids[subject] == "" {
		s.sids[subject] = "op-session-" + rand.Text()
	}
	return s.sids[subject]
}

// TerminateSession ends the person's tokens and, as an OP with
// back-channel logout does, tells the relying party at once.
func (s *opStorage) TerminateSession(ctx context.Context, userID, clientID string) error {
	if err := s.Storage.TerminateSession(ctx, userID, clientID); err != nil {
		return err
	}
	if s.opts.BackchannelLogoutURI == "" {
		return nil
	}
	token, err := s.logoutToken(ctx, userID, s.session(userID, false))
	if err != nil {
		return err
	}
	return s.sendLogout(ctx, token)
}

// logoutToken is a logout token for the subject's session, signed with
// the OP's key.
func (s *opStorage) logoutToken(ctx context.Context, subject, sid string) (string, error) {
	claims := oidc.NewLogoutTokenClaims(s.issuer, subject, oidc.Audience{s.opts.ClientID}, time.Now().Add(2*time.Minute), rand.Text(), sid, 0)
	return s.Sign(ctx, claims)
}

// Sign signs any claims with the OP's key, as its tokens are.
func (s *opStorage) Sign(ctx context.Context, claims any) (string, error) {
	key, err := s.SigningKey(ctx)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: key.SignatureAlgorithm(), Key: key.Key()},
		(&jose.SignerOptions{}).WithType("logout+jwt").WithHeader("kid", key.ID()))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func (s *opStorage) sendLogout(ctx context.Context, token string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.opts.BackchannelLogoutURI, strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("back-channel logout answered %d", resp.StatusCode)
	}
	return nil
}

// SignLogoutToken signs claims with the OP's key (tests build forged and
// odd logout tokens with it).
func (o *OP) SignLogoutToken(claims any) (string, error) {
	return o.storage.Sign(context.Background(), claims)
}

// Session is the OP session of the subject's last sign-in.
func (o *OP) Session(subject string) string { return o.storage.session(subject, false) }

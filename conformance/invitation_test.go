package conformance

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"

	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-id/gatehouse/conformance/samlidptest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

// mailbox is a real SMTP server (go-smtp) keeping what it receives.
type mailbox struct {
	mu   sync.Mutex
	msgs []mail
	addr string
}

type mail struct {
	from string
	to   []string
	data string
}

type mailSession struct {
	box *mailbox
	cur mail
}

func (s *mailSession) Reset()        { s.cur = mail{} }
func (s *mailSession) Logout() error { return nil }
func (s *mailSession) Mail(from string, _ *gosmtp.MailOptions) error {
	s.cur.from = from
	return nil
}
func (s *mailSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.cur.to = append(s.cur.to, to)
	return nil
}
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = string(b)
	s.box.mu.Lock()
	s.box.msgs = append(s.box.msgs, s.cur)
	s.box.mu.Unlock()
	return nil
}

func startMailbox(t *testing.T) *mailbox {
	t.Helper()
	box := &mailbox{}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) { return &mailSession{box: box}, nil }))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	box.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return box
}

func (b *mailbox) messages() []mail {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.msgs)
}

func (b *mailbox) env() []string {
	host, port, _ := net.SplitHostPort(b.addr)
	return []string{"GATEHOUSE_EMAIL_SMTP_HOST=" + host, "GATEHOUSE_EMAIL_SMTP_PORT=" + port, "GATEHOUSE_EMAIL_SMTP_TLS=none",
		"GATEHOUSE_EMAIL_SMTP_FROM=Acme <no-reply@acme.example>", "GATEHOUSE_DELIVERY_BACKOFF_MIN=5ms", "GATEHOUSE_DELIVERY_BACKOFF_MAX=50ms"}
}

var linkPattern = regexp.MustCompile(`https?://\S+/gatehouse/invite/[A-Za-z0-9._-]+`)

// TestInvitationThroughSSO: a manager invites, the mail reaches a real
// SMTP server with the link, the person signs in through the real SAML
// IdP and gets the invitation's role and pools; the used, an expired, a
// revoked link and someone else's sign-in are refused and create nobody.
func TestInvitationThroughSSO(t *testing.T) {
	box := startMailbox(t)
	idp := samlidptest.Start(t, dsig.RSASHA256SignatureMethod)
	idp.Put(t, "/users/bob", `{"password":"bob pass","email":"bob@example.com","given_name":"Bob","surname":"Builder"}`)
	g, root := startSAMLGateway(t, idp, "", append(box.env(), "GATEHOUSE_PROVISIONING_METHOD=manual", "GATEHOUSE_ADMIN_TOKEN="+adminToken)...)
	auth := bearer(adminToken)
	adminRequest(t, g, "POST", "/pools", `{"id":"support"}`, auth)
	inv := adminRequest(t, g, "POST", "/invitations", `{"email":"Bob@Example.com","role":"manager","pools":["support"]}`, auth)
	if inv.status != 201 || inv.str("status") != "pending" || inv.str("email") != "bob@example.com" || !strings.HasPrefix(inv.str("link"), root+"/gatehouse/invite/") {
		t.Fatalf("invite: %d %s", inv.status, inv.raw)
	}
	// The mail, and the event for the app.
	eventually(t, "the invitation mail", func() bool { return len(box.messages()) == 1 })
	m := box.messages()[0]
	link := linkPattern.FindString(strings.ReplaceAll(m.data, "=\r\n", ""))
	if link != inv.str("link") || !slices.Equal(m.to, []string{"bob@example.com"}) || m.from != "no-reply@acme.example" {
		t.Fatalf("mail from %s to %v with link %q:\n%s", m.from, m.to, link, m.data)
	}
	evs := g.events()
	if len(evs) == 0 || evs[len(evs)-1].Op != gateway.OpInvitationCreated || evs[len(evs)-1].Invitation == nil || evs[len(evs)-1].Invitation.Link != link {
		t.Fatalf("invitation.created: %+v", evs)
	}

	users := func() int {
		_, n, _ := g.app.Store().Users().List(context.Background(), gateway.DefaultOrg, 0, 0)
		return n
	}
	// The link shows a page that leads to SSO; signing in as Bob accepts.
	b := samlidptest.Browser(nil)
	resp, err := b.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m2 := regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindSubmatch(page)
	if resp.StatusCode != 200 || m2 == nil || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("invitation page: %d %s", resp.StatusCode, page)
	}
	next, _ := url.Parse(root)
	next, _ = next.Parse(strings.ReplaceAll(string(m2[1]), "&amp;", "&"))
	acs, form := samlidptest.SignInAs(t, b, "POST "+next.String(), "bob", "bob pass")
	resp, err = b.PostForm(acs, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/" {
		t.Fatalf("after accepting: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	ids, _ := g.app.Store().Users().Lookup(context.Background(), gateway.DefaultOrg, gateway.UserByUserName, "bob@example.com")
	if len(ids) != 1 {
		t.Fatal("no user for the accepted invitation")
	}
	u, _ := g.app.Store().Users().Get(context.Background(), gateway.DefaultOrg, ids[0])
	if u.Source != gateway.SourceManual || u.Role != "manager" || !slices.Equal(u.Pools, []string{"support"}) || u.GivenName != "Bob" {
		t.Fatalf("invited user: %+v", u)
	}
	if l := adminRequest(t, g, "GET", "/invitations", "", auth); !strings.Contains(l.raw, `"status":"accepted"`) || !strings.Contains(l.raw, `"accepted_by":"`+u.ID+`"`) {
		t.Fatalf("invitation after acceptance: %s", l.raw)
	}

	refused := func(what, link, want string) {
		t.Helper()
		before := users()
		resp, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), want) || users() != before {
			t.Errorf("%s: %d %s", what, resp.StatusCode, body)
		}
	}
	refused("the used link", link, "accepted already")
	refused("a forged link", link[:len(link)-3]+"xyz", "not valid")
	expired := adminRequest(t, g, "POST", "/invitations", `{"email":"cy@example.com","expires_in":"1ms"}`, auth)
	time.Sleep(5 * time.Millisecond)
	refused("an expired link", expired.str("link"), "expired")
	revoked := adminRequest(t, g, "POST", "/invitations", `{"email":"dee@example.com"}`, auth)
	if d := adminRequest(t, g, "DELETE", "/invitations/"+revoked.str("id"), "", auth); d.status != 204 {
		t.Fatalf("revoke: %d %s", d.status, d.raw)
	}
	refused("a revoked link", revoked.str("link"), "withdrawn")

	// Someone else signing in with a valid link: refused, nothing made.
	other := adminRequest(t, g, "POST", "/invitations", `{"email":"eve@example.com"}`, auth)
	before := users()
	b = samlidptest.Browser(nil)
	acs, form = samlidptest.SignInAs(t, b, "POST "+other.str("link")+"/signin", samlidptest.User, samlidptest.Password)
	resp, err = b.PostForm(acs, form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "for eve@example.com") || users() != before {
		t.Fatalf("another person's sign-in: %d %s", resp.StatusCode, body)
	}
	// Resend: a new link, the old one stops working.
	again := adminRequest(t, g, "POST", "/invitations/"+other.str("id")+"/resend", `{}`, auth)
	if again.status != 200 || again.str("link") == other.str("link") || again.body["sent"] != float64(2) {
		t.Fatalf("resend: %d %s", again.status, again.raw)
	}
	refused("the link replaced by a resend", other.str("link"), "not valid")
	eventually(t, "the resent mail", func() bool { return len(box.messages()) == 5 })
}

// TestInvitationWithoutSSO: with sso.protocol none the link itself proves
// the email: a click accepts and signs the person in; a manager's
// invitation is refused (the link alone would make a manager).
func TestInvitationWithoutSSO(t *testing.T) {
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.Header.Get("X-Gatehouse-Email")+" as "+r.Header.Get("X-Gatehouse-Role"))
	})
	app := newLocalServer(t, upstream)
	addr := freeAddr(t)
	root := "http://" + addr
	g := startGateway(t, "", "GATEHOUSE_LISTEN="+addr, "GATEHOUSE_PUBLIC_URL="+root, "GATEHOUSE_SSO_PROTOCOL=none",
		"GATEHOUSE_PROVISIONING_METHOD=manual", "GATEHOUSE_ADMIN_TOKEN="+adminToken, "GATEHOUSE_UPSTREAM_URL="+app)
	// Without SSO the link alone accepts, so it may not make a manager.
	if mgr := adminRequest(t, g, "POST", "/invitations", `{"email":"max@example.com","role":"manager"}`, bearer(adminToken)); mgr.status != 422 {
		t.Fatalf("a manager's invitation without SSO: %d %s", mgr.status, mgr.raw)
	}
	inv := adminRequest(t, g, "POST", "/invitations", `{"email":"zoe@example.com","role":"user"}`, bearer(adminToken))
	if inv.status != 201 {
		t.Fatalf("invite: %d %s", inv.status, inv.raw)
	}
	b := samlidptest.Browser(nil)
	if resp, err := b.Get(inv.str("link")); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the page: %v", err)
	}
	resp, err := b.PostForm(inv.str("link"), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello zoe@example.com as user" {
		t.Fatalf("after accepting: %d %s", resp.StatusCode, body)
	}
	resp, err = b.PostForm(inv.str("link"), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("accepting twice: %d", resp.StatusCode)
	}
}

func newLocalServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

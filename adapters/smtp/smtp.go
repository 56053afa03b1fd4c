// Package smtp mails invitations: it delivers invitation.created events
// as a message with the acceptance link, through an SMTP server, with
// go-mail. Every other event is acknowledged and skipped. A redelivered
// event (after a crash) is sent again with the same Message-ID, so mail
// systems that deduplicate on it show one.
package smtp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// Config is the SMTP server and the sender.
type Config struct {
	Host     string         `yaml:"host"`
	Port     int            `yaml:"port"`
	Username string         `yaml:"username"`
	Password gateway.Secret `yaml:"password"`
	From     string         `yaml:"from"`
	// TLS is starttls (the default: STARTTLS required), tls (implicit
	// TLS, port 465) or none (plain text, only to a loopback server).
	TLS     string        `yaml:"tls"`
	Subject string        `yaml:"subject"`
	Timeout time.Duration `yaml:"timeout"`
}

// Validate reports every problem with its key path.
func (c *Config) Validate() []gateway.ConfigProblem {
	var ps []gateway.ConfigProblem
	add := func(path, format string, args ...any) {
		ps = append(ps, gateway.ConfigProblem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if c.Host == "" {
		add("host", "is required (the SMTP server's host name)")
	}
	if c.Port < 0 || c.Port > 65535 {
		add("port", "%d is not a port", c.Port)
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		add("from", "%q is not an address such as \"Acme <no-reply@acme.example>\"", c.From)
	}
	switch c.TLS {
	case "", "starttls", "tls":
	case "none":
		if ip := net.ParseIP(c.Host); c.Host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			add("tls", "none sends the password and the links in clear: only to a loopback server")
		}
	default:
		add("tls", "%q is not one of starttls, tls, none", c.TLS)
	}
	if c.Username != "" && !c.Password.IsConfigured() {
		add("password", "is required with a username")
	}
	return ps
}

// Open builds the adapter.
func (c *Config) Open(_ context.Context, _ gateway.AdapterEnv) (gateway.Adapter, error) {
	opts := []gomail.Option{gomail.WithTimeout(c.timeout())}
	switch c.TLS {
	case "tls":
		opts = append(opts, gomail.WithSSLPort(false))
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if c.Port != 0 {
		opts = append(opts, gomail.WithPort(c.Port))
	}
	if c.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(c.Username),
			gomail.WithPassword(c.Password.Value()))
	}
	client, err := gomail.NewClient(c.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	return &adapter{cfg: c, client: client}, nil
}

func (c *Config) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 15 * time.Second
}

type adapter struct {
	cfg    *Config
	client *gomail.Client
}

func (a *adapter) Close() error { return nil }

// Deliver mails an invitation; other events are not for mail.
func (a *adapter) Deliver(ctx context.Context, e gateway.WireEvent) error {
	if e.Type != gateway.OpInvitationCreated {
		return nil
	}
	inv := e.Invitation
	if inv == nil || inv.Link == "" || inv.Email == "" {
		return fmt.Errorf("invitation.created without an invitation: %w", gateway.ErrPermanent)
	}
	m := gomail.NewMsg()
	if err := m.From(a.cfg.From); err != nil {
		return fmt.Errorf("from: %v: %w", err, gateway.ErrPermanent)
	}
	if err := m.To(inv.Email); err != nil {
		return fmt.Errorf("to %s: %v: %w", redact(inv.Email), err, gateway.ErrPermanent)
	}
	subject := a.cfg.Subject
	if subject == "" {
		subject = "You are invited"
	}
	m.Subject(subject)
	m.SetMessageIDWithValue(e.ID + "@gatehouse")
	m.SetDate()
	expires := inv.Expires.UTC().Format("2 January 2006 15:04 MST")
	m.SetBodyString(gomail.TypeTextPlain, "Hello,\n\nYou are invited to join as "+inv.Email+".\n\nAccept the invitation here (the link works once, until "+expires+"):\n\n"+
		inv.Link+"\n\nIf you did not expect this invitation, ignore this message.\n")
	err := a.client.DialAndSendWithContext(ctx, m)
	var se *gomail.SendError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se) && !se.IsTemp() && (se.Reason == gomail.ErrSMTPMailFrom || se.Reason == gomail.ErrSMTPRcptTo ||
		se.Reason == gomail.ErrSMTPData || se.Reason == gomail.ErrSMTPDataClose):
		// 5xx: the server refused the message as it is.
		return fmt.Errorf("mail to %s: %v: %w", redact(inv.Email), err, gateway.ErrPermanent)
	}
	return fmt.Errorf("mail to %s: %w", redact(inv.Email), err)
}

// redact keeps an address recognisable in logs without spelling it out.
func redact(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at <= 1 {
		return "…" + email[max(at, 0):]
	}
	return email[:1] + "…" + email[at:]
}

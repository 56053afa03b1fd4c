// Package console is the management console: server-rendered pages for
// managers (identity configuration, users, pools and roles, delivery,
// audit) served by the gateway itself. Every form works without
// JavaScript; a small script only adds copy buttons and confirmations.
// It holds no rule of its own: changes go through package provision, as
// the admin API's do, with the admin API's authorization (a manager's SSO
// session) and CSRF protection.
package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/admin"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/session"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configures the console.
type Options struct {
	Service  *provision.Service
	Store    gateway.Store
	Sessions *session.Manager
	Delivery admin.Delivery
	// UnprefixedOrg is the organization served at the unprefixed URLs; a
	// manager of any other finds its URLs under {PublicRoot}/o/{org}.
	UnprefixedOrg gateway.OrgID
	PathPrefix    string
	// PublicRoot is {public_url}{prefix}.
	PublicRoot    string
	InvitationTTL time.Duration
	// Mails says whether the gateway mails invitations (email.smtp); when
	// not, a new link is shown to the manager once, to send.
	Mails            bool
	SCIMTokenGrace   time.Duration
	SettingsFromFile bool
	// LastSignIn returns what the IdP sent at a user's last sign-in (for
	// the test sign-in), or nil.
	LastSignIn func(ctx context.Context, org gateway.OrgID, userID string) *gateway.Identity
	// OperatorToken is admin.token: who holds it opens the operator's
	// view of every organization ("" : none).
	OperatorToken string
	// CSRFKey keys the operator's cookie and its anti-CSRF token.
	CSRFKey []byte
	// Secure: the public URL is https.
	Secure bool
	// IdPCertificateExpiry is when the organization's SAML IdP's signing
	// certificate expires (false: unknown, or no SAML).
	IdPCertificateExpiry func(ctx context.Context, org gateway.OrgID) (time.Time, bool)
	// ConnectionHealth is what the gateway knows of the organization's
	// IdP connection (a banner on every page when it needs care).
	ConnectionHealth func(ctx context.Context, org gateway.OrgID) gateway.ConnectionHealth
	Logger           *slog.Logger
}

// Console serves the pages under {prefix}/console.
type Console struct {
	opts      Options
	pages     map[string]*template.Template
	mux       *http.ServeMux
	crossSite *http.CrossOriginProtection
	// operatorGuesses bounds wrong operator tokens; operatorMu makes
	// sign-in attempts take turns.
	operatorGuesses *rate.Limiter
	operatorMu      sync.Mutex
}

// New builds the console.
func New(opts Options) (*Console, error) {
	if err := opts.UnprefixedOrg.Check(); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{opts: opts, pages: map[string]*template.Template{}, mux: http.NewServeMux(), crossSite: http.NewCrossOriginProtection(),
		operatorGuesses: rate.NewLimiter(rate.Every(time.Minute), 10)}
	for _, name := range []string{"overview", "identity", "users", "user", "groups", "pools", "delivery", "audit", "message", "confirm"} {
		t, err := template.New(name).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		c.pages[name] = t
	}
	operator, err := template.New("operator").ParseFS(templateFS, "templates/operator.html")
	if err != nil {
		return nil, err
	}
	c.pages["operator"] = operator
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	p := opts.PathPrefix + "/console"
	c.mux.Handle("GET "+p+"/static/", http.StripPrefix(p+"/static/", cacheStatic(http.FileServerFS(static))))
	c.mux.HandleFunc("GET "+p+"/{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, p+"/overview", http.StatusFound) })
	c.mux.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, p+"/overview", http.StatusFound) })
	c.routes(p)
	c.operatorRoutes(p)
	c.mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusNotFound, "There is no such page in the console.")
	})
	return c, nil
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// The console's Content-Security-Policy: its forms post here, except the
// identity page's test sign-in, which the gateway answers with a redirect
// to the IdP (form-action 'self' would block it, and the IdP's address
// changes with the settings).
const (
	cspFormsHere   = "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	cspFormsToIdPs = "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"
)

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", cspFormsHere)
	c.mux.ServeHTTP(w, r)
}

// req is one signed-in manager's request.
type req struct {
	w       http.ResponseWriter
	r       *http.Request
	session gateway.Session
	user    *gateway.User
}

func (q *req) ctx() context.Context { return q.r.Context() }

// org is the organization the console shows: the one the manager signed
// in to (a manager of one organization is nobody in another's).
func (q *req) org() gateway.OrgID { return q.session.Org }

// orgPath is where the organization's own pages are, after the public
// URL: {prefix} for the default organization, {prefix}/o/{org} for any
// other.
func (c *Console) orgPath(q *req) string {
	if q.org() == c.opts.UnprefixedOrg {
		return c.opts.PathPrefix
	}
	return c.opts.PathPrefix + "/o/" + string(q.org())
}

// orgRoot is the organization's public root URL (its SCIM base URL,
// SAML and OIDC endpoints and invitation links are under it).
func (c *Console) orgRoot(q *req) string {
	return strings.TrimSuffix(c.opts.PublicRoot, c.opts.PathPrefix) + c.orgPath(q)
}

// manager is the command context of the request.
func (c *Console) manager(q *req) provision.Manager {
	return provision.Manager{Org: q.org(), Actor: admin.SessionActor(q.user), RequestID: httpx.RequestID(q.ctx())}
}

// page is what every template gets.
type page struct {
	Title, Nav, Prefix, CSRF, Me, Notice, Error string
	Banner                                      string // the IdP connection needs care
	Org                                         string // the organization the page is about, by name
	OrgPath                                     string // where its own sign-in pages are ({prefix} or {prefix}/o/{org})
	Data                                        any
}

// signedIn admits a manager's session: anyone else is sent to sign in
// (back to the page they asked for) or told they need the role. A change
// (POST) must come from this site with the session's CSRF token.
func (c *Console) signedIn(fn func(q *req)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		se, u, err := c.opts.Sessions.Current(r.Context(), r)
		switch {
		case session.SignedOut(err) && r.Method == http.MethodGet:
			http.Redirect(w, r, c.opts.PathPrefix+"/login?return="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
			return
		case session.SignedOut(err):
			// A form sent after the session ended: a link to sign in (a
			// redirect from a form post to the IdP would break on the
			// pages' form-action policy, and the form is stale anyway).
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusUnauthorized)
			_ = signedOutTemplate.Execute(w, c.opts.PathPrefix+"/login?return="+url.QueryEscape(c.opts.PathPrefix+"/console/users"))
			return
		case err != nil:
			c.opts.Logger.ErrorContext(r.Context(), "console: reading the session", "error", err)
			c.fail(w, r, http.StatusServiceUnavailable, "Your session cannot be checked right now; try again shortly.")
			return
		case !u.IsManager():
			c.fail(w, r, http.StatusForbidden, "You need the manager role to use the console. Ask a manager to give it to you.")
			return
		}
		if r.Method == http.MethodPost {
			// Where it comes from before what it says: a cross-site post is
			// refused without reading its body, and a body is bounded.
			if c.crossSite.Check(r) != nil {
				c.fail(w, r, http.StatusForbidden, "This form was sent from another site.")
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxMetadata+64<<10)
			if err := r.ParseMultipartForm(maxMetadata + 64<<10); err != nil && !errors.Is(err, http.ErrNotMultipart) {
				c.fail(w, r, http.StatusRequestEntityTooLarge, "The form could not be read (at most 1 MiB, with a metadata file).")
				return
			}
			if !admin.SameSiteChange(c.crossSite, c.opts.Sessions, se, r, r.PostFormValue("csrf")) {
				c.fail(w, r, http.StatusForbidden, "This form is out of date or was sent from another site. Reload the page and try again.")
				return
			}
		}
		if r.Method != http.MethodPost {
			fn(&req{w: w, r: r, session: se, user: u})
			return
		}
		rec := &httpx.StatusRecorder{ResponseWriter: w}
		fn(&req{w: rec, r: r, session: se, user: u})
		c.opts.Logger.InfoContext(r.Context(), "console change", "path", r.URL.Path, "status", rec.Status, "actor", admin.SessionActor(u).String())
	}
}

// render writes a page.
func (c *Console) render(q *req, status int, name, title, nav string, data any, notice, errText string) {
	p := page{Title: title, Nav: nav, Prefix: c.opts.PathPrefix, CSRF: c.opts.Sessions.CSRFToken(q.session), Me: q.user.PrimaryEmail(),
		Notice: notice, Error: errText, Data: data}
	if p.Me == "" {
		p.Me = q.user.UserName
	}
	p.Org, p.OrgPath = string(q.org()), c.orgPath(q)
	if c.opts.ConnectionHealth != nil {
		p.Banner = connectionBanner(c.opts.ConnectionHealth(q.ctx(), q.org()), time.Now())
	}
	if o, err := c.opts.Service.Org(q.ctx(), q.org()); err == nil {
		p.Org = o.Name
	}
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		c.opts.Logger.ErrorContext(q.ctx(), "console: rendering", "page", name, "error", err)
		http.Error(q.w, "internal error", http.StatusInternalServerError)
		return
	}
	q.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if name == "identity" {
		q.w.Header().Set("Content-Security-Policy", cspFormsToIdPs)
	}
	q.w.WriteHeader(status)
	_, _ = buf.WriteTo(q.w)
}

// fail shows an error page without the console's navigation (the person
// may not be a manager).
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, message string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = failTemplate.Execute(w, struct{ Title, Message, Prefix string }{http.StatusText(status), message, c.opts.PathPrefix})
}

var signedOutTemplate = template.Must(template.New("signed-out").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Signed out · Gatehouse console</title></head>
<body><main id="main"><h1>You are signed out</h1><p>Your session ended before the form was sent, so nothing was changed.</p>
<p><a href="{{.}}">Sign in again</a></p></main></body></html>`))

var failTemplate = template.Must(template.New("fail").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Gatehouse console</title><link rel="stylesheet" href="{{.Prefix}}/console/static/console.css"></head>
<body><main id="main"><h1>{{.Title}}</h1><p>{{.Message}}</p><p><a href="{{.Prefix}}/logout">Sign out</a></p></main></body></html>`))

// message shows a sentence (and a secret shown once).
type message struct {
	Message, Secret, SecretLabel, Back string
}

// confirmation asks before a destructive change.
type confirmation struct {
	Question, Action, Button, Back string
	Fields                         map[string]string
}

// errorText is what a manager reads of a refused change: the rule's or
// the domain's sentence, never an internal error's text.
func (c *Console) errorText(q *req, err error) (int, string) {
	var rules *gateway.RuleError
	if errors.As(err, &rules) && len(rules.Violations) > 0 {
		msgs := make([]string, len(rules.Violations))
		for i, v := range rules.Violations {
			msgs[i] = plainWords(v)
		}
		text := strings.Join(msgs, "; ")
		return http.StatusUnprocessableEntity, "Not saved: " + text + "."
	}
	if status := admin.HTTPStatus(err); status != http.StatusInternalServerError {
		return status, gateway.ErrorMessageOf(err)
	}
	id := httpx.RequestID(q.ctx())
	c.opts.Logger.ErrorContext(q.ctx(), "console", "error", err)
	return http.StatusInternalServerError, "An internal error occurred; nothing was changed. The gateway log has the details under request id " + id + "."
}

// done redirects after a change (POST, then GET) with a notice.
func (c *Console) done(q *req, path, notice string) {
	sep := "?"
	if u, err := url.Parse(path); err == nil && u.RawQuery != "" {
		sep = "&"
	}
	http.Redirect(q.w, q.r, path+sep+"done="+url.QueryEscape(notice), http.StatusSeeOther)
}

// notices are the sentences a redirect may show (a fixed set, so that a
// link cannot make the console say anything else).
var notices = map[string]string{
	"login":       "Login method saved. It is in force now.",
	"method":      "Provisioning method saved. It is in force now.",
	"user-added":  "User added.",
	"invited":     "Invitation sent.",
	"resent":      "Invitation sent again with a new link.",
	"revoked":     "Invitation revoked.",
	"saved":       "Role and pools saved.",
	"access":      "Their role in the pool is saved. It applies to their next request.",
	"role":        "Role saved. It applies to the next request of everyone holding it.",
	"role-gone":   "Role deleted.",
	"deactivated": "User deactivated; their sessions have ended.",
	"reactivated": "User reactivated.",
	"deleted":     "User deleted.",
	"pool":        "Pool saved.",
	"replayed":    "Dead letter scheduled for delivery again.",
}

func notice(r *http.Request) string { return notices[r.URL.Query().Get("done")] }

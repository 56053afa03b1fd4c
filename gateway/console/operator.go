package console

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/admin"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

// The operator (whoever holds admin.token) has a view of their own: the
// organizations, each one's status, domains and verification, and what
// only the operator does (suspend, resume, a setup link for any). They
// sign in with the token; the cookie they get is an HMAC of its expiry
// and of the token, so a changed token ends it.
const (
	operatorCookie = httpx.CookiePrefix + "operator"
	operatorTTL    = 8 * time.Hour
)

func (c *Console) operatorRoutes(p string) {
	op := p + "/operator"
	c.mux.HandleFunc("GET "+op, c.asOperator(c.operatorOrgs))
	c.mux.HandleFunc("POST "+op+"/signin", c.operatorSignIn)
	c.mux.HandleFunc("GET "+op+"/orgs/{org}", c.asOperator(c.operatorOrg))
	c.mux.HandleFunc("POST "+op+"/orgs/{org}", c.asOperator(c.operatorChange))
}

// operatorMAC is the cookie's proof for an expiry.
func (c *Console) operatorMAC(expires string) string {
	token := sha256.Sum256([]byte(c.opts.OperatorToken))
	mac := hmac.New(sha256.New, c.opts.CSRFKey)
	mac.Write([]byte("gatehouse-operator\x00" + expires + "\x00"))
	mac.Write(token[:])
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// operatorCSRF is the anti-CSRF token of an operator cookie.
func (c *Console) operatorCSRF(cookie string) string {
	mac := hmac.New(sha256.New, c.opts.CSRFKey)
	mac.Write([]byte("gatehouse-operator-csrf\x00" + cookie))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// operatorSession returns the operator cookie's value when it is valid.
func (c *Console) operatorSession(r *http.Request) (string, bool) {
	if c.opts.OperatorToken == "" || len(c.opts.CSRFKey) == 0 {
		return "", false
	}
	ck, err := r.Cookie(operatorCookie)
	if err != nil {
		return "", false
	}
	expires, mac, ok := strings.Cut(ck.Value, ".")
	unix, err := strconv.ParseInt(expires, 10, 64)
	if !ok || err != nil || time.Now().Unix() >= unix || !hmac.Equal([]byte(mac), []byte(c.operatorMAC(expires))) {
		return "", false
	}
	return ck.Value, true
}

// operatorReq is one request of the signed-in operator.
type operatorReq struct {
	w      http.ResponseWriter
	r      *http.Request
	cookie string
}

// asOperator admits the signed-in operator; anyone else gets the sign-in
// form. A change must come from this site with the cookie's CSRF token.
func (c *Console) asOperator(fn func(*operatorReq)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if c.opts.OperatorToken == "" {
			c.fail(w, r, http.StatusNotFound, "This gateway has no operator token (admin.token), so it has no operator view.")
			return
		}
		cookie, ok := c.operatorSession(r)
		if !ok {
			c.operatorPage(w, r, http.StatusUnauthorized, "signin", nil, "")
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if c.crossSite.Check(r) != nil || !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(c.operatorCSRF(cookie))) {
				c.fail(w, r, http.StatusForbidden, "This form is out of date or was sent from another site. Reload the page and try again.")
				return
			}
		}
		fn(&operatorReq{w: w, r: r, cookie: cookie})
	}
}

func (c *Console) operatorSignIn(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if c.opts.OperatorToken == "" || c.crossSite.Check(r) != nil {
		c.fail(w, r, http.StatusForbidden, "The operator view cannot be opened from here.")
		return
	}
	// Guessing is bounded: 10 wrong tokens in a row, then one a minute.
	// Attempts take turns, so that concurrent guesses cannot all pass the
	// check before the first wrong one counts.
	given := r.PostFormValue("token")
	c.operatorMu.Lock()
	allowed := c.operatorGuesses.Tokens() >= 1
	right := allowed && subtle.ConstantTimeCompare([]byte(given), []byte(c.opts.OperatorToken)) == 1
	if allowed && !right {
		c.operatorGuesses.Allow()
	}
	c.operatorMu.Unlock()
	if !allowed {
		w.Header().Set("Retry-After", "60")
		c.operatorPage(w, r, http.StatusTooManyRequests, "signin", nil, "Too many wrong tokens: try again in a minute.")
		return
	}
	if !right {
		c.opts.Logger.WarnContext(r.Context(), "console: operator sign-in refused")
		c.operatorPage(w, r, http.StatusUnauthorized, "signin", nil, "That is not the operator token (admin.token).")
		return
	}
	expires := strconv.FormatInt(time.Now().Add(operatorTTL).Unix(), 10)
	http.SetCookie(w, &http.Cookie{Name: operatorCookie, Value: expires + "." + c.operatorMAC(expires), Path: c.opts.PathPrefix + "/console/operator",
		MaxAge: int(operatorTTL.Seconds()), Secure: c.opts.Secure, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	c.opts.Logger.InfoContext(r.Context(), "console: operator signed in")
	http.Redirect(w, r, c.opts.PathPrefix+"/console/operator", http.StatusSeeOther)
}

type operatorData struct {
	Orgs           []admin.OrgView
	Org            *admin.OrgView
	Domains        []admin.DomainView
	Next, Previous string
	Total          int
	SetupLink      string
}

func (c *Console) operatorOrgs(q *operatorReq) {
	const limit = 50
	after := gateway.OrgID(q.r.URL.Query().Get("after"))
	orgs, total, err := c.opts.Service.Orgs(q.r.Context(), after, limit+1)
	if err != nil {
		c.operatorPage(q.w, q.r, http.StatusServiceUnavailable, "orgs", &operatorData{}, "The organizations cannot be read right now; try again shortly.")
		return
	}
	d := &operatorData{Total: total}
	if len(orgs) > limit {
		orgs = orgs[:limit]
		d.Next = c.opts.PathPrefix + "/console/operator?after=" + string(orgs[len(orgs)-1].ID)
	}
	for _, o := range orgs {
		v, err := admin.ViewOrg(q.r.Context(), c.opts.Service, c.opts.Store, o)
		if err != nil {
			c.operatorPage(q.w, q.r, http.StatusServiceUnavailable, "orgs", d, "The organizations cannot be read right now; try again shortly.")
			return
		}
		d.Orgs = append(d.Orgs, v)
	}
	c.operatorPage(q.w, q.r, http.StatusOK, "orgs", d, "")
}

func (c *Console) operatorOrg(q *operatorReq) {
	c.showOperatorOrg(q, http.StatusOK, "", "")
}

func (c *Console) showOperatorOrg(q *operatorReq, status int, setupLink, errText string) {
	o, err := c.opts.Service.Org(q.r.Context(), gateway.OrgID(q.r.PathValue("org")))
	if err != nil {
		c.operatorPage(q.w, q.r, http.StatusNotFound, "org", &operatorData{}, "There is no such organization.")
		return
	}
	v, err := admin.ViewOrg(q.r.Context(), c.opts.Service, c.opts.Store, o)
	if err != nil {
		c.operatorPage(q.w, q.r, http.StatusServiceUnavailable, "org", &operatorData{}, "The organization cannot be read right now; try again shortly.")
		return
	}
	d := &operatorData{Org: &v, SetupLink: setupLink}
	for _, dm := range o.Domains {
		d.Domains = append(d.Domains, admin.ViewDomain(dm))
	}
	c.operatorPage(q.w, q.r, status, "org", d, errText)
}

// operatorChange does what the org page's buttons ask: suspend, resume,
// verify a domain, or make a setup link.
func (c *Console) operatorChange(q *operatorReq) {
	ctx := q.r.Context()
	org := gateway.OrgID(q.r.PathValue("org"))
	op := provision.Operator{Actor: admin.OperatorActor(), RequestID: httpx.RequestID(ctx)}
	var err error
	var link string
	switch q.r.PostFormValue("do") {
	case "suspend", "resume":
		suspend := q.r.PostFormValue("do") == "suspend"
		_, err = c.opts.Service.UpdateOrg(ctx, op, org, 0, provision.OrgChange{Suspended: &suspend})
	case "verify":
		_, err = c.opts.Service.VerifyDomain(ctx, org, op.Actor, op.RequestID, q.r.PostFormValue("domain"))
	case "setup-link":
		var made provision.SetupLink
		root := c.opts.PublicRoot
		if org != c.opts.UnprefixedOrg {
			root += "/o/" + string(org)
		}
		made, err = c.opts.Service.CreateSetupLink(ctx, provision.Manager{Org: org, Actor: op.Actor, RequestID: op.RequestID}, 24*time.Hour, root+"/setup/link")
		link = made.Link
	default:
		err = gateway.Errorf(gateway.ErrInvalid, "unknown action")
	}
	if err != nil {
		status := admin.HTTPStatus(err)
		text := gateway.ErrorMessageOf(err)
		if status == http.StatusInternalServerError {
			c.opts.Logger.ErrorContext(ctx, "console: operator change", "error", err)
			text = "The change could not be made right now; nothing was changed."
		}
		c.showOperatorOrg(q, status, "", text)
		return
	}
	c.opts.Logger.InfoContext(ctx, "console: operator change", "org", string(org), "do", q.r.PostFormValue("do"))
	if link != "" {
		c.showOperatorOrg(q, http.StatusOK, link, "")
		return
	}
	http.Redirect(q.w, q.r, c.opts.PathPrefix+"/console/operator/orgs/"+string(org), http.StatusSeeOther)
}

type operatorPageData struct {
	Title, Prefix, CSRF, Error string
	Data                       *operatorData
}

// operatorPage renders the operator's pages (their own layout: they
// belong to no organization).
func (c *Console) operatorPage(w http.ResponseWriter, r *http.Request, status int, view string, d *operatorData, errText string) {
	p := operatorPageData{Title: map[string]string{"signin": "Sign in", "orgs": "Organizations", "org": "Organization"}[view],
		Prefix: c.opts.PathPrefix, Error: errText, Data: d}
	if d != nil && d.Org != nil {
		p.Title = d.Org.Name
	}
	if cookie, ok := c.operatorSession(r); ok {
		p.CSRF = c.operatorCSRF(cookie)
	}
	var buf bytes.Buffer
	if err := c.pages["operator"].ExecuteTemplate(&buf, view, p); err != nil {
		c.opts.Logger.ErrorContext(r.Context(), "console: rendering", "page", "operator", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

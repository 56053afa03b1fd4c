// Package pages renders the few pages the gateway shows a person outside
// the console: a message (a refusal, an error, "signed out"), an action
// with one button (an invitation, joining), the sign-in page and the
// sign-out confirmation. Every page is framed by nobody, cached by
// nobody, and says in words what happened and what to do.
package pages

import (
	"html/template"
	"net/http"
)

const style = `body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1a1a1a}h1{font-size:1.4rem}
a.button,button{display:inline-block;font:inherit;padding:.6rem 1.2rem;border:0;border-radius:.4rem;background:#1d4ed8;color:#fff;text-decoration:none;cursor:pointer}
.muted{color:#555;font-size:.9rem}`

var templates = template.Must(template.New("pages").Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} · Gatehouse</title><style>` + style + `</style></head><body><main>{{end}}
{{define "foot"}}</main></body></html>
{{end}}
{{define "message"}}{{template "head" .Title}}<h1>{{.Title}}</h1><p>{{.Message}}</p>{{with .Hint}}<p>{{.}}</p>{{end}}{{with .RequestID}}<p class="muted">Reference for support: {{.}}</p>{{end}}{{template "foot"}}{{end}}
{{define "action"}}{{template "head" .Title}}<h1>{{.Title}}</h1><p>{{.Message}}</p>
{{if .Post}}<form method="post" action="{{.Action}}"><button type="submit">{{.Button}}</button></form>{{else}}<p><a class="button" href="{{.Action}}">{{.Button}}</a></p>{{end}}{{template "foot"}}{{end}}
{{define "login"}}{{template "head" "Sign in"}}<h1>Sign in</h1>
<p><a class="button" id="sso" href="{{.Start}}">Sign in with {{.Method}}</a></p>
<p id="join">New here? People with an address at {{.Domains}} can <a href="{{.Join}}">create their account</a>.</p>{{template "foot"}}{{end}}
{{define "discover"}}{{template "head" "Sign in"}}<h1>Sign in</h1>
<form method="get" action="{{.Action}}"><p><label for="email">Your work email address</label><br>
<input id="email" name="login_hint" type="email" autocomplete="email" required autofocus value="{{.Email}}"{{if .Problem}} aria-invalid="true" aria-describedby="problem"{{end}}></p>
{{with .Problem}}<p id="problem" role="alert">{{.}}</p>{{end}}<input type="hidden" name="return" value="{{.Return}}"><button type="submit">Continue</button></form>
<p class="muted">You are sent on to your organization's own sign-in.</p>{{template "foot"}}{{end}}
{{define "logout"}}{{template "head" "Sign out"}}<h1>Sign out?</h1>{{with .Notice}}<p role="alert">{{.}}</p>{{end}}
<form method="post" action="{{.Action}}"><input type="hidden" name="csrf" value="{{.CSRF}}"><button type="submit" autofocus>Sign out</button></form>{{template "foot"}}{{end}}
`))

// Message is a page that says what happened (Title, Message) and what to
// do (Hint). RequestID, when set, is shown for support.
type Message struct {
	Title, Message, Hint, RequestID string
}

// Action is a page with one button: a link, or a form that POSTs.
type Action struct {
	Title, Message, Action, Button string
	Post                           bool
}

// Login is the sign-in page: the SSO button and, while self-service is
// open, the join link.
type Login struct {
	Start, Method, Domains, Join string
}

// Discover asks for the email address that says which organization a
// person signs in to; Problem says why the last one did not, keeping
// what they typed.
type Discover struct {
	Action, Email, Return, Problem string
}

// Logout asks for confirmation of a sign-out; its form carries the
// session's CSRF token.
type Logout struct {
	Action, CSRF, Notice string
}

// NoFraming keeps the gateway's own pages out of other sites' frames (a
// framed "Accept" or "Sign in" button could be clicked by a victim).
func NoFraming(w http.ResponseWriter) {
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
}

func write(w http.ResponseWriter, status int, name string, data any) {
	NoFraming(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = templates.ExecuteTemplate(w, name, data)
}

// Show writes a message page.
func Show(w http.ResponseWriter, status int, m Message) { write(w, status, "message", m) }

// ShowAction writes an action page. Its link may carry a secret (an
// invitation's), so no referrer leaves it.
func ShowAction(w http.ResponseWriter, a Action) {
	w.Header().Set("Referrer-Policy", "no-referrer")
	write(w, http.StatusOK, "action", a)
}

// ShowLogin writes the sign-in page.
func ShowLogin(w http.ResponseWriter, l Login) { write(w, http.StatusOK, "login", l) }

// ShowDiscover writes the page that asks which organization to sign in to.
func ShowDiscover(w http.ResponseWriter, status int, d Discover) { write(w, status, "discover", d) }

// ShowLogout writes the sign-out confirmation.
func ShowLogout(w http.ResponseWriter, status int, l Logout) { write(w, status, "logout", l) }

package demo

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// App is the sample upstream: it shows the identity Gatehouse forwarded,
// as any app behind the gateway would read it.
func App(pathPrefix string) http.Handler {
	page := template.Must(template.New("app").Parse(appPage))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var groups []string
		for _, g := range strings.Split(r.Header.Get("X-Gatehouse-Groups"), ",") {
			if name, err := url.PathUnescape(g); err == nil && name != "" {
				groups = append(groups, name)
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(w, map[string]any{
			"Name": r.Header.Get("X-Gatehouse-Name"), "Email": r.Header.Get("X-Gatehouse-Email"),
			"UserID": r.Header.Get("X-Gatehouse-User-Id"), "Role": r.Header.Get("X-Gatehouse-Role"),
			"Pool": r.Header.Get("X-Gatehouse-Pool"), "Groups": groups, "Path": r.URL.RequestURI(),
			"HasAssertion": r.Header.Get("X-Gatehouse-Assertion") != "", "Prefix": pathPrefix,
		})
	})
}

const appPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sample app · Gatehouse demo</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}dt{font-weight:600}dd{margin:0 0 .6rem}</style>
</head><body><main>
<h1>Hello, <span id="name">{{.Name}}</span></h1>
<p>This is the sample app behind Gatehouse. It wrote no SAML code: the gateway signed you in and forwarded who you are.</p>
<dl>
<dt>Email</dt><dd id="email">{{.Email}}</dd>
<dt>User id</dt><dd id="user-id">{{.UserID}}</dd>
<dt>Role / pools</dt><dd id="role">{{.Role}} / {{.Pool}}</dd>
<dt>Groups</dt><dd id="groups">{{range $i, $g := .Groups}}{{if $i}}, {{end}}{{$g}}{{end}}</dd>
<dt>Signed assertion</dt><dd>{{if .HasAssertion}}X-Gatehouse-Assertion present (verify it with {{.Prefix}}/.well-known/jwks.json){{else}}missing{{end}}</dd>
<dt>Page</dt><dd>{{.Path}}</dd>
</dl>
<p><a href="{{.Prefix}}/logout">Sign out</a></p>
</main></body></html>`

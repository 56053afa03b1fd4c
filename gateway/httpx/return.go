package httpx

import (
	"net/url"
	"strings"
)

// SafeReturn keeps a page to go back to after sign-in on this site: only
// a same-origin relative path, else "/".
func SafeReturn(p string) string {
	if p == "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return "/"
	}
	if u, err := url.Parse(p); err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return p
}

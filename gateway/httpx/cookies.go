package httpx

import (
	"net/http"
	"strings"
)

// CookiePrefix starts the name of every cookie the gateway sets (after a
// __Host- or __Secure- prefix): the session, and each sign-in in flight.
const CookiePrefix = "gatehouse_"

// GatewayCookie reports whether a cookie of this name is the gateway's
// own: such a cookie never reaches the app behind it (the session cookie
// is the admin API's credential).
func GatewayCookie(name string) bool {
	if rest, ok := strings.CutPrefix(name, "__Host-"); ok {
		name = rest
	} else if rest, ok := strings.CutPrefix(name, "__Secure-"); ok {
		name = rest
	}
	return strings.HasPrefix(name, CookiePrefix)
}

// StripGatewayCookies removes the gateway's own cookies from the Cookie
// headers of h, keeping every other pair exactly as the browser sent it.
func StripGatewayCookies(h http.Header) {
	values := h["Cookie"]
	if len(values) == 0 {
		return
	}
	kept := make([]string, 0, len(values))
	for _, v := range values {
		if !strings.Contains(v, CookiePrefix) {
			kept = append(kept, v) // the usual case: nothing to take out
			continue
		}
		var b strings.Builder
		for pair := range strings.SplitSeq(v, ";") {
			pair = strings.TrimSpace(pair)
			name, _, _ := strings.Cut(pair, "=")
			if pair == "" || GatewayCookie(strings.TrimSpace(name)) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(pair)
		}
		if b.Len() > 0 {
			kept = append(kept, b.String())
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = kept
}

package pages

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPagesEscapeAndForbidFraming(t *testing.T) {
	for name, render := range map[string]func(w http.ResponseWriter){
		"message": func(w http.ResponseWriter) {
			Show(w, http.StatusForbidden, Message{Title: "No", Message: "<script>alert(1)</script>", RequestID: "req-1"})
		},
		"action": func(w http.ResponseWriter) {
			ShowAction(w, Action{Title: "Join", Message: "<b>x</b>", Action: "javascript:alert(1)", Button: "Go"})
		},
		"login": func(w http.ResponseWriter) {
			ShowLogin(w, Login{Start: "/s", Method: "SAML", Domains: "<i>", Join: "/j"})
		},
		"logout": func(w http.ResponseWriter) {
			ShowLogout(w, http.StatusOK, Logout{Action: "/l", CSRF: `"><x`, Notice: "<b>"})
		},
	} {
		w := httptest.NewRecorder()
		render(w)
		body := w.Body.String()
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<b>") || strings.Contains(body, "<i>") || strings.Contains(body, `"><x`) ||
			strings.Contains(body, `href="javascript:`) {
			t.Errorf("%s: unescaped input: %s", name, body)
		}
		if w.Header().Get("X-Frame-Options") != "DENY" || w.Header().Get("Cache-Control") != "no-store" || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
			t.Errorf("%s: headers %v", name, w.Header())
		}
	}
	w := httptest.NewRecorder()
	Show(w, http.StatusForbidden, Message{Title: "No", Message: "m", RequestID: "req-42"})
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "req-42") {
		t.Fatalf("message: %d %s", w.Code, w.Body)
	}
}

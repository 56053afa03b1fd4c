package httpx

import (
	"net/http"
	"slices"
	"testing"
)

func TestStripGatewayCookies(t *testing.T) {
	cases := []struct {
		name string
		in   []string
		want []string
	}{
		{"none of ours", []string{"app=1; theme=dark"}, []string{"app=1; theme=dark"}},
		{"session among the app's", []string{"app=1; __Host-gatehouse_session=s3cret; theme=dark"}, []string{"app=1; theme=dark"}},
		{"plain session alone", []string{"gatehouse_session=s3cret"}, nil},
		{"sign-in in flight", []string{"gatehouse_saml_request_id-1=1;gatehouse_oidc_state_x=1; a=b"}, []string{"a=b"}},
		{"__Secure- prefix", []string{"__Secure-gatehouse_x=1; a=b"}, []string{"a=b"}},
		{"several headers", []string{"a=1", "gatehouse_session=x", "b=2; gatehouse_session=y"}, []string{"a=1", "b=2"}},
		{"value that mentions us is kept", []string{"pref=gatehouse_session"}, []string{"pref=gatehouse_session"}},
		{"app cookie that merely contains the word", []string{"my_gatehouse_thing=1"}, []string{"my_gatehouse_thing=1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Cookie": slices.Clone(tc.in)}
			StripGatewayCookies(h)
			if got := h["Cookie"]; !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// The gateway's own cookie names all fall under GatewayCookie.
func TestGatewayCookieNames(t *testing.T) {
	for _, name := range []string{"__Host-gatehouse_session", "gatehouse_session", "gatehouse_saml_request_abc", "gatehouse_oidc_state_abc"} {
		if !GatewayCookie(name) {
			t.Errorf("%s is not recognized", name)
		}
	}
	for _, name := range []string{"session", "app_gatehouse_", "__Host-app"} {
		if GatewayCookie(name) {
			t.Errorf("%s taken for the gateway's", name)
		}
	}
}

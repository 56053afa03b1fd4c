package login

import "testing"

func TestIntentCheck(t *testing.T) {
	for _, tc := range []struct {
		in Intent
		ok bool
	}{
		{Plain("/reports"), true},
		{Intent{Kind: Join}, true},
		{Intent{Kind: AcceptInvitation, Invitation: "tok"}, true},
		{Intent{Kind: AcceptInvitation}, false},
		{Intent{Kind: TestSignIn, Manager: "u1"}, true},
		{Intent{Kind: TestSignIn}, false},
		{Intent{Kind: SetupTest, Setup: "l1"}, true},
		{Intent{Kind: SetupTest}, false},
		{Intent{}, false},
		{Intent{Kind: "admin"}, false},
	} {
		if err := tc.in.Check(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.in, err)
		}
	}
	for in, want := range map[string]string{"/reports?a=1": "/reports?a=1", "https://evil.example/": "/", "//evil.example": "/", "": "/"} {
		if got := Plain(in).Return; got != want {
			t.Errorf("Plain(%q).Return = %q, want %q", in, got, want)
		}
	}
}

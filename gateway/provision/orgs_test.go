package provision

import "testing"

func TestNormalizeDomain(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"acme.com", "acme.com"},
		{" Acme.COM. ", "acme.com"},
		{"bücher.de", "xn--bcher-kva.de"},
		{"XN--BCHER-KVA.de", "xn--bcher-kva.de"},
		{"eu.acme.co.uk", "eu.acme.co.uk"},
		{"com", ""},
		{"1.2.3.4", ""},
		{"a..b", ""},
		{"-x.com", ""},
		{"x_y.com", ""},
		{"exa mple.com", ""},
		{"acme.com/evil", ""},
		{"", ""},
	} {
		got, err := NormalizeDomain(tc.in)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

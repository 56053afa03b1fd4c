package fold

import (
	"testing"
	"unicode/utf8"
)

func TestKey(t *testing.T) {
	same := [][2]string{
		{"ada@example.com", "ADA@Example.COM"},
		{"straße", "STRASSE"},
		{"Straße@example.com", "strasse@EXAMPLE.com"},
		{"ﬀ", "ff"},
		{"caf\u00e9", "cafe\u0301"}, // NFC and NFD
		{"CAF\u00c9", "cafe\u0301"},
		{"ＡＤＡ", "ada"}, // full-width
		{"ΣΊΣΥΦΟΣ", "σίσυφος"},
		{"Engineering Team", "engineering team"},
	}
	for _, p := range same {
		if Key(p[0]) != Key(p[1]) || !Equal(p[0], p[1]) {
			t.Errorf("%q and %q must be one name: %q %q", p[0], p[1], Key(p[0]), Key(p[1]))
		}
	}
	different := [][2]string{
		{"ada", "adb"},
		{"ada", "ada "},
		{"a.b", "ab"},
		{"café", "cafe"},
	}
	for _, p := range different {
		if Key(p[0]) == Key(p[1]) {
			t.Errorf("%q and %q must stay different names", p[0], p[1])
		}
	}
	for _, s := range []string{"", "\x07bell", "\U000e0001tag", "\u0378unassigned", "mixed עברית 123"} {
		k := Key(s)
		if !utf8.ValidString(k) || Key(k) != k {
			t.Errorf("Key(%q) = %q: keys must be valid and stable (Key(Key(s)) == Key(s))", s, k)
		}
	}
}

func FuzzKeyIsStable(f *testing.F) {
	for _, s := range []string{"straße", "ﬀ", "cafe\u0301", "ＡＤＡ", "İstanbul"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		if k := Key(s); Key(k) != k {
			t.Fatalf("Key(Key(%q)) = %q, Key = %q", s, Key(k), k)
		}
	})
}

func BenchmarkKey(b *testing.B) {
	for name, s := range map[string]string{"ascii": "Ada.Lovelace@Example.com", "unicode": "Zoë.Straße@Example.com"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				Key(s)
			}
		})
	}
}

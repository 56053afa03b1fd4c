package scim

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain-id-123", `W/"7"`, "a\\b", "<tag>&", "line\nbreak", "ünïcode", "\u2028", "\x00"} {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestSpliceResource(t *testing.T) {
	meta := metaJSON{ResourceType: "User", Created: "c", LastModified: "m", Location: "https://x/Users/1", Version: `W/"1"`}
	cases := []struct {
		name   string
		stored string
		extra  map[string]any
		want   string
	}{
		{"document members follow", `{"userName":"a","active":true}`, nil,
			`{"id":"1","schemas":["s"],"meta":{"resourceType":"User","created":"c","lastModified":"m","location":"https://x/Users/1","version":"W/\"1\""},"userName":"a","active":true}`},
		{"empty document", `{}`, nil,
			`{"id":"1","schemas":["s"],"meta":{"resourceType":"User","created":"c","lastModified":"m","location":"https://x/Users/1","version":"W/\"1\""}}`},
		{"extra attributes", `{"userName":"a"}`, map[string]any{"groups": []any{map[string]any{"value": "g"}}},
			`{"id":"1","schemas":["s"],"meta":{"resourceType":"User","created":"c","lastModified":"m","location":"https://x/Users/1","version":"W/\"1\""},"groups":[{"value":"g"}],"userName":"a"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := spliceResource([]byte(tc.stored), "1", []string{"s"}, meta, tc.extra)
			if err != nil {
				t.Fatal(err)
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("not JSON: %s", got)
			}
			_ = json.Unmarshal([]byte(tc.want), &w)
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

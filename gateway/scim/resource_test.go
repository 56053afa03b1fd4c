package scim

import (
	"net/http/httptest"
	"reflect"
	"testing"
)

func TestIfMatch(t *testing.T) {
	none := ^uint64(0)
	cases := map[string]uint64{"": 0, "*": 0, `W/"3"`: 3, `"4"`: 4, ` W/"5" `: 5, `W/"x", W/"6"`: 6, `W/"abc"`: none, `W/"0"`: none}
	for h, want := range cases {
		r := httptest.NewRequest("PATCH", "/v2/Users/1", nil)
		if h != "" {
			r.Header.Set("If-Match", h)
		}
		if got := ifMatch(r); got != want {
			t.Errorf("If-Match %q = %d, want %d", h, got, want)
		}
	}
}

func TestProjection(t *testing.T) {
	doc := func() map[string]any {
		return map[string]any{"userName": "a", "name": map[string]any{"givenName": "A", "familyName": "B"}, "emails": []any{map[string]any{"value": "x", "type": "work"}}, "title": "T"}
	}
	cases := []struct {
		name, include, exclude string
		want                   map[string]any
	}{
		{"none", "", "", doc()},
		{"include top-level", "userName,title", "", map[string]any{"userName": "a", "title": "T"}},
		{"include sub-attribute", "name.givenName", "", map[string]any{"name": map[string]any{"givenName": "A"}}},
		{"include sub of multi-valued", "emails.value", "", map[string]any{"emails": []any{map[string]any{"value": "x"}}}},
		{"URN-prefixed include", "urn:ietf:params:scim:schemas:core:2.0:User:userName", "", map[string]any{"userName": "a"}},
		{"case-insensitive", "USERNAME", "", map[string]any{"userName": "a"}},
		{"exclude", "", "emails,name", map[string]any{"userName": "a", "title": "T"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := projection{include: attrList(tc.include, userSchemaURN), exclude: attrList(tc.exclude, userSchemaURN)}
			if got := p.apply(doc()); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

package query

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"

	scimfilter "github.com/elimity-com/scim/filter"
	"github.com/scim2/filter-parser/v2"

	"github.com/gatehouse-id/gatehouse/gateway"
)

func userResource() Resource { return UserResource() }

func TestNormalizeFilter(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"valid unchanged", `userName eq "ada@example.com"`, `userName eq "ada@example.com"`},
		{"ALL-CAPS value unchanged", `userName eq "ADA@EXAMPLE.COM"`, `userName eq "ADA@EXAMPLE.COM"`},
		{"percent inside quoted value unchanged", `userName eq "100%25sure"`, `userName eq "100%25sure"`},
		{"entra double-encoded", url.QueryEscape(`userName eq "a@b.c"`), `userName eq "a@b.c"`},
		{"entra double-encoded with %20", `userName%20eq%20%22a%40b.c%22`, `userName eq "a@b.c"`},
		{"entra email sub-attribute after value filter", `emails[type eq "work"].value eq "x@y.z"`, `emails[type eq "work" and value eq "x@y.z"]`},
		{"sub-attribute pr", `emails[type eq "work"].value pr`, `emails[type eq "work" and value pr]`},
		{"or inside hoisted filter is left alone", `emails[type eq "work" or type eq "home"].value eq "x"`, `emails[type eq "work" or type eq "home"].value eq "x"`},
		{"unquoted externalId", `externalId eq 5a3b-77`, `externalId eq "5a3b-77"`},
		{"literals stay bare", `active eq true and x eq 5 and y eq null`, `active eq true and x eq 5 and y eq null`},
		{"combined and", `userName eq "a" and externalId eq abc`, `userName eq "a" and externalId eq "abc"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := NormalizeFilter(tc.in)
			if got != tc.want {
				t.Fatalf("NormalizeFilter(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if _, err := filter.ParseFilter([]byte(got)); err != nil && tc.in != tc.want {
				t.Fatalf("normalized filter does not parse: %v", err)
			}
		})
	}
}

// TestIdPFiltersParseAndValidate: every filter Okta and Entra send, after
// normalisation, parses and passes the library's schema validation.
func TestIdPFiltersParseAndValidate(t *testing.T) {
	res := userResource()
	for _, f := range []string{
		`userName eq "ada@example.com"`,
		`userName eq "ADA@EXAMPLE.COM"`,
		`externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`,
		`externalId eq 0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef`,
		`emails[type eq "work"].value eq "a@b.c"`,
		`id eq "x"`,
		`meta.lastModified gt "2011-05-13T04:42:34Z"`,
		url.QueryEscape(`userName eq "a@b.c"`),
	} {
		n := NormalizeFilter(f)
		v, err := scimfilter.NewValidator(n, res.Core, res.Extensions...)
		if err != nil {
			t.Errorf("%q → %q does not parse: %v", f, n, err)
			continue
		}
		if err := v.Validate(); err != nil {
			t.Errorf("%q → %q fails library validation: %v", f, n, err)
		}
	}
}

func parse(t *testing.T, f string) filter.Expression {
	t.Helper()
	e, err := filter.ParseFilter([]byte(f))
	if err != nil {
		t.Fatalf("parse %q: %v", f, err)
	}
	return e
}

func TestPlan(t *testing.T) {
	cases := []struct {
		name, filter string
		kind         Kind
		want         QueryPlan
	}{
		{"userName", `userName eq "Ada@X"`, Users, QueryPlan{Index: string(gateway.UserByUserName), Value: "Ada@X", Exact: true}},
		{"URN-prefixed userName", `urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a"`, Users, QueryPlan{Index: string(gateway.UserByUserName), Value: "a", Exact: true}},
		{"externalId", `externalId eq "e1"`, Users, QueryPlan{Index: string(gateway.UserByExternalID), Value: "e1", Exact: true}},
		{"id", `id eq "i1"`, Users, QueryPlan{Index: IndexID, Value: "i1", Exact: true}},
		{"emails.value lower-cased", `emails.value eq "A@B.C"`, Users, QueryPlan{Index: string(gateway.UserByEmail), Value: "a@b.c", Exact: true}},
		{"emails value path", `emails[type eq "work" and value eq "a@b.c"]`, Users, QueryPlan{Index: string(gateway.UserByEmail), Value: "a@b.c"}},
		{"and picks the most selective", `emails.value eq "a@b.c" and userName eq "u"`, Users, QueryPlan{Index: string(gateway.UserByUserName), Value: "u"}},
		{"and with one indexable side", `title pr and externalId eq "e"`, Users, QueryPlan{Index: string(gateway.UserByExternalID), Value: "e"}},
		{"group displayName", `displayName eq "Eng"`, Groups, QueryPlan{Index: string(gateway.GroupByDisplayName), Value: "Eng", Exact: true}},
		{"group externalId", `externalId eq "g"`, Groups, QueryPlan{Index: string(gateway.GroupByExternalID), Value: "g", Exact: true}},
		{"group member value", `members.value eq "u1"`, Groups, QueryPlan{Index: string(gateway.GroupByMember), Value: "u1", Exact: true}},
		{"group member value path", `members[value eq "u1"]`, Groups, QueryPlan{Index: string(gateway.GroupByMember), Value: "u1"}},
		{"or scans", `userName eq "a" or userName eq "b"`, Users, QueryPlan{}},
		{"not scans", `not (userName eq "a")`, Users, QueryPlan{}},
		{"sw scans", `userName sw "a"`, Users, QueryPlan{}},
		{"displayName on users scans", `displayName eq "A"`, Users, QueryPlan{}},
		{"extension URN is not core", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1"`, Users, QueryPlan{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Plan(parse(t, tc.filter), tc.kind); got != tc.want {
				t.Fatalf("Plan = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func sampleUser() map[string]any {
	var doc map[string]any
	_ = json.Unmarshal([]byte(`{
		"id": "u-1", "externalId": "Ext-1", "userName": "Ada@Example.com", "active": true, "title": "",
		"name": {"givenName": "Ada", "familyName": "Lovelace"},
		"emails": [{"value": "ada@example.com", "type": "work", "primary": true}, {"value": "ada@home.org", "type": "home"}],
		"meta": {"resourceType": "User", "created": "2024-01-01T10:00:00Z", "lastModified": "2024-06-01T10:00:00Z"},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D", "employeeNumber": "701984", "manager": {"value": "m-1"}}
	}`), &doc)
	return doc
}

func TestMatch(t *testing.T) {
	res := userResource()
	doc := sampleUser()
	cases := []struct {
		filter string
		want   bool
	}{
		{`userName eq "ada@example.com"`, true}, // caseExact=false
		{`userName eq "ADA@EXAMPLE.COM"`, true},
		{`id eq "U-1"`, false}, // caseExact=true
		{`id eq "u-1"`, true},
		{`externalId eq "ext-1"`, false}, // caseExact
		{`userName ne "bob"`, true},
		{`userName ne "ada@example.com"`, false},
		{`nickName ne "x"`, true}, // absent is ne
		{`userName co "EXAMPLE"`, true},
		{`userName sw "ada"`, true},
		{`userName ew ".com"`, true},
		{`userName ew ".org"`, false},
		{`name.familyName gt "K"`, true},
		{`name.familyName lt "K"`, false},
		{`name.familyName ge "Lovelace"`, true},
		{`name.familyName le "Lovelace"`, true},
		{`active eq true`, true},
		{`active eq false`, false},
		{`title pr`, false}, // empty string is not present
		{`emails pr`, true},
		{`nickName pr`, false},
		{`emails.value eq "ada@home.org"`, true}, // any element
		{`emails[type eq "work" and value co "example"]`, true},
		{`emails[type eq "home" and value co "example"]`, false},
		{`emails[not (type eq "work")]`, true},
		{`emails eq "ada@home.org"`, true}, // complex without sub compares value
		{`meta.lastModified gt "2024-03-01T00:00:00Z"`, true},
		{`meta.created gt "2024-03-01T00:00:00Z"`, false},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "r&d"`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m-1"`, true},
		{`userName eq "x" or active eq true`, true},
		{`userName eq "x" and active eq true`, false},
		{`not (userName eq "x")`, true},
		{`nickName eq null`, true},
		{`userName eq null`, false},
	}
	for _, tc := range cases {
		t.Run(tc.filter, func(t *testing.T) {
			got, err := Match(parse(t, tc.filter), doc, res)
			if err != nil || got != tc.want {
				t.Fatalf("Match = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{`active gt true`, `userName gt null`} {
		if _, err := Match(parse(t, bad), doc, res); err == nil {
			t.Errorf("%s: want a not-comparable error", bad)
		}
	}
}

func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		`userName eq "a"`, `emails[type eq "work"].value eq "x"`, `externalId eq abc`, `not (a pr) or b gt 5`,
		`userName%20eq%20%22a%22`, `emails[type eq "work" or x eq "y"].value pr`, `a[b[c eq 1]].d eq 2`, `]].x eq`, `"`,
	} {
		f.Add(s)
	}
	res := userResource()
	doc := sampleUser()
	f.Fuzz(func(t *testing.T, raw string) {
		n := NormalizeFilter(raw)
		e, err := filter.ParseFilter([]byte(n))
		if err != nil {
			return
		}
		_ = Plan(e, Users)
		_ = Plan(e, Groups)
		_, _ = Match(e, doc, res)
		_ = References(e, "members")
	})
}

// TestParseFastPathAgreesWithParser: the fast path builds exactly the AST
// the general parser builds, and declines what it does not handle.
func TestParseFastPathAgreesWithParser(t *testing.T) {
	for _, f := range []string{
		`userName eq "ada@example.com"`, `userName EQ "A"`, `emails.value eq "a@b.c"`, `title pr`,
		`displayName sw "Eng"`, `externalId eq ""`,
	} {
		fast, ok := parseSimple(f)
		if !ok {
			t.Errorf("%s: fast path declined", f)
			continue
		}
		slow, err := filter.ParseFilter([]byte(f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if fmt.Sprint(fast) != fmt.Sprint(slow) || !reflect.DeepEqual(fast, slow) {
			t.Errorf("%s: fast %#v, parser %#v", f, fast, slow)
		}
	}
	for _, f := range []string{`userName eq "a\"b"`, `active eq true`, `a eq "x" and b eq "y"`, `emails[type eq "work"]`, `userName eq`, `1abc eq "x"`, `userName xx "a"`, `urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"`} {
		if _, ok := parseSimple(f); ok {
			t.Errorf("%s: fast path must decline", f)
		}
	}
}

func FuzzParseAgreement(f *testing.F) {
	f.Add(`userName eq "a"`)
	f.Add(`emails.value co "x"`)
	f.Fuzz(func(t *testing.T, s string) {
		fast, ok := parseSimple(s)
		if !ok {
			return
		}
		slow, err := filter.ParseFilter([]byte(s))
		if err != nil {
			t.Fatalf("fast path accepted %q that the parser rejects: %v", s, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast %#v, parser %#v", s, fast, slow)
		}
	})
}

func TestParsePathAgreesWithParser(t *testing.T) {
	for _, p := range []string{"active", "name.givenName", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "urn:ietf:params:scim:schemas:core:2.0:User:userName",
		`emails[type eq "work"].value`, `members[value eq "x"]`} {
		got, err := ParsePath(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		want, err := filter.ParsePath([]byte(p))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %#v, want %#v", p, got, want)
		}
	}
}

func FuzzParsePathAgreement(f *testing.F) {
	f.Add("name.givenName")
	f.Add("urn:a:b:c")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParsePath(s)
		want, werr := filter.ParsePath([]byte(s))
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: fast err %v, parser err %v", s, err, werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %#v, want %#v", s, got, want)
		}
	})
}

func TestCheckLimits(t *testing.T) {
	cases := []struct {
		name, filter string
		ok           bool
	}{
		{"okta lookup", `userName eq "ada@example.com"`, true},
		{"entra probe", `externalId eq "0c8f"`, true},
		{"operators inside a string do not count", `displayName eq "` + strings.Repeat("and or not ((( ", 100) + `"`, true},
		{"attribute names containing or", `organization eq "x" and orders pr`, true},
		{"nested within limit", strings.Repeat("(", MaxFilterDepth) + `userName eq "a"` + strings.Repeat(")", MaxFilterDepth), true},
		{"too deep", strings.Repeat("(", MaxFilterDepth+1) + `userName eq "a"` + strings.Repeat(")", MaxFilterDepth+1), false},
		{"deep brackets", `emails` + strings.Repeat("[", 40) + `type eq "w"`, false},
		{"300k parens", strings.Repeat("(", 300000), false},
		{"too long", `userName eq "` + strings.Repeat("a", MaxFilterLength) + `"`, false},
		{"too many terms", strings.Repeat(`userName eq "a" or `, MaxFilterTerms+1) + `userName eq "b"`, false},
		{"many not", strings.Repeat("not (", 10) + `active eq true` + strings.Repeat(")", 10), true},
		{"escaped quote in string", `displayName eq "a\"((((((((((((((((((((((("`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckLimits(tc.filter); (err == nil) != tc.ok {
				t.Fatalf("CheckLimits = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

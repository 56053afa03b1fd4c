package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-id/gatehouse/adapters/rest"
	"github.com/gatehouse-id/gatehouse/adapters/sqldb"
	"github.com/gatehouse-id/gatehouse/conformance/adaptertest"
	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
)

// userAPI is a small real app API, written for the test: it names its
// records with ids of its own, answers 409 for a taken userName and 404
// for what it does not have, and wants its credential.
type userAPI struct {
	mu      sync.Mutex
	next    int
	users   map[string]map[string]any // app id → record
	groups  map[string]map[string]any
	members map[string]map[string]bool // group app id → user app ids
	calls   []string
	srv     *httptest.Server
}

func newUserAPI(t *testing.T) *userAPI {
	api := &userAPI{users: map[string]map[string]any{}, groups: map[string]map[string]any{}, members: map[string]map[string]bool{}}
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if v != nil {
			_ = json.NewEncoder(w).Encode(v)
		}
	}
	decode := func(r *http.Request) map[string]any {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		return m
	}
	mux.HandleFunc("POST /api/users", func(w http.ResponseWriter, r *http.Request) {
		m := decode(r)
		for _, u := range api.users {
			if u["userName"] == m["userName"] {
				reply(w, http.StatusConflict, map[string]string{"error": "userName taken"})
				return
			}
		}
		api.next++
		id := fmt.Sprintf("app-u-%d", api.next)
		api.users[id] = m
		reply(w, http.StatusCreated, map[string]any{"data": map[string]any{"id": id}})
	})
	mux.HandleFunc("GET /api/users", func(w http.ResponseWriter, r *http.Request) {
		var found []map[string]any
		for id, u := range api.users {
			if u["userName"] == r.URL.Query().Get("userName") || u["externalId"] == r.URL.Query().Get("externalId") {
				found = append(found, map[string]any{"id": id})
			}
		}
		reply(w, http.StatusOK, map[string]any{"users": found})
	})
	mux.HandleFunc("PUT /api/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		u, ok := api.users[r.PathValue("id")]
		if !ok {
			reply(w, http.StatusNotFound, nil)
			return
		}
		for k, v := range decode(r) {
			u[k] = v
		}
		reply(w, http.StatusOK, u)
	})
	mux.HandleFunc("DELETE /api/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := api.users[r.PathValue("id")]; !ok {
			reply(w, http.StatusNotFound, nil)
			return
		}
		delete(api.users, r.PathValue("id"))
		for _, ms := range api.members {
			delete(ms, r.PathValue("id"))
		}
		reply(w, http.StatusNoContent, nil)
	})
	mux.HandleFunc("POST /api/groups", func(w http.ResponseWriter, r *http.Request) {
		api.next++
		id := fmt.Sprintf("app-g-%d", api.next)
		api.groups[id] = decode(r)
		api.members[id] = map[string]bool{}
		reply(w, http.StatusCreated, map[string]any{"data": map[string]any{"id": id}})
	})
	mux.HandleFunc("PUT /api/groups/{id}", func(w http.ResponseWriter, r *http.Request) {
		g, ok := api.groups[r.PathValue("id")]
		if !ok {
			reply(w, http.StatusNotFound, nil)
			return
		}
		for k, v := range decode(r) {
			g[k] = v
		}
		reply(w, http.StatusOK, g)
	})
	mux.HandleFunc("DELETE /api/groups/{id}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := api.groups[r.PathValue("id")]; !ok {
			reply(w, http.StatusNotFound, nil)
			return
		}
		delete(api.groups, r.PathValue("id"))
		delete(api.members, r.PathValue("id"))
		reply(w, http.StatusNoContent, nil)
	})
	mux.HandleFunc("POST /api/groups/{id}/members", func(w http.ResponseWriter, r *http.Request) {
		ms, ok := api.members[r.PathValue("id")]
		uid, _ := decode(r)["userId"].(string)
		if _, known := api.users[uid]; !ok || !known {
			reply(w, http.StatusNotFound, nil)
			return
		}
		if ms[uid] {
			reply(w, http.StatusConflict, nil)
			return
		}
		ms[uid] = true
		reply(w, http.StatusNoContent, nil)
	})
	mux.HandleFunc("DELETE /api/groups/{id}/members/{uid}", func(w http.ResponseWriter, r *http.Request) {
		ms, ok := api.members[r.PathValue("id")]
		if !ok || !ms[r.PathValue("uid")] {
			reply(w, http.StatusNotFound, nil)
			return
		}
		delete(ms, r.PathValue("uid"))
		reply(w, http.StatusNoContent, nil)
	})
	api.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer app-api-token" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		api.mu.Lock()
		defer api.mu.Unlock()
		api.calls = append(api.calls, r.Method+" "+r.URL.RequestURI())
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(api.srv.Close)
	return api
}

// snapshot reads the app's records back in the gateway's ids (the app
// keeps them as externalId).
func (api *userAPI) snapshot() adaptertest.Snapshot {
	api.mu.Lock()
	defer api.mu.Unlock()
	s := adaptertest.Snapshot{Users: map[string]adaptertest.User{}, Groups: map[string]adaptertest.Group{}}
	gw := map[string]string{}
	for appID, u := range api.users {
		id, _ := u["externalId"].(string)
		gw[appID] = id
		name, _ := u["userName"].(string)
		email, _ := u["email"].(string)
		display, _ := u["displayName"].(string)
		active, _ := u["active"].(bool)
		s.Users[id] = adaptertest.User{UserName: name, Email: email, DisplayName: display, Active: active}
	}
	for appID, g := range api.groups {
		id, _ := g["externalId"].(string)
		name, _ := g["name"].(string)
		var members []string
		for uid := range api.members[appID] {
			members = append(members, gw[uid])
		}
		sort.Strings(members)
		s.Groups[id] = adaptertest.Group{DisplayName: name, Members: members}
	}
	return s
}

func restConfig(base string) *rest.Config {
	userBody := map[string]any{"externalId": ":user.id", "userName": ":user.userName", "email": ":user.email",
		"displayName": ":user.displayName", "active": ":user.active"}
	put := rest.Calls{{Method: "PUT", Path: "/users/{app_id}", Body: userBody}}
	addMember := rest.Operation{Method: "POST", Path: "/groups/{app_id}/members", Body: map[string]any{"userId": ":member.app_id"}, PerMember: true}
	c := &rest.Config{BaseURL: base + "/api", Operations: map[string]rest.Calls{
		"user.created":     {{Method: "POST", Path: "/users", Body: userBody, IDField: "data.id"}},
		"user.updated":     put,
		"user.deactivated": put,
		"user.reactivated": put,
		"user.deleted":     {{Method: "DELETE", Path: "/users/{app_id}"}},
		"group.created": {{Method: "POST", Path: "/groups", Body: map[string]any{"externalId": ":group.id", "name": ":group.displayName"}, IDField: "data.id"},
			addMember},
		"group.updated":         {{Method: "PUT", Path: "/groups/{app_id}", Body: map[string]any{"name": ":group.displayName"}}},
		"group.deleted":         {{Method: "DELETE", Path: "/groups/{app_id}"}},
		"group.members_added":   {addMember},
		"group.members_removed": {{Method: "DELETE", Path: "/groups/{app_id}/members/{member.app_id}", PerMember: true}},
	},
		UserLookup: &rest.Lookup{Path: "/users?userName={user.userName}", IDField: "users.0.id"},
	}
	c.Auth.Header, c.Auth.Value = "Authorization", gateway.NewSecret("Bearer app-api-token")
	return c
}

func openREST(t *testing.T, cfg *rest.Config, store gateway.Store) gateway.Adapter {
	t.Helper()
	if ps := cfg.Validate(); len(ps) > 0 {
		t.Fatalf("config: %v", ps)
	}
	a, err := cfg.Open(context.Background(), gateway.AdapterEnv{ID: "app-api", Store: store})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func restStore(t *testing.T) gateway.Store {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "rest.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestAdapterConformanceREST(t *testing.T) {
	api := newUserAPI(t)
	store := restStore(t)
	adaptertest.Run(t, adaptertest.Harness{
		Open:       func(t *testing.T) gateway.Adapter { return openREST(t, restConfig(api.srv.URL), store) },
		Downstream: func(t *testing.T) adaptertest.Snapshot { return api.snapshot() },
	})
	// Later calls used the app's own ids, kept from the creates.
	api.mu.Lock()
	defer api.mu.Unlock()
	joined := strings.Join(api.calls, "\n")
	if !strings.Contains(joined, "PUT /api/users/app-u-") || strings.Contains(joined, "/api/users/01a2u") {
		t.Fatalf("calls did not use the app's ids:\n%s", joined)
	}
}

// TestRESTLinksAndForgives: a create that answers 409 links the app's
// existing user through the lookup; a delete of what the app no longer
// has succeeds; a refusal is permanent; values in paths are escaped.
func TestRESTLinksAndForgives(t *testing.T) {
	api := newUserAPI(t)
	store := restStore(t)
	api.users["app-u-existing"] = map[string]any{"userName": "ada@example.com", "externalId": "u-ada", "active": true}
	a := openREST(t, restConfig(api.srv.URL), store)
	ev := func(op gateway.Op, id, seq string) gateway.WireEvent {
		return gateway.WireEvent{Contract: gateway.EventContract, Org: gateway.DefaultOrg, ID: seq, Type: op,
			User: &gateway.WireUser{ID: id, UserName: "ada@example.com", Email: "ada@example.com", Active: true, DisplayName: "Ada & Co/?#", Version: 1}}
	}
	if err := a.Deliver(context.Background(), ev(gateway.OpUserCreated, "u-ada", "e1")); err != nil {
		t.Fatalf("409 on create must link: %v", err)
	}
	if got, _ := store.IDMaps().Get(context.Background(), gateway.DefaultOrg, "app-api", "user:u-ada"); got != "app-u-existing" {
		t.Fatalf("linked id = %q", got)
	}
	if err := a.Deliver(context.Background(), ev(gateway.OpUserUpdated, "u-ada", "e2")); err != nil {
		t.Fatal(err)
	}
	if api.users["app-u-existing"]["displayName"] != "Ada & Co/?#" {
		t.Fatalf("update: %v", api.users["app-u-existing"])
	}
	delete(api.users, "app-u-existing") // gone from the app already
	if err := a.Deliver(context.Background(), ev(gateway.OpUserDeleted, "u-ada", "e3")); err != nil {
		t.Fatalf("404 on delete is success: %v", err)
	}
	// A user the app never had and the lookup cannot find.
	if err := a.Deliver(context.Background(), ev(gateway.OpUserUpdated, "u-ghost", "e4")); !errors.Is(err, gateway.ErrPermanent) {
		t.Fatalf("update of an unknown user: %v, want permanent", err)
	}
	// The app refuses the credential: retried (an operator fixes it), the
	// attempt limit still applying.
	bad := restConfig(api.srv.URL)
	bad.Auth.Value = gateway.NewSecret("Bearer wrong")
	if err := openREST(t, bad, store).Deliver(context.Background(), ev(gateway.OpUserCreated, "u-new", "e5")); err == nil || errors.Is(err, gateway.ErrPermanent) {
		t.Fatalf("401: %v, want a retryable error", err)
	}
	// A member added before its own creation reached the app (another
	// lane): retried, not a dead letter.
	early := gateway.WireEvent{Contract: gateway.EventContract, Org: gateway.DefaultOrg, ID: "e6", Type: gateway.OpGroupMembersAdded,
		Group: &gateway.WireGroup{ID: "g-1", DisplayName: "Eng", Version: 1}, MemberIDs: []string{"u-not-yet"}}
	if err := store.IDMaps().Put(context.Background(), gateway.DefaultOrg, "app-api", "group:g-1", "app-g-1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Deliver(context.Background(), early); err == nil || errors.Is(err, gateway.ErrPermanent) {
		t.Fatalf("a member not created yet: %v, want a retryable error", err)
	}
	// Values cannot climb out of the configured path.
	dots := ev(gateway.OpUserCreated, "u-dots", "e7")
	dots.User.UserName = ".."
	lookupCfg := restConfig(api.srv.URL)
	lookupCfg.Operations["user.created"] = rest.Calls{{Method: "POST", Path: "/users/{user.userName}/x", Body: map[string]any{"a": 1}}}
	_ = openREST(t, lookupCfg, store).Deliver(context.Background(), dots)
	api.mu.Lock()
	last := api.calls[len(api.calls)-1]
	api.mu.Unlock()
	if !strings.Contains(last, "/api/users/%2E%2E/x") {
		t.Fatalf("a '..' value was not escaped: %s", last)
	}
}

func TestRESTConfigProblems(t *testing.T) {
	c := &rest.Config{BaseURL: "ftp://x", Operations: map[string]rest.Calls{
		"user.created": {{Method: "GET", Path: "/users/{app_id}"}},
		"user.updated": {{Method: "PUT", Path: "users", Body: map[string]any{"x": ":user.shoeSize.left", "y": ":member.id"}}},
		"user.melted":  {{Method: "PUT", Path: "/x"}},
	}}
	c.Auth.Header = "Authorization"
	var paths []string
	for _, p := range c.Validate() {
		paths = append(paths, p.Path+": "+p.Message)
	}
	joined := strings.Join(paths, "\n")
	for _, want := range []string{"base_url", "auth:", "operations.user.created[0].method", "operations.user.created[0]: cannot use app_id",
		"operations.user.melted", "operations.user.updated[0].path", "{member.id} needs per_member"} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems lack %q:\n%s", want, joined)
		}
	}
}

// TestRESTAndSQLTakeTheSameEvents: the event types and field names
// adapters accept have one owner (gateway.Op.Known, gateway.WireField):
// both adapters accept invitation.created and its fields, and refuse an
// unknown type or field alike; a REST call for an invitation reaches the
// app with its email and link.
func TestRESTAndSQLTakeTheSameEvents(t *testing.T) {
	api := newUserAPI(t)
	var got map[string]any
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/invitations", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(http.StatusNoContent)
	})
	app := httptest.NewServer(mux)
	t.Cleanup(app.Close)
	cfg := restConfig(api.srv.URL)
	cfg.BaseURL = app.URL + "/api"
	cfg.Operations = map[string]rest.Calls{"invitation.created": {{Method: "POST", Path: "/invitations",
		Body: map[string]any{"email": ":invitation.email", "link": ":invitation.link", "by": ":requestId"}}}}
	if ps := cfg.Validate(); len(ps) != 0 {
		t.Fatalf("an invitation call refused: %v", ps)
	}
	inv := gateway.WireEvent{Contract: gateway.EventContract, Org: gateway.DefaultOrg, ID: "e1", Type: gateway.OpInvitationCreated, RequestID: "r1",
		Invitation: &gateway.WireInvitation{ID: "i1", Email: "bob@example.com", Link: "https://app.example/gatehouse/invite/tok"}}
	if err := openREST(t, cfg, restStore(t)).Deliver(context.Background(), inv); err != nil {
		t.Fatalf("deliver invitation.created: %v", err)
	}
	if got["email"] != "bob@example.com" || got["link"] != "https://app.example/gatehouse/invite/tok" || got["by"] != "r1" {
		t.Fatalf("the app received %v", got)
	}
	// The same names, the same verdicts, in both adapters.
	for _, tc := range []struct {
		typ, field string
		ok         bool
	}{
		{"invitation.created", "invitation.link", true},
		{"user.created", "user.attributes.name.givenName", true},
		{"user.created", "user.shoeSize", false},
		{"user.melted", "user.email", false},
	} {
		r := &rest.Config{BaseURL: "https://app.example/api", Operations: map[string]rest.Calls{tc.typ: {{Method: "POST", Path: "/x",
			Body: map[string]any{"v": ":" + tc.field}}}}}
		r.Auth.Header, r.Auth.Value = "Authorization", gateway.NewSecret("Bearer x")
		s := &sqldb.Config{DSN: gateway.NewSecret("postgres://x"), Statements: map[string][]string{tc.typ: {"INSERT INTO t (v) VALUES (:" + tc.field + ")"}}}
		if restOK, sqlOK := len(r.Validate()) == 0, len(s.Validate()) == 0; restOK != tc.ok || sqlOK != tc.ok {
			t.Errorf("%s with %s: rest ok=%v (%v), sqldb ok=%v (%v), want %v", tc.typ, tc.field, restOK, r.Validate(), sqlOK, s.Validate(), tc.ok)
		}
	}
}

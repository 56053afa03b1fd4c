package scim

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/metrics"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
)

// cancelAfterCreate is a store whose user writes commit and then cancel
// the request's context, as a client that hangs up right after sending its
// request does.
type cancelAfterCreate struct {
	gateway.Store
	cancel context.CancelFunc
}

func (c cancelAfterCreate) Users() gateway.UserStore {
	return cancelingUsers{c.Store.Users(), c.cancel}
}

type cancelingUsers struct {
	gateway.UserStore
	cancel context.CancelFunc
}

func (c cancelingUsers) Update(ctx context.Context, org gateway.OrgID, id string, ifVersion uint64, fn gateway.UserUpdateFunc) (*gateway.User, error) {
	u, err := c.UserStore.Update(ctx, org, id, ifVersion, fn)
	c.cancel()
	return u, err
}

func (c cancelingUsers) Replace(ctx context.Context, u *gateway.User, ifVersion uint64, events []gateway.Event, audit ...gateway.AuditEntry) error {
	err := c.UserStore.Replace(ctx, u, ifVersion, events, audit...)
	c.cancel()
	return err
}

// TestClientGoneIsNotAServerError: a request whose client went away is
// neither logged as an error nor counted as a 5xx, and the write that
// committed before stays committed.
func TestClientGoneIsNotAServerError(t *testing.T) {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "cancel.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx, cancel := context.WithCancel(context.Background())
	wrapped := cancelAfterCreate{Store: store, cancel: cancel}
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	svc := provision.New(wrapped, nil, provision.Policy{Method: gateway.SourceSCIM, DefaultPool: "default", DefaultRole: "user"})
	s, err := New(Options{Org: gateway.DefaultOrg, Service: svc, Store: wrapped, BaseURL: "https://x/scim/v2", Token: fuzzToken,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	do := func(ctx context.Context, method, path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body)).WithContext(ctx)
		r.Header.Set("Authorization", "Bearer "+fuzzToken)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	created := do(context.Background(), "POST", "/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"gone@example.com"}`)
	id := between(created.Body.String(), `"id":"`, `"`)
	// The PATCH commits, then the client is gone before the answer (its
	// groups) is read.
	w := do(ctx, "PATCH", "/v2/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"Gone"}]}`)

	if w.Code >= 500 {
		t.Fatalf("status %d for a request the client abandoned: %s", w.Code, w.Body)
	}
	if strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Fatalf("an abandoned request was logged as an error:\n%s", logs.String())
	}
	for _, status := range []string{"500", "503"} {
		if n := testutil.ToFloat64(m.SCIMRequests.WithLabelValues("Users", "PATCH", status)); n != 0 {
			t.Fatalf("counted as %s: %v", status, n)
		}
	}
	if n := testutil.ToFloat64(m.SCIMRequests.WithLabelValues("Users", "PATCH", "499")); n != 1 {
		t.Fatalf("want the request counted as 499 (client closed), got %v", n)
	}
	u, err := store.Users().Get(context.Background(), gateway.DefaultOrg, id)
	if err != nil || u.DisplayName != "Gone" {
		t.Fatalf("the committed change must stay: %+v %v", u, err)
	}
}

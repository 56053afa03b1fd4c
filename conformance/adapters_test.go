package conformance

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/gatehouse-id/gatehouse/adapters/directory"
	"github.com/gatehouse-id/gatehouse/adapters/webhook"
	"github.com/gatehouse-id/gatehouse/conformance/adaptertest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

func TestAdapterConformanceDirectory(t *testing.T) {
	adaptertest.Run(t, adaptertest.Harness{Open: func(t *testing.T) gateway.Adapter {
		a, err := (&directory.Config{}).Open(context.Background(), gateway.AdapterEnv{ID: "directory"})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}})
}

// webhookApp is an app that keeps its users and groups from verified
// webhook deliveries alone: what the events carry must be enough.
type webhookApp struct {
	mu    sync.Mutex
	state adaptertest.Snapshot
	seen  map[string]bool // event ids: a redelivery is ignored
}

func (a *webhookApp) apply(e gateway.WireEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen[e.ID] {
		return
	}
	a.seen[e.ID] = true
	switch e.Type {
	case gateway.OpUserCreated, gateway.OpUserUpdated, gateway.OpUserDeactivated, gateway.OpUserReactivated:
		a.state.Users[e.User.ID] = adaptertest.User{UserName: e.User.UserName, Active: e.User.Active, DisplayName: e.User.DisplayName, Email: e.User.Email}
	case gateway.OpUserDeleted:
		delete(a.state.Users, e.User.ID)
	case gateway.OpGroupCreated:
		a.state.Groups[e.Group.ID] = adaptertest.Group{DisplayName: e.Group.DisplayName, Members: slices.Clone(e.MemberIDs)}
	case gateway.OpGroupUpdated:
		g := a.state.Groups[e.Group.ID]
		g.DisplayName = e.Group.DisplayName
		a.state.Groups[e.Group.ID] = g
	case gateway.OpGroupMembersAdded:
		g := a.state.Groups[e.Group.ID]
		g.Members = append(g.Members, e.MemberIDs...)
		a.state.Groups[e.Group.ID] = g
	case gateway.OpGroupMembersRemoved:
		g := a.state.Groups[e.Group.ID]
		g.Members = slices.DeleteFunc(g.Members, func(id string) bool { return slices.Contains(e.MemberIDs, id) })
		a.state.Groups[e.Group.ID] = g
	case gateway.OpGroupDeleted:
		delete(a.state.Groups, e.Group.ID)
	}
}

func TestAdapterConformanceWebhook(t *testing.T) {
	wh, err := standardwebhooks.NewWebhook(hookSecret)
	if err != nil {
		t.Fatal(err)
	}
	app := &webhookApp{state: adaptertest.Snapshot{Users: map[string]adaptertest.User{}, Groups: map[string]adaptertest.Group{}}, seen: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			http.Error(w, "signature", http.StatusUnauthorized)
			return
		}
		var e gateway.WireEvent
		if err := json.Unmarshal(body, &e); err != nil {
			http.Error(w, "body", http.StatusBadRequest)
			return
		}
		app.apply(e)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	adaptertest.Run(t, adaptertest.Harness{
		Open: func(t *testing.T) gateway.Adapter {
			a, err := (&webhook.Config{URL: srv.URL, Secret: gateway.NewSecret(hookSecret)}).Open(context.Background(), gateway.AdapterEnv{ID: "hook"})
			if err != nil {
				t.Fatal(err)
			}
			return a
		},
		Downstream: func(t *testing.T) adaptertest.Snapshot {
			app.mu.Lock()
			defer app.mu.Unlock()
			s := adaptertest.Snapshot{Users: map[string]adaptertest.User{}, Groups: map[string]adaptertest.Group{}}
			for k, v := range app.state.Users {
				s.Users[k] = v
			}
			for k, v := range app.state.Groups {
				v.Members = slices.Clone(v.Members)
				s.Groups[k] = v
			}
			return s
		},
	})
}

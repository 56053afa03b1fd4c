package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

const feedToken = "events-feed-token-0123456789"

type feedAnswer struct {
	status int
	page   struct {
		Events []gateway.WireEvent `json:"events"`
		Next   uint64              `json:"next"`
		Error  string              `json:"error"`
	}
}

func readFeed(t *testing.T, g *gatewayUnderTest, token, query string) feedAnswer {
	t.Helper()
	url := strings.TrimSuffix(g.base, "/scim/v2") + "/events?" + query
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := feedAnswer{status: resp.StatusCode}
	if err := json.Unmarshal(b, &a.page); err != nil {
		t.Fatalf("feed answered %d with %s", resp.StatusCode, b)
	}
	return a
}

// TestEventsFeed: the pull API pages through the outbox with its own
// token, long-polls for new events, and says 410 when the app fell
// behind the retention.
func TestEventsFeed(t *testing.T) {
	off := startGateway(t, "")
	if a := readFeed(t, off, feedToken, "after=0"); a.status != 404 || !strings.Contains(a.page.Error, "events.token") {
		t.Fatalf("feed without a token configured: %d %s", a.status, a.page.Error)
	}

	g := startGateway(t, "", "GATEHOUSE_EVENTS_TOKEN="+feedToken)
	for i := range 5 {
		g.call("POST", "/Users", oktaUser(fmt.Sprintf("feed%d@example.com", i), "F", "D")).must(t, 201)
	}
	for _, bad := range []string{"", testToken, "wrong-token-0123456789"} {
		if a := readFeed(t, g, bad, "after=0"); a.status != 401 {
			t.Fatalf("token %q: %d", bad, a.status)
		}
	}
	first := readFeed(t, g, feedToken, "after=0&limit=3")
	if first.status != 200 || len(first.page.Events) != 3 || first.page.Next != 3 || first.page.Events[0].Contract != gateway.EventContract {
		t.Fatalf("first page: %+v", first)
	}
	rest := readFeed(t, g, feedToken, fmt.Sprintf("after=%d", first.page.Next))
	if len(rest.page.Events) != 2 || rest.page.Events[0].Seq != 4 || rest.page.Next != 5 {
		t.Fatalf("second page: %+v", rest)
	}
	if a := readFeed(t, g, feedToken, "after=5"); a.status != 200 || len(a.page.Events) != 0 || a.page.Next != 5 {
		t.Fatalf("caught up: %+v", a)
	}
	for _, q := range []string{"after=x", "limit=0", "limit=5000", "wait=soon"} {
		if a := readFeed(t, g, feedToken, q); a.status != 400 {
			t.Fatalf("%s: %d", q, a.status)
		}
	}

	// Long poll: the answer comes when the event does.
	got := make(chan feedAnswer, 1)
	go func() { got <- readFeed(t, g, feedToken, "after=5&wait=20s") }()
	time.Sleep(100 * time.Millisecond)
	g.call("POST", "/Users", oktaUser("late@example.com", "L", "T")).must(t, 201)
	select {
	case a := <-got:
		if len(a.page.Events) != 1 || a.page.Events[0].User.UserName != "late@example.com" || a.page.Next != 6 {
			t.Fatalf("long poll: %+v", a)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the long poll did not answer when the event arrived")
	}

	// Events past the retention are pruned: an app behind them gets 410.
	if _, err := g.app.Store().Outbox().Prune(context.Background(), gateway.DefaultOrg, 3, time.Now().Add(time.Hour), 100); err != nil {
		t.Fatal(err)
	}
	if a := readFeed(t, g, feedToken, "after=1"); a.status != 410 || !strings.Contains(a.page.Error, "pruned") {
		t.Fatalf("a cursor behind the retention: %d %s", a.status, a.page.Error)
	}
	if a := readFeed(t, g, feedToken, "after=3"); a.status != 200 || len(a.page.Events) != 3 {
		t.Fatalf("a cursor at the retention's edge: %+v", a)
	}
	if a := readFeed(t, g, feedToken, "after=99"); a.status != 410 {
		t.Fatalf("a cursor beyond the newest event: %d", a.status)
	}
}

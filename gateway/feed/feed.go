// Package feed serves the events feed: the outbox as a pull API for apps
// that would rather poll than receive webhooks.
//
//	GET {path_prefix}/events?after=SEQ&limit=N&wait=30s
//	Authorization: Bearer <events.token>
//
// It answers the events after SEQ in sequence order (the wire contract,
// gateway.WireEvent) and the cursor to ask from next; with wait, an empty
// answer is held until an event arrives or the wait ends (long poll). A
// cursor whose next events were already pruned (older than the retention)
// gets 410 Gone: the app missed events and must resynchronise (over SCIM).
package feed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
)

// Options configures the feed.
type Options struct {
	Store   gateway.Store
	Org     gateway.OrgID
	Token   string        // the feed's own bearer token; empty: the feed is off
	MaxWait time.Duration // longest long poll (default 30s)
}

// Handler serves the feed.
type Handler struct {
	opts   Options
	bearer httpx.Bearer
}

// New builds the handler.
func New(opts Options) *Handler {
	if err := opts.Org.Check(); err != nil {
		panic("feed.New: " + err.Error()) // the wiring names the organization; none is assumed
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 30 * time.Second
	}
	return &Handler{opts: opts, bearer: httpx.NewBearer(opts.Token)}
}

// Page is one answer of the feed.
type Page struct {
	Events []gateway.WireEvent `json:"events"`
	Next   uint64              `json:"next"` // pass as after= next time
}

const (
	defaultLimit = 100
	maxLimit     = 1000
)

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeError(w, http.StatusMethodNotAllowed, "the events feed answers GET only")
		return
	}
	if h.opts.Token == "" {
		writeError(w, http.StatusNotFound, "the events feed is off: set events.token (GATEHOUSE_EVENTS_TOKEN) to turn it on")
		return
	}
	if !h.bearer.Check(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse-events"`)
		writeError(w, http.StatusUnauthorized, "send the token configured as events.token in an \"Authorization: Bearer <token>\" header")
		return
	}
	q := r.URL.Query()
	after, err := uintParam(q.Get("after"), 0)
	if err != nil {
		writeError(w, http.StatusBadRequest, "after must be an event sequence number (0 for the beginning)")
		return
	}
	limit, err := uintParam(q.Get("limit"), defaultLimit)
	if err != nil || limit < 1 || limit > maxLimit {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be between 1 and %d", maxLimit))
		return
	}
	var wait time.Duration
	if v := q.Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
			writeError(w, http.StatusBadRequest, "wait must be a duration such as 30s")
			return
		}
		wait = min(wait, h.opts.MaxWait)
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	page, err := h.read(ctx, r.Context(), after, int(limit))
	if err != nil {
		if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
			writeError(w, http.StatusGone, gateway.ErrorMessageOf(err))
			return
		}
		if r.Context().Err() != nil {
			return // the client went away
		}
		writeError(w, http.StatusServiceUnavailable, gateway.ErrorMessageOf(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(page)
}

// read returns the events after the cursor, waiting for one until wait
// is done.
func (h *Handler) read(wait, req context.Context, after uint64, limit int) (Page, error) {
	ob := h.opts.Store.Outbox()
	for {
		changed := ob.Changed(h.opts.Org) // before reading: a commit after it wakes us
		events, err := ob.After(req, h.opts.Org, after, limit)
		if err != nil {
			return Page{}, err
		}
		if len(events) > 0 && events[0].Seq > after+1 || len(events) == 0 && after > 0 {
			if gone, err := h.pruned(req, after, events); err != nil || gone {
				return Page{}, err
			}
		}
		if len(events) > 0 {
			page := Page{Events: make([]gateway.WireEvent, len(events)), Next: events[len(events)-1].Seq}
			for i := range events {
				page.Events[i] = events[i].Wire()
			}
			return page, nil
		}
		select {
		case <-changed:
		case <-wait.Done():
			return Page{Events: []gateway.WireEvent{}, Next: after}, nil
		}
	}
}

// pruned reports whether events after the cursor were pruned before the
// app read them.
func (h *Handler) pruned(ctx context.Context, after uint64, events []gateway.Event) (bool, error) {
	last, err := h.opts.Store.Outbox().LastSeq(ctx, h.opts.Org)
	if err != nil {
		return false, err
	}
	switch {
	case after > last:
		return true, gateway.Errorf(gateway.ErrNotFound, "after=%d is beyond the newest event (%d): this cursor is not from this gateway", after, last)
	case len(events) > 0 && events[0].Seq > after+1, len(events) == 0 && after < last:
		return true, gateway.Errorf(gateway.ErrNotFound, "the events after %d were pruned (older than delivery.retention): resynchronise over SCIM, then read on with after=%d (the newest event)", after, last)
	}
	return false, nil
}

func uintParam(v string, def uint64) (uint64, error) {
	if v == "" {
		return def, nil
	}
	return strconv.ParseUint(v, 10, 64)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

package app

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// The outbox operations endpoints live on the operations listener and
// answer loopback clients only: the gateway holds bbolt's single-writer
// lock, so `gatehouse outbox …` talks to the running process (from the same
// host or container) instead of opening the file; dead letters carry user
// data and replays act, so nothing off the host may reach them even where
// ops_listen is bound to every interface for Prometheus.
func (a *App) outboxRoutes(mux *http.ServeMux) {
	mux.Handle("GET /outbox/status", loopbackOnly(http.HandlerFunc(a.outboxStatus)))
	mux.Handle("GET /outbox/dead-letters", loopbackOnly(http.HandlerFunc(a.outboxDeadLetters)))
	mux.Handle("POST /outbox/replay", loopbackOnly(http.HandlerFunc(a.outboxReplay)))
}

func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "the outbox endpoints answer only clients on this host (run gatehouse outbox … where the gateway runs)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeOpsError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch gateway.ErrorCodeOf(err) {
	case gateway.ErrNotFound:
		status = http.StatusNotFound
	case gateway.ErrInvalid:
		status = http.StatusBadRequest
	case gateway.ErrUnavailable:
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]string{"error": gateway.ErrorMessageOf(err)})
}

func (a *App) outboxStatus(w http.ResponseWriter, r *http.Request) {
	st, err := a.dispatcher.Status(r.Context())
	if err != nil {
		writeOpsError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// DeadLetterView is a dead letter as the operations API shows it: what
// failed and why, not the user's data.
type DeadLetterView struct {
	Seq        uint64    `json:"seq"`
	EventID    string    `json:"eventId"`
	Type       string    `json:"type"`
	Resource   string    `json:"resource"`
	Attempts   int       `json:"attempts"`
	LastError  string    `json:"lastError"`
	At         time.Time `json:"at"`
	HeldBehind uint64    `json:"heldBehind,omitempty"`
}

func (a *App) outboxDeadLetters(w http.ResponseWriter, r *http.Request) {
	dls, err := a.dispatcher.DeadLetters(r.Context(), r.URL.Query().Get("adapter"))
	if err != nil {
		writeOpsError(w, err)
		return
	}
	out := make([]DeadLetterView, 0, len(dls))
	for _, dl := range dls {
		v := DeadLetterView{Seq: dl.Event.Seq, EventID: dl.Event.ID, Type: string(dl.Event.Op), Attempts: dl.Attempts,
			LastError: dl.LastError, At: dl.At, HeldBehind: dl.HeldBehind}
		switch {
		case dl.Event.User != nil:
			v.Resource = "user " + dl.Event.User.ID
		case dl.Event.Group != nil:
			v.Resource = "group " + dl.Event.Group.ID
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *App) outboxReplay(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var from uint64
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeOpsError(w, gateway.Errorf(gateway.ErrInvalid, "from must be an event sequence number"))
			return
		}
		from = n
	}
	n, err := a.dispatcher.Replay(r.Context(), q.Get("adapter"), from)
	if err != nil {
		writeOpsError(w, err)
		return
	}
	a.log.Info("outbox: replay scheduled", "adapter", q.Get("adapter"), "from", from, "dead_letters", n)
	writeJSON(w, http.StatusOK, map[string]int{"scheduled": n})
}

package app

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/admin"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/outbox"
)

// The outbox operations endpoints live on the operations listener and
// answer loopback clients only: the gateway holds bbolt's single-writer
// lock, so `gatehouse outbox …` talks to the running process (from the same
// host or container) instead of opening the file; dead letters carry user
// data and replays act, so nothing off the host may reach them even where
// ops_listen is bound to every interface for Prometheus. Loopback is not
// enough for those two: in a Kubernetes pod the app's container shares it.
// They also need the token the gateway writes at start to OpsTokenFile in
// its data_dir (readable by the gateway's user only), which the CLI reads.
func (a *App) outboxRoutes(mux *http.ServeMux) {
	mux.Handle("GET /outbox/status", loopbackOnly(http.HandlerFunc(a.outboxStatus)))
	mux.Handle("GET /outbox/dead-letters", loopbackOnly(a.opsAuthorized(http.HandlerFunc(a.outboxDeadLetters))))
	mux.Handle("POST /outbox/replay", loopbackOnly(a.opsAuthorized(http.HandlerFunc(a.outboxReplay))))
	mux.Handle("POST /backup", loopbackOnly(a.opsAuthorized(http.HandlerFunc(a.backup))))
}

// backup streams a consistent copy of the bbolt file (gatehouse backup):
// the whole state, so the same loopback and token rules as dead letters.
func (a *App) backup(w http.ResponseWriter, r *http.Request) {
	b, ok := a.store.(interface {
		Backup(start func(size int64) io.Writer) (int64, error)
	})
	if !ok {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "this gateway's store is PostgreSQL: back it up with the database's own tools (pg_dump, base backups)"})
		return
	}
	// The copy goes to a file beside the store first: the read transaction
	// (which holds off the file's growth, so writes that need it) ends as
	// fast as the disk writes, not as fast as the client reads.
	f, err := os.CreateTemp(a.cfg.DataDir, ".backup-*")
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "cannot write the copy beside the store: " + err.Error()})
		return
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := b.Backup(func(int64) io.Writer { return f })
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		a.log.ErrorContext(r.Context(), "backup failed", "error", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "the copy failed: " + err.Error()})
		return
	}
	// A large store takes longer than the listener's write timeout.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10)) // the client tells a complete copy from a cut one
	if _, err := io.Copy(w, f); err != nil {
		a.log.WarnContext(r.Context(), "backup: the client did not take the whole copy", "error", err)
	}
}

// OpsTokenFile, in data_dir, holds the operations listener's token for
// this run of the gateway.
const OpsTokenFile = "ops.token"

// writeOpsToken makes a new token for this run and writes it, readable
// by the gateway's user only, where the CLI finds it.
func writeOpsToken(dataDir string) (httpx.Bearer, error) {
	token := base64.RawURLEncoding.EncodeToString(randomKey())
	// A new file of our own (O_EXCL, 0600), renamed over the old one: a
	// file or link left at a fixed name cannot lend it other permissions.
	f, err := os.CreateTemp(dataDir, ".ops.token-*")
	if err != nil {
		return httpx.Bearer{}, fmt.Errorf("write the operations token: %w", err)
	}
	_, err = f.WriteString(token + "\n")
	if err == nil {
		err = f.Chmod(0o600)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dataDir, OpsTokenFile))
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return httpx.Bearer{}, fmt.Errorf("write the operations token: %w", err)
	}
	return httpx.NewBearer(token), nil
}

// readOpsToken is the CLI's side: the running gateway's token.
func readOpsToken(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, OpsTokenFile))
	if err != nil {
		return "", fmt.Errorf("the operations token (written by the running gateway to data_dir): %w; run this command as the gateway's user, with its configuration", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (a *App) opsAuthorized(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.opsCredential.Check(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse-ops"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "send the token in " + OpsTokenFile + " (in data_dir) as Authorization: Bearer; gatehouse outbox does so"})
			return
		}
		next.ServeHTTP(w, r)
	})
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

// opsDispatcher is the delivery of the organization ?org= names (the
// default one when it names none).
func (a *App) opsDispatcher(r *http.Request) (*outbox.Dispatcher, error) {
	org := gateway.DefaultOrg
	if v := r.URL.Query().Get("org"); v != "" {
		org = gateway.OrgID(v)
	}
	if _, err := a.store.Orgs().Get(r.Context(), org); err != nil && org != gateway.DefaultOrg {
		return nil, err
	}
	return a.delivery.of(r.Context(), org)
}

func (a *App) outboxStatus(w http.ResponseWriter, r *http.Request) {
	disp, err := a.opsDispatcher(r)
	if err != nil {
		writeOpsError(w, err)
		return
	}
	st, err := disp.Status(r.Context())
	if err != nil {
		writeOpsError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// outboxDeadLetters lists an adapter's dead letters as the admin API
// does: what failed and why, not the user's data.
func (a *App) outboxDeadLetters(w http.ResponseWriter, r *http.Request) {
	adapter := r.URL.Query().Get("adapter")
	disp, err := a.opsDispatcher(r)
	if err != nil {
		writeOpsError(w, err)
		return
	}
	dls, err := disp.DeadLetters(r.Context(), adapter)
	if err != nil {
		writeOpsError(w, err)
		return
	}
	out := make([]admin.DeadLetterView, 0, len(dls))
	for _, dl := range dls {
		out = append(out, admin.ViewDeadLetter(adapter, dl))
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
	disp, err := a.opsDispatcher(r)
	if err != nil {
		writeOpsError(w, err)
		return
	}
	n, err := disp.Replay(r.Context(), q.Get("adapter"), from)
	if err != nil {
		writeOpsError(w, err)
		return
	}
	a.log.InfoContext(r.Context(), "outbox: replay scheduled", "adapter", q.Get("adapter"), "from", from, "dead_letters", n)
	writeJSON(w, http.StatusOK, map[string]int{"scheduled": n})
}

// Package httpx holds the HTTP plumbing every gateway listener shares:
// request ids, panic recovery, access logs and health endpoints.
package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"
)

type requestKey struct{}

// requestInfo is what every log line of a request carries.
type requestInfo struct {
	id, client, userAgent string
}

// RequestID returns the request id stored in ctx by WithRequestID, or "".
func RequestID(ctx context.Context) string {
	info, _ := ctx.Value(requestKey{}).(*requestInfo)
	if info == nil {
		return ""
	}
	return info.id
}

// HeaderRequestID carries the request id in and out.
const HeaderRequestID = "X-Request-Id"

// WithRequestID gives every request an id: the caller's X-Request-Id when it
// is short and printable (so a proxy's id threads through our logs),
// otherwise a fresh random one. The id is echoed in the response.
func WithRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(HeaderRequestID, id)
		ua := r.UserAgent()
		if len(ua) > 256 {
			ua = ua[:256]
		}
		info := &requestInfo{id: id, client: ClientAddress(r), userAgent: ua}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestKey{}, info)))
	})
}

// LogHandler adds to every record logged with a request's context (the
// *Context methods of slog.Logger) the request id, the client's address
// and its user agent, so that support can find a person's sign-in or a
// manager's change from the id on a page.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (l logHandler) Handle(ctx context.Context, rec slog.Record) error {
	if info, _ := ctx.Value(requestKey{}).(*requestInfo); info != nil {
		rec = rec.Clone()
		rec.AddAttrs(slog.String("request_id", info.id), slog.String("client", info.client), slog.String("user_agent", info.userAgent))
	}
	return l.Handler.Handle(ctx, rec)
}

func (l logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{l.Handler.WithAttrs(attrs)}
}
func (l logHandler) WithGroup(name string) slog.Handler { return logHandler{l.Handler.WithGroup(name)} }

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// StatusRecorder remembers the status a handler wrote.
type StatusRecorder struct {
	http.ResponseWriter
	Status int
	Bytes  int
}

func (s *StatusRecorder) WriteHeader(code int) {
	if s.Status == 0 {
		s.Status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *StatusRecorder) Write(b []byte) (int, error) {
	if s.Status == 0 {
		s.Status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.Bytes += n
	return n, err
}

func (s *StatusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// AccessLog logs one line per request: method, path, status, size and
// duration in milliseconds (with LogHandler, the request id, client and
// user agent too). Never the query string, other headers or the body: they
// carry tokens, filters with email addresses, and passwords.
func AccessLog(log *slog.Logger, next http.Handler) http.Handler {
	return AccessLogRedacting(log, nil, next)
}

// AccessLogRedacting is AccessLog with paths passed through redact first
// (paths that carry a secret, such as an invitation link's token).
func AccessLogRedacting(log *slog.Logger, redact func(path string) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &StatusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.Status == 0 {
			rec.Status = http.StatusOK
		}
		path := r.URL.Path
		if redact != nil {
			path = redact(path)
		}
		log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
			slog.String("method", r.Method),
			slog.String("path", path),
			slog.Int("status", rec.Status),
			slog.Int("bytes", rec.Bytes),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		)
	})
}

// Recover turns a panic into a 500 and a log line instead of a dropped
// connection; the panic value is logged, never sent to the client.
func Recover(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "panic serving request", "panic", v,
					"path", r.URL.Path, "request_id", RequestID(r.Context()))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// Health serves /healthz (the process is up) and /readyz (ready reports
// nil when the gateway can serve traffic; notes, when set, are lines on
// what needs care without making it unready).
func Health(mux *http.ServeMux, ready func(context.Context) error, notes func(context.Context) []string) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
		if notes != nil {
			for _, n := range notes(r.Context()) {
				_, _ = w.Write([]byte(n + "\n"))
			}
		}
	})
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

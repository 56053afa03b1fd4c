package app

import (
	"context"
	"net/http"
	"sync"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/admin"
)

// completeSignIn takes a verified identity through the login funnel
// (JIT, policy) and starts the session.
func (a *App) completeSignIn(w http.ResponseWriter, r *http.Request, id gateway.Identity, returnTo string) {
	// A manager's test sign-in from the console: show what the IdP sent,
	// whoever signed in at the IdP, and change nothing (no user made, no
	// session replaced).
	if returnTo == a.cfg.PathPrefix+"/console/identity/test" {
		if _, m, err := a.sessions.Current(r.Context(), r); err == nil && admin.IsManager(m) {
			a.lastSignIns.put(m.ID, id)
			a.log.InfoContext(r.Context(), "test sign-in", "protocol", id.Protocol, "manager", m.ID)
			http.Redirect(w, r, returnTo, http.StatusFound)
			return
		}
	}
	returnTo, answered := a.accountFromReturn(w, r, id, returnTo)
	if answered {
		return
	}
	u, created, err := a.service.Login(r.Context(), gateway.DefaultOrg, id)
	if err != nil {
		a.refusedPage(w, r, id.Protocol, err)
		return
	}
	if _, err := a.sessions.Start(r.Context(), w, r, u.ID, id.Protocol); err != nil {
		a.metrics.Logins.WithLabelValues(id.Protocol, "store").Inc()
		a.log.ErrorContext(r.Context(), "sign-in: session", "error", err)
		page(w, http.StatusServiceUnavailable, "Sign-in failed", "The sign-in could not be completed right now.", "Try again in a moment.")
		return
	}
	a.metrics.Logins.WithLabelValues(id.Protocol, "ok").Inc()
	if created {
		a.metrics.JITCreations.Inc()
	}
	a.log.InfoContext(r.Context(), "signed in", "protocol", id.Protocol, "user", u.ID, "jit_created", created)
	http.Redirect(w, r, returnTo, http.StatusFound)
}

// signInFailed shows a protocol's refusal and counts it; reason is one
// of the protocol package's fixed words.
func (a *App) signInFailed(protocol string) func(w http.ResponseWriter, r *http.Request, status int, reason, message string) {
	return func(w http.ResponseWriter, _ *http.Request, status int, reason, message string) {
		a.metrics.Logins.WithLabelValues(protocol, reason).Inc()
		page(w, status, "Sign-in failed", message, "")
	}
}

// lastSignIns keeps, per manager, what the IdP sent at their last test
// sign-in from the console, in this process (bounded; a diagnostic, not
// state).
type lastSignIns struct {
	mu sync.Mutex
	m  map[string]gateway.Identity
}

func (l *lastSignIns) put(userID string, id gateway.Identity) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]gateway.Identity{}
	}
	if _, ok := l.m[userID]; !ok && len(l.m) >= 1000 {
		for k := range l.m { // evict one, not everyone's
			delete(l.m, k)
			break
		}
	}
	l.m[userID] = id
}

func (l *lastSignIns) get(_ context.Context, userID string) *gateway.Identity {
	l.mu.Lock()
	defer l.mu.Unlock()
	if id, ok := l.m[userID]; ok {
		return &id
	}
	return nil
}

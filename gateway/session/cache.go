package session

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// cache keeps, for the proxy's hot path, what Current read for a
// session: at most for CacheTTL, and only until the next write in its
// organization that could change the answer (a user or group changed,
// sessions ended: Outbox.Changed(org), taken before the read, is
// closed by it, on every replica of a shared store). A revocation thus
// takes effect at once; CacheTTL only bounds what a lost signal could
// keep, and how long the proxy keeps serving while the store is down.
type cache struct {
	mu      sync.Mutex
	entries map[string]cached // by session id (the token's hash)
}

type cached struct {
	se      gateway.Session
	user    *gateway.User
	until   time.Time
	changed <-chan struct{}
}

// cacheBound caps the entries; past it the cache starts afresh (a
// bounded map, not an LRU: a full cache means sessions come and go).
const cacheBound = 100_000

func (c *cache) get(id string, now time.Time) (cached, bool) {
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if !ok || !now.Before(e.until) {
		return cached{}, false
	}
	select {
	case <-e.changed:
		return cached{}, false
	default:
		return e, true
	}
}

func (c *cache) put(id string, e cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= cacheBound {
		c.entries = make(map[string]cached)
	}
	c.entries[id] = e
}

func (c *cache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, id)
}

// Cached is Current for the proxy's hot path: with Options.CacheTTL set,
// a session read within it, with nothing changed in its organization
// since, is answered from memory. The user it returns is shared: the
// caller must not change it.
func (m *Manager) Cached(ctx context.Context, r *http.Request) (gateway.Session, *gateway.User, error) {
	if m.opts.CacheTTL <= 0 {
		return m.Current(ctx, r)
	}
	org, id, ok := m.browserSession(r)
	if !ok {
		return gateway.Session{}, nil, errSignedOut
	}
	now := m.opts.Clock.Now()
	if e, ok := m.cache.get(id, now); ok && e.se.Org == org && now.Before(e.se.Expires) &&
		now.Sub(e.se.LastSeen) < min(m.opts.Idle, m.opts.TouchEvery) {
		return e.se, e.user, nil
	}
	changed := m.opts.Store.Outbox().Changed(org) // before reading: a change meanwhile is newer
	se, u, err := m.Current(ctx, r)
	if err != nil {
		m.cache.forget(id)
		return se, u, err
	}
	m.cache.put(id, cached{se: se, user: u, until: now.Add(m.opts.CacheTTL), changed: changed})
	return se, u, nil
}

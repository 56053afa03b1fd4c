package provision

import (
	"context"
	"sync"
)

// keyLocks serialises the updates of one record within this process, so
// that concurrent requests for the same user or group queue up instead of
// computing changes that the version check would then refuse (Entra sends
// membership PATCHes for one group in parallel). The version check in the
// store still guards against other writers (another replica, a deletion
// that moves a group's version).
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	token chan struct{} // holds one token while the key is free
	refs  int
}

// lock waits for key until ctx is done (a request whose client went away
// stops waiting) and returns the unlock function.
func (k *keyLocks) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{token: make(chan struct{}, 1)}
		l.token <- struct{}{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()

	release := func() {
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
	select {
	case <-l.token:
		return func() { l.token <- struct{}{}; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

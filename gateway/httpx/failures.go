package httpx

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// FailureLimiter counts failed credentials per client and says when a
// client has failed too often: after perMinute failures in a minute (a
// burst of that many, refilled evenly) the next failure is answered
// "slow down" instead of "wrong". It never stands in a right credential's
// way: the caller checks the credential first and asks only on failure,
// so a client that also holds the right token (an IdP behind the same
// address as an attacker, or one fixed after a mistake) is served at
// once. Bounded: at most maxClients are tracked.
type FailureLimiter struct {
	every     rate.Limit
	burst     int
	mu        sync.Mutex
	clients   map[string]*rate.Limiter
	nextSweep time.Time // a full map is swept for recovered clients at most once a second
}

const maxClients = 10000

// NewFailureLimiter allows perMinute failures a minute per client; nil
// (no limit) when perMinute <= 0. A nil *FailureLimiter allows everything.
func NewFailureLimiter(perMinute int) *FailureLimiter {
	if perMinute <= 0 {
		return nil
	}
	return &FailureLimiter{every: rate.Every(time.Minute / time.Duration(perMinute)), burst: perMinute, clients: map[string]*rate.Limiter{}}
}

// Fail records a failure of client and reports whether it is still
// within its allowance; when not, retryAfter is when the next failure
// would be.
func (f *FailureLimiter) Fail(client string, now time.Time) (ok bool, retryAfter time.Duration) {
	if f == nil {
		return true, 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	client = clientKey(client)
	l := f.clients[client]
	if l == nil {
		if len(f.clients) >= maxClients {
			f.evict(now)
		}
		l = rate.NewLimiter(f.every, f.burst)
		f.clients[client] = l
	}
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// evict forgets the clients whose allowance is whole again (they are as
// good as new), at most once a second (a sweep reads them all), and
// otherwise one client, so that the map stays bounded.
func (f *FailureLimiter) evict(now time.Time) {
	if !now.Before(f.nextSweep) {
		f.nextSweep = now.Add(time.Second)
		for k, l := range f.clients {
			if l.TokensAt(now) >= float64(f.burst) {
				delete(f.clients, k)
			}
		}
	}
	if len(f.clients) >= maxClients {
		for k := range f.clients {
			delete(f.clients, k)
			break
		}
	}
}

// clientKey is what failures are counted by: the IPv4 address, or the
// IPv6 /64 (one subscriber's, which can pick any address in it).
func clientKey(addr string) string {
	ip := net.ParseIP(addr)
	if ip == nil || ip.To4() != nil {
		return addr
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// ClientAddress is the address a request came from (the peer's IP; the
// gateway trusts no forwarding header for this).
func ClientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

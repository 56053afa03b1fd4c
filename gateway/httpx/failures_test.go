package httpx

import (
	"strconv"
	"testing"
	"time"
)

func TestFailureLimiter(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	f := NewFailureLimiter(20)
	for i := range 20 {
		if ok, _ := f.Fail("198.51.100.7", now); !ok {
			t.Fatalf("failure %d refused: 20 a minute are allowed", i+1)
		}
	}
	ok, wait := f.Fail("198.51.100.7", now)
	if ok || wait <= 0 || wait > 3*time.Second {
		t.Fatalf("21st failure in the minute: ok=%v wait=%v (want refused, about 3 s)", ok, wait)
	}
	if ok, _ := f.Fail("203.0.113.9", now); !ok {
		t.Fatal("another client was refused for the first's failures")
	}
	if ok, _ := f.Fail("198.51.100.7", now.Add(wait)); !ok {
		t.Fatal("still refused once the wait was over")
	}
	if ok, _ := f.Fail("198.51.100.7", now.Add(wait)); ok {
		t.Fatal("allowed two at once after one refill")
	}
	// One IPv6 subscriber's /64 is one client, whatever address it picks.
	v6 := NewFailureLimiter(2)
	v6.Fail("2001:db8:1:2::1", now)
	v6.Fail("2001:db8:1:2:aaaa::7", now)
	if ok, _ := v6.Fail("2001:db8:1:2:ffff:ffff:ffff:ffff", now); ok {
		t.Fatal("addresses of one /64 counted apart")
	}
	if ok, _ := v6.Fail("2001:db8:1:3::1", now); !ok {
		t.Fatal("another /64 was refused")
	}
	if ok, _ := (*FailureLimiter)(nil).Fail("x", now); !ok || NewFailureLimiter(0) != nil {
		t.Fatal("no limit configured must allow everything")
	}
}

func TestFailureLimiterBounded(t *testing.T) {
	now := time.Now()
	f := NewFailureLimiter(5)
	for i := range maxClients + 100 {
		f.Fail(strconv.Itoa(i), now)
	}
	if n := len(f.clients); n > maxClients {
		t.Fatalf("%d clients tracked, bound %d", n, maxClients)
	}
}

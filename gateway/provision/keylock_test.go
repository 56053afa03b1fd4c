package provision

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestKeyLocks(t *testing.T) {
	var k keyLocks
	var wg sync.WaitGroup
	counters := map[string]*int{"a": new(int), "b": new(int)}
	for range 50 {
		for key, c := range counters {
			wg.Go(func() {
				unlock, err := k.lock(context.Background(), key)
				if err != nil {
					t.Error(err)
					return
				}
				defer unlock()
				v := *c // a race here if the lock did not serialise
				*c = v + 1
			})
		}
	}
	wg.Wait()
	for key, c := range counters {
		if *c != 50 {
			t.Errorf("%s: %d, want 50", key, *c)
		}
	}
	if len(k.locks) != 0 {
		t.Errorf("locks of finished keys are kept: %d", len(k.locks))
	}
}

// TestKeyLockGivesUpWithTheRequest: a waiter whose context ends stops
// waiting and leaves the lock usable.
func TestKeyLockGivesUpWithTheRequest(t *testing.T) {
	var k keyLocks
	unlock, err := k.lock(context.Background(), "g")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	waited := make(chan error, 1)
	go func() {
		_, err := k.lock(ctx, "g")
		waited <- err
	}()
	cancel()
	select {
	case err := <-waited:
		if err == nil {
			t.Fatal("a cancelled waiter got the lock while it was held")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled waiter kept waiting")
	}
	unlock()
	again, err := k.lock(context.Background(), "g")
	if err != nil {
		t.Fatal(err)
	}
	again()
	if len(k.locks) != 0 {
		t.Errorf("locks kept: %d", len(k.locks))
	}
}

package provision

import (
	"sync"
	"testing"
)

func TestKeyLocks(t *testing.T) {
	var k keyLocks
	var wg sync.WaitGroup
	counters := map[string]*int{"a": new(int), "b": new(int)}
	for range 50 {
		for key, c := range counters {
			wg.Go(func() {
				defer k.lock(key)()
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

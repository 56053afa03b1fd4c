package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// holdCommitter queues a write that blocks inside its transaction until
// release is closed, so that writes sent meanwhile are queued and form
// the next batch.
func holdCommitter(t *testing.T, s *Store) (release func(), done <-chan error) {
	t.Helper()
	entered, gate := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	var once sync.Once
	go func() {
		errc <- s.commits.write("org-a", func(*bolt.Tx) error {
			once.Do(func() { close(entered) })
			<-gate
			return nil
		})
	}()
	<-entered
	return func() { close(gate) }, errc
}

// TestGroupCommitIsolatesFailures: in one batch, a failing write (and a
// panicking one) is reported to its own caller only; every other write
// commits; each function runs at most twice.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s := openTest(t, "")
	release, held := holdCommitter(t, s)
	const n = 64
	var wg sync.WaitGroup
	errs := make([]error, n)
	runs := make([]int, n)
	var mu sync.Mutex
	queued := make(chan struct{}, n)
	for i := range n {
		wg.Go(func() {
			queued <- struct{}{}
			errs[i] = s.commits.write("org-a", func(tx *bolt.Tx) error {
				mu.Lock()
				runs[i]++
				mu.Unlock()
				switch i % 8 {
				case 3:
					return fmt.Errorf("write %d refuses", i)
				case 5:
					panic(fmt.Sprintf("write %d panics", i))
				}
				b, err := tx.CreateBucketIfNotExists([]byte("commit-test"))
				if err != nil {
					return err
				}
				return b.Put([]byte(fmt.Sprint(i)), []byte("v"))
			})
		})
	}
	for range n {
		<-queued
	}
	for len(s.commits.queue) < n { // every write is queued behind the held one
		runtimeYield()
	}
	before := s.CommitStats()
	release()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	after := s.CommitStats()
	stored := 0
	_ = s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("commit-test")); b != nil {
			stored = b.Stats().KeyN
		}
		return nil
	})
	for i, err := range errs {
		switch i % 8 {
		case 3, 5:
			if err == nil {
				t.Errorf("write %d: its failure was lost", i)
			}
		default:
			if err != nil {
				t.Errorf("write %d failed because of a neighbour: %v", i, err)
			}
		}
		if runs[i] > 2 {
			t.Errorf("write %d ran %d times", i, runs[i])
		}
	}
	if want := n - 2*n/8; stored != want {
		t.Fatalf("%d writes committed, want %d", stored, want)
	}
	commits, writes := after.Commits-before.Commits, after.Writes-before.Writes
	// 16 failures split the batch into at most 17 commits (+ the held one).
	if writes != uint64(n-2*n/8+1) || commits > 2*16+2 {
		t.Fatalf("%d writes in %d commits: the queued writes were not batched", writes, commits)
	}
}

// TestCloseCommitsQueuedWrites: writes queued when Close is called are
// committed; the ones that come after get ErrUnavailable; none is lost
// or half-done.
func TestCloseCommitsQueuedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "close.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	release, held := holdCommitter(t, s)
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.Users().Create(ctx, newUser(fmt.Sprintf("close%d@x", i)), ev(gateway.OpUserCreated))
		})
	}
	for len(s.commits.queue) < len(errs)/2 {
		runtimeYield()
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	release()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case gateway.ErrorCodeOf(err) != gateway.ErrUnavailable:
			t.Errorf("a write during Close failed with %v, want ErrUnavailable", err)
		default:
			var e *gateway.Error
			if !errors.As(err, &e) || e.Message == "" {
				t.Errorf("want a client-safe message: %v", err)
			}
		}
	}
	if ok < len(errs)/2 {
		t.Fatalf("only %d of the queued writes were committed", ok)
	}
	s2 := openTest(t, path)
	if _, total, err := s2.Users().List(ctx, org, 0, 0); err != nil || total != ok {
		t.Fatalf("%d users stored, %d writes reported success (%v)", total, ok, err)
	}
}

func runtimeYield() { runtime.Gosched() }

// TestChangedIsPerOrganization: a commit wakes the consumers of the
// organizations it wrote in, and none of the others' (with thousands of
// organizations, one wake-up per organization per commit would cost a
// read each).
func TestChangedIsPerOrganization(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	a, b := s.Outbox().Changed("org-a"), s.Outbox().Changed("org-b")
	if _, err := s.Keys().PutIfAbsent(ctx, "org-b", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b:
	default:
		t.Fatal("a commit in org-b did not wake org-b's consumers")
	}
	select {
	case <-a:
		t.Fatal("a commit in org-b woke org-a's consumers")
	default:
	}
	if _, err := s.Keys().PutIfAbsent(ctx, "org-a", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a:
	default:
		t.Fatal("a commit in org-a did not wake org-a's consumers")
	}
}

package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// TestGroupCommitIsolatesFailures: in one batch, a failing write (and a
// panicking one) is reported to its own caller only; every other write
// commits; the failing one's error is computed against committed state.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s := openTest(t, "")
	const n = 64
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.commits.write(func(tx *bolt.Tx) error {
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
	wg.Wait()
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
	}
	if want := n - 2*n/8; stored != want {
		t.Fatalf("%d writes committed, want %d", stored, want)
	}
}

// TestCloseCommitsQueuedWrites: writes already queued when Close is called
// are committed; later ones get ErrUnavailable.
func TestCloseCommitsQueuedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "close.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.Users().Create(ctx, newUser(fmt.Sprintf("close%d@x", i)), ev(gateway.OpUserCreated))
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err = s.Users().Create(ctx, newUser("late@x"), nil)
	if gateway.ErrorCodeOf(err) != gateway.ErrUnavailable {
		t.Fatalf("write after Close: %v", err)
	}
	var e *gateway.Error
	if !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("want a client-safe message: %v", err)
	}
	s2 := openTest(t, path)
	_, total, err := s2.Users().List(ctx, tenant, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		}
	}
	if total != ok || ok != len(errs) {
		t.Fatalf("%d users stored, %d writes succeeded of %d", total, ok, len(errs))
	}
}

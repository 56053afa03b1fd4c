package bolt

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// committer is the store's adaptive group commit. One goroutine owns the
// write path: it takes the first waiting write, adds every write that is
// already queued, and commits them in one transaction and one fsync. While
// it commits, new writes queue up and go into the next transaction. A lone
// write therefore pays one commit and no waiting window (bbolt's DB.Batch
// waits MaxBatchDelay for company on every write), and under load the
// batch grows with the commit time, so throughput follows the disk.
//
// A function that fails is taken out of the batch (see commit); the others
// are committed. Functions may therefore run more than once.
type committer struct {
	db       *bolt.DB
	maxBatch int

	mu     sync.RWMutex // guards closed against sends on a closed queue
	closed bool
	queue  chan *writeReq
	done   chan struct{}

	stats commitStats

	// waiters are, per organization, closed at the next commit of a
	// write in its scope: one organization's writes wake only its own
	// readers (with thousands of organizations, waking every reader at
	// every commit would cost a read per organization per commit).
	waitMu  sync.Mutex
	waiters map[gateway.OrgID]chan struct{}
}

// changed returns a channel closed when the next transaction with a
// write in org's scope commits.
func (c *committer) changed(org gateway.OrgID) <-chan struct{} {
	c.waitMu.Lock()
	defer c.waitMu.Unlock()
	if c.waiters == nil {
		c.waiters = map[gateway.OrgID]chan struct{}{}
	}
	ch, ok := c.waiters[org]
	if !ok {
		ch = make(chan struct{})
		c.waiters[org] = ch
	}
	return ch
}

// signal wakes the readers of the organizations batch wrote in.
func (c *committer) signal(batch []*writeReq) {
	c.waitMu.Lock()
	defer c.waitMu.Unlock()
	for _, req := range batch {
		if ch, ok := c.waiters[req.org]; ok {
			close(ch)
			delete(c.waiters, req.org)
		}
	}
}

// commitStats counts the group commit's work (read with atomic loads).
type commitStats struct {
	commits, writes, nanos atomic.Uint64
}

// CommitStats is a snapshot of the group commit's counters.
type CommitStats struct {
	Commits uint64        // transactions committed
	Writes  uint64        // write functions committed in them
	Time    time.Duration // spent committing (function runs, page writes, fsyncs)
}

type writeReq struct {
	org gateway.OrgID // whose scope it writes in ("": the registry)
	fn  func(*bolt.Tx) error
	err chan error
}

// errClosed is returned for writes after Close.
var errClosed = errors.New("store is closed")

func newCommitter(db *bolt.DB, maxBatch int) *committer {
	c := &committer{db: db, maxBatch: maxBatch, queue: make(chan *writeReq, maxBatch), done: make(chan struct{})}
	go c.loop()
	return c
}

// write runs fn, a write in org's scope, in a group-committed transaction
// and returns once that transaction is durable (or failed).
func (c *committer) write(org gateway.OrgID, fn func(*bolt.Tx) error) error {
	req := &writeReq{org: org, fn: fn, err: make(chan error, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return errClosed
	}
	c.queue <- req
	c.mu.RUnlock()
	return <-req.err
}

// close stops accepting writes, commits the queued ones and returns when
// the loop has ended.
func (c *committer) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.queue)
	}
	c.mu.Unlock()
	<-c.done
}

func (c *committer) loop() {
	defer close(c.done)
	batch := make([]*writeReq, 0, c.maxBatch)
	for first := range c.queue {
		batch = append(batch[:0], first)
	gather:
		for len(batch) < c.maxBatch {
			select {
			case req, ok := <-c.queue:
				if !ok {
					break gather
				}
				batch = append(batch, req)
			default:
				break gather
			}
		}
		c.commit(batch)
	}
}

// commit writes batch in one transaction. When a function fails, it
// failed against the state the functions before it leave, and that state
// is what gets committed next: its error stands as it is. The functions
// before it are committed in a transaction of their own and the rest of
// the batch goes on in the next, so every function runs at most twice
// however many fail (rerunning the whole batch per failure was quadratic).
func (c *committer) commit(batch []*writeReq) {
	for len(batch) > 0 {
		failed := -1
		var failure error
		err := c.update(batch, func(tx *bolt.Tx) error {
			for i, req := range batch {
				if err := safeCall(req.fn, tx); err != nil {
					failed, failure = i, err
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, req := range batch {
				req.err <- err // nil, or the commit's own failure for all
			}
			return
		}
		if prefix := batch[:failed]; len(prefix) > 0 {
			err := c.update(prefix, func(tx *bolt.Tx) error {
				for _, req := range prefix {
					if err := safeCall(req.fn, tx); err != nil {
						return err
					}
				}
				return nil
			})
			for _, req := range prefix {
				req.err <- err
			}
			if err != nil {
				failure = err // the state it failed against was not committed
			}
		}
		batch[failed].err <- failure
		batch = batch[failed+1:]
	}
}

// update runs one transaction of the writes of batch and counts it when
// it commits.
func (c *committer) update(batch []*writeReq, fn func(*bolt.Tx) error) error {
	start := time.Now()
	err := c.db.Update(fn)
	if err == nil {
		c.signal(batch)
		c.stats.commits.Add(1)
		c.stats.writes.Add(uint64(len(batch)))
		c.stats.nanos.Add(uint64(time.Since(start)))
	}
	return err
}

// safeCall turns a panic in a write function into its error, so that one
// bad write cannot take the write path down with it.
func safeCall(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic in write: %v", v)
		}
	}()
	return fn(tx)
}

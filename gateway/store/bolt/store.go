package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/gatehouse-id/gatehouse/gateway"
	namefold "github.com/gatehouse-id/gatehouse/gateway/fold"
	"github.com/gatehouse-id/gatehouse/gateway/store/internal/storekit"
)

// SchemaVersion is the layout version this code reads and writes.
// Version 2 keys the unique name indexes with full Unicode case folding
// (package fold) instead of strings.ToLower; Open migrates version 1.
const SchemaVersion = 3

var (
	bucketMeta    = []byte("meta")
	bucketTenants = []byte("tenants")
	keyVersion    = []byte("schema_version")

	bUsers        = []byte("users")
	bGroups       = []byte("groups")
	bUserName     = []byte("idx_user_username")
	bUserExtID    = []byte("idx_user_externalid")
	bUserEmail    = []byte("idx_user_email")
	bGroupName    = []byte("idx_group_displayname")
	bGroupExtID   = []byte("idx_group_externalid")
	bGroupUser    = []byte("edges_group_user")
	bUserGroup    = []byte("edges_user_group")
	bOutbox       = []byte("outbox")
	bCounters     = []byte("counters")
	bCursors      = []byte("outbox_cursors")
	bDeadLetters  = []byte("outbox_dead_letters")
	bIDMaps       = []byte("id_maps")
	bSessions     = []byte("sessions")
	bUserSessions = []byte("sessions_by_user")
	bIdPSessions  = []byte("sessions_by_idp")
	bKeys         = []byte("keys")
	bEphemeral    = []byte("ephemeral")
	bUserPool     = []byte("idx_user_pool")
	bLastLogin    = []byte("last_login")
	bRecords      = []byte("records")
	bAudit        = []byte("audit")
	bAuditActor   = []byte("idx_audit_actor")
	bAuditTarget  = []byte("idx_audit_target")
	tenantBuckets = [][]byte{bUsers, bGroups, bUserName, bUserExtID, bUserEmail, bGroupName, bGroupExtID, bGroupUser, bUserGroup, bOutbox, bCounters, bCursors, bDeadLetters, bIDMaps, bSessions, bUserSessions, bIdPSessions, bKeys, bEphemeral,
		bUserPool, bLastLogin, bRecords, bAudit, bAuditActor, bAuditTarget}

	appendOnly = [][]byte{bUsers, bGroups, bOutbox}

	counterUsers  = []byte("users")
	counterGroups = []byte("groups")
	counterOutbox = []byte("outbox")
)

// Options tunes Open.
type Options struct {
	// Timeout bounds the wait for the file lock another process holds.
	Timeout time.Duration
	// NoSync skips fsync on commit: for tests and benchmarks only, a crash
	// can then lose acknowledged writes.
	NoSync bool
	// MaxBatch caps the writes that share one commit (default 1000).
	MaxBatch int
	// ReadOnly opens an existing file for reading (check-config): no
	// bucket is created, no migration runs, every write fails, and a
	// file of another schema version is refused.
	ReadOnly bool
}

// Store implements gateway.Store.
type Store struct {
	db      *bolt.DB
	pager   *pager
	commits *committer
	notes   []string
}

var _ gateway.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path. A file that
// another process holds, or that is damaged, is refused with an error that
// says so and what to do; Open never panics on a bad file.
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if err := checkFile(path); err != nil {
		return nil, err
	}
	if opts.ReadOnly {
		return openReadOnly(path, opts)
	}
	db, err := openDB(path, opts)
	if err != nil {
		return nil, err
	}
	var notes []string
	err = db.Update(func(tx *bolt.Tx) error {
		notes = nil // the function may run again
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketTenants); err != nil {
			return err
		}
		v := meta.Get(keyVersion)
		if v == nil {
			return meta.Put(keyVersion, u64(SchemaVersion))
		}
		// Buckets added within a schema version are created where missing.
		if err := tx.Bucket(bucketTenants).ForEachBucket(func(name []byte) error {
			tb := tx.Bucket(bucketTenants).Bucket(name)
			for _, b := range tenantBuckets {
				if _, err := tb.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		switch got := binary.BigEndian.Uint64(v); {
		case got == SchemaVersion:
			return nil
		case got == 1 || got == 2:
			if got == 1 {
				if notes, err = rebuildNameIndexes(tx); err != nil {
					return fmt.Errorf("migrate schema version 1 to %d: %w", SchemaVersion, err)
				}
			}
			if err := buildPoolIndex(tx); err != nil {
				return fmt.Errorf("migrate schema version %d to %d: %w", got, SchemaVersion, err)
			}
			return meta.Put(keyVersion, u64(SchemaVersion))
		default:
			return fmt.Errorf("database schema version %d is not supported by this gatehouse (it reads version %d); use the matching release or restore a backup", got, SchemaVersion)
		}
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt: initialise %s: %w", path, err)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1000
	}
	return &Store{db: db, pager: newPager(), commits: newCommitter(db, opts.MaxBatch), notes: notes}, nil
}

// Notes says what opening the store found worth an operator's attention
// (a migration's conflicts); the gateway logs them as warnings.
func (s *Store) Notes() []string { return s.notes }

// checkFile refuses an existing file of zero bytes: bbolt would silently
// make it a new, empty directory, and the IdP's users would seem gone.
func checkFile(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("bolt: %s: %w", path, err)
	case fi.IsDir():
		return fmt.Errorf("bolt: %s is a directory, not a database file", path)
	case fi.Size() == 0:
		return &DamagedError{Path: path, Reason: "the file is empty (0 bytes)"}
	}
	return nil
}

// DamagedError says the database file cannot be read as a Gatehouse store.
type DamagedError struct {
	Path   string
	Reason string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("the database file %s is damaged: %s. Gatehouse will not start on it, so that nothing is lost or overwritten. "+
		"To recover, stop Gatehouse, keep the damaged file aside (mv %s %s.damaged) and copy your latest backup of gatehouse.db in its place; "+
		"with no backup, remove it to start empty (the IdP's next full sync provisions users and groups again, under new ids)",
		e.Path, e.Reason, e.Path, e.Path)
}

// openDB opens the bbolt file, turning a held lock and a damaged file
// into errors that say so. bbolt asserts (panics) on pages it cannot make
// sense of, and a read past the end of a truncated mapping is a fault:
// both are recovered here.
func openDB(path string, opts Options) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			if db != nil {
				_ = db.Close()
			}
			db, err = nil, &DamagedError{Path: path, Reason: fmt.Sprint(v)}
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        opts.Timeout,
		NoSync:         opts.NoSync,
		NoFreelistSync: true, // the freelist is rebuilt at open; commits write less
		FreelistType:   bolt.FreelistMapType,
		ReadOnly:       opts.ReadOnly,
	})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("bolt: %s is locked by another process (most likely another Gatehouse using the same data_dir); "+
			"waited %s (store.open_timeout). Stop the other process or give this one its own data_dir", path, opts.Timeout)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrVersionMismatch),
		err != nil && strings.Contains(err.Error(), "file size too small"):
		return nil, &DamagedError{Path: path, Reason: err.Error()}
	case err != nil:
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	// A file cut short can still have valid meta pages; its pages then
	// end before the meta page says they do.
	fi, statErr := os.Stat(path)
	if statErr != nil {
		db.Close()
		return nil, fmt.Errorf("bolt: %s: %w", path, statErr)
	}
	var want int64
	_ = db.View(func(tx *bolt.Tx) error { want = tx.Size(); return nil })
	if fi.Size() < want {
		db.Close()
		return nil, &DamagedError{Path: path, Reason: fmt.Sprintf("it is %d bytes long but its metadata describes %d bytes (it was truncated, or copied while being written)", fi.Size(), want)}
	}
	return db, nil
}

// CommitStats reports the group commit's counters: commits, the writes
// they carried and the time they took. Writes per commit is how well
// concurrent requests share fsyncs.
func (s *Store) CommitStats() CommitStats {
	st := &s.commits.stats
	return CommitStats{Commits: st.commits.Load(), Writes: st.writes.Load(), Time: time.Duration(st.nanos.Load())}
}

// Close commits the writes already queued, then closes the database;
// committed writes are already durable.
func (s *Store) Close() error {
	s.commits.close()
	return s.db.Close()
}

func (s *Store) Users() gateway.UserStore   { return userStore{s} }
func (s *Store) Groups() gateway.GroupStore { return groupStore{s} }
func (s *Store) Outbox() gateway.Outbox     { return outboxStore{s} }
func (s *Store) IDMaps() gateway.IDMaps     { return idMapStore{s} }
func (s *Store) Sessions() gateway.SessionStore {
	return sessionStore{s}
}
func (s *Store) Keys() gateway.KeyStore { return keyStore{s} }

func (s *Store) Records() gateway.RecordStore { return recordStore{s} }
func (s *Store) Audit() gateway.AuditLog      { return auditLog{s} }
func (s *Store) Ephemeral() gateway.EphemeralStore {
	return ephemeralStore{s}
}

// view runs fn in a read transaction on org's bucket; fn gets nil when
// the org has no data yet.
func (s *Store) view(ctx context.Context, org gateway.OrgID, fn func(tb *bolt.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if org == "" {
		return errNoOrg
	}
	return unavailable(s.db.View(func(tx *bolt.Tx) error {
		return fn(tx.Bucket(bucketTenants).Bucket([]byte(org)))
	}))
}

// unavailable marks the errors of a store that is closing: the request
// may be retried against this or another instance.
func unavailable(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) || errors.Is(err, errClosed) {
		return &gateway.Error{Code: gateway.ErrUnavailable, Message: "The gateway is shutting down; retry the request.", Err: err}
	}
	return err
}

// write runs fn in a group-committed write transaction on org's bucket
// (created on first use). fn may run more than once.
func (s *Store) write(ctx context.Context, org gateway.OrgID, fn func(tb *bolt.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if org == "" {
		return errNoOrg
	}
	return unavailable(s.commits.write(org, func(tx *bolt.Tx) error {
		tb, err := tenantBucket(tx, org)
		if err != nil {
			return err
		}
		// Records and events are keyed by increasing values (UUIDv7 ids,
		// sequence numbers), so inserts append: pack pages full instead of
		// splitting them half-empty (bbolt's default), which more than
		// halves these buckets and the memory their mapping occupies.
		for _, name := range appendOnly {
			tb.Bucket(name).FillPercent = 0.95
		}
		return fn(tb)
	}))
}

// errNoOrg refuses a call that names no organization: nothing is read
// from or written to any organization in its place.
var errNoOrg = gateway.Errorf(gateway.ErrInvalid, "no organization: the store call names none")

func tenantBucket(tx *bolt.Tx, org gateway.OrgID) (*bolt.Bucket, error) {
	tenants := tx.Bucket(bucketTenants)
	if tb := tenants.Bucket([]byte(org)); tb != nil {
		return tb, nil
	}
	tb, err := tenants.CreateBucket([]byte(org))
	if err != nil {
		return nil, err
	}
	for _, name := range tenantBuckets {
		if _, err := tb.CreateBucket(name); err != nil {
			return nil, err
		}
	}
	return tb, nil
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// fold is the key of the unique name indexes (see package fold).
func fold(s string) string { return namefold.Key(s) }

// pair builds the composite key a 0x00 b.
func pair(a, b string) []byte {
	k := make([]byte, 0, len(a)+1+len(b))
	k = append(k, a...)
	k = append(k, 0)
	return append(k, b...)
}

// prefixed returns the second halves of the keys in b that start with a 0x00.
func prefixed(b *bolt.Bucket, a string) []string {
	var out []string
	p := pair(a, "")
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		out = append(out, string(k[len(p):]))
	}
	return out
}

func addCounter(tb *bolt.Bucket, key []byte, delta int64) error {
	b := tb.Bucket(bCounters)
	var n uint64
	if v := b.Get(key); v != nil {
		n = binary.BigEndian.Uint64(v)
	}
	n = uint64(int64(n) + delta)
	return b.Put(key, u64(n))
}

func counter(tb *bolt.Bucket, key []byte) int {
	if v := tb.Bucket(bCounters).Get(key); v != nil {
		return int(binary.BigEndian.Uint64(v))
	}
	return 0
}

// appendEvents writes events to the org's outbox, assigning Seq.
// encodedEvents are events encoded before their transaction: encoding
// (a user's document, twice: the record and the event's snapshot) is
// most of a write's CPU, and the commit runs one transaction at a time,
// so what can be done outside it is.
type encodedEvents struct {
	events []gateway.Event
	raw    [][]byte
}

// encodeEvents stamps events with their organization and encodes them
// (their sequence numbers are the key, given in the transaction).
func encodeEvents(org gateway.OrgID, events []gateway.Event) (encodedEvents, error) {
	out := encodedEvents{events: events, raw: make([][]byte, len(events))}
	for i := range events {
		if events[i].Org == "" {
			events[i].Org = org
		}
		raw, err := encodeEvent(&events[i])
		if err != nil {
			return encodedEvents{}, fmt.Errorf("encode event: %w", err)
		}
		out.raw[i] = raw
	}
	return out, nil
}

// append numbers the events and records them in the outbox.
func (e encodedEvents) append(tb *bolt.Bucket) error {
	ob := tb.Bucket(bOutbox)
	for i, raw := range e.raw {
		seq, err := ob.NextSequence()
		if err != nil {
			return err
		}
		e.events[i].Seq = seq
		if err := ob.Put(u64(seq), raw); err != nil {
			return err
		}
	}
	return addCounter(tb, counterOutbox, int64(len(e.raw)))
}

// appendEvents encodes and records events decided in the transaction.
func appendEvents(tb *bolt.Bucket, org gateway.OrgID, events []gateway.Event) error {
	ob := tb.Bucket(bOutbox)
	for i := range events {
		seq, err := ob.NextSequence()
		if err != nil {
			return err
		}
		events[i].Seq = seq
		if events[i].Org == "" {
			events[i].Org = org
		}
		raw, err := encodeEvent(&events[i])
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		if err := ob.Put(u64(seq), raw); err != nil {
			return err
		}
	}
	return addCounter(tb, counterOutbox, int64(len(events)))
}

var (
	checkStamped       = storekit.CheckStamped
	unstamped          = storekit.Unstamped
	notFound           = storekit.NotFound
	preconditionFailed = storekit.PreconditionFailed
)

// openReadOnly opens an existing file without changing it.
func openReadOnly(path string, opts Options) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("bolt: %w", err)
	}
	db, err := openDB(path, opts)
	if err != nil {
		return nil, err
	}
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || meta.Get(keyVersion) == nil {
			return fmt.Errorf("%s holds no Gatehouse data", path)
		}
		if got := binary.BigEndian.Uint64(meta.Get(keyVersion)); got != SchemaVersion {
			return fmt.Errorf("%s is at schema version %d; this gatehouse reads %d (it migrates the file when it starts)", path, got, SchemaVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt: %w", err)
	}
	return &Store{db: db, pager: newPager(), commits: newCommitter(db, 1)}, nil
}

package gateway

import (
	"context"
	"time"
)

// Store is the gateway's durable state. Every write that changes a user or
// a group writes the record, its indexes and its outbox events in one
// transaction: either all of it is durable or none of it is.
//
// The provisioning core owns the records' identity and bookkeeping: it
// stamps ID, Org, Version and the timestamps before it calls the store,
// and takes event snapshots after stamping, so an event says exactly what
// was stored. The store checks that stamping (a new record is at version
// 1, a change at the stored version + 1) and refuses anything else as an
// internal error.
//
// Update and Delete take a function that decides the change from the
// current record inside the transaction. It may run more than once (writes
// are group-committed and retried), so it must be cheap and free of side
// effects beyond its return values: heavy work (applying a large PATCH)
// happens before the call, with the version it was computed from passed
// as ifVersion.
type Store interface {
	Orgs() OrgStore
	Users() UserStore
	Groups() GroupStore
	Outbox() Outbox
	IDMaps() IDMaps
	Sessions() SessionStore
	Keys() KeyStore
	Ephemeral() EphemeralStore
	Records() RecordStore
	Audit() AuditLog
	Close() error
}

// EphemeralStore keeps short-lived single-use values: sign-in requests in
// flight (InResponseTo, OIDC state and nonce) and the assertion ids seen
// (replay). Keys are scoped by org and namespace; an expired value is
// as good as absent.
type EphemeralStore interface {
	// PutIfAbsent stores value until expires unless the key is there (and
	// not expired); it reports whether it stored it.
	PutIfAbsent(ctx context.Context, org OrgID, namespace, key string, value []byte, expires time.Time) (bool, error)
	// Take returns the value and deletes it (single use); nil when absent
	// or expired.
	Take(ctx context.Context, org OrgID, namespace, key string) ([]byte, error)
	// PutIfAbsentAndTake is PutIfAbsent and, when it stored, Take of
	// another key ("" takes nothing), in one write: a sign-in records its
	// assertion as used and takes its request with one commit.
	PutIfAbsentAndTake(ctx context.Context, org OrgID, putNamespace, putKey string, value []byte, expires time.Time, takeNamespace, takeKey string) (bool, []byte, error)
	// Sweep deletes what expired before now, and says how many.
	Sweep(ctx context.Context, org OrgID, now time.Time) (int, error)
}

// KeyStore keeps the gateway's own key material (the identity token's
// signing keys, the SAML SP key), generated on first start. Keys are
// scoped by org.
type KeyStore interface {
	// Get returns the named key, or nil when there is none.
	Get(ctx context.Context, org OrgID, name string) ([]byte, error)
	// PutIfAbsent stores value under name unless a value is there already,
	// and returns the stored one: two gateways starting at once agree.
	PutIfAbsent(ctx context.Context, org OrgID, name string, value []byte) ([]byte, error)
}

// IDMaps keep, per adapter, the downstream's own id of each user or group
// (the id the app's API answered a create with), so later calls can name
// it. Keys are scoped by org and adapter.
type IDMaps interface {
	// Get returns the downstream id of the gateway's resource id ("" when
	// there is none).
	Get(ctx context.Context, org OrgID, adapter, id string) (string, error)
	Put(ctx context.Context, org OrgID, adapter, id, downstreamID string) error
	Delete(ctx context.Context, org OrgID, adapter, id string) error
}

// UserIndex names a secondary index over users.
type UserIndex string

const (
	UserByUserName   UserIndex = "userName"   // unique, case-folded
	UserByExternalID UserIndex = "externalId" // exact
	UserByEmail      UserIndex = "email"      // lower-cased, every email of the user
	UserByPool       UserIndex = "pool"       // pool id → its members
)

// GroupIndex names a secondary index over groups.
type GroupIndex string

const (
	GroupByDisplayName GroupIndex = "displayName" // unique, case-folded
	GroupByExternalID  GroupIndex = "externalId"  // exact
	GroupByMember      GroupIndex = "member"      // user id → groups holding it
)

// UserChange is what a UserUpdateFunc decides. A write that changes
// nothing says so with Unchanged, never by leaving Events empty: logins
// and role changes write records without protocol events, and some events
// (an invitation) are recorded without a change to the record.
type UserChange struct {
	User      *User        // the new record, stamped (Version = stored + 1)
	Events    []Event      // recorded in the same transaction
	Unchanged bool         // leave the record and its version as they are; Events are still recorded
	Audit     []AuditEntry // recorded in the same transaction (a manager's change)
}

// UserUpdateFunc decides the change to a user. Returning an error aborts
// the transaction and nothing is written.
type UserUpdateFunc func(cur *User) (UserChange, error)

// UserDeletion is what a UserDeleteFunc decides: the events, and the
// groups the user leaves, stamped (their member lists change, so their
// versions move).
type UserDeletion struct {
	Events []Event
	Groups []*Group
	Audit  []AuditEntry // recorded in the same transaction
}

// UserDeleteFunc decides the deletion of a user given the groups it is a
// member of (their edges go with the user).
type UserDeleteFunc func(cur *User, groups []*Group) (UserDeletion, error)

// UserStore persists users. Errors are *Error values: ErrNotFound,
// ErrConflict (userName taken, any case), ErrPreconditionFailed (ifVersion
// is non-zero and differs from the stored version).
type UserStore interface {
	// Create stores a new, stamped user (Version 1), its events and any
	// audit entries in one transaction.
	Create(ctx context.Context, u *User, events []Event, audit ...AuditEntry) error
	Get(ctx context.Context, org OrgID, id string) (*User, error)
	GetMany(ctx context.Context, org OrgID, ids []string) ([]*User, error) // skips missing ids
	Update(ctx context.Context, org OrgID, id string, ifVersion uint64, fn UserUpdateFunc) (*User, error)
	// Replace writes u, decided before the call from the stored version
	// ifVersion (non-zero; u is stamped ifVersion + 1), with its events
	// and audit entries, if the stored user is still at ifVersion
	// (ErrPreconditionFailed otherwise, and nothing is written). It is
	// Update for a change computed outside the transaction (most are), so
	// a backend can do its encoding outside it too.
	Replace(ctx context.Context, u *User, ifVersion uint64, events []Event, audit ...AuditEntry) error
	Delete(ctx context.Context, org OrgID, id string, ifVersion uint64, fn UserDeleteFunc) error
	Lookup(ctx context.Context, org OrgID, index UserIndex, value string) ([]string, error)
	// List returns users in stable id order, skipping offset, at most limit
	// (limit 0 returns none), and the total number of users.
	List(ctx context.Context, org OrgID, offset, limit int) ([]*User, int, error)
	// Scan calls fn for every user with an id after after ("": from the
	// first) in id order until fn returns false. fn must not use the store.
	Scan(ctx context.Context, org OrgID, after string, fn func(*User) bool) error
	// ScanSummaries is Scan with users that carry no Attributes (the
	// protocol document): listing and filtering need only the typed
	// fields, and skipping the document makes a scan cheaper. With
	// contains (lower-case ASCII) set, the store may skip, undecoded, users
	// whose record cannot hold it in any field (a search's first cut; fn
	// still decides).
	ScanSummaries(ctx context.Context, org OrgID, after, contains string, fn func(*User) bool) error
}

// GroupChange is what a GroupUpdateFunc decides: the new, stamped
// record and the membership edges to write (new members, or a new
// display) and to remove. Unchanged works as in UserChange.
type GroupChange struct {
	Group     *Group
	Put       []Member // edges to add or overwrite
	Remove    []string // user ids whose edges go
	Events    []Event
	Unchanged bool
}

// GroupUpdateFunc decides the change to a group.
type GroupUpdateFunc func(cur *Group) (GroupChange, error)

// GroupDeleteFunc decides the events of a group's deletion.
type GroupDeleteFunc func(cur *Group, members []Member) ([]Event, error)

// GroupStore persists groups and their membership edges (stored in both
// directions in the same transaction). A member id that names no user is
// rejected with ErrInvalid naming the id, and nothing is written. Every
// change of a group's members moves its version, so a version names one
// member list.
type GroupStore interface {
	// Create stores a new, stamped group (Version 1) with its members.
	Create(ctx context.Context, g *Group, members []Member, events []Event) error
	Get(ctx context.Context, org OrgID, id string) (*Group, error)
	// GetWithMembers reads a group and its members in one transaction.
	GetWithMembers(ctx context.Context, org OrgID, id string) (*Group, []Member, error)
	GetMany(ctx context.Context, org OrgID, ids []string) ([]*Group, error)
	Members(ctx context.Context, org OrgID, id string) ([]Member, error)
	Update(ctx context.Context, org OrgID, id string, ifVersion uint64, fn GroupUpdateFunc) (*Group, error)
	Delete(ctx context.Context, org OrgID, id string, ifVersion uint64, fn GroupDeleteFunc) error
	Lookup(ctx context.Context, org OrgID, index GroupIndex, value string) ([]string, error)
	List(ctx context.Context, org OrgID, offset, limit int) ([]*Group, int, error)
	Scan(ctx context.Context, org OrgID, fn func(*Group) bool) error
	// Memberships returns the groups of each given user, read in one
	// transaction (a page of users needs them all at once).
	Memberships(ctx context.Context, org OrgID, userIDs []string) (map[string][]GroupRef, error)
}

// GroupRef names a group a user belongs to.
type GroupRef struct {
	ID          string
	DisplayName string
}

// Outbox holds the events recorded with each change, in sequence order,
// and what delivery needs to be durable: a cursor per consumer (each
// adapter), the dead letters each consumer set aside, and pruning of the
// events every consumer is past.
type Outbox interface {
	// After returns up to limit events of org with Seq > seq.
	After(ctx context.Context, org OrgID, seq uint64, limit int) ([]Event, error)
	Len(ctx context.Context, org OrgID) (int, error)
	// LastSeq is the Seq of the newest event ever recorded (0: none).
	LastSeq(ctx context.Context, org OrgID) (uint64, error)
	// Cursor is the Seq up to which consumer is done (0 at first).
	Cursor(ctx context.Context, org OrgID, consumer string) (uint64, error)
	// Ack moves consumer's cursor forward to seq (never back) and records
	// the dead letters set aside and removed on the way, in one write.
	Ack(ctx context.Context, org OrgID, consumer string, seq uint64, add []DeadLetter, remove []uint64) error
	// DeadLetters lists consumer's dead letters in Seq order.
	DeadLetters(ctx context.Context, org OrgID, consumer string) ([]DeadLetter, error)
	// Prune deletes the events with Seq <= upTo that were recorded before
	// before, oldest first, at most limit of them, and says how many went.
	Prune(ctx context.Context, org OrgID, upTo uint64, before time.Time, limit int) (int, error)
	// Changed returns a channel that is closed at the latest when the
	// next write recording events of org commits (a consumer waiting
	// for new events selects on it; it may be closed sooner, by other
	// commits, and then reads again).
	Changed(org OrgID) <-chan struct{}
}

// DeadLetter is an event a consumer set aside: it failed permanently or
// too often, or an earlier event of the same user or group had (it is
// held back behind it so that order is kept). It keeps a copy of the
// event, so pruning the outbox never loses one.
type DeadLetter struct {
	Event      Event
	Attempts   int
	LastError  string
	At         time.Time
	HeldBehind uint64 // Seq of the dead letter it waits behind (0: it failed itself)
}

// Leaser is what a store that several replicas share offers so that one
// replica at a time does a piece of work (delivering an organization's
// events). A store one process alone opens (bbolt) does not offer it: that
// process holds every lease.
type Leaser interface {
	// TryLease claims name for this process unless another holds it.
	// Held, it returns a channel closed when the hold is lost (the
	// database connection holding it broke): the work must stop at once,
	// since another replica may take it up.
	TryLease(ctx context.Context, name string) (lost <-chan struct{}, ok bool, err error)
	// ReleaseLease gives name up (another replica may take it).
	ReleaseLease(ctx context.Context, name string)
}

// ChangeFeed is offered by a store that several replicas share: it tells
// this process of the administrative records (settings, pools, roles,
// credentials) that any replica wrote, so that what it keeps in memory
// follows within a moment.
type ChangeFeed interface {
	// OnRecordChange registers fn, called on a goroutine of the store's
	// with the organization and kind of each record written, with (org,
	// "") when records of every kind of org changed (its data was erased),
	// and with ("", "") when changes may have been missed (the feed
	// reconnected): then anything kept may be stale. fn must not block.
	OnRecordChange(fn func(org OrgID, kind string))
}

package gateway

import (
	"context"
	"time"
)

// DumpItem is one piece of a store's state as it moves between backends
// (gatehouse store copy): exactly one field is set. Event and audit
// numbers, versions and cursors are kept as they are, so deliveries,
// replays, the events feed and If-Match carry on across the move.
// Ephemeral values move too, while unexpired: an assertion used just
// before the move stays used (replay protection), and a sign-in in flight
// completes after it.
type DumpItem struct {
	Org OrgID // whose (OperatorScope for the operator's audit entries)

	Registry   *Organization // a registry entry
	User       *User
	Group      *Group // with Members
	Members    []Member
	Event      *Event // Seq kept
	LastSeq    uint64 // the organization's newest event number (older ones may be pruned)
	Cursor     *DumpCursor
	DeadLetter *DumpDeadLetter
	Session    *Session
	LastLogin  *DumpLastLogin
	Key        *DumpKey
	Record     *DumpRecord
	Audit      *AuditEntry // Seq kept
	IDMap      *DumpIDMap
	Ephemeral  *DumpEphemeral
}

// DumpEphemeral is a short-lived single-use value.
type DumpEphemeral struct {
	Namespace, Key string
	Expires        time.Time
	Value          []byte
}

// DumpCursor is a consumer's delivery cursor.
type DumpCursor struct {
	Consumer string
	Seq      uint64
}

// DumpDeadLetter is a consumer's dead letter.
type DumpDeadLetter struct {
	Consumer string
	DeadLetter
}

// DumpLastLogin is when a user last signed in.
type DumpLastLogin struct {
	UserID string
	At     time.Time
}

// DumpKey is a piece of the gateway's key material.
type DumpKey struct {
	Name  string
	Value []byte
}

// DumpRecord is an administrative record of a kind.
type DumpRecord struct {
	Kind string
	Record
}

// DumpIDMap is an adapter's downstream id of a resource.
type DumpIDMap struct {
	Adapter, ID, DownstreamID string
}

// Exporter is a store whose whole state can be read out, organization by
// organization, for a move to another backend.
type Exporter interface {
	Export(ctx context.Context, fn func(DumpItem) error) error
}

// Importer is a store that can take in another's state; it must hold no
// organization yet. Import writes every item items hands to put, in one
// transaction, or nothing (items' error, or put's, undoes it all).
type Importer interface {
	Import(ctx context.Context, items func(put func(DumpItem) error) error) error
}

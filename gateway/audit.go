package gateway

import (
	"context"
	"encoding/json"
	"time"
)

// Actor is who made a change: a manager signed in by SSO, an admin API
// token, the configuration file at start-up, or the gateway itself.
type Actor struct {
	Kind  string `json:"kind"`            // session, token, config, system
	ID    string `json:"id"`              // user id, token id, or a fixed word
	Email string `json:"email,omitempty"` // of a signed-in manager
}

// Actor kinds.
const (
	ActorSession = "session"
	ActorToken   = "token"
	ActorConfig  = "config"
	ActorSystem  = "system"
	// ActorIdP is an organization's IdP (its logout); ID is its issuer.
	ActorIdP = "idp"
)

// String names the actor in one token (audit filters use it).
func (a Actor) String() string { return a.Kind + ":" + a.ID }

// AuditEntry records one change a manager, a token or the configuration
// made: who, what, to which target, the state before and after, when, and
// the request it came with. Secrets never enter Before or After.
type AuditEntry struct {
	Seq       uint64          `json:"seq"`
	Org       OrgID           `json:"tenant"`
	Time      time.Time       `json:"time"`
	Actor     Actor           `json:"actor"`
	Action    string          `json:"action"` // e.g. identity.update, user.role, pool.create
	Target    string          `json:"target"` // kind:id, e.g. user:0190…, pool:support
	Before    json.RawMessage `json:"before,omitempty"`
	After     json.RawMessage `json:"after,omitempty"`
	RequestID string          `json:"request_id,omitempty"`
}

// AuditQuery selects a page of the audit log, newest first.
type AuditQuery struct {
	Actor  string // Actor.String(); "" any
	Target string // kind:id; "" any
	Before uint64 // entries with Seq < Before; 0: from the newest
	Limit  int
}

// AuditLog keeps the audit entries of each org.
type AuditLog interface {
	// Append records entries (stamped here with Seq) in one write.
	Append(ctx context.Context, org OrgID, entries ...AuditEntry) error
	// List returns a page, newest first, and the Before of the next page
	// (0: no more).
	List(ctx context.Context, org OrgID, q AuditQuery) ([]AuditEntry, uint64, error)
}

// Record is one small administrative record (identity settings, a pool,
// an invitation, an API token) as the store keeps it.
type Record struct {
	ID      string
	Version uint64
	Value   []byte // JSON
}

// RecordStore keeps the gateway's administrative records by kind and id,
// each with a version for optimistic concurrency. Every write carries its
// Journal, recorded in the same transaction.
type RecordStore interface {
	// Get returns a record; ErrNotFound when there is none.
	Get(ctx context.Context, org OrgID, kind, id string) (Record, error)
	// List returns every record of a kind in id order.
	List(ctx context.Context, org OrgID, kind string) ([]Record, error)
	// Put writes value as version ifVersion+1: ifVersion 0 creates
	// (ErrConflict when the id is taken), otherwise the stored version
	// must be ifVersion (ErrPreconditionFailed). It returns the new
	// version.
	Put(ctx context.Context, org OrgID, kind, id string, ifVersion uint64, value []byte, j Journal) (uint64, error)
	// Delete removes a record at ifVersion (0: whatever its version).
	Delete(ctx context.Context, org OrgID, kind, id string, ifVersion uint64, j Journal) error
}

// Journal is what a record write records beside the record, in the same
// transaction: audit entries and outbox events (invitation.created).
type Journal struct {
	Audit  []AuditEntry
	Events []Event
}

package gateway

import "context"

// Store is the gateway's durable state. Every write that changes a user or
// a group writes the record, its indexes and its outbox events in one
// transaction: either all of it is durable or none of it is.
//
// Update and Delete take a function that computes the change from the
// current record inside the transaction. It may run more than once (writes
// are group-committed and retried), so it must not have side effects beyond
// its return values.
type Store interface {
	Users() UserStore
	Groups() GroupStore
	Outbox() Outbox
	Close() error
}

// UserIndex names a secondary index over users.
type UserIndex string

const (
	UserByUserName   UserIndex = "userName"   // unique, case-folded
	UserByExternalID UserIndex = "externalId" // exact
	UserByEmail      UserIndex = "email"      // lower-cased, every email of the user
)

// GroupIndex names a secondary index over groups.
type GroupIndex string

const (
	GroupByDisplayName GroupIndex = "displayName" // unique, case-folded
	GroupByExternalID  GroupIndex = "externalId"  // exact
	GroupByMember      GroupIndex = "member"      // user id → groups holding it
)

// UserUpdateFunc computes the new version of a user. Returning an error
// aborts the transaction and nothing is written.
type UserUpdateFunc func(old *User) (*User, []Event, error)

// UserDeleteFunc computes the events of a deletion; groups are the ids of
// the groups the user was a member of (their edges go with the user).
type UserDeleteFunc func(old *User, groups []string) ([]Event, error)

// UserStore persists users. Errors are *Error values: ErrNotFound,
// ErrConflict (userName taken, any case), ErrPreconditionFailed (ifVersion
// is non-zero and differs from the stored version).
type UserStore interface {
	Create(ctx context.Context, u *User, events []Event) error
	Get(ctx context.Context, tenant, id string) (*User, error)
	GetMany(ctx context.Context, tenant string, ids []string) ([]*User, error) // skips missing ids
	Update(ctx context.Context, tenant, id string, ifVersion uint64, fn UserUpdateFunc) (*User, error)
	Delete(ctx context.Context, tenant, id string, ifVersion uint64, fn UserDeleteFunc) error
	Lookup(ctx context.Context, tenant string, index UserIndex, value string) ([]string, error)
	// List returns users in stable id order, skipping offset, at most limit
	// (limit 0 returns none), and the total number of users.
	List(ctx context.Context, tenant string, offset, limit int) ([]*User, int, error)
	// Scan calls fn for every user in id order until fn returns false.
	Scan(ctx context.Context, tenant string, fn func(*User) bool) error
}

// GroupUpdateFunc computes the new version of a group and its full member
// list from the current ones.
type GroupUpdateFunc func(old *Group, members []Member) (*Group, []Member, []Event, error)

// GroupStore persists groups and their membership edges (stored in both
// directions in the same transaction). A member id that names no user is
// rejected with ErrInvalid naming the id, and nothing is written.
type GroupStore interface {
	Create(ctx context.Context, g *Group, members []Member, events []Event) error
	Get(ctx context.Context, tenant, id string) (*Group, error)
	GetMany(ctx context.Context, tenant string, ids []string) ([]*Group, error)
	Members(ctx context.Context, tenant, id string) ([]Member, error)
	Update(ctx context.Context, tenant, id string, ifVersion uint64, fn GroupUpdateFunc) (*Group, []Member, error)
	Delete(ctx context.Context, tenant, id string, ifVersion uint64, fn func(old *Group, members []Member) ([]Event, error)) error
	Lookup(ctx context.Context, tenant string, index GroupIndex, value string) ([]string, error)
	List(ctx context.Context, tenant string, offset, limit int) ([]*Group, int, error)
	Scan(ctx context.Context, tenant string, fn func(*Group) bool) error
	// Memberships returns the groups of each given user, read in one
	// transaction (a page of users needs them all at once).
	Memberships(ctx context.Context, tenant string, userIDs []string) (map[string][]GroupRef, error)
}

// GroupRef names a group a user belongs to.
type GroupRef struct {
	ID          string
	DisplayName string
}

// Outbox reads the events recorded with each change, in sequence order.
// Delivery (dispatch, acknowledgement, dead letters) builds on it.
type Outbox interface {
	// After returns up to limit events of tenant with Seq > seq.
	After(ctx context.Context, tenant string, seq uint64, limit int) ([]Event, error)
	Len(ctx context.Context, tenant string) (int, error)
}

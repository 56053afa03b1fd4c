// Package provision applies Gatehouse's provisioning rules: which
// provisioning method may write, the defaults every new user gets, and the
// normalized events each change produces. Protocol packages call it; it
// writes through the gateway.Store so that a record, its indexes and its
// events land in one transaction.
package provision

import (
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// Policy is the organization's provisioning configuration.
type Policy struct {
	// Method is the one active provisioning method; only writes from that
	// source are accepted.
	Method      gateway.Source
	DefaultPool string
	DefaultRole string
}

// Service runs provisioning commands.
type Service struct {
	store  gateway.Store
	clock  gateway.Clock
	policy Policy
}

// New returns a Service writing to store.
func New(store gateway.Store, clock gateway.Clock, policy Policy) *Service {
	if clock == nil {
		clock = gateway.SystemClock{}
	}
	return &Service{store: store, clock: clock, policy: policy}
}

// Meta is what every command carries about its origin.
type Meta struct {
	Tenant    string
	Source    gateway.Source
	RequestID string
}

func (s *Service) allow(m Meta) error {
	if m.Source != s.policy.Method {
		return gateway.Errorf(gateway.ErrForbidden,
			"provisioning through %s is disabled: the active provisioning method is %q", m.Source, s.policy.Method)
	}
	return nil
}

// NewID returns a new resource id. Version 7 UUIDs are time-ordered, so new
// records append to the end of the store's B+tree and list order follows
// creation order.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

func (s *Service) event(m Meta, op gateway.Op) gateway.Event {
	return gateway.Event{
		ID:         NewID(),
		Tenant:     m.Tenant,
		Op:         op,
		Source:     m.Source,
		OccurredAt: s.clock.Now(),
		RequestID:  m.RequestID,
	}
}

// CreateUser stores a new user built by the caller (typed fields and
// Attributes filled in) and records user.created.
func (s *Service) CreateUser(ctx context.Context, m Meta, u *gateway.User) (*gateway.User, error) {
	if err := s.allow(m); err != nil {
		return nil, err
	}
	if u.UserName == "" {
		return nil, gateway.Errorf(gateway.ErrInvalid, "userName is required and must not be empty")
	}
	now := s.clock.Now()
	u.ID = NewID()
	u.Tenant = m.Tenant
	u.Source = m.Source
	if u.Pool == "" {
		u.Pool = s.policy.DefaultPool
	}
	if u.Role == "" {
		u.Role = s.policy.DefaultRole
	}
	u.Created, u.Modified = now, now
	u.Version = 1
	ev := s.event(m, gateway.OpUserCreated)
	ev.User = snapshotUser(u)
	if err := s.store.Users().Create(ctx, u, []gateway.Event{ev}); err != nil {
		return nil, err
	}
	return u, nil
}

// UpdateUser replaces a user with what change computes from the current
// record, and records user.updated and/or user.deactivated/reactivated.
// ifVersion 0 means unconditional. change may run more than once.
func (s *Service) UpdateUser(ctx context.Context, m Meta, id string, ifVersion uint64, change func(old *gateway.User) (*gateway.User, error)) (*gateway.User, error) {
	if err := s.allow(m); err != nil {
		return nil, err
	}
	return s.store.Users().Update(ctx, m.Tenant, id, ifVersion, func(old *gateway.User) (*gateway.User, []gateway.Event, error) {
		nu, err := change(old)
		if err != nil {
			return nil, nil, err
		}
		if nu.UserName == "" {
			return nil, nil, gateway.Errorf(gateway.ErrInvalid, "userName is required and must not be empty")
		}
		// Identity and provenance are the gateway's, never the client's.
		nu.ID, nu.Tenant, nu.Source, nu.Created = old.ID, old.Tenant, old.Source, old.Created
		if nu.Pool == "" {
			nu.Pool = old.Pool
		}
		if nu.Role == "" {
			nu.Role = old.Role
		}
		changed := userChanges(old, nu)
		if len(changed) == 0 {
			// Nothing changed: keep the record (and its version) as it is
			// so that idempotent retries produce no events.
			nu.Modified, nu.Version = old.Modified, old.Version
			return nu, nil, nil
		}
		nu.Modified = s.clock.Now()
		var events []gateway.Event
		other := slices.DeleteFunc(slices.Clone(changed), func(c string) bool { return c == "active" })
		if len(other) > 0 {
			ev := s.event(m, gateway.OpUserUpdated)
			ev.Changed = other
			events = append(events, ev)
		}
		if old.Active != nu.Active {
			op := gateway.OpUserDeactivated
			if nu.Active {
				op = gateway.OpUserReactivated
			}
			events = append(events, s.event(m, op))
		}
		snap := snapshotUser(nu)
		for i := range events {
			events[i].User = snap
		}
		return nu, events, nil
	})
}

// DeleteUser removes a user and its memberships and records user.deleted.
func (s *Service) DeleteUser(ctx context.Context, m Meta, id string, ifVersion uint64) error {
	if err := s.allow(m); err != nil {
		return err
	}
	return s.store.Users().Delete(ctx, m.Tenant, id, ifVersion, func(old *gateway.User, groups []string) ([]gateway.Event, error) {
		ev := s.event(m, gateway.OpUserDeleted)
		ev.User = snapshotUser(old)
		events := []gateway.Event{ev}
		// Memberships end with the user; say so per group so that a
		// downstream that mirrors groups needs no special case.
		for _, g := range groups {
			rm := s.event(m, gateway.OpGroupMembersRemoved)
			rm.Group = &gateway.Group{ID: g, Tenant: m.Tenant}
			rm.MemberIDs = []string{old.ID}
			events = append(events, rm)
		}
		return events, nil
	})
}

// CreateGroup stores a new group with its members and records
// group.created (carrying the initial member ids).
func (s *Service) CreateGroup(ctx context.Context, m Meta, g *gateway.Group, members []gateway.Member) (*gateway.Group, error) {
	if err := s.allow(m); err != nil {
		return nil, err
	}
	if g.DisplayName == "" {
		return nil, gateway.Errorf(gateway.ErrInvalid, "displayName is required and must not be empty")
	}
	members = dedupeMembers(members)
	now := s.clock.Now()
	g.ID = NewID()
	g.Tenant = m.Tenant
	g.Source = m.Source
	g.Created, g.Modified = now, now
	g.Version = 1
	ev := s.event(m, gateway.OpGroupCreated)
	ev.Group = snapshotGroup(g)
	ev.MemberIDs = memberIDs(members)
	if err := s.store.Groups().Create(ctx, g, members, []gateway.Event{ev}); err != nil {
		return nil, err
	}
	return g, nil
}

// UpdateGroup replaces a group and its member list with what change
// computes, recording group.updated and members_added/members_removed.
func (s *Service) UpdateGroup(ctx context.Context, m Meta, id string, ifVersion uint64, change func(old *gateway.Group, members []gateway.Member) (*gateway.Group, []gateway.Member, error)) (*gateway.Group, []gateway.Member, error) {
	if err := s.allow(m); err != nil {
		return nil, nil, err
	}
	return s.store.Groups().Update(ctx, m.Tenant, id, ifVersion, func(old *gateway.Group, oldMembers []gateway.Member) (*gateway.Group, []gateway.Member, []gateway.Event, error) {
		ng, members, err := change(old, oldMembers)
		if err != nil {
			return nil, nil, nil, err
		}
		if ng.DisplayName == "" {
			return nil, nil, nil, gateway.Errorf(gateway.ErrInvalid, "displayName is required and must not be empty")
		}
		members = dedupeMembers(members)
		ng.ID, ng.Tenant, ng.Source, ng.Created = old.ID, old.Tenant, old.Source, old.Created
		added, removed := diffMembers(oldMembers, members)
		changed := groupChanges(old, ng)
		if len(changed) == 0 && len(added) == 0 && len(removed) == 0 {
			ng.Modified, ng.Version = old.Modified, old.Version
			return ng, members, nil, nil
		}
		ng.Modified = s.clock.Now()
		snap := snapshotGroup(ng)
		var events []gateway.Event
		if len(changed) > 0 {
			ev := s.event(m, gateway.OpGroupUpdated)
			ev.Group, ev.Changed = snap, changed
			events = append(events, ev)
		}
		if len(removed) > 0 {
			ev := s.event(m, gateway.OpGroupMembersRemoved)
			ev.Group, ev.MemberIDs = snap, removed
			events = append(events, ev)
		}
		if len(added) > 0 {
			ev := s.event(m, gateway.OpGroupMembersAdded)
			ev.Group, ev.MemberIDs = snap, added
			events = append(events, ev)
		}
		return ng, members, events, nil
	})
}

// DeleteGroup removes a group and its membership edges.
func (s *Service) DeleteGroup(ctx context.Context, m Meta, id string, ifVersion uint64) error {
	if err := s.allow(m); err != nil {
		return err
	}
	return s.store.Groups().Delete(ctx, m.Tenant, id, ifVersion, func(old *gateway.Group, members []gateway.Member) ([]gateway.Event, error) {
		ev := s.event(m, gateway.OpGroupDeleted)
		ev.Group = snapshotGroup(old)
		ev.MemberIDs = memberIDs(members)
		return []gateway.Event{ev}, nil
	})
}

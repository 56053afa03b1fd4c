// Package provision applies Gatehouse's provisioning rules: which
// provisioning method may write, the defaults every new user gets, and the
// normalized events each change produces. Protocol packages call it; it
// writes through the gateway.Store so that a record, its indexes and its
// events land in one transaction.
package provision

import (
	"context"
	"slices"
	"sync"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/fold"
)

// Policy is the organization's provisioning configuration.
type Policy struct {
	// Method is the one active provisioning method; only writes from that
	// source are accepted.
	Method      gateway.Source
	DefaultPool string
	DefaultRole string
	// AllowedDomains, when set, are the only email domains (lower case)
	// that may sign in.
	AllowedDomains []string
	// VerifiedDomainsOnly: only emails at the organization's verified
	// domains may sign in.
	VerifiedDomainsOnly bool
	// EmailDomains are the organization's domains a self-service link
	// accepts.
	EmailDomains []string
	// GroupPools, when set, maps IdP group names (folded) to the pools a
	// JIT user is put in at sign-in.
	GroupPools map[string]string
	// GroupRoles, when set, are the groups-to-roles rules (groups
	// folded), in order of precedence.
	GroupRoles []gateway.GroupRole
}

// PoolOfGroup is the pool an IdP group puts a JIT user in ("": none,
// or the mapping is off).
func (p Policy) PoolOfGroup(group string) string { return p.GroupPools[fold.Key(group)] }

// MappedGroup reports whether an IdP group maps to something in the
// organization (a pool, or a role): what proxy.groups "mapped" keeps.
func (s *Service) MappedGroup(org gateway.OrgID, group string) bool {
	p := s.policy(org)
	if p.PoolOfGroup(group) != "" {
		return true
	}
	key := fold.Key(group)
	return slices.ContainsFunc(p.GroupRoles, func(gr gateway.GroupRole) bool { return gr.Group == key })
}

// Service runs provisioning commands.
type Service struct {
	store      gateway.Store
	clock      gateway.Clock
	policies   sync.Map // org → *Policy, replaced whole when the settings change
	fallback   *Policy  // the policy of a org without settings of its own
	locks      keyLocks // one writer per record at a time in this process
	settings   settingsState
	fileSCIM   fileTokens
	bootstrap  sync.Map // org → set of bootstrap managers' emails
	orgHooks   orgHooks
	seen       seenWrites
	access     accessModels
	clientKeys scimClientKeys
	jwks       jwksCache
}

// New returns a Service writing to store, with policy in force until
// identity settings are loaded or changed (LoadSettings, UpdateSettings).
func New(store gateway.Store, clock gateway.Clock, policy Policy) *Service {
	if clock == nil {
		clock = gateway.SystemClock{}
	}
	return &Service{store: store, clock: clock, fallback: &policy}
}

// policy is the org's provisioning policy now in force. An organization
// whose settings were never read here (one made through the admin API,
// or on another replica) has them read now: it never borrows the file's
// policy, which is the default organization's.
func (s *Service) policy(org gateway.OrgID) *Policy {
	if p, ok := s.policies.Load(org); ok {
		return p.(*Policy)
	}
	if st, ok := s.Current(context.Background(), org); ok {
		if p, ok := s.policies.Load(org); ok {
			return p.(*Policy)
		}
		return policyOf(st.IdentitySettings) // not stored yet: a new organization's start
	}
	return s.fallback
}

// Policy returns a copy of the org's policy now in force.
func (s *Service) Policy(org gateway.OrgID) Policy { return *s.policy(org) }

// Meta is what every command carries about its origin.
type Meta struct {
	Org       gateway.OrgID
	Source    gateway.Source
	RequestID string
}

func (s *Service) allow(m Meta) error {
	if method := s.policy(m.Org).Method; m.Source != method {
		return gateway.Errorf(gateway.ErrForbidden,
			"provisioning through %s is disabled: the active provisioning method is %q", m.Source, method)
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
		Org:        m.Org,
		Op:         op,
		Source:     m.Source,
		OccurredAt: s.clock.Now(),
		RequestID:  m.RequestID,
	}
}

// maxAttempts bounds the optimistic retries of an update whose record
// another request changed between the read and the write.
const maxAttempts = 8

// busy is what a caller gets when a record kept changing under it.
func busy(kind, id string) error {
	return gateway.Errorf(gateway.ErrUnavailable, "%s %q is being changed by concurrent requests; retry the request", kind, id)
}

// retry reports whether a write that failed with err, computed from a
// record read without If-Match, should be computed again: the record
// changed between the read and the write.
func retry(err error, ifVersion uint64) bool {
	return ifVersion == 0 && gateway.ErrorCodeOf(err) == gateway.ErrPreconditionFailed
}

// CreateUser stores a new user built by the caller (typed fields, and
// Attributes when the caller has a protocol document) and records
// user.created. The typed fields win over the document (see
// gateway.User.SyncAttributes).
func (s *Service) CreateUser(ctx context.Context, m Meta, u *gateway.User) (*gateway.User, error) {
	if err := s.allow(m); err != nil {
		return nil, err
	}
	return s.createUser(ctx, m, u, nil)
}

// createUser stores a new user whatever the method (the caller has
// checked who may), with audit entries made from the stamped user.
func (s *Service) createUser(ctx context.Context, m Meta, u *gateway.User, audit func(u *gateway.User) []gateway.AuditEntry) (*gateway.User, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	u.ID = NewID()
	u.Org = m.Org
	u.Source = m.Source
	if policy := s.policy(m.Org); len(u.Pools) == 0 {
		u.Pools = []string{policy.DefaultPool}
	}
	if u.Role == "" {
		u.Role = s.policy(m.Org).DefaultRole
	}
	u.Created, u.Modified = now, now
	u.Version = 1
	if err := u.SyncAttributes(); err != nil {
		return nil, err
	}
	ev := s.event(m, gateway.OpUserCreated)
	ev.User = u.Clone()
	var entries []gateway.AuditEntry
	if audit != nil {
		entries = audit(u)
	}
	if err := s.store.Users().Create(ctx, u, []gateway.Event{ev}, entries...); err != nil {
		return nil, err
	}
	return u, nil
}

// UpdateUser replaces a user with what change computes from the current
// record, and records user.updated and/or user.deactivated/reactivated.
// ifVersion 0 means unconditional. change runs outside the store's write
// transaction, so a costly change (a large PATCH) never holds up other
// writes; if the record changed meanwhile, change runs again on the new
// one (ifVersion 0) or the update fails with ErrPreconditionFailed.
func (s *Service) UpdateUser(ctx context.Context, m Meta, id string, ifVersion uint64, change func(old *gateway.User) (*gateway.User, error)) (*gateway.User, error) {
	if err := s.allow(m); err != nil {
		return nil, err
	}
	return s.updateUser(ctx, m, id, ifVersion, change, nil)
}

// updateUser is UpdateUser whatever the method, with audit entries made
// from the record before and after.
func (s *Service) updateUser(ctx context.Context, m Meta, id string, ifVersion uint64, change func(old *gateway.User) (*gateway.User, error), audit func(old, nu *gateway.User) []gateway.AuditEntry) (*gateway.User, error) {
	unlock, err := s.locks.lock(ctx, string(m.Org)+"\x00user\x00"+id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	users := s.store.Users()
	for attempt := 1; ; attempt++ {
		old, err := users.Get(ctx, m.Org, id)
		if err != nil {
			return nil, err
		}
		if ifVersion != 0 && old.Version != ifVersion {
			return nil, gateway.Errorf(gateway.ErrPreconditionFailed, "User %q has changed (its version is %d): read it again and retry", id, old.Version)
		}
		nu, events, err := s.userChange(m, old, change)
		if err != nil {
			return nil, err
		}
		if nu == nil {
			// Nothing changed: no write, the record keeps its version, an
			// idempotent retry records no events.
			return old, nil
		}
		var entries []gateway.AuditEntry
		if audit != nil {
			entries = audit(old, nu)
		}
		// Decided here, checked in the store's transaction (Replace).
		err = users.Replace(ctx, nu, old.Version, events, entries...)
		switch {
		case retry(err, ifVersion) && attempt < maxAttempts:
			continue
		case retry(err, ifVersion):
			return nil, busy("User", id)
		case err != nil:
			return nil, err
		}
		if old.Active && !nu.Active {
			s.endSessions(ctx, m.Org, id)
		}
		return nu, nil
	}
}

// endSessions signs a deactivated or deleted user out everywhere. The
// sessions also check their user at every request, so a failure here
// only leaves records for the expiry sweep.
func (s *Service) endSessions(ctx context.Context, org gateway.OrgID, userID string) {
	ctx = context.WithoutCancel(ctx)
	ended, _ := s.store.Sessions().ListUser(ctx, org, userID)
	_, _ = s.store.Sessions().DeleteUser(ctx, org, userID)
	for _, se := range ended { // the ID tokens kept for their logouts go with them
		_, _ = s.store.Ephemeral().Take(ctx, org, gateway.IDTokenNamespace, se.ID)
	}
}

// userChange computes, stamps and validates the new version of old; it
// returns nil when nothing changed.
func (s *Service) userChange(m Meta, old *gateway.User, change func(*gateway.User) (*gateway.User, error)) (*gateway.User, []gateway.Event, error) {
	nu, err := change(old.Clone())
	if err != nil {
		return nil, nil, err
	}
	// Identity and provenance are the gateway's, never the client's.
	nu.ID, nu.Org, nu.Source, nu.Created = old.ID, old.Org, old.Source, old.Created
	if len(nu.Pools) == 0 {
		nu.Pools = old.Pools
	}
	if nu.Role == "" {
		nu.Role = old.Role
	}
	if err := nu.Validate(); err != nil {
		return nil, nil, err
	}
	if err := nu.SyncAttributes(); err != nil {
		return nil, nil, err
	}
	changed := userChanges(old, nu)
	if len(changed) == 0 {
		return nil, nil, nil
	}
	nu.Modified = s.clock.Now()
	nu.Version = old.Version + 1
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
	snap := nu.Clone() // after stamping: the event says what is stored
	for i := range events {
		events[i].User = snap
	}
	return nu, events, nil
}

// DeleteUser removes a user and its memberships and records user.deleted,
// and members_removed for each group it was in (whose versions move).
func (s *Service) DeleteUser(ctx context.Context, m Meta, id string, ifVersion uint64) error {
	if err := s.allow(m); err != nil {
		return err
	}
	return s.deleteUser(ctx, m, id, ifVersion, nil)
}

// deleteUser is DeleteUser whatever the method, with audit entries made
// from the record deleted.
func (s *Service) deleteUser(ctx context.Context, m Meta, id string, ifVersion uint64, audit func(old *gateway.User) []gateway.AuditEntry) error {
	defer s.endSessions(ctx, m.Org, id)
	err := s.store.Users().Delete(ctx, m.Org, id, ifVersion, func(old *gateway.User, groups []*gateway.Group) (gateway.UserDeletion, error) {
		now := s.clock.Now()
		ev := s.event(m, gateway.OpUserDeleted)
		ev.User = old.Clone()
		del := gateway.UserDeletion{Events: []gateway.Event{ev}}
		if audit != nil {
			del.Audit = audit(old)
		}
		// Memberships end with the user; say so per group so that a
		// downstream that mirrors groups needs no special case.
		for _, g := range groups {
			ng := g.Clone()
			ng.Version, ng.Modified = g.Version+1, now
			del.Groups = append(del.Groups, ng)
			rm := s.event(m, gateway.OpGroupMembersRemoved)
			rm.Group = ng.Clone()
			rm.MemberIDs = []string{old.ID}
			del.Events = append(del.Events, rm)
		}
		return del, nil
	})
	if err == nil {
		s.dropOwnRoles(ctx, m.Org, id, "")
		s.forgetRoleRecords(ctx, m.Org, id)
	}
	return err
}

// CreateGroup stores a new group with its members and records
// group.created (carrying the initial member ids).
func (s *Service) CreateGroup(ctx context.Context, m Meta, g *gateway.Group, members []gateway.Member) (*gateway.Group, error) {
	if err := s.allow(m); err != nil {
		return nil, err
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	members = dedupeMembers(members)
	now := s.clock.Now()
	g.ID = NewID()
	g.Org = m.Org
	g.Source = m.Source
	g.Created, g.Modified = now, now
	g.Version = 1
	ev := s.event(m, gateway.OpGroupCreated)
	ev.Group = g.Clone()
	ev.MemberIDs = memberIDs(members)
	if err := s.store.Groups().Create(ctx, g, members, []gateway.Event{ev}); err != nil {
		return nil, err
	}
	if !s.mapsToRole(m.Org, g.DisplayName) {
		return g, nil
	}
	return g, s.applyGroupRoles(ctx, m, memberIDs(members))
}

// UpdateGroup replaces a group and its member list with what change
// computes, recording group.updated and members_added/members_removed.
// Like UpdateUser, change runs outside the write transaction (a PATCH
// adding thousands of members holds up no one) and again if the group
// changed meanwhile.
func (s *Service) UpdateGroup(ctx context.Context, m Meta, id string, ifVersion uint64, change func(old *gateway.Group, members []gateway.Member) (*gateway.Group, []gateway.Member, error)) (*gateway.Group, []gateway.Member, error) {
	if err := s.allow(m); err != nil {
		return nil, nil, err
	}
	unlock, err := s.locks.lock(ctx, string(m.Org)+"\x00group\x00"+id)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	groups := s.store.Groups()
	for attempt := 1; ; attempt++ {
		old, oldMembers, err := groups.GetWithMembers(ctx, m.Org, id)
		if err != nil {
			return nil, nil, err
		}
		if ifVersion != 0 && old.Version != ifVersion {
			return nil, nil, gateway.Errorf(gateway.ErrPreconditionFailed, "Group %q has changed (its version is %d): read it again and retry", id, old.Version)
		}
		ng, members, err := change(old.Clone(), slices.Clone(oldMembers))
		if err != nil {
			return nil, nil, err
		}
		ng.ID, ng.Org, ng.Source, ng.Created = old.ID, old.Org, old.Source, old.Created
		if err := ng.Validate(); err != nil {
			return nil, nil, err
		}
		members = dedupeMembers(members)
		delta := diffMembers(oldMembers, members)
		changed := groupChanges(old, ng)
		if len(changed) == 0 && len(delta.put) == 0 && len(delta.removed) == 0 {
			return old, oldMembers, nil
		}
		ng.Modified = s.clock.Now()
		ng.Version = old.Version + 1
		snap := ng.Clone()
		var events []gateway.Event
		if len(changed) > 0 {
			ev := s.event(m, gateway.OpGroupUpdated)
			ev.Group, ev.Changed = snap, changed
			events = append(events, ev)
		}
		if len(delta.removed) > 0 {
			ev := s.event(m, gateway.OpGroupMembersRemoved)
			ev.Group, ev.MemberIDs = snap, delta.removed
			events = append(events, ev)
		}
		if len(delta.added) > 0 {
			ev := s.event(m, gateway.OpGroupMembersAdded)
			ev.Group, ev.MemberIDs = snap, delta.added
			events = append(events, ev)
		}
		res, err := groups.Update(ctx, m.Org, id, old.Version, func(*gateway.Group) (gateway.GroupChange, error) {
			return gateway.GroupChange{Group: ng, Put: delta.put, Remove: delta.removed, Events: events}, nil
		})
		switch {
		case retry(err, ifVersion) && attempt < maxAttempts:
			continue
		case retry(err, ifVersion):
			return nil, nil, busy("Group", id)
		case err != nil:
			return nil, nil, err
		}
		if !s.mapsToRole(m.Org, old.DisplayName, ng.DisplayName) {
			return res, members, nil
		}
		affected := append(slices.Clone(delta.added), delta.removed...)
		if slices.Contains(changed, "displayName") { // a renamed group may map elsewhere now
			affected = append(memberIDs(oldMembers), memberIDs(members)...)
		}
		return res, members, s.applyGroupRoles(ctx, m, affected)
	}
}

// DeleteGroup removes a group and its membership edges.
func (s *Service) DeleteGroup(ctx context.Context, m Meta, id string, ifVersion uint64) error {
	if err := s.allow(m); err != nil {
		return err
	}
	var former []string
	var name string
	err := s.store.Groups().Delete(ctx, m.Org, id, ifVersion, func(old *gateway.Group, members []gateway.Member) ([]gateway.Event, error) {
		ev := s.event(m, gateway.OpGroupDeleted)
		ev.Group = old.Clone()
		ev.MemberIDs = memberIDs(members)
		former, name = ev.MemberIDs, old.DisplayName
		return []gateway.Event{ev}, nil
	})
	if err != nil || !s.mapsToRole(m.Org, name) {
		return err
	}
	return s.applyGroupRoles(ctx, m, former)
}

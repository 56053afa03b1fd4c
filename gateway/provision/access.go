package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// The access model: a role is a named set of permissions (words the app
// defines); a pool grants its members a role, and a membership may hold
// another; a person's access is, per pool they are in, that role and its
// permissions. This is what the seeds call inheriting the roles and
// permissions associated with the pools.
const (
	kindRole     = "role"
	kindPoolRole = "pool-role" // a membership's own role: id pool/user
)

type storedRole struct {
	Permissions []string `json:"permissions"`
	Modified    string   `json:"modified"`
}

func decodeRole(rec gateway.Record) (gateway.Role, error) {
	var sr storedRole
	if err := json.Unmarshal(rec.Value, &sr); err != nil {
		return gateway.Role{}, fmt.Errorf("role %q record: %w", rec.ID, err)
	}
	r := gateway.Role{Name: rec.ID, Permissions: sr.Permissions, Version: rec.Version}
	if r.Permissions == nil {
		r.Permissions = []string{}
	}
	r.Modified, _ = parseTime(sr.Modified)
	return r, nil
}

func memberKey(pool, userID string) string { return pool + "/" + userID }

// member names a membership in memory (no string built per lookup).
type member struct{ pool, user string }

// accessModel is an organization's roles, pools and memberships' roles,
// read once and kept until one of them changes in this process.
type accessModel struct {
	version   uint64
	pools     map[string]string   // pool → its role ("": the default role)
	roles     map[string][]string // role → its permissions
	overrides map[member]string   // the membership's own role
	def       string              // the organization's default role
}

// accessModels are the loaded models, per organization.
type accessModels struct {
	byOrg   sync.Map // gateway.OrgID → *accessModel
	version atomic.Uint64
}

// changedAccess drops org's model: the next request reads it again, so a
// change applies to every live session's next request.
func (s *Service) changedAccess(org gateway.OrgID) {
	s.access.version.Add(1)
	s.access.byOrg.Delete(org)
}

func (s *Service) accessModel(ctx context.Context, org gateway.OrgID) (*accessModel, error) {
	if m, ok := s.access.byOrg.Load(org); ok {
		return m.(*accessModel), nil
	}
	version := s.access.version.Load() // before reading: a change meanwhile is newer
	m := &accessModel{version: version, pools: map[string]string{}, roles: map[string][]string{}, overrides: map[member]string{}}
	pools, err := s.Pools(ctx, org)
	if err != nil {
		return nil, err
	}
	for _, p := range pools {
		m.pools[p.ID] = p.Role
	}
	roles, err := s.Roles(ctx, org)
	if err != nil {
		return nil, err
	}
	for _, r := range roles {
		m.roles[r.Name] = r.Permissions
	}
	recs, err := s.store.Records().List(ctx, org, kindPoolRole)
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		var o struct{ Role string }
		pool, user, ok := strings.Cut(rec.ID, "/")
		if ok && json.Unmarshal(rec.Value, &o) == nil {
			m.overrides[member{pool, user}] = o.Role
		}
	}
	m.def = s.policy(org).DefaultRole
	if s.access.version.Load() == version {
		s.access.byOrg.Store(org, m)
		// A change between the check and the store: it dropped nothing,
		// so drop what was read before it.
		if s.access.version.Load() != version {
			s.access.byOrg.CompareAndDelete(org, m)
		}
	}
	return m, nil
}

// Access is what u may do in each pool they are in, in the order of their
// pools, and a version that changes whenever any organization's access
// model does (what the app was told can be reused while it holds).
func (s *Service) Access(ctx context.Context, u *gateway.User) ([]gateway.Access, uint64, error) {
	m, err := s.accessModel(ctx, u.Org)
	if err != nil {
		return nil, 0, err
	}
	out := make([]gateway.Access, 0, len(u.Pools))
	for _, pool := range u.Pools {
		role := m.overrides[member{pool, u.ID}]
		if role == "" {
			role = m.pools[pool]
		}
		if role == "" {
			role = m.def
		}
		out = append(out, gateway.Access{Pool: pool, Role: role, Permissions: m.roles[role]})
	}
	return out, m.version, nil
}

// AccessVersion changes whenever any organization's access may have
// (what was worked out for a person under an older one is stale).
func (s *Service) AccessVersion() uint64 { return s.access.version.Load() }

// Roles lists the organization's roles: those stored, and those the
// configuration file names (provisioning.roles) not stored yet, with
// their seeded permissions.
func (s *Service) Roles(ctx context.Context, org gateway.OrgID) ([]gateway.Role, error) {
	recs, err := s.store.Records().List(ctx, org, kindRole)
	if err != nil {
		return nil, err
	}
	out := make([]gateway.Role, 0, len(recs))
	seen := map[string]bool{}
	for _, rec := range recs {
		r, err := decodeRole(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
		seen[r.Name] = true
	}
	for _, name := range s.fileRoles(ctx, org) {
		if !seen[name] {
			out = append(out, gateway.Role{Name: name, Permissions: slices.Clone(s.roleSeed(name))})
			seen[name] = true
		}
	}
	slices.SortFunc(out, func(a, b gateway.Role) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// fileRoles are the roles the configuration file names: the
// organization's roles and default role, and those it gives
// permissions.
func (s *Service) fileRoles(ctx context.Context, org gateway.OrgID) []string {
	st, _ := s.Current(ctx, org)
	roles := slices.Clone(st.Provisioning.Roles)
	if len(roles) == 0 {
		roles = []string{gateway.RoleManager, gateway.RoleUser}
	}
	roles = append(roles, st.Provisioning.DefaultRole)
	s.settings.mu.Lock()
	for name := range s.settings.roleSeeds {
		roles = append(roles, name)
	}
	s.settings.mu.Unlock()
	roles = slices.DeleteFunc(roles, func(r string) bool { return r == "" })
	slices.Sort(roles)
	return slices.Compact(roles)
}

// SetRoleSeeds sets the permissions the configuration file gives roles
// (provisioning.role_permissions): a role not stored yet has them.
func (s *Service) SetRoleSeeds(seeds map[string][]string) {
	s.settings.mu.Lock()
	defer s.settings.mu.Unlock()
	s.settings.roleSeeds = seeds
}

func (s *Service) roleSeed(name string) []string {
	s.settings.mu.Lock()
	defer s.settings.mu.Unlock()
	if p := s.settings.roleSeeds[name]; p != nil {
		return p
	}
	return []string{}
}

// Role reads one role (a file role not stored yet included).
func (s *Service) Role(ctx context.Context, org gateway.OrgID, name string) (gateway.Role, error) {
	rec, err := s.store.Records().Get(ctx, org, kindRole, name)
	if err == nil {
		return decodeRole(rec)
	}
	if gateway.ErrorCodeOf(err) != gateway.ErrNotFound {
		return gateway.Role{}, err
	}
	if slices.Contains(s.fileRoles(ctx, org), name) {
		return gateway.Role{Name: name, Permissions: slices.Clone(s.roleSeed(name))}, nil
	}
	return gateway.Role{}, gateway.Errorf(gateway.ErrNotFound, "there is no role %q", name)
}

// checkRole refuses a role the organization does not have.
func (s *Service) checkRole(ctx context.Context, org gateway.OrgID, name string) error {
	if _, err := s.Role(ctx, org, name); gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
		return gateway.Errorf(gateway.ErrInvalid, "there is no role %q: create it first (PUT /roles/%s)", name, name)
	} else if err != nil {
		return err
	}
	return nil
}

// PutRole creates a role or replaces its permissions (ifVersion 0:
// whatever its version), recording role.updated.
func (s *Service) PutRole(ctx context.Context, mg Manager, name string, ifVersion uint64, permissions []string) (gateway.Role, error) {
	if !gateway.ValidRoleName(name) {
		return gateway.Role{}, gateway.Errorf(gateway.ErrInvalid, "role %q: use 1 to 63 lower-case letters, digits, '-' or '_', starting with a letter or digit", name)
	}
	perms := slices.Clone(permissions)
	if perms == nil {
		perms = []string{}
	}
	for _, p := range perms {
		if !gateway.ValidPermission(p) {
			return gateway.Role{}, gateway.Errorf(gateway.ErrInvalid, "permission %q: use 1 to 100 lower-case letters, digits, '.', '_', ':' or '-', such as agents.debug", p)
		}
	}
	slices.Sort(perms)
	perms = slices.Compact(perms)
	if len(perms) > 1000 {
		return gateway.Role{}, gateway.Errorf(gateway.ErrInvalid, "a role holds at most 1,000 permissions")
	}
	cur, err := s.Role(ctx, mg.Org, name)
	exists := err == nil
	if err != nil && gateway.ErrorCodeOf(err) != gateway.ErrNotFound {
		return gateway.Role{}, err
	}
	if ifVersion != 0 && ifVersion != cur.Version {
		return gateway.Role{}, gateway.Errorf(gateway.ErrPreconditionFailed, "role %q has changed (its version is %d): read it again and retry", name, cur.Version)
	}
	next := gateway.Role{Name: name, Permissions: perms, Modified: s.clock.Now()}
	value, _ := json.Marshal(storedRole{Permissions: perms, Modified: formatTime(next.Modified)})
	ev := s.event(mg.meta(), gateway.OpRoleUpdated)
	ev.Role = &next
	var before any
	if exists {
		before = cur
	}
	j := s.audited(mg.Actor, mg.RequestID, "role.update", "role:"+name, before, next)
	j.Events = []gateway.Event{ev}
	next.Version, err = s.store.Records().Put(ctx, mg.Org, kindRole, name, cur.Version, value, j)
	if code := gateway.ErrorCodeOf(err); code == gateway.ErrConflict || code == gateway.ErrPreconditionFailed {
		return gateway.Role{}, gateway.Errorf(gateway.ErrPreconditionFailed, "role %q changed meanwhile: read it again and retry", name)
	}
	if err != nil {
		return gateway.Role{}, err
	}
	ev.Role.Version = next.Version
	s.changedAccess(mg.Org)
	return next, nil
}

// DeleteRole removes a role no one holds; a refusal says where it is in
// use.
func (s *Service) DeleteRole(ctx context.Context, mg Manager, name string) error {
	if name == gateway.RoleManager {
		return gateway.Errorf(gateway.ErrConflict, "the role %q opens the console and the admin API: it cannot be deleted", name)
	}
	cur, err := s.Role(ctx, mg.Org, name)
	if err != nil {
		return err
	}
	var uses []string
	if slices.Contains(s.fileRoles(ctx, mg.Org), name) {
		uses = append(uses, "the configuration file names it (provisioning.roles or provisioning.default_role)")
	}
	m, err := s.accessModel(ctx, mg.Org)
	if err != nil {
		return err
	}
	var pools []string
	for pool, role := range m.pools {
		if role == name {
			pools = append(pools, pool)
		}
	}
	if len(pools) > 0 {
		slices.Sort(pools)
		uses = append(uses, "pools "+strings.Join(pools, ", ")+" grant it")
	}
	n := 0
	for _, role := range m.overrides {
		if role == name {
			n++
		}
	}
	if n > 0 {
		uses = append(uses, fmt.Sprintf("%d memberships hold it", n))
	}
	if len(uses) > 0 {
		return gateway.Errorf(gateway.ErrConflict, "role %q is in use: %s", name, strings.Join(uses, "; "))
	}
	err = s.store.Records().Delete(ctx, mg.Org, kindRole, name, 0, s.audited(mg.Actor, mg.RequestID, "role.delete", "role:"+name, cur, nil))
	if err == nil {
		s.changedAccess(mg.Org)
	}
	return err
}

// SetPoolRole changes the role a pool grants its members ("": the
// default role), recording pool.updated.
func (s *Service) SetPoolRole(ctx context.Context, mg Manager, id string, ifVersion uint64, role string) (gateway.Pool, error) {
	if role != "" {
		if err := s.checkRole(ctx, mg.Org, role); err != nil {
			return gateway.Pool{}, err
		}
	}
	cur, err := s.Pool(ctx, mg.Org, id)
	if err != nil {
		return gateway.Pool{}, err
	}
	if ifVersion != 0 && ifVersion != cur.Version {
		return gateway.Pool{}, gateway.Errorf(gateway.ErrPreconditionFailed, "pool %q has changed (its version is %d): read it again and retry", id, cur.Version)
	}
	if cur.Role == role {
		return cur, nil
	}
	next := cur
	next.Role = role
	ev := s.event(mg.meta(), gateway.OpPoolUpdated)
	ev.Pool = &next
	ev.Changed = []string{"role"}
	j := s.audited(mg.Actor, mg.RequestID, "pool.update", "pool:"+id, cur, next)
	j.Events = []gateway.Event{ev}
	v, err := s.store.Records().Put(ctx, mg.Org, kindPool, id, cur.Version, encodePool(next), j)
	if err != nil {
		return gateway.Pool{}, err
	}
	next.Version = v
	s.changedAccess(mg.Org)
	return next, nil
}

// PutMember puts a user in a pool (if not in it yet) with role as their
// own role there ("": the pool's), recording user.updated naming access.
func (s *Service) PutMember(ctx context.Context, mg Manager, pool, userID, role string) (*gateway.User, error) {
	if _, err := s.Pool(ctx, mg.Org, pool); err != nil {
		return nil, err
	}
	if role != "" {
		if err := s.checkRole(ctx, mg.Org, role); err != nil {
			return nil, err
		}
	}
	u, err := s.store.Users().Get(ctx, mg.Org, userID)
	if err != nil {
		return nil, err
	}
	// Their own role first: joining never grants, even for a moment,
	// the pool's role instead of theirs.
	if err := s.setMemberRole(ctx, mg, u, pool, role); err != nil {
		return nil, err
	}
	if !slices.Contains(u.Pools, pool) {
		pools := append(slices.Clone(u.Pools), pool)
		if u, err = s.ChangeUser(ctx, mg, userID, 0, UserPatch{Pools: &pools}); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// RemoveMember takes a user out of a pool (a user stays in one at least)
// and drops their role there.
func (s *Service) RemoveMember(ctx context.Context, mg Manager, pool, userID string) (*gateway.User, error) {
	u, err := s.store.Users().Get(ctx, mg.Org, userID)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(u.Pools, pool) {
		return nil, gateway.Errorf(gateway.ErrNotFound, "user %q is not in pool %q", userID, pool)
	}
	pools := slices.DeleteFunc(slices.Clone(u.Pools), func(p string) bool { return p == pool })
	return s.ChangeUser(ctx, mg, userID, 0, UserPatch{Pools: &pools}) // their own role there goes with it
}

// setMemberRole stores (or, for "", drops) a membership's own role; a
// change is audited and recorded as user.updated naming access.
func (s *Service) setMemberRole(ctx context.Context, mg Manager, u *gateway.User, pool, role string) error {
	key := memberKey(pool, u.ID)
	rec, err := s.store.Records().Get(ctx, mg.Org, kindPoolRole, key)
	var cur string
	switch {
	case err == nil:
		var o struct{ Role string }
		_ = json.Unmarshal(rec.Value, &o)
		cur = o.Role
	case gateway.ErrorCodeOf(err) != gateway.ErrNotFound:
		return err
	}
	if cur == role {
		return nil
	}
	type membership struct {
		Pool string `json:"pool"`
		User string `json:"user"`
		Role string `json:"role,omitempty"`
	}
	ev := s.event(mg.meta(), gateway.OpUserUpdated)
	ev.User, ev.Changed = u.Clone(), []string{"access"}
	j := s.audited(mg.Actor, mg.RequestID, "pool.member_role", "user:"+u.ID, membership{pool, u.ID, cur}, membership{pool, u.ID, role})
	j.Events = []gateway.Event{ev}
	if role == "" {
		err = s.store.Records().Delete(ctx, mg.Org, kindPoolRole, key, rec.Version, j)
	} else {
		value, _ := json.Marshal(struct{ Role string }{role})
		_, err = s.store.Records().Put(ctx, mg.Org, kindPoolRole, key, rec.Version, value, j)
	}
	if code := gateway.ErrorCodeOf(err); code == gateway.ErrConflict || code == gateway.ErrPreconditionFailed {
		return gateway.Errorf(gateway.ErrPreconditionFailed, "the role of user %q in pool %q changed meanwhile: read it again and retry", u.ID, pool)
	}
	if err != nil {
		return err
	}
	s.changedAccess(mg.Org)
	return nil
}

// dropLeftRoles forgets a person's own roles in the pools they left
// (re-joining one later gives them the pool's role).
func (s *Service) dropLeftRoles(ctx context.Context, mg Manager, before []string, u *gateway.User) error {
	for _, pool := range before {
		if !slices.Contains(u.Pools, pool) {
			if err := s.setMemberRole(ctx, mg, u, pool, ""); err != nil {
				return err
			}
		}
	}
	return nil
}

// ensureRoles stores the configuration file's roles an organization does
// not hold yet, with their seeded permissions (once: a manager's change
// wins afterwards).
func (s *Service) ensureRoles(ctx context.Context, org gateway.OrgID, actor gateway.Actor) error {
	for _, name := range s.fileRoles(ctx, org) {
		if _, err := s.store.Records().Get(ctx, org, kindRole, name); gateway.ErrorCodeOf(err) != gateway.ErrNotFound {
			if err != nil {
				return err
			}
			continue
		}
		perms := slices.Clone(s.roleSeed(name))
		slices.Sort(perms)
		value, _ := json.Marshal(storedRole{Permissions: perms, Modified: formatTime(s.clock.Now())})
		_, err := s.store.Records().Put(ctx, org, kindRole, name, 0, value,
			s.audited(actor, "", "role.seed", "role:"+name, nil, gateway.Role{Name: name, Permissions: perms}))
		if err != nil && gateway.ErrorCodeOf(err) != gateway.ErrConflict {
			return fmt.Errorf("store the role %q: %w", name, err)
		}
	}
	s.changedAccess(org)
	return nil
}

// AccessDetail is one pool of a person's access with where their role
// comes from: their own role in the pool, the pool's, or the default.
type AccessDetail struct {
	gateway.Access
	// From is "member" (their own role there), "pool" (the pool grants
	// it) or "default" (the pool names none: the default role).
	From string
}

// AccessDetails is Access with where each role comes from (the console
// explains it).
func (s *Service) AccessDetails(ctx context.Context, u *gateway.User) ([]AccessDetail, error) {
	m, err := s.accessModel(ctx, u.Org)
	if err != nil {
		return nil, err
	}
	access, _, err := s.Access(ctx, u)
	if err != nil {
		return nil, err
	}
	out := make([]AccessDetail, len(access))
	for i, a := range access {
		from := "default"
		switch {
		case m.overrides[member{a.Pool, u.ID}] != "":
			from = "member"
		case m.pools[a.Pool] != "":
			from = "pool"
		}
		out[i] = AccessDetail{Access: a, From: from}
	}
	return out, nil
}

// OwnRoles are the members of a pool who hold their own role there, by
// user id.
func (s *Service) OwnRoles(ctx context.Context, org gateway.OrgID, pool string) (map[string]string, error) {
	m, err := s.accessModel(ctx, org)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, role := range m.overrides {
		if k.pool == pool {
			out[k.user] = role
		}
	}
	return out, nil
}

// dropOwnRoles forgets own roles in pools, of a deleted user (user set)
// or in a deleted pool (pool set): they would name nobody, or come back
// to a new user or pool of the same id. Best effort: the deletion itself
// is done and recorded.
func (s *Service) dropOwnRoles(ctx context.Context, org gateway.OrgID, userID, pool string) {
	m, err := s.accessModel(ctx, org)
	if err != nil {
		return
	}
	dropped := false
	for k := range m.overrides {
		if k.user == userID || k.pool == pool {
			if s.store.Records().Delete(ctx, org, kindPoolRole, memberKey(k.pool, k.user), 0, gateway.Journal{}) == nil {
				dropped = true
			}
		}
	}
	if dropped {
		s.changedAccess(org)
	}
}

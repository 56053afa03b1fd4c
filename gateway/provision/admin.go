package provision

import (
	"context"
	"slices"
	"strings"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// Manager is who runs a manager's command: the org, the actor (a
// manager's session or an API token) and the request it came with.
type Manager struct {
	Org       gateway.OrgID
	Actor     gateway.Actor
	RequestID string
}

func (mg Manager) meta() Meta {
	return Meta{Org: mg.Org, Source: gateway.SourceManual, RequestID: mg.RequestID}
}

// UserSummary is what the audit log keeps of a user before and after a
// manager's change (no protocol document).
type UserSummary struct {
	UserName string         `json:"userName"`
	Emails   []string       `json:"emails,omitempty"`
	Name     string         `json:"name,omitempty"`
	Active   bool           `json:"active"`
	Role     string         `json:"role"`
	Pools    []string       `json:"pools"`
	Source   gateway.Source `json:"source"`
}

// Summarize is the audit snapshot of u.
func Summarize(u *gateway.User) *UserSummary {
	if u == nil {
		return nil
	}
	return &UserSummary{UserName: u.UserName, Emails: u.Emails, Name: strings.TrimSpace(u.GivenName + " " + u.FamilyName),
		Active: u.Active, Role: u.Role, Pools: u.Pools, Source: u.Source}
}

// checkRoleAndPools refuses a role the configuration does not know and
// pools that do not exist.
func (s *Service) checkRoleAndPools(ctx context.Context, org gateway.OrgID, role string, pools []string) error {
	if role != "" {
		st, ok := s.Current(ctx, org)
		roles := []string{gateway.RoleManager, gateway.RoleUser}
		if ok && len(st.Provisioning.Roles) > 0 {
			roles = st.Provisioning.Roles
		}
		if !slices.Contains(roles, role) {
			return gateway.Errorf(gateway.ErrInvalid, "role %q is not one of the roles %s", role, strings.Join(roles, ", "))
		}
	}
	if pools != nil {
		if len(pools) == 0 {
			return gateway.Errorf(gateway.ErrInvalid, "a user belongs to at least one pool")
		}
		known, err := s.poolSet(ctx, org)
		if err != nil {
			return err
		}
		for _, p := range pools {
			if !known[p] {
				return gateway.Errorf(gateway.ErrInvalid, "there is no pool %q: create it first", p)
			}
		}
	}
	return nil
}

func normalizePools(pools []string) []string {
	if pools == nil {
		return nil
	}
	out := slices.Clone(pools)
	slices.Sort(out)
	return slices.Compact(out)
}

// AddUser is a manager creating a user directly (method manual): source
// manual, the given role and pools or the defaults.
func (s *Service) AddUser(ctx context.Context, mg Manager, u *gateway.User) (*gateway.User, error) {
	s.Current(ctx, mg.Org) // the settings another replica stored count
	if method := s.policy(mg.Org).Method; method != gateway.SourceManual {
		return nil, &gateway.RuleError{Violations: []gateway.RuleViolation{{Rule: gateway.RuleOneMethod, Path: "provisioning.method",
			Message: "managers add users only while the provisioning method is manual; the active method is " + string(method)}}}
	}
	return s.addUser(ctx, mg, u, "user.create")
}

func (s *Service) addUser(ctx context.Context, mg Manager, u *gateway.User, action string) (*gateway.User, error) {
	u.Pools = normalizePools(u.Pools)
	if err := s.checkRoleAndPools(ctx, mg.Org, u.Role, u.Pools); err != nil {
		return nil, err
	}
	return s.createUser(ctx, mg.meta(), u, func(nu *gateway.User) []gateway.AuditEntry {
		return []gateway.AuditEntry{s.auditEntry(mg.Actor, mg.RequestID, action, "user:"+nu.ID, nil, Summarize(nu))}
	})
}

// UserPatch is a manager's change to a user: each field set is changed.
type UserPatch struct {
	Role   *string
	Pools  *[]string
	Active *bool
}

// ChangeUser applies a manager's change to any user, whatever its source:
// role and pools are the app's; deactivation ends the user's sessions.
// ifVersion 0 is unconditional.
func (s *Service) ChangeUser(ctx context.Context, mg Manager, id string, ifVersion uint64, p UserPatch) (*gateway.User, error) {
	role := ""
	if p.Role != nil {
		role = *p.Role
		if role == "" {
			return nil, gateway.Errorf(gateway.ErrInvalid, "role must not be empty")
		}
	}
	var pools []string
	if p.Pools != nil {
		pools = normalizePools(*p.Pools)
		if pools == nil {
			pools = []string{}
		}
	}
	if err := s.checkRoleAndPools(ctx, mg.Org, role, pools); err != nil {
		return nil, err
	}
	if (p.Role != nil && role != gateway.RoleManager) || (p.Active != nil && !*p.Active) {
		if err := s.keepAManager(ctx, mg.Org, id); err != nil {
			return nil, err
		}
	}
	var before []string
	nu, err := s.updateUser(ctx, mg.meta(), id, ifVersion, func(u *gateway.User) (*gateway.User, error) {
		before = slices.Clone(u.Pools)
		if p.Role != nil {
			u.Role = role
		}
		if p.Pools != nil {
			u.Pools = pools
		}
		if p.Active != nil {
			u.Active = *p.Active
		}
		return u, nil
	}, func(old, nu *gateway.User) []gateway.AuditEntry {
		return []gateway.AuditEntry{s.auditEntry(mg.Actor, mg.RequestID, "user.update", "user:"+id, Summarize(old), Summarize(nu))}
	})
	if err != nil {
		return nu, err
	}
	if p.Role != nil {
		// A manager's choice wins over the groups-to-roles mapping.
		if err := s.pinRole(ctx, mg, id, role); err != nil {
			return nu, err
		}
	}
	if p.Pools == nil {
		return nu, nil
	}
	return nu, s.dropLeftRoles(ctx, mg, before, nu)
}

// RemoveUser is a manager deleting any user (a JIT user removed at the
// IdP stays until a manager does this); their own roles in pools go with
// them.
func (s *Service) RemoveUser(ctx context.Context, mg Manager, id string, ifVersion uint64) error {
	if err := s.keepAManager(ctx, mg.Org, id); err != nil {
		return err
	}
	return s.deleteUser(ctx, mg.meta(), id, ifVersion, func(old *gateway.User) []gateway.AuditEntry {
		return []gateway.AuditEntry{s.auditEntry(mg.Actor, mg.RequestID, "user.delete", "user:"+id, Summarize(old), nil)}
	})
}

// keepAManager refuses to take the manager role away from the last
// active manager (by demotion, deactivation or deletion): nobody could
// then run the organization from the console. admin.token and
// admin.bootstrap_managers stay as the way back.
func (s *Service) keepAManager(ctx context.Context, org gateway.OrgID, id string) error {
	u, err := s.store.Users().Get(ctx, org, id)
	if err != nil || u.Role != gateway.RoleManager || !u.Active {
		return nil // the change itself reports a missing user
	}
	others := 0
	err = s.store.Users().ScanSummaries(ctx, org, "", "", func(o *gateway.User) bool {
		if o.ID != id && o.Active && o.Role == gateway.RoleManager {
			others++
		}
		return others == 0
	})
	if err != nil {
		return err
	}
	if others == 0 {
		return gateway.Errorf(gateway.ErrConflict, "%s is the last active manager: make someone else a manager first", u.UserName)
	}
	return nil
}

// EndAllSessions signs everyone out (after the IdP changed or was
// compromised, say): every session of the org ends, the caller's too.
// The audit entry is written first: a sign-out nobody can account for
// must not happen.
func (s *Service) EndAllSessions(ctx context.Context, mg Manager) (int, error) {
	if err := s.store.Audit().Append(ctx, mg.Org, s.auditEntry(mg.Actor, mg.RequestID, "sessions.end_all", "sessions:all", nil, nil)); err != nil {
		return 0, err
	}
	return s.store.Sessions().DeleteAll(ctx, mg.Org)
}

package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/fold"
)

// Groups to roles (provisioning.group_roles): while it is on, a person's
// organization role follows their IdP groups, the first rule in order
// whose group they are in, or the default role in none. The mapping moves
// only roles that are its own: the default role, or one it gave (kept in
// a role-mapped record). A role from anywhere else (an invitation, the
// bootstrap, a manager before the mapping was on) stays; a role a manager
// sets is pinned and wins until the manager gives it back.

const (
	kindRolePin    = "role-pin"
	kindRoleMapped = "role-mapped" // the role the mapping last gave the person
)

// rolePin is a manager's choice of a person's role, kept beside the user.
type rolePin struct {
	Role string        `json:"role"`
	By   gateway.Actor `json:"by"`
	At   time.Time     `json:"at"`
}

// RoleFromGroups is the role the mapping gives a person in these groups:
// the first rule's whose group is among them, or "" when none is.
func (p Policy) RoleFromGroups(groups []string) string {
	if len(p.GroupRoles) == 0 {
		return ""
	}
	in := make(map[string]bool, len(groups))
	for _, g := range groups {
		in[fold.Key(g)] = true
	}
	for _, gr := range p.GroupRoles {
		if in[gr.Group] {
			return gr.Role
		}
	}
	return ""
}

// mapsToRole reports whether any of the group names is in the
// organization's groups-to-roles mapping (a membership change of another
// group changes no role).
func (s *Service) mapsToRole(org gateway.OrgID, names ...string) bool {
	rules := s.policy(org).GroupRoles
	for _, n := range names {
		key := fold.Key(n)
		for _, gr := range rules {
			if gr.Group == key {
				return true
			}
		}
	}
	return false
}

// pinRole records that a manager set the person's role.
func (s *Service) pinRole(ctx context.Context, mg Manager, userID, role string) error {
	raw, err := json.Marshal(rolePin{Role: role, By: mg.Actor, At: s.clock.Now()})
	if err != nil {
		return err
	}
	records := s.store.Records()
	for {
		cur, err := records.Get(ctx, mg.Org, kindRolePin, userID)
		version := cur.Version
		if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
			version = 0
		} else if err != nil {
			return err
		}
		_, err = records.Put(ctx, mg.Org, kindRolePin, userID, version, raw, gateway.Journal{})
		if code := gateway.ErrorCodeOf(err); code == gateway.ErrConflict || code == gateway.ErrPreconditionFailed {
			continue // another manager at the same moment: the last one wins
		}
		return err
	}
}

// RolePinned reports whether a manager set the person's role (the
// mapping then leaves it alone).
func (s *Service) RolePinned(ctx context.Context, org gateway.OrgID, userID string) (bool, error) {
	_, err := s.store.Records().Get(ctx, org, kindRolePin, userID)
	switch code := gateway.ErrorCodeOf(err); {
	case err == nil:
		return true, nil
	case code == gateway.ErrNotFound:
		return false, nil
	default:
		return false, err
	}
}

// UnpinRole gives a person's role back to the groups-to-roles mapping
// (audited), and applies it at once.
func (s *Service) UnpinRole(ctx context.Context, mg Manager, userID string) (*gateway.User, error) {
	if _, err := s.store.Users().Get(ctx, mg.Org, userID); err != nil {
		return nil, err
	}
	entry := s.auditEntry(mg.Actor, mg.RequestID, "user.role_from_groups", "user:"+userID, nil, nil)
	err := s.store.Records().Delete(ctx, mg.Org, kindRolePin, userID, 0, gateway.Journal{Audit: []gateway.AuditEntry{entry}})
	if err != nil && gateway.ErrorCodeOf(err) != gateway.ErrNotFound {
		return nil, err
	}
	if err := s.applyGroupRoles(ctx, mg.meta(), []string{userID}); err != nil {
		return nil, err
	}
	return s.store.Users().Get(ctx, mg.Org, userID)
}

// applyGroupRoles gives each of the users the role the mapping says,
// unless a manager pinned theirs; user.updated names the role change. It
// never takes the manager role from the organization's last active
// manager.
func (s *Service) applyGroupRoles(ctx context.Context, m Meta, userIDs []string) error {
	policy := s.policy(m.Org)
	if len(policy.GroupRoles) == 0 || len(userIDs) == 0 {
		return nil
	}
	userIDs = slices.Compact(slices.Sorted(slices.Values(userIDs)))
	refs, err := s.store.Groups().Memberships(ctx, m.Org, userIDs)
	if err != nil {
		return fmt.Errorf("groups to roles: memberships: %w", err)
	}
	for _, id := range userIDs {
		names := make([]string, 0, len(refs[id]))
		for _, g := range refs[id] {
			names = append(names, g.DisplayName)
		}
		role := policy.RoleFromGroups(names)
		if role == "" {
			role = policy.DefaultRole
		}
		u, err := s.store.Users().Get(ctx, m.Org, id)
		if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
			continue
		}
		if err != nil {
			return err
		}
		if u.Role == role || role == "" {
			continue
		}
		if pinned, err := s.RolePinned(ctx, m.Org, id); err != nil || pinned {
			if err != nil {
				return err
			}
			continue
		}
		if owned, err := s.roleFromMapping(ctx, m.Org, u, policy.DefaultRole); err != nil || !owned {
			if err != nil {
				return err
			}
			continue // a role from elsewhere: not the mapping's to move
		}
		if u.Role == gateway.RoleManager && s.keepAManager(ctx, m.Org, id) != nil {
			continue
		}
		_, err = s.updateUser(ctx, m, id, 0, func(u *gateway.User) (*gateway.User, error) {
			u.Role = role
			return u, nil
		}, func(old, nu *gateway.User) []gateway.AuditEntry {
			return []gateway.AuditEntry{s.auditEntry(gateway.Actor{Kind: gateway.ActorSystem, ID: "group_roles"}, m.RequestID,
				"user.role_from_groups", "user:"+id, Summarize(old), Summarize(nu))}
		})
		if err != nil {
			return fmt.Errorf("groups to roles: %s: %w", id, err)
		}
		if err := s.noteMappedRole(ctx, m.Org, id, role, policy.DefaultRole); err != nil {
			return fmt.Errorf("groups to roles: %s: %w", id, err)
		}
	}
	return nil
}

// roleFromMapping reports whether u's role is the mapping's to move: the
// default role, or the one the mapping last gave.
func (s *Service) roleFromMapping(ctx context.Context, org gateway.OrgID, u *gateway.User, defaultRole string) (bool, error) {
	if u.Role == defaultRole {
		return true, nil
	}
	rec, err := s.store.Records().Get(ctx, org, kindRoleMapped, u.ID)
	switch {
	case gateway.ErrorCodeOf(err) == gateway.ErrNotFound:
		return false, nil
	case err != nil:
		return false, err
	}
	var mapped rolePin
	if err := json.Unmarshal(rec.Value, &mapped); err != nil {
		return false, err
	}
	return mapped.Role == u.Role, nil
}

// noteMappedRole records the role the mapping gave (none to keep when it
// is the default role).
func (s *Service) noteMappedRole(ctx context.Context, org gateway.OrgID, userID, role, defaultRole string) error {
	records := s.store.Records()
	if role == defaultRole {
		err := records.Delete(ctx, org, kindRoleMapped, userID, 0, gateway.Journal{})
		if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
			return nil
		}
		return err
	}
	raw, err := json.Marshal(rolePin{Role: role, By: gateway.Actor{Kind: gateway.ActorSystem, ID: "group_roles"}, At: s.clock.Now()})
	if err != nil {
		return err
	}
	for {
		cur, err := records.Get(ctx, org, kindRoleMapped, userID)
		version := cur.Version
		if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
			version = 0
		} else if err != nil {
			return err
		}
		_, err = records.Put(ctx, org, kindRoleMapped, userID, version, raw, gateway.Journal{})
		if code := gateway.ErrorCodeOf(err); code == gateway.ErrConflict || code == gateway.ErrPreconditionFailed {
			continue
		}
		return err
	}
}

// forgetRoleRecords drops a deleted user's pin and mapped role.
func (s *Service) forgetRoleRecords(ctx context.Context, org gateway.OrgID, userID string) {
	for _, kind := range []string{kindRolePin, kindRoleMapped} {
		_ = s.store.Records().Delete(context.WithoutCancel(ctx), org, kind, userID, 0, gateway.Journal{})
	}
}

// applyGroupRolesToAll applies the mapping to every user of the
// organization (it was turned on or changed), a page at a time.
func (s *Service) applyGroupRolesToAll(ctx context.Context, org gateway.OrgID) error {
	if len(s.policy(org).GroupRoles) == 0 {
		return nil
	}
	m := Meta{Org: org, Source: gateway.SourceManual}
	for start := 0; ; start += 200 {
		users, _, err := s.store.Users().List(ctx, org, start, 200)
		if err != nil {
			return err
		}
		ids := make([]string, len(users))
		for i, u := range users {
			ids[i] = u.ID
		}
		if err := s.applyGroupRoles(ctx, m, ids); err != nil {
			return err
		}
		if len(users) < 200 {
			return nil
		}
	}
}

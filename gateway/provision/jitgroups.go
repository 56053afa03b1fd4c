package provision

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/fold"
)

// maxJITGroups bounds the groups one sign-in can name: an IdP sending
// thousands (a misconfigured group filter) must not turn each login into
// thousands of writes.
const maxJITGroups = 200

// syncJITGroups makes a JIT user's memberships follow the groups the IdP
// names at sign-in: groups are found by name (any case) and created, with
// source jit, when missing; the user joins each JIT-made one and leaves
// the JIT-made ones the IdP no longer names. Groups made another way (the
// app, a manager) are never joined or left by the IdP. Names that are not
// valid group names are skipped.
func (s *Service) syncJITGroups(ctx context.Context, org gateway.OrgID, u *gateway.User, names []string) error {
	wanted := map[string]string{} // folded name → name as sent
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" || len(wanted) >= maxJITGroups {
			continue
		}
		if _, dup := wanted[fold.Key(n)]; !dup {
			wanted[fold.Key(n)] = n
		}
	}
	current, err := s.store.Groups().Memberships(ctx, org, []string{u.ID})
	if err != nil {
		return fmt.Errorf("jit groups: memberships: %w", err)
	}
	have := map[string]gateway.GroupRef{}
	for _, g := range current[u.ID] {
		have[fold.Key(g.DisplayName)] = g
	}
	m := Meta{Org: org, Source: gateway.SourceJIT}
	member := gateway.Member{UserID: u.ID, Display: u.DisplayName}
	keys := make([]string, 0, len(wanted))
	for k := range wanted {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a stable order of writes
	for _, k := range keys {
		if _, ok := have[k]; ok {
			continue
		}
		if err := s.joinGroup(ctx, m, wanted[k], member); err != nil {
			return err
		}
	}
	for k, ref := range have {
		if _, ok := wanted[k]; ok {
			continue
		}
		_, _, err := s.UpdateGroup(ctx, m, ref.ID, 0, func(g *gateway.Group, members []gateway.Member) (*gateway.Group, []gateway.Member, error) {
			if g.Source != gateway.SourceJIT {
				return g, members, nil
			}
			return g, slices.DeleteFunc(members, func(x gateway.Member) bool { return x.UserID == u.ID }), nil
		})
		if err != nil && gateway.ErrorCodeOf(err) != gateway.ErrNotFound {
			return fmt.Errorf("jit groups: leaving %q: %w", ref.DisplayName, err)
		}
	}
	return nil
}

// joinGroup adds member to the group named name, creating it if missing.
func (s *Service) joinGroup(ctx context.Context, m Meta, name string, member gateway.Member) error {
	for attempt := 0; attempt < 3; attempt++ {
		ids, err := s.store.Groups().Lookup(ctx, m.Org, gateway.GroupByDisplayName, name)
		if err != nil {
			return fmt.Errorf("jit groups: finding %q: %w", name, err)
		}
		if len(ids) == 0 {
			_, err := s.CreateGroup(ctx, m, &gateway.Group{DisplayName: name}, []gateway.Member{member})
			switch gateway.ErrorCodeOf(err) {
			case gateway.ErrConflict:
				continue // created by a concurrent sign-in: join it
			case gateway.ErrInvalid:
				return nil // not a name a group can have
			}
			if err != nil {
				return fmt.Errorf("jit groups: creating %q: %w", name, err)
			}
			return nil
		}
		_, _, err = s.UpdateGroup(ctx, m, ids[0], 0, func(g *gateway.Group, members []gateway.Member) (*gateway.Group, []gateway.Member, error) {
			if g.Source != gateway.SourceJIT {
				// A group the app or a manager made is not the IdP's to
				// hand out: a group named "Admins" at the IdP must not
				// grant the app's own.
				return g, members, nil
			}
			return g, append(members, member), nil
		})
		if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
			continue // deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("jit groups: joining %q: %w", name, err)
		}
		return nil
	}
	return fmt.Errorf("jit groups: %q keeps changing; try signing in again", name)
}

package bolt

import (
	"context"
	"fmt"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/store/internal/storekit"
)

type groupStore struct{ s *Store }

func getGroup(tb *bolt.Bucket, id string) (*gateway.Group, error) {
	raw := tb.Bucket(bGroups).Get([]byte(id))
	if raw == nil {
		return nil, nil
	}
	return decodeGroup(raw)
}

func putGroup(tb *bolt.Bucket, g *gateway.Group) error {
	raw, err := encodeGroup(g)
	if err != nil {
		return err
	}
	return tb.Bucket(bGroups).Put([]byte(g.ID), raw)
}

// currentGroup reads the group a write applies to, checking its version
// when ifVersion is not 0.
func currentGroup(tb *bolt.Bucket, id string, ifVersion uint64) (*gateway.Group, error) {
	g, err := getGroup(tb, id)
	switch {
	case err != nil:
		return nil, err
	case g == nil:
		return nil, notFound("Group", id)
	case ifVersion != 0 && g.Version != ifVersion:
		return nil, preconditionFailed("Group", id, g.Version)
	}
	return g, nil
}

func groupNameTaken(tb *bolt.Bucket, name, exceptID string) error {
	if owner := tb.Bucket(bGroupName).Get([]byte(fold(name))); owner != nil && string(owner) != exceptID {
		return gateway.Errorf(gateway.ErrConflict, "a group named %q already exists (displayName is unique and case-insensitive)", name)
	}
	return nil
}

func indexGroup(tb *bolt.Bucket, g *gateway.Group, add bool) error {
	if err := setUnique(tb.Bucket(bGroupName), fold(g.DisplayName), g.ID, add); err != nil {
		return err
	}
	if g.ExternalID != "" {
		return setEntry(tb.Bucket(bGroupExtID), pair(g.ExternalID, g.ID), add)
	}
	return nil
}

func members(tb *bolt.Bucket, groupID string) []gateway.Member {
	var out []gateway.Member
	p := pair(groupID, "")
	c := tb.Bucket(bGroupUser).Cursor()
	for k, v := c.Seek(p); k != nil && strings.HasPrefix(string(k), string(p)); k, v = c.Next() {
		out = append(out, gateway.Member{UserID: string(k[len(p):]), Display: string(v)})
	}
	return out
}

// missingUsers returns the member ids that name no user, sorted.
func missingUsers(tb *bolt.Bucket, ms []gateway.Member) []string {
	users := tb.Bucket(bUsers)
	var missing []string
	for _, m := range ms {
		if users.Get([]byte(m.UserID)) == nil {
			missing = append(missing, m.UserID)
		}
	}
	sort.Strings(missing)
	return missing
}

var unknownMembers = storekit.UnknownMembers

// putEdges writes membership edges in both directions; an existing edge
// gets the new display.
func putEdges(tb *bolt.Bucket, groupID string, ms []gateway.Member) error {
	gu, ug := tb.Bucket(bGroupUser), tb.Bucket(bUserGroup)
	for _, m := range ms {
		if err := gu.Put(pair(groupID, m.UserID), []byte(m.Display)); err != nil {
			return err
		}
		if err := ug.Put(pair(m.UserID, groupID), nil); err != nil {
			return err
		}
	}
	return nil
}

// removeEdges deletes membership edges in both directions.
func removeEdges(tb *bolt.Bucket, groupID string, userIDs []string) error {
	gu, ug := tb.Bucket(bGroupUser), tb.Bucket(bUserGroup)
	for _, uid := range userIDs {
		if err := gu.Delete(pair(groupID, uid)); err != nil {
			return err
		}
		if err := ug.Delete(pair(uid, groupID)); err != nil {
			return err
		}
	}
	return nil
}

func (gs groupStore) Create(ctx context.Context, g *gateway.Group, ms []gateway.Member, events []gateway.Event) error {
	if g.Version != 1 || g.ID == "" {
		return fmt.Errorf("bolt: create group: %w", unstamped("group", g.ID, g.Version, 1))
	}
	err := gs.s.write(ctx, g.Org, func(tb *bolt.Bucket) error {
		if tb.Bucket(bGroups).Get([]byte(g.ID)) != nil {
			return gateway.Errorf(gateway.ErrConflict, "group id %q already exists", g.ID)
		}
		if err := groupNameTaken(tb, g.DisplayName, ""); err != nil {
			return err
		}
		if missing := missingUsers(tb, ms); len(missing) > 0 {
			return unknownMembers(missing)
		}
		if err := putGroup(tb, g); err != nil {
			return err
		}
		if err := indexGroup(tb, g, true); err != nil {
			return err
		}
		if err := putEdges(tb, g.ID, ms); err != nil {
			return err
		}
		if err := addCounter(tb, counterGroups, 1); err != nil {
			return err
		}
		if err := bumpGeneration(tb, bGroups); err != nil {
			return err
		}
		return appendEvents(tb, g.Org, events)
	})
	if err != nil {
		return fmt.Errorf("bolt: create group: %w", err)
	}
	return nil
}

func (gs groupStore) Get(ctx context.Context, org gateway.OrgID, id string) (*gateway.Group, error) {
	var g *gateway.Group
	err := gs.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		var err error
		g, err = getGroup(tb, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get group: %w", err)
	}
	if g == nil {
		return nil, notFound("Group", id)
	}
	return g, nil
}

func (gs groupStore) GetMany(ctx context.Context, org gateway.OrgID, ids []string) ([]*gateway.Group, error) {
	out := make([]*gateway.Group, 0, len(ids))
	err := gs.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		for _, id := range ids {
			g, err := getGroup(tb, id)
			if err != nil {
				return err
			}
			if g != nil {
				out = append(out, g)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get groups: %w", err)
	}
	return out, nil
}

func (gs groupStore) Members(ctx context.Context, org gateway.OrgID, id string) ([]gateway.Member, error) {
	var out []gateway.Member
	found := false
	err := gs.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil || tb.Bucket(bGroups).Get([]byte(id)) == nil {
			return nil
		}
		found = true
		out = members(tb, id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: group members: %w", err)
	}
	if !found {
		return nil, notFound("Group", id)
	}
	return out, nil
}

func (gs groupStore) GetWithMembers(ctx context.Context, org gateway.OrgID, id string) (*gateway.Group, []gateway.Member, error) {
	var g *gateway.Group
	var ms []gateway.Member
	err := gs.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		var err error
		if g, err = getGroup(tb, id); err != nil || g == nil {
			return err
		}
		ms = members(tb, id)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("bolt: get group: %w", err)
	}
	if g == nil {
		return nil, nil, notFound("Group", id)
	}
	return g, ms, nil
}

func (gs groupStore) Update(ctx context.Context, org gateway.OrgID, id string, ifVersion uint64, fn gateway.GroupUpdateFunc) (*gateway.Group, error) {
	var result *gateway.Group
	err := gs.s.write(ctx, org, func(tb *bolt.Bucket) error {
		old, err := currentGroup(tb, id, ifVersion)
		if err != nil {
			return err
		}
		ch, err := fn(old.Clone())
		if err != nil {
			return err
		}
		if ch.Unchanged {
			result = old
			return appendEvents(tb, org, ch.Events)
		}
		ng := ch.Group
		if ng == nil {
			return unstamped("group", id, 0, old.Version+1)
		}
		if err := checkStamped("group", id, org, old.Version, ng.ID, ng.Org, ng.Version); err != nil {
			return err
		}
		if fold(ng.DisplayName) != fold(old.DisplayName) {
			if err := groupNameTaken(tb, ng.DisplayName, id); err != nil {
				return err
			}
		}
		if missing := missingUsers(tb, ch.Put); len(missing) > 0 {
			return unknownMembers(missing)
		}
		if fold(ng.DisplayName) != fold(old.DisplayName) || ng.ExternalID != old.ExternalID {
			if err := indexGroup(tb, old, false); err != nil {
				return err
			}
			if err := indexGroup(tb, ng, true); err != nil {
				return err
			}
		}
		if err := putGroup(tb, ng); err != nil {
			return err
		}
		if err := putEdges(tb, id, ch.Put); err != nil {
			return err
		}
		if err := removeEdges(tb, id, ch.Remove); err != nil {
			return err
		}
		result = ng
		return appendEvents(tb, org, ch.Events)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: update group: %w", err)
	}
	return result, nil
}

func (gs groupStore) Delete(ctx context.Context, org gateway.OrgID, id string, ifVersion uint64, fn gateway.GroupDeleteFunc) error {
	err := gs.s.write(ctx, org, func(tb *bolt.Bucket) error {
		old, err := currentGroup(tb, id, ifVersion)
		if err != nil {
			return err
		}
		ms := members(tb, id)
		events, err := fn(old, ms)
		if err != nil {
			return err
		}
		ids := make([]string, len(ms))
		for i, m := range ms {
			ids[i] = m.UserID
		}
		if err := removeEdges(tb, id, ids); err != nil {
			return err
		}
		if err := indexGroup(tb, old, false); err != nil {
			return err
		}
		if err := tb.Bucket(bGroups).Delete([]byte(id)); err != nil {
			return err
		}
		if err := addCounter(tb, counterGroups, -1); err != nil {
			return err
		}
		if err := bumpGeneration(tb, bGroups); err != nil {
			return err
		}
		return appendEvents(tb, org, events)
	})
	if err != nil {
		return fmt.Errorf("bolt: delete group: %w", err)
	}
	return nil
}

func (gs groupStore) Lookup(ctx context.Context, org gateway.OrgID, index gateway.GroupIndex, value string) ([]string, error) {
	var ids []string
	err := gs.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		switch index {
		case gateway.GroupByDisplayName:
			if id := tb.Bucket(bGroupName).Get([]byte(fold(value))); id != nil {
				ids = []string{string(id)}
			}
		case gateway.GroupByExternalID:
			ids = prefixed(tb.Bucket(bGroupExtID), value)
		case gateway.GroupByMember:
			ids = prefixed(tb.Bucket(bUserGroup), value)
		default:
			return fmt.Errorf("unknown group index %q", index)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: lookup groups: %w", err)
	}
	return ids, nil
}

func (gs groupStore) List(ctx context.Context, org gateway.OrgID, offset, limit int) ([]*gateway.Group, int, error) {
	out := []*gateway.Group{}
	total := 0
	err := gs.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		total = counter(tb, counterGroups)
		return gs.s.pager.page(tb, org, bGroups, offset, limit, func(v []byte) error {
			g, err := decodeGroup(v)
			if err != nil {
				return err
			}
			out = append(out, g)
			return nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("bolt: list groups: %w", err)
	}
	return out, total, nil
}

func (gs groupStore) Scan(ctx context.Context, org gateway.OrgID, fn func(*gateway.Group) bool) error {
	err := gs.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		c := tb.Bucket(bGroups).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			g, err := decodeGroup(v)
			if err != nil {
				return fmt.Errorf("group %q: %w", k, err)
			}
			if !fn(g) {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: scan groups: %w", err)
	}
	return nil
}

func (gs groupStore) Memberships(ctx context.Context, org gateway.OrgID, userIDs []string) (map[string][]gateway.GroupRef, error) {
	out := map[string][]gateway.GroupRef{}
	err := gs.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		names := map[string]string{} // a page's users share few groups
		for _, uid := range userIDs {
			for _, gid := range prefixed(tb.Bucket(bUserGroup), uid) {
				name, ok := names[gid]
				if !ok {
					g, err := getGroup(tb, gid)
					if err != nil {
						return err
					}
					if g != nil {
						name = g.DisplayName
					}
					names[gid] = name
				}
				out[uid] = append(out[uid], gateway.GroupRef{ID: gid, DisplayName: name})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: memberships: %w", err)
	}
	return out, nil
}

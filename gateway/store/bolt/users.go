package bolt

import (
	"context"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/store/internal/storekit"
)

type userStore struct{ s *Store }

func getUser(tb *bolt.Bucket, org gateway.OrgID, id string) (*gateway.User, error) {
	raw := tb.Bucket(bUsers).Get([]byte(id))
	if raw == nil {
		return nil, nil
	}
	return decodeUser(raw, org)
}

func putUser(tb *bolt.Bucket, u *gateway.User) error {
	raw, err := encodeUser(u)
	if err != nil {
		return err
	}
	return tb.Bucket(bUsers).Put([]byte(u.ID), raw)
}

// currentUserHeader is currentUser without the document: what a write
// of a record decided before needs (version, indexed fields).
func currentUserHeader(tb *bolt.Bucket, org gateway.OrgID, id string, ifVersion uint64) (*gateway.User, error) {
	raw := tb.Bucket(bUsers).Get([]byte(id))
	if raw == nil {
		return nil, notFound("User", id)
	}
	u, _, err := decodeUserHeader(raw, org)
	switch {
	case err != nil:
		return nil, err
	case ifVersion != 0 && u.Version != ifVersion:
		return nil, preconditionFailed("User", id, u.Version)
	}
	return u, nil
}

// currentUser reads the user a write applies to, checking its version
// when ifVersion is not 0.
func currentUser(tb *bolt.Bucket, org gateway.OrgID, id string, ifVersion uint64) (*gateway.User, error) {
	u, err := getUser(tb, org, id)
	switch {
	case err != nil:
		return nil, err
	case u == nil:
		return nil, notFound("User", id)
	case ifVersion != 0 && u.Version != ifVersion:
		return nil, preconditionFailed("User", id, u.Version)
	}
	return u, nil
}

func userNameTaken(tb *bolt.Bucket, userName, exceptID string) error {
	if owner := tb.Bucket(bUserName).Get([]byte(fold(userName))); owner != nil && string(owner) != exceptID {
		return gateway.Errorf(gateway.ErrConflict, "userName %q is already taken (userName is unique and case-insensitive)", userName)
	}
	return nil
}

// indexUser adds (add=true) or removes u's index entries.
func indexUser(tb *bolt.Bucket, u *gateway.User, add bool) error {
	if err := setUnique(tb.Bucket(bUserName), fold(u.UserName), u.ID, add); err != nil {
		return err
	}
	if u.ExternalID != "" {
		if err := setEntry(tb.Bucket(bUserExtID), pair(u.ExternalID, u.ID), add); err != nil {
			return err
		}
	}
	for _, e := range u.Emails {
		if err := setEntry(tb.Bucket(bUserEmail), pair(fold(e), u.ID), add); err != nil {
			return err
		}
	}
	for _, p := range u.Pools {
		if err := setEntry(tb.Bucket(bUserPool), pair(p, u.ID), add); err != nil {
			return err
		}
	}
	return nil
}

// setUnique adds or removes a unique index entry key → id, touching only
// an entry that id owns: after the version 2 migration two records can
// share a folded name, and the one that does not own the entry must
// neither take it over nor delete it.
func setUnique(b *bolt.Bucket, key, id string, add bool) error {
	owner := b.Get([]byte(key))
	switch {
	case owner != nil && string(owner) != id:
		return nil
	case add:
		return b.Put([]byte(key), []byte(id))
	case owner != nil:
		return b.Delete([]byte(key))
	}
	return nil
}

func setEntry(b *bolt.Bucket, key []byte, add bool) error {
	if add {
		return b.Put(key, nil)
	}
	return b.Delete(key)
}

func (us userStore) Create(ctx context.Context, u *gateway.User, events []gateway.Event, audit ...gateway.AuditEntry) error {
	if u.Version != 1 || u.ID == "" {
		return fmt.Errorf("bolt: create user: %w", unstamped("user", u.ID, u.Version, 1))
	}
	raw, evs, err := encodeUserWrite(u, events)
	if err != nil {
		return fmt.Errorf("bolt: create user: %w", err)
	}
	err = us.s.write(ctx, u.Org, func(tb *bolt.Bucket) error {
		if tb.Bucket(bUsers).Get([]byte(u.ID)) != nil {
			return gateway.Errorf(gateway.ErrConflict, "user id %q already exists", u.ID)
		}
		if err := userNameTaken(tb, u.UserName, ""); err != nil {
			return err
		}
		if err := tb.Bucket(bUsers).Put([]byte(u.ID), raw); err != nil {
			return err
		}
		if err := indexUser(tb, u, true); err != nil {
			return err
		}
		if err := addCounter(tb, counterUsers, 1); err != nil {
			return err
		}
		if err := bumpGeneration(tb, bUsers); err != nil {
			return err
		}
		if err := appendAudit(tb, u.Org, audit); err != nil {
			return err
		}
		return evs.append(tb)
	})
	if err != nil {
		return fmt.Errorf("bolt: create user: %w", err)
	}
	return nil
}

// encodeUserWrite encodes, before the transaction, a user record decided
// before the call and the events written with it.
func encodeUserWrite(u *gateway.User, events []gateway.Event) ([]byte, encodedEvents, error) {
	if u.Org == "" {
		return nil, encodedEvents{}, errNoOrg
	}
	raw, err := encodeUser(u)
	if err != nil {
		return nil, encodedEvents{}, err
	}
	evs, err := encodeEvents(u.Org, events)
	return raw, evs, err
}

// Replace writes a user decided before the call, encoded before the
// transaction, which only checks the stored version and moves the index
// entries that changed.
func (us userStore) Replace(ctx context.Context, u *gateway.User, ifVersion uint64, events []gateway.Event, audit ...gateway.AuditEntry) error {
	if ifVersion == 0 || u.Version != ifVersion+1 || u.ID == "" {
		return fmt.Errorf("bolt: replace user: %w", unstamped("user", u.ID, u.Version, ifVersion+1))
	}
	raw, evs, err := encodeUserWrite(u, events)
	if err != nil {
		return fmt.Errorf("bolt: replace user: %w", err)
	}
	err = us.s.write(ctx, u.Org, func(tb *bolt.Bucket) error {
		old, err := currentUserHeader(tb, u.Org, u.ID, ifVersion)
		if err != nil {
			return err
		}
		if err := moveUserIndexes(tb, old, u); err != nil {
			return err
		}
		if err := tb.Bucket(bUsers).Put([]byte(u.ID), raw); err != nil {
			return err
		}
		if err := appendAudit(tb, u.Org, audit); err != nil {
			return err
		}
		return evs.append(tb)
	})
	if err != nil {
		return fmt.Errorf("bolt: replace user: %w", err)
	}
	return nil
}

// moveUserIndexes checks a changed userName is free and moves the index
// entries of old to nu when an indexed value changed (most changes,
// activation and names, leave them: rewriting would only dirty pages).
func moveUserIndexes(tb *bolt.Bucket, old, nu *gateway.User) error {
	renamed := fold(nu.UserName) != fold(old.UserName)
	if renamed {
		if err := userNameTaken(tb, nu.UserName, nu.ID); err != nil {
			return err
		}
	}
	if !renamed && nu.ExternalID == old.ExternalID && slices.Equal(nu.Emails, old.Emails) && slices.Equal(nu.Pools, old.Pools) {
		return nil
	}
	if err := indexUser(tb, old, false); err != nil {
		return err
	}
	return indexUser(tb, nu, true)
}

func (us userStore) Get(ctx context.Context, org gateway.OrgID, id string) (*gateway.User, error) {
	var u *gateway.User
	err := us.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		var err error
		u, err = getUser(tb, org, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get user: %w", err)
	}
	if u == nil {
		return nil, notFound("User", id)
	}
	return u, nil
}

func (us userStore) GetMany(ctx context.Context, org gateway.OrgID, ids []string) ([]*gateway.User, error) {
	out := make([]*gateway.User, 0, len(ids))
	err := us.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		for _, id := range ids {
			u, err := getUser(tb, org, id)
			if err != nil {
				return err
			}
			if u != nil {
				out = append(out, u)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get users: %w", err)
	}
	return out, nil
}

func (us userStore) Update(ctx context.Context, org gateway.OrgID, id string, ifVersion uint64, fn gateway.UserUpdateFunc) (*gateway.User, error) {
	var result *gateway.User
	err := us.s.write(ctx, org, func(tb *bolt.Bucket) error {
		old, err := currentUser(tb, org, id, ifVersion)
		if err != nil {
			return err
		}
		ch, err := fn(old.Clone()) // fn may keep or modify its copy
		if err != nil {
			return err
		}
		if err := appendAudit(tb, org, ch.Audit); err != nil {
			return err
		}
		if ch.Unchanged {
			result = old
			return appendEvents(tb, org, ch.Events)
		}
		nu := ch.User
		if nu == nil {
			return unstamped("user", id, 0, old.Version+1)
		}
		if err := checkStamped("user", id, org, old.Version, nu.ID, nu.Org, nu.Version); err != nil {
			return err
		}
		if err := moveUserIndexes(tb, old, nu); err != nil {
			return err
		}
		if err := putUser(tb, nu); err != nil {
			return err
		}
		result = nu
		return appendEvents(tb, org, ch.Events)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: update user: %w", err)
	}
	return result, nil
}

func (us userStore) Delete(ctx context.Context, org gateway.OrgID, id string, ifVersion uint64, fn gateway.UserDeleteFunc) error {
	err := us.s.write(ctx, org, func(tb *bolt.Bucket) error {
		old, err := currentUser(tb, org, id, ifVersion)
		if err != nil {
			return err
		}
		groupIDs := prefixed(tb.Bucket(bUserGroup), id)
		groups := make([]*gateway.Group, 0, len(groupIDs))
		for _, gid := range groupIDs {
			g, err := getGroup(tb, gid)
			if err != nil {
				return err
			}
			if g == nil {
				return fmt.Errorf("membership edge of user %q names missing group %q", id, gid)
			}
			groups = append(groups, g)
		}
		del, err := fn(old, groups)
		if err != nil {
			return err
		}
		// The groups the user leaves change: each comes back stamped.
		if err := storekit.CheckLeftGroups(org, id, groups, del.Groups); err != nil {
			return err
		}
		for _, g := range del.Groups {
			if err := putGroup(tb, g); err != nil {
				return err
			}
			if err := tb.Bucket(bGroupUser).Delete(pair(g.ID, id)); err != nil {
				return err
			}
			if err := tb.Bucket(bUserGroup).Delete(pair(id, g.ID)); err != nil {
				return err
			}
		}
		if err := indexUser(tb, old, false); err != nil {
			return err
		}
		if err := tb.Bucket(bUsers).Delete([]byte(id)); err != nil {
			return err
		}
		if err := addCounter(tb, counterUsers, -1); err != nil {
			return err
		}
		if err := bumpGeneration(tb, bUsers); err != nil {
			return err
		}
		if err := tb.Bucket(bLastLogin).Delete([]byte(id)); err != nil {
			return err
		}
		if err := appendAudit(tb, org, del.Audit); err != nil {
			return err
		}
		return appendEvents(tb, org, del.Events)
	})
	if err != nil {
		return fmt.Errorf("bolt: delete user: %w", err)
	}
	return nil
}

func (us userStore) Lookup(ctx context.Context, org gateway.OrgID, index gateway.UserIndex, value string) ([]string, error) {
	var ids []string
	err := us.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		switch index {
		case gateway.UserByUserName:
			if id := tb.Bucket(bUserName).Get([]byte(fold(value))); id != nil {
				ids = []string{string(id)}
			}
		case gateway.UserByExternalID:
			ids = prefixed(tb.Bucket(bUserExtID), value)
		case gateway.UserByEmail:
			ids = prefixed(tb.Bucket(bUserEmail), fold(value))
		case gateway.UserByPool:
			ids = prefixed(tb.Bucket(bUserPool), value)
		default:
			return fmt.Errorf("unknown user index %q", index)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: lookup users: %w", err)
	}
	return ids, nil
}

func (us userStore) List(ctx context.Context, org gateway.OrgID, offset, limit int) ([]*gateway.User, int, error) {
	out := []*gateway.User{}
	total := 0
	err := us.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		total = counter(tb, counterUsers)
		return us.s.pager.page(tb, org, bUsers, offset, limit, func(v []byte) error {
			u, err := decodeUser(v, org)
			if err != nil {
				return err
			}
			out = append(out, u)
			return nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("bolt: list users: %w", err)
	}
	return out, total, nil
}

func (us userStore) Scan(ctx context.Context, org gateway.OrgID, after string, fn func(*gateway.User) bool) error {
	return us.scan(ctx, org, after, func(v []byte) (*gateway.User, error) { return decodeUser(v, org) }, fn)
}

// ScanSummaries is Scan without the protocol documents: a filtered list
// of a large directory decodes only what it filters on.
func (us userStore) ScanSummaries(ctx context.Context, org gateway.OrgID, after, contains string, fn func(*gateway.User) bool) error {
	return us.scan(ctx, org, after, func(v []byte) (*gateway.User, error) {
		if doc, ok := userDocument(v); ok && contains != "" && !mayContain(doc, contains) {
			return nil, nil
		}
		u, _, err := decodeUserHeader(v, org)
		return u, err
	}, fn)
}

// mayContain reports whether a user's document v (compact JSON, which
// holds every typed field: they are synced into it) may hold q (lower-case
// letters, digits and . @ _ + -, which JSON writes unescaped) in a field
// under case folding. An all-ASCII document that lacks q in any case
// cannot; one with other bytes may (folding can turn them into ASCII), so
// it is kept.
func mayContain(v []byte, q string) bool {
	for _, c := range v {
		if c >= 0x80 {
			return true
		}
	}
	for i := 0; i+len(q) <= len(v); i++ {
		j := 0
		for ; j < len(q); j++ {
			c := v[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != q[j] {
				break
			}
		}
		if j == len(q) {
			return true
		}
	}
	return false
}

func (us userStore) scan(ctx context.Context, org gateway.OrgID, after string, decode func([]byte) (*gateway.User, error), fn func(*gateway.User) bool) error {
	err := us.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		c := tb.Bucket(bUsers).Cursor()
		k, v := c.First()
		if after != "" {
			if k, v = c.Seek([]byte(after)); k != nil && string(k) == after {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			u, err := decode(v)
			if err != nil {
				return fmt.Errorf("user %q: %w", k, err)
			}
			if u == nil {
				continue // ruled out undecoded
			}
			if !fn(u) {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: scan users: %w", err)
	}
	return nil
}

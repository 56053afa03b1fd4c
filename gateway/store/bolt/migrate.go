package bolt

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// rebuildNameIndexes re-keys the unique userName and group displayName
// indexes of every org with fold (schema version 1 → 2). Names that
// were distinct under strings.ToLower but are one name under full case
// folding (straße, STRASSE) cannot both keep an index entry: the older
// record keeps it, and a note names both so that an operator can rename
// one. Both records stay readable by id and by filter.
func rebuildNameIndexes(tx *bolt.Tx) ([]string, error) {
	var notes []string
	err := tx.Bucket(bucketTenants).ForEachBucket(func(name []byte) error {
		org := gateway.OrgID(name)
		tb := tx.Bucket(bucketTenants).Bucket(name)
		users, err := rebuildIndex(tb, bUsers, bUserName, func(v []byte) (string, string, error) {
			u, err := decodeUser(v, org)
			if err != nil {
				return "", "", err
			}
			return u.ID, u.UserName, nil
		})
		if err != nil {
			return fmt.Errorf("tenant %q users: %w", org, err)
		}
		if err := rebuildEmailIndex(tb, org); err != nil {
			return fmt.Errorf("tenant %q emails: %w", org, err)
		}
		for _, c := range users {
			notes = append(notes, fmt.Sprintf("tenant %q: users %s (userName %q) and %s (userName %q) are one userName under Unicode case folding; %s keeps it for look-ups, rename or delete the other",
				org, c.keptID, c.keptName, c.otherID, c.otherName, c.keptID))
		}
		groups, err := rebuildIndex(tb, bGroups, bGroupName, func(v []byte) (string, string, error) {
			g, err := decodeGroup(v)
			if err != nil {
				return "", "", err
			}
			return g.ID, g.DisplayName, nil
		})
		if err != nil {
			return fmt.Errorf("tenant %q groups: %w", org, err)
		}
		for _, c := range groups {
			notes = append(notes, fmt.Sprintf("tenant %q: groups %s (%q) and %s (%q) are one displayName under Unicode case folding; %s keeps it for look-ups, rename or delete the other",
				org, c.keptID, c.keptName, c.otherID, c.otherName, c.keptID))
		}
		return nil
	})
	return notes, err
}

// rebuildEmailIndex re-keys the email index with fold, the key filters on
// emails.value compare with (email is not unique: no conflicts).
func rebuildEmailIndex(tb *bolt.Bucket, org gateway.OrgID) error {
	if err := tb.DeleteBucket(bUserEmail); err != nil {
		return err
	}
	ib, err := tb.CreateBucket(bUserEmail)
	if err != nil {
		return err
	}
	return tb.Bucket(bUsers).ForEach(func(_, v []byte) error {
		u, err := decodeUser(v, org)
		if err != nil {
			return err
		}
		for _, e := range u.Emails {
			if err := ib.Put(pair(fold(e), u.ID), nil); err != nil {
				return err
			}
		}
		return nil
	})
}

type nameConflict struct {
	keptID, keptName, otherID, otherName string
}

// rebuildIndex recreates the unique index idx over the records of bucket
// (in id order, so the older record wins a conflict).
func rebuildIndex(tb *bolt.Bucket, bucket, idx []byte, name func([]byte) (id, name string, err error)) ([]nameConflict, error) {
	if err := tb.DeleteBucket(idx); err != nil {
		return nil, err
	}
	ib, err := tb.CreateBucket(idx)
	if err != nil {
		return nil, err
	}
	var conflicts []nameConflict
	seen := map[string][2]string{}
	err = tb.Bucket(bucket).ForEach(func(_, v []byte) error {
		id, n, err := name(v)
		if err != nil {
			return err
		}
		key := fold(n)
		if kept, ok := seen[key]; ok {
			conflicts = append(conflicts, nameConflict{keptID: kept[0], keptName: kept[1], otherID: id, otherName: n})
			return nil
		}
		seen[key] = [2]string{id, n}
		return ib.Put([]byte(key), []byte(id))
	})
	return conflicts, err
}

// buildPoolIndex indexes every user's pools (schema version 2 → 3, which
// added the pool index; version 2 records hold one pool).
func buildPoolIndex(tx *bolt.Tx) error {
	return tx.Bucket(bucketTenants).ForEachBucket(func(name []byte) error {
		tb := tx.Bucket(bucketTenants).Bucket(name)
		idx := tb.Bucket(bUserPool)
		return tb.Bucket(bUsers).ForEach(func(_, v []byte) error {
			u, err := decodeUser(v, gateway.OrgID(name))
			if err != nil {
				return fmt.Errorf("tenant %q: %w", name, err)
			}
			for _, p := range u.Pools {
				if err := idx.Put(pair(p, u.ID), nil); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// The registry of organizations lives beside the organizations' own
// scopes: id → the organization (JSON), and each domain → its owner.
var (
	bucketOrgs       = []byte("orgs")
	bucketOrgDomains = []byte("org_domains")
)

type orgStore struct{ s *Store }

func (s *Store) Orgs() gateway.OrgStore { return orgStore{s} }

// domainKey is a domain as the registry compares it: lower case, without
// the root's trailing dot (example.com. is example.com).
func domainKey(name string) []byte {
	return []byte(strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), "."))
}

// writeRegistry runs fn in a group-committed transaction on the registry
// (and the operator's audit scope).
func (s *Store) writeRegistry(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return unavailable(s.commits.write("", func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketOrgs, bucketOrgDomains} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return fn(tx)
	}))
}

// putOrg stores o and claims its domains, after releasing old's.
func putOrg(tx *bolt.Tx, o, old *gateway.Organization, audit []gateway.AuditEntry) error {
	domains := tx.Bucket(bucketOrgDomains)
	if old != nil {
		for _, d := range old.Domains {
			if err := domains.Delete(domainKey(d.Name)); err != nil {
				return err
			}
		}
	}
	for _, d := range o.Domains {
		k := domainKey(d.Name)
		if owner := domains.Get(k); owner != nil && !bytes.Equal(owner, []byte(o.ID)) {
			return gateway.Errorf(gateway.ErrConflict, "the domain %s belongs to organization %q", d.Name, owner)
		}
		if err := domains.Put(k, []byte(o.ID)); err != nil {
			return err
		}
	}
	raw, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("encode organization: %w", err)
	}
	if err := tx.Bucket(bucketOrgs).Put([]byte(o.ID), raw); err != nil {
		return err
	}
	return auditOperator(tx, audit)
}

// auditOperator records the registry's audit entries in the operator's
// scope, in the registry change's transaction.
func auditOperator(tx *bolt.Tx, audit []gateway.AuditEntry) error {
	if len(audit) == 0 {
		return nil
	}
	tb, err := tenantBucket(tx, gateway.OperatorScope)
	if err != nil {
		return err
	}
	return appendAudit(tb, gateway.OperatorScope, audit)
}

func getOrg(tx *bolt.Tx, id gateway.OrgID) (*gateway.Organization, error) {
	b := tx.Bucket(bucketOrgs)
	if b == nil {
		return nil, notFound("Organization", string(id))
	}
	raw := b.Get([]byte(id))
	if raw == nil {
		return nil, notFound("Organization", string(id))
	}
	var o gateway.Organization
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, fmt.Errorf("organization %q: %w", id, err)
	}
	return &o, nil
}

func (r orgStore) Create(ctx context.Context, o *gateway.Organization, audit ...gateway.AuditEntry) error {
	if err := o.ID.Check(); err != nil {
		return fmt.Errorf("bolt: create organization: %w", err)
	}
	if o.Version != 1 {
		return fmt.Errorf("bolt: create organization: %w", unstamped("organization", string(o.ID), o.Version, 1))
	}
	err := r.s.writeRegistry(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketOrgs).Get([]byte(o.ID)) != nil {
			return gateway.Errorf(gateway.ErrConflict, "an organization %q exists already", o.ID)
		}
		return putOrg(tx, o, nil, audit)
	})
	if err != nil {
		return fmt.Errorf("bolt: create organization: %w", err)
	}
	return nil
}

func (r orgStore) Get(ctx context.Context, id gateway.OrgID) (*gateway.Organization, error) {
	var o *gateway.Organization
	err := r.s.db.View(func(tx *bolt.Tx) error {
		var err error
		o, err = getOrg(tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get organization: %w", unavailable(err))
	}
	return o, ctx.Err()
}

func (r orgStore) List(ctx context.Context, after gateway.OrgID, limit int) ([]*gateway.Organization, int, error) {
	var out []*gateway.Organization
	total := 0
	err := r.s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOrgs)
		if b == nil {
			return nil
		}
		total = b.Stats().KeyN
		c := b.Cursor()
		k, v := c.First()
		if after != "" {
			if k, v = c.Seek([]byte(after)); k != nil && bytes.Equal(k, []byte(after)) {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			var o gateway.Organization
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("organization %q: %w", k, err)
			}
			out = append(out, &o)
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("bolt: list organizations: %w", unavailable(err))
	}
	return out, total, nil
}

func (r orgStore) Replace(ctx context.Context, o *gateway.Organization, ifVersion uint64, audit ...gateway.AuditEntry) error {
	if ifVersion == 0 || o.Version != ifVersion+1 {
		return fmt.Errorf("bolt: replace organization: %w", unstamped("organization", string(o.ID), o.Version, ifVersion+1))
	}
	err := r.s.writeRegistry(ctx, func(tx *bolt.Tx) error {
		old, err := getOrg(tx, o.ID)
		if err != nil {
			return err
		}
		if old.Version != ifVersion {
			return preconditionFailed("Organization", string(o.ID), old.Version)
		}
		return putOrg(tx, o, old, audit)
	})
	if err != nil {
		return fmt.Errorf("bolt: replace organization: %w", err)
	}
	return nil
}

func (r orgStore) Delete(ctx context.Context, id gateway.OrgID, ifVersion uint64, audit ...gateway.AuditEntry) error {
	err := r.s.writeRegistry(ctx, func(tx *bolt.Tx) error {
		old, err := getOrg(tx, id)
		if err != nil {
			return err
		}
		if ifVersion != 0 && old.Version != ifVersion {
			return preconditionFailed("Organization", string(id), old.Version)
		}
		for _, d := range old.Domains {
			if err := tx.Bucket(bucketOrgDomains).Delete(domainKey(d.Name)); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketOrgs).Delete([]byte(id)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketTenants).DeleteBucket([]byte(id)); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
			return err
		}
		return auditOperator(tx, audit)
	})
	if err != nil {
		return fmt.Errorf("bolt: delete organization: %w", err)
	}
	return nil
}

func (r orgStore) ByDomain(ctx context.Context, domain string) (gateway.OrgID, error) {
	var id gateway.OrgID
	err := r.s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketOrgDomains); b != nil {
			id = gateway.OrgID(b.Get(domainKey(domain)))
		}
		return ctx.Err()
	})
	if err != nil {
		return "", fmt.Errorf("bolt: organization by domain: %w", unavailable(err))
	}
	return id, nil
}

// outboxBuckets are what EraseData keeps of an organization: its events
// and their delivery bookkeeping (the counters keep the event numbering).
var outboxBuckets = [][]byte{bOutbox, bCursors, bDeadLetters, bCounters}

func (r orgStore) EraseData(ctx context.Context, id gateway.OrgID) error {
	if err := id.Check(); err != nil {
		return err
	}
	err := r.s.write(ctx, id, func(tb *bolt.Bucket) error {
		for _, name := range tenantBuckets {
			if slices.ContainsFunc(outboxBuckets, func(keep []byte) bool { return bytes.Equal(keep, name) }) {
				continue
			}
			if err := tb.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := tb.CreateBucket(name); err != nil {
				return err
			}
		}
		counters := tb.Bucket(bCounters)
		for _, c := range [][]byte{counterUsers, counterGroups} {
			if err := counters.Delete(c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: erase organization %s: %w", id, err)
	}
	return nil
}

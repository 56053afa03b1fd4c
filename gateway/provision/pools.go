package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gatehouse-id/gatehouse/gateway"
)

const kindPool = "pool"

type storedPool struct {
	Name    string `json:"name"`
	Role    string `json:"role,omitempty"`
	Created string `json:"created"`
}

func decodePool(rec gateway.Record) (gateway.Pool, error) {
	var sp storedPool
	if err := json.Unmarshal(rec.Value, &sp); err != nil {
		return gateway.Pool{}, fmt.Errorf("pool %q record: %w", rec.ID, err)
	}
	p := gateway.Pool{ID: rec.ID, Name: sp.Name, Role: sp.Role, Version: rec.Version}
	p.Created, _ = parseTime(sp.Created)
	return p, nil
}

func encodePool(p gateway.Pool) []byte {
	raw, _ := json.Marshal(storedPool{Name: p.Name, Role: p.Role, Created: formatTime(p.Created)})
	return raw
}

// Pools lists the org's pools in id order.
func (s *Service) Pools(ctx context.Context, org gateway.OrgID) ([]gateway.Pool, error) {
	recs, err := s.store.Records().List(ctx, org, kindPool)
	if err != nil {
		return nil, err
	}
	out := make([]gateway.Pool, 0, len(recs))
	for _, rec := range recs {
		p, err := decodePool(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Pool reads one pool.
func (s *Service) Pool(ctx context.Context, org gateway.OrgID, id string) (gateway.Pool, error) {
	rec, err := s.store.Records().Get(ctx, org, kindPool, id)
	if err != nil {
		return gateway.Pool{}, poolNotFound(err, id)
	}
	return decodePool(rec)
}

func poolNotFound(err error, id string) error {
	if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
		return gateway.Errorf(gateway.ErrNotFound, "there is no pool %q", id)
	}
	return err
}

func (s *Service) poolSet(ctx context.Context, org gateway.OrgID) (map[string]bool, error) {
	pools, err := s.Pools(ctx, org)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(pools))
	for _, p := range pools {
		set[p.ID] = true
	}
	return set, nil
}

func validPoolName(name string) error {
	if n := strings.TrimSpace(name); n == "" || len(n) > 200 || n != name {
		return gateway.Errorf(gateway.ErrInvalid, "a pool name is 1 to 200 characters without leading or trailing spaces")
	}
	return nil
}

// CreatePool makes a pool granting role to its members ("": the default
// role); its id is fixed for ever (users and mappings name it), its name
// and role can change.
func (s *Service) CreatePool(ctx context.Context, org gateway.OrgID, actor gateway.Actor, requestID, id, name, role string) (gateway.Pool, error) {
	if !gateway.ValidPoolID(id) {
		return gateway.Pool{}, gateway.Errorf(gateway.ErrInvalid, "pool id %q: use 1 to 63 lower-case letters, digits, '-' or '_', starting with a letter or digit", id)
	}
	if name == "" {
		name = id
	}
	if err := validPoolName(name); err != nil {
		return gateway.Pool{}, err
	}
	if role != "" {
		if err := s.checkRole(ctx, org, role); err != nil {
			return gateway.Pool{}, err
		}
	}
	p := gateway.Pool{ID: id, Name: name, Role: role, Created: s.clock.Now()}
	v, err := s.store.Records().Put(ctx, org, kindPool, id, 0, encodePool(p),
		s.audited(actor, requestID, "pool.create", "pool:"+id, nil, p))
	if gateway.ErrorCodeOf(err) == gateway.ErrConflict {
		return gateway.Pool{}, gateway.Errorf(gateway.ErrConflict, "there is already a pool %q", id)
	}
	if err != nil {
		return gateway.Pool{}, err
	}
	p.Version = v
	s.changedAccess(org)
	return p, nil
}

// RenamePool changes a pool's name (ifVersion 0: whatever its version).
func (s *Service) RenamePool(ctx context.Context, org gateway.OrgID, actor gateway.Actor, requestID, id string, ifVersion uint64, name string) (gateway.Pool, error) {
	if err := validPoolName(name); err != nil {
		return gateway.Pool{}, err
	}
	cur, err := s.Pool(ctx, org, id)
	if err != nil {
		return gateway.Pool{}, err
	}
	if ifVersion != 0 && ifVersion != cur.Version {
		return gateway.Pool{}, gateway.Errorf(gateway.ErrPreconditionFailed, "pool %q has changed (its version is %d): read it again and retry", id, cur.Version)
	}
	next := cur
	next.Name = name
	v, err := s.store.Records().Put(ctx, org, kindPool, id, cur.Version, encodePool(next),
		s.audited(actor, requestID, "pool.rename", "pool:"+id, cur, next))
	if err != nil {
		return gateway.Pool{}, err
	}
	next.Version = v
	return next, nil
}

// PoolMembers returns the ids of the pool's users.
func (s *Service) PoolMembers(ctx context.Context, org gateway.OrgID, id string) ([]string, error) {
	return s.store.Users().Lookup(ctx, org, gateway.UserByPool, id)
}

// DeletePool removes an empty pool that no setting names.
func (s *Service) DeletePool(ctx context.Context, org gateway.OrgID, actor gateway.Actor, requestID, id string, ifVersion uint64) error {
	cur, err := s.Pool(ctx, org, id)
	if err != nil {
		return err
	}
	policy := s.policy(org)
	if policy.DefaultPool == id {
		return gateway.Errorf(gateway.ErrConflict, "pool %q is the default pool (provisioning.default_pool): choose another default first", id)
	}
	for group, pool := range policy.GroupPools {
		if pool == id {
			return gateway.Errorf(gateway.ErrConflict, "pool %q is mapped from IdP group %q (provisioning.group_pools): remove the mapping first", id, group)
		}
	}
	members, err := s.PoolMembers(ctx, org, id)
	if err != nil {
		return err
	}
	if len(members) > 0 {
		return gateway.Errorf(gateway.ErrConflict, "pool %q has %d members: move them to other pools first", id, len(members))
	}
	err = s.store.Records().Delete(ctx, org, kindPool, id, ifVersion, s.audited(actor, requestID, "pool.delete", "pool:"+id, cur, nil))
	if err == nil {
		s.dropOwnRoles(ctx, org, "", id)
		s.changedAccess(org)
	}
	return poolNotFound(err, id)
}

// ensurePool creates a pool named by the settings when it is missing.
func (s *Service) ensurePool(ctx context.Context, org gateway.OrgID, actor gateway.Actor, id string) error {
	if _, err := s.Pool(ctx, org, id); gateway.ErrorCodeOf(err) != gateway.ErrNotFound {
		return err
	}
	if _, err := s.CreatePool(ctx, org, actor, "", id, id, ""); err != nil && gateway.ErrorCodeOf(err) != gateway.ErrConflict {
		return fmt.Errorf("create the default pool %q: %w", id, err)
	}
	return nil
}

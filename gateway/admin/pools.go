package admin

import (
	"context"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

// PoolView is a pool with its member count.
type PoolView struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Role is the role its members hold in it (unless a membership holds
	// its own); RoleIsDefault says it follows provisioning.default_role.
	Role          string    `json:"role"`
	RoleIsDefault bool      `json:"role_is_default,omitempty"`
	Members       int       `json:"members"`
	Default       bool      `json:"default" doc:"new users are put in it (provisioning.default_pool)"`
	Created       time.Time `json:"created"`
	Version       uint64    `json:"version"`
}

func (a *API) poolView(ctx context.Context, p gateway.Pool) (PoolView, error) {
	return ViewPool(ctx, a.opts.Service, a.org(ctx), p)
}

// ViewPool is a pool as the API and the console show it.
func ViewPool(ctx context.Context, svc *provision.Service, org gateway.OrgID, p gateway.Pool) (PoolView, error) {
	members, err := svc.PoolMembers(ctx, org, p.ID)
	if err != nil {
		return PoolView{}, err
	}
	policy := svc.Policy(org)
	role := p.Role
	if role == "" {
		role = policy.DefaultRole
	}
	return PoolView{ID: p.ID, Name: p.Name, Role: role, RoleIsDefault: p.Role == "", Members: len(members), Default: policy.DefaultPool == p.ID,
		Created: p.Created, Version: p.Version}, nil
}

type poolOutput struct {
	ETag string `header:"ETag"`
	Body PoolView
}

func (a *API) poolOutput(ctx context.Context, p gateway.Pool) (*poolOutput, error) {
	v, err := a.poolView(ctx, p)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &poolOutput{ETag: etag(p.Version), Body: v}, nil
}

type poolsOutput struct {
	Body struct {
		Pools []PoolView `json:"pools"`
	}
}

type createPoolInput struct {
	// nameHint keeps the schema name the OpenAPI document has published.
	Body struct {
		ID   string `json:"id" doc:"fixed for ever: lower-case letters, digits, '-' and '_'"`
		Name string `json:"name,omitempty" doc:"shown to people; default: the id"`
		Role string `json:"role,omitempty" doc:"the role its members hold in it; default: provisioning.default_role"`
	} `nameHint:"create-poolRequest"`
}

type updatePoolInput struct {
	ID      string `path:"id"`
	IfMatch string `header:"If-Match"`
	// nameHint keeps the schema name the OpenAPI document has published.
	Body struct {
		Name *string `json:"name,omitempty"`
		Role *string `json:"role,omitempty" doc:"the role its members hold in it; \"\": follow provisioning.default_role"`
	} `nameHint:"update-poolRequest"`
}

func (a *API) listPools(ctx context.Context, _ *struct{}) (*poolsOutput, error) {
	pools, err := a.opts.Service.Pools(ctx, a.org(ctx))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &poolsOutput{}
	out.Body.Pools = []PoolView{}
	for _, p := range pools {
		v, err := a.poolView(ctx, p)
		if err != nil {
			return nil, a.fail(ctx, err)
		}
		out.Body.Pools = append(out.Body.Pools, v)
	}
	return out, nil
}

func (a *API) createPool(ctx context.Context, in *createPoolInput) (*poolOutput, error) {
	mg := a.manager(ctx)
	p, err := a.opts.Service.CreatePool(ctx, mg.Org, mg.Actor, mg.RequestID, in.Body.ID, in.Body.Name, in.Body.Role)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return a.poolOutput(ctx, p)
}

func (a *API) updatePool(ctx context.Context, in *updatePoolInput) (*poolOutput, error) {
	version, err := ifMatch(in.IfMatch)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	mg := a.manager(ctx)
	p, err := a.opts.Service.Pool(ctx, mg.Org, in.ID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	if in.Body.Role != nil && *in.Body.Role != "" { // before anything changes
		if _, err := a.opts.Service.Role(ctx, mg.Org, *in.Body.Role); err != nil {
			return nil, a.fail(ctx, gateway.Errorf(gateway.ErrInvalid, "there is no role %q: create it first (PUT /roles/%s)", *in.Body.Role, *in.Body.Role))
		}
	}
	if in.Body.Name != nil {
		if p, err = a.opts.Service.RenamePool(ctx, mg.Org, mg.Actor, mg.RequestID, in.ID, version, *in.Body.Name); err != nil {
			return nil, a.fail(ctx, err)
		}
		version = p.Version
	}
	if in.Body.Role != nil {
		if p, err = a.opts.Service.SetPoolRole(ctx, mg, in.ID, version, *in.Body.Role); err != nil {
			return nil, a.fail(ctx, err)
		}
	}
	return a.poolOutput(ctx, p)
}

type memberInput struct {
	ID     string `path:"id"`
	UserID string `path:"user_id"`
	Body   *struct {
		Role string `json:"role,omitempty" doc:"the role the user holds in this pool, instead of the pool's; absent or \"\": the pool's"`
	} `required:"false"`
}

// MemberView is a user's membership of a pool and their access there.
type MemberView struct {
	Pool   string         `json:"pool"`
	UserID string         `json:"user_id"`
	Access gateway.Access `json:"access"`
}

type memberOutput struct {
	Body MemberView
}

func (a *API) putMember(ctx context.Context, in *memberInput) (*memberOutput, error) {
	role := ""
	if in.Body != nil {
		role = in.Body.Role
	}
	u, err := a.opts.Service.PutMember(ctx, a.manager(ctx), in.ID, in.UserID, role)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	access, _, err := a.opts.Service.Access(ctx, u)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &memberOutput{Body: MemberView{Pool: in.ID, UserID: u.ID}}
	for _, ac := range access {
		if ac.Pool == in.ID {
			out.Body.Access = ac
		}
	}
	return out, nil
}

type removeMemberInput struct {
	ID     string `path:"id"`
	UserID string `path:"user_id"`
}

func (a *API) removeMember(ctx context.Context, in *removeMemberInput) (*struct{}, error) {
	if _, err := a.opts.Service.RemoveMember(ctx, a.manager(ctx), in.ID, in.UserID); err != nil {
		return nil, a.fail(ctx, err)
	}
	return nil, nil
}

func (a *API) deletePool(ctx context.Context, in *deleteInput) (*struct{}, error) {
	version, err := ifMatch(in.IfMatch)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	mg := a.manager(ctx)
	if err := a.opts.Service.DeletePool(ctx, mg.Org, mg.Actor, mg.RequestID, in.ID, version); err != nil {
		return nil, a.fail(ctx, err)
	}
	return nil, nil
}

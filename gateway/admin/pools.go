package admin

import (
	"context"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

// PoolView is a pool with its member count.
type PoolView struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Members int       `json:"members"`
	Default bool      `json:"default" doc:"new users are put in it (provisioning.default_pool)"`
	Created time.Time `json:"created"`
	Version uint64    `json:"version"`
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
	return PoolView{ID: p.ID, Name: p.Name, Members: len(members), Default: svc.Policy(org).DefaultPool == p.ID,
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
	} `nameHint:"create-poolRequest"`
}

type updatePoolInput struct {
	ID      string `path:"id"`
	IfMatch string `header:"If-Match"`
	// nameHint keeps the schema name the OpenAPI document has published.
	Body struct {
		Name string `json:"name"`
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
	p, err := a.opts.Service.CreatePool(ctx, mg.Org, mg.Actor, mg.RequestID, in.Body.ID, in.Body.Name)
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
	p, err := a.opts.Service.RenamePool(ctx, mg.Org, mg.Actor, mg.RequestID, in.ID, version, in.Body.Name)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return a.poolOutput(ctx, p)
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

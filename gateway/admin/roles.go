package admin

import (
	"context"

	"github.com/gatehouse-id/gatehouse/gateway"
)

type rolesOutput struct {
	Body struct {
		Roles []gateway.Role `json:"roles"`
	}
}

func (a *API) listRoles(ctx context.Context, _ *struct{}) (*rolesOutput, error) {
	roles, err := a.opts.Service.Roles(ctx, a.org(ctx))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &rolesOutput{}
	out.Body.Roles = roles
	return out, nil
}

type putRoleInput struct {
	Role    string `path:"role"`
	IfMatch string `header:"If-Match"`
	Body    struct {
		Permissions []string `json:"permissions" doc:"the app's words, such as agents.debug: lower-case letters, digits, '.', '_', ':' and '-'"`
	}
}

type roleOutput struct {
	ETag string `header:"ETag"`
	Body gateway.Role
}

func (a *API) putRole(ctx context.Context, in *putRoleInput) (*roleOutput, error) {
	version, err := ifMatch(in.IfMatch)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	r, err := a.opts.Service.PutRole(ctx, a.manager(ctx), in.Role, version, in.Body.Permissions)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &roleOutput{ETag: etag(r.Version), Body: r}, nil
}

type roleInput struct {
	Role string `path:"role"`
}

func (a *API) deleteRole(ctx context.Context, in *roleInput) (*struct{}, error) {
	if err := a.opts.Service.DeleteRole(ctx, a.manager(ctx), in.Role); err != nil {
		return nil, a.fail(ctx, err)
	}
	return nil, nil
}

type userAccessInput struct {
	ID string `path:"id"`
}

type userAccessOutput struct {
	Body struct {
		Access []gateway.Access `json:"access"`
	}
}

func (a *API) userAccess(ctx context.Context, in *userAccessInput) (*userAccessOutput, error) {
	u, err := a.opts.Store.Users().Get(ctx, a.org(ctx), in.ID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	access, _, err := a.opts.Service.Access(ctx, u)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &userAccessOutput{}
	out.Body.Access = access
	return out, nil
}

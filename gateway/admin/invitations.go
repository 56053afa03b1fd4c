package admin

import (
	"context"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// InvitationView is an invitation with its state now; Link is present
// only in the answers that issue one.
type InvitationView = gateway.Invitation

type invitationsOutput struct {
	// nameHint keeps the schema name the OpenAPI document has published.
	Body struct {
		Invitations []InvitationView `json:"invitations"`
	} `nameHint:"ListOutputBody"`
}

type createInvitationInput struct {
	// nameHint keeps the schema name the OpenAPI document has published.
	Body struct {
		Email     string   `json:"email" format:"email"`
		Role      string   `json:"role,omitempty" doc:"default: provisioning.default_role"`
		Pools     []string `json:"pools,omitempty" doc:"default: the default pool"`
		ExpiresIn string   `json:"expires_in,omitempty" doc:"how long the link works, e.g. 72h; default: admin.invitation_ttl"`
	} `nameHint:"create-invitationRequest"`
}

type resendInvitationInput struct {
	ID string `path:"id"`
	// nameHint keeps the schema name the OpenAPI document has published.
	Body struct {
		ExpiresIn string `json:"expires_in,omitempty"`
	} `nameHint:"resend-invitationRequest"`
}

type invitationOutput struct {
	Body InvitationView
}

func (a *API) listInvitations(ctx context.Context, _ *struct{}) (*invitationsOutput, error) {
	list, err := a.opts.Service.Invitations(ctx, a.org(ctx))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &invitationsOutput{}
	out.Body.Invitations = append([]InvitationView{}, list...)
	return out, nil
}

func (a *API) createInvitation(ctx context.Context, in *createInvitationInput) (*invitationOutput, error) {
	ttl, base, err := a.invitationTerms(ctx, in.Body.ExpiresIn)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	inv, err := a.opts.Service.CreateInvitation(ctx, a.manager(ctx), in.Body.Email, in.Body.Role, in.Body.Pools, ttl, base)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &invitationOutput{Body: inv}, nil
}

func (a *API) resendInvitation(ctx context.Context, in *resendInvitationInput) (*invitationOutput, error) {
	ttl, base, err := a.invitationTerms(ctx, in.Body.ExpiresIn)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	inv, err := a.opts.Service.ResendInvitation(ctx, a.manager(ctx), in.ID, ttl, base)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &invitationOutput{Body: inv}, nil
}

func (a *API) revokeInvitation(ctx context.Context, in *idInput) (*struct{}, error) {
	if err := a.opts.Service.RevokeInvitation(ctx, a.manager(ctx), in.ID); err != nil {
		return nil, a.fail(ctx, err)
	}
	return nil, nil
}

func (a *API) ttl(text string) (time.Duration, error) {
	if text == "" {
		return a.opts.InvitationTTL, nil
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		return 0, gateway.Errorf(gateway.ErrInvalid, "expires_in: %q is not a duration such as 72h", text)
	}
	return d, nil
}

// invitationTerms are a link's lifetime (expires_in, or the default) and
// where it points.
func (a *API) invitationTerms(ctx context.Context, expiresIn string) (time.Duration, string, error) {
	ttl, err := a.ttl(expiresIn)
	if err != nil {
		return 0, "", err
	}
	base, err := a.inviteBase(ctx)
	return ttl, base, err
}

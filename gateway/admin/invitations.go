package admin

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// InvitationView is an invitation with its state now; Link is present
// only in the answers that issue one.
type InvitationView = gateway.Invitation

func (a *API) registerInvitations() {
	type listOutput struct {
		Body struct {
			Invitations []InvitationView `json:"invitations"`
		}
	}
	type invitationsOutput = listOutput
	huma.Register(a.api, huma.Operation{OperationID: "list-invitations", Method: http.MethodGet, Path: "/invitations", Tags: []string{"invitations"},
		Summary: "List invitations, newest first, with their state (pending, accepted, revoked, expired)"},
		func(ctx context.Context, _ *struct{}) (*invitationsOutput, error) {
			list, err := a.opts.Service.Invitations(ctx, a.opts.Org)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			out := &invitationsOutput{}
			out.Body.Invitations = append([]InvitationView{}, list...)
			return out, nil
		})
	type invitationOutput struct {
		Body InvitationView
	}
	huma.Register(a.api, huma.Operation{OperationID: "create-invitation", Method: http.MethodPost, Path: "/invitations", Tags: []string{"invitations"},
		Summary: "Invite a person (provisioning method manual)", DefaultStatus: http.StatusCreated, Errors: []int{409, 422},
		Description: "Records invitation.created with the single-use link, for the app, a webhook or the SMTP sender (email.smtp) to mail; the answer carries the link too. " +
			"Accepting signs the person in through the configured SSO (without SSO the link itself proves the email) and creates the user with source manual and the invitation's role and pools."},
		func(ctx context.Context, in *struct {
			Body struct {
				Email     string   `json:"email" format:"email"`
				Role      string   `json:"role,omitempty" doc:"default: provisioning.default_role"`
				Pools     []string `json:"pools,omitempty" doc:"default: the default pool"`
				ExpiresIn string   `json:"expires_in,omitempty" doc:"how long the link works, e.g. 72h; default: admin.invitation_ttl"`
			}
		}) (*invitationOutput, error) {
			ttl, err := a.ttl(in.Body.ExpiresIn)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			inv, err := a.opts.Service.CreateInvitation(ctx, a.manager(ctx), in.Body.Email, in.Body.Role, in.Body.Pools, ttl, a.opts.InviteBase)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return &invitationOutput{Body: inv}, nil
		})
	huma.Register(a.api, huma.Operation{OperationID: "resend-invitation", Method: http.MethodPost, Path: "/invitations/{id}/resend", Tags: []string{"invitations"},
		Summary: "Send an invitation again with a new link", Errors: []int{404, 409},
		Description: "Issues a new link (the previous one stops working), valid for expires_in from now, and records invitation.created again."},
		func(ctx context.Context, in *struct {
			ID   string `path:"id"`
			Body struct {
				ExpiresIn string `json:"expires_in,omitempty"`
			}
		}) (*invitationOutput, error) {
			ttl, err := a.ttl(in.Body.ExpiresIn)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			inv, err := a.opts.Service.ResendInvitation(ctx, a.manager(ctx), in.ID, ttl, a.opts.InviteBase)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return &invitationOutput{Body: inv}, nil
		})
	huma.Register(a.api, huma.Operation{OperationID: "revoke-invitation", Method: http.MethodDelete, Path: "/invitations/{id}", Tags: []string{"invitations"},
		Summary: "Revoke a pending invitation", DefaultStatus: http.StatusNoContent, Errors: []int{404, 409}},
		func(ctx context.Context, in *struct {
			ID string `path:"id"`
		}) (*struct{}, error) {
			if err := a.opts.Service.RevokeInvitation(ctx, a.manager(ctx), in.ID); err != nil {
				return nil, a.fail(ctx, err)
			}
			return nil, nil
		})
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

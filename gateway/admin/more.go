package admin

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/outbox"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

// register declares every operation.
func (a *API) register() {
	a.registerIdentity()
	a.registerUsers()
	a.registerPools()
	a.registerAudit()
	a.registerDelivery()
	a.registerInvitations()
}

// provisionPatch builds a manager's user change.
func provisionPatch(role *string, pools *[]string, active *bool) provision.UserPatch {
	return provision.UserPatch{Role: role, Pools: pools, Active: active}
}

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
	members, err := a.opts.Service.PoolMembers(ctx, a.opts.Tenant, p.ID)
	if err != nil {
		return PoolView{}, err
	}
	return PoolView{ID: p.ID, Name: p.Name, Members: len(members), Default: a.opts.Service.Policy(a.opts.Tenant).DefaultPool == p.ID,
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

func (a *API) registerPools() {
	type poolsOutput struct {
		Body struct {
			Pools []PoolView `json:"pools"`
		}
	}
	huma.Register(a.api, huma.Operation{OperationID: "list-pools", Method: http.MethodGet, Path: "/pools", Tags: []string{"pools"},
		Summary: "List the pools and how many users each holds"},
		func(ctx context.Context, _ *struct{}) (*poolsOutput, error) {
			pools, err := a.opts.Service.Pools(ctx, a.opts.Tenant)
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
		})
	huma.Register(a.api, huma.Operation{OperationID: "create-pool", Method: http.MethodPost, Path: "/pools", Tags: []string{"pools"},
		Summary: "Create a pool", DefaultStatus: http.StatusCreated, Errors: []int{409, 422}},
		func(ctx context.Context, in *struct {
			Body struct {
				ID   string `json:"id" doc:"fixed for ever: lower-case letters, digits, '-' and '_'"`
				Name string `json:"name,omitempty" doc:"shown to people; default: the id"`
			}
		}) (*poolOutput, error) {
			mg := a.manager(ctx)
			p, err := a.opts.Service.CreatePool(ctx, mg.Tenant, mg.Actor, mg.RequestID, in.Body.ID, in.Body.Name)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return a.poolOutput(ctx, p)
		})
	huma.Register(a.api, huma.Operation{OperationID: "update-pool", Method: http.MethodPatch, Path: "/pools/{id}", Tags: []string{"pools"},
		Summary: "Rename a pool", Errors: []int{404, 412, 422}},
		func(ctx context.Context, in *struct {
			ID      string `path:"id"`
			IfMatch string `header:"If-Match"`
			Body    struct {
				Name string `json:"name"`
			}
		}) (*poolOutput, error) {
			version, err := ifMatch(in.IfMatch)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			mg := a.manager(ctx)
			p, err := a.opts.Service.RenamePool(ctx, mg.Tenant, mg.Actor, mg.RequestID, in.ID, version, in.Body.Name)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return a.poolOutput(ctx, p)
		})
	huma.Register(a.api, huma.Operation{OperationID: "delete-pool", Method: http.MethodDelete, Path: "/pools/{id}", Tags: []string{"pools"},
		Summary: "Delete an empty pool", DefaultStatus: http.StatusNoContent, Errors: []int{404, 409, 412},
		Description: "Refused (409) while the pool has members, is the default pool, or an IdP group maps to it."},
		func(ctx context.Context, in *struct {
			ID      string `path:"id"`
			IfMatch string `header:"If-Match"`
		}) (*struct{}, error) {
			version, err := ifMatch(in.IfMatch)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			mg := a.manager(ctx)
			if err := a.opts.Service.DeletePool(ctx, mg.Tenant, mg.Actor, mg.RequestID, in.ID, version); err != nil {
				return nil, a.fail(ctx, err)
			}
			return nil, nil
		})
}

func (a *API) registerAudit() {
	type auditOutput struct {
		Body struct {
			Entries []gateway.AuditEntry `json:"entries"`
			Next    uint64               `json:"next,omitempty" doc:"pass as before= for the next page; absent: last page"`
		}
	}
	huma.Register(a.api, huma.Operation{OperationID: "list-audit", Method: http.MethodGet, Path: "/audit", Tags: []string{"audit"},
		Summary: "The audit log, newest first", Description: "Every change made through this API, by the configuration file and by bootstrap: who, what, the target before and after, when, and the request id."},
		func(ctx context.Context, in *struct {
			Actor  string `query:"actor" doc:"kind:id, e.g. session:0190… or token:admin.token"`
			Target string `query:"target" doc:"kind:id, e.g. user:0190…, pool:support, identity:settings"`
			Before uint64 `query:"before" doc:"the next value of the previous page"`
			Limit  int    `query:"limit" minimum:"1" maximum:"500" default:"50"`
		}) (*auditOutput, error) {
			entries, next, err := a.opts.Store.Audit().List(ctx, a.opts.Tenant, gateway.AuditQuery{Actor: in.Actor, Target: in.Target, Before: in.Before, Limit: in.Limit})
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			out := &auditOutput{}
			out.Body.Entries, out.Body.Next = append([]gateway.AuditEntry{}, entries...), next
			return out, nil
		})
}

// DeadLetterView is a dead letter: what failed and why, not the user's
// data.
type DeadLetterView struct {
	ID         string    `json:"id" doc:"adapter:seq, for the replay"`
	Adapter    string    `json:"adapter"`
	Seq        uint64    `json:"seq"`
	EventID    string    `json:"eventId"`
	Type       string    `json:"type"`
	Resource   string    `json:"resource"`
	Attempts   int       `json:"attempts"`
	LastError  string    `json:"lastError"`
	At         time.Time `json:"at"`
	HeldBehind uint64    `json:"heldBehind,omitempty" doc:"the seq of an earlier dead letter of the same user or group it waits behind"`
}

func (a *API) registerDelivery() {
	type deliveryOutput struct {
		Body struct {
			Adapters []outbox.Status `json:"adapters"`
		}
	}
	huma.Register(a.api, huma.Operation{OperationID: "get-delivery", Method: http.MethodGet, Path: "/delivery", Tags: []string{"delivery"},
		Summary: "Each adapter's delivery state: lag, oldest undelivered event, dead letters"},
		func(ctx context.Context, _ *struct{}) (*deliveryOutput, error) {
			out := &deliveryOutput{}
			out.Body.Adapters = []outbox.Status{}
			if a.opts.Delivery == nil {
				return out, nil
			}
			st, err := a.opts.Delivery.Status(ctx)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			out.Body.Adapters = append(out.Body.Adapters, st...)
			return out, nil
		})
	type deadLettersOutput struct {
		Body struct {
			DeadLetters []DeadLetterView `json:"deadLetters"`
		}
	}
	huma.Register(a.api, huma.Operation{OperationID: "list-dead-letters", Method: http.MethodGet, Path: "/dead-letters", Tags: []string{"delivery"},
		Summary: "Events an adapter set aside, with their last error"},
		func(ctx context.Context, in *struct {
			Adapter string `query:"adapter" doc:"one adapter; empty: all"`
		}) (*deadLettersOutput, error) {
			out := &deadLettersOutput{}
			out.Body.DeadLetters = []DeadLetterView{}
			if a.opts.Delivery == nil {
				return out, nil
			}
			st, err := a.opts.Delivery.Status(ctx)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			for _, s := range st {
				if in.Adapter != "" && s.Adapter != in.Adapter {
					continue
				}
				dls, err := a.opts.Delivery.DeadLetters(ctx, s.Adapter)
				if err != nil {
					return nil, a.fail(ctx, err)
				}
				for _, dl := range dls {
					out.Body.DeadLetters = append(out.Body.DeadLetters, ViewDeadLetter(s.Adapter, dl))
				}
			}
			return out, nil
		})
	type replayOutput struct {
		Body struct {
			Scheduled int `json:"scheduled" doc:"dead letters scheduled for delivery"`
		}
	}
	huma.Register(a.api, huma.Operation{OperationID: "replay-dead-letter", Method: http.MethodPost, Path: "/dead-letters/{id}/replay", Tags: []string{"delivery"},
		Summary: "Deliver a dead letter again", Errors: []int{404, 422},
		Description: "Schedules the dead letter and the adapter's later ones for delivery again (with each, the other dead letters of the same user or group, so that none overtakes another); delivery goes on in the background."},
		func(ctx context.Context, in *struct {
			ID string `path:"id" doc:"adapter:seq"`
		}) (*replayOutput, error) {
			n, err := ReplayDeadLetter(ctx, a.opts.Delivery, a.opts.Store, a.manager(ctx), in.ID)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			out := &replayOutput{}
			out.Body.Scheduled = n
			return out, nil
		})
}

// DeliveryStatus is one adapter's delivery state.
type DeliveryStatus = outbox.Status

// ViewDeadLetter is a dead letter as the API and the console show it.
func ViewDeadLetter(adapter string, dl gateway.DeadLetter) DeadLetterView {
	v := DeadLetterView{ID: adapter + ":" + strconv.FormatUint(dl.Event.Seq, 10), Adapter: adapter, Seq: dl.Event.Seq, EventID: dl.Event.ID,
		Type: string(dl.Event.Op), Attempts: dl.Attempts, LastError: dl.LastError, At: dl.At, HeldBehind: dl.HeldBehind}
	switch {
	case dl.Event.User != nil:
		v.Resource = "user:" + dl.Event.User.ID
	case dl.Event.Group != nil:
		v.Resource = "group:" + dl.Event.Group.ID
	}
	return v
}

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
			list, err := a.opts.Service.Invitations(ctx, a.opts.Tenant)
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

// ReplayDeadLetter schedules the dead letter id ("adapter:seq") and the
// adapter's later ones for delivery again, and audits it; it returns how
// many were scheduled.
func ReplayDeadLetter(ctx context.Context, delivery Delivery, store gateway.Store, mg provision.Manager, id string) (int, error) {
	adapter, seqText, ok := strings.Cut(id, ":")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if !ok || err != nil || seq == 0 {
		return 0, gateway.Errorf(gateway.ErrInvalid, "a dead letter id is adapter:seq, as GET /dead-letters lists it")
	}
	if delivery == nil {
		return 0, gateway.Errorf(gateway.ErrNotFound, "delivery is not running")
	}
	dls, err := delivery.DeadLetters(ctx, adapter)
	if err != nil {
		return 0, err
	}
	if !slices.ContainsFunc(dls, func(dl gateway.DeadLetter) bool { return dl.Event.Seq == seq }) {
		return 0, gateway.Errorf(gateway.ErrNotFound, "adapter %q has no dead letter %d", adapter, seq)
	}
	// Audited before it is scheduled: a replay nobody can account for
	// must not happen.
	if err := store.Audit().Append(ctx, mg.Tenant, gateway.AuditEntry{Time: time.Now().UTC(), Actor: mg.Actor, Action: "dead_letter.replay",
		Target: "dead_letter:" + id, RequestID: mg.RequestID}); err != nil {
		return 0, err
	}
	return delivery.Replay(ctx, adapter, seq)
}

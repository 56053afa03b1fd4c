package admin

import (
	"context"

	"github.com/gatehouse-id/gatehouse/gateway"
)

type listAuditInput struct {
	Actor  string `query:"actor" doc:"kind:id, e.g. session:0190… or token:admin.token"`
	Target string `query:"target" doc:"kind:id, e.g. user:0190…, pool:support, identity:settings"`
	Before uint64 `query:"before" doc:"the next value of the previous page"`
	Limit  int    `query:"limit" minimum:"1" maximum:"500" default:"50"`
}

type auditOutput struct {
	Body struct {
		Entries []gateway.AuditEntry `json:"entries"`
		Next    uint64               `json:"next,omitempty" doc:"pass as before= for the next page; absent: last page"`
	}
}

func (a *API) listAudit(ctx context.Context, in *listAuditInput) (*auditOutput, error) {
	entries, next, err := a.opts.Store.Audit().List(ctx, a.org(ctx), gateway.AuditQuery{Actor: in.Actor, Target: in.Target, Before: in.Before, Limit: in.Limit})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &auditOutput{}
	out.Body.Entries, out.Body.Next = append([]gateway.AuditEntry{}, entries...), next
	return out, nil
}

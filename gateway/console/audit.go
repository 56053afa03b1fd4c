package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse-id/gatehouse/gateway"
)

type auditData struct {
	Email, Actor, Target, Next string
	Entries                    []gateway.AuditEntry
}

func (c *Console) auditPage(q *req) {
	qs := q.r.URL.Query()
	before, _ := strconv.ParseUint(qs.Get("before"), 10, 64)
	d := auditData{Email: strings.TrimSpace(qs.Get("email")), Actor: qs.Get("actor"), Target: qs.Get("target")}
	status, errText := http.StatusOK, ""
	if d.Email != "" {
		// The log shows a manager's email; it is kept by their user id.
		ids, err := c.opts.Store.Users().Lookup(q.ctx(), q.org(), gateway.UserByEmail, d.Email)
		switch {
		case err != nil:
			status, errText = c.errorText(q, err)
		case len(ids) == 0:
			c.render(q, http.StatusOK, "audit", "Audit log", "audit", d, "", "Nobody in this organization has the email "+d.Email+" now.")
			return
		default:
			d.Actor = gateway.Actor{Kind: gateway.ActorSession, ID: ids[0]}.String()
		}
	}
	entries, next, err := c.opts.Store.Audit().List(q.ctx(), q.org(), gateway.AuditQuery{Actor: d.Actor, Target: d.Target, Before: before, Limit: 50})
	if err != nil {
		status, errText = c.errorText(q, err)
	}
	d.Entries = entries
	if next != 0 {
		nq := url.Values{"before": {strconv.FormatUint(next, 10)}}
		if d.Email != "" {
			nq.Set("email", d.Email)
		} else if d.Actor != "" {
			nq.Set("actor", d.Actor)
		}
		if d.Target != "" {
			nq.Set("target", d.Target)
		}
		d.Next = c.opts.PathPrefix + "/console/audit?" + nq.Encode()
	}
	c.render(q, status, "audit", "Audit log", "audit", d, "", errText)
}

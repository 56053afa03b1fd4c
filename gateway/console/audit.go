package console

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/gatehouse-id/gatehouse/gateway"
)

type auditData struct {
	Actor, Target, Next string
	Entries             []gateway.AuditEntry
}

func (c *Console) auditPage(q *req) {
	qs := q.r.URL.Query()
	before, _ := strconv.ParseUint(qs.Get("before"), 10, 64)
	d := auditData{Actor: qs.Get("actor"), Target: qs.Get("target")}
	status, errText := http.StatusOK, ""
	entries, next, err := c.opts.Store.Audit().List(q.ctx(), q.org(), gateway.AuditQuery{Actor: d.Actor, Target: d.Target, Before: before, Limit: 50})
	if err != nil {
		status, errText = c.errorText(q, err)
	}
	d.Entries = entries
	if next != 0 {
		nq := url.Values{"before": {strconv.FormatUint(next, 10)}}
		if d.Actor != "" {
			nq.Set("actor", d.Actor)
		}
		if d.Target != "" {
			nq.Set("target", d.Target)
		}
		d.Next = c.opts.PathPrefix + "/console/audit?" + nq.Encode()
	}
	c.render(q, status, "audit", "Audit log", "audit", d, "", errText)
}

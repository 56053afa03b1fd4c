package console

import (
	"strconv"
	"strings"

	"github.com/gatehouse-id/gatehouse/gateway/admin"
)

type poolsData struct {
	Pools                    []admin.PoolView
	Roles                    []string
	DefaultRole, DefaultPool string
}

func (c *Console) poolsPage(q *req, status int, errText string) {
	pools, err := c.opts.Service.Pools(q.ctx(), q.org())
	if err != nil {
		status, errText = c.errorText(q, err)
	}
	policy := c.opts.Service.Policy(q.org())
	st, _ := c.opts.Service.Current(q.ctx(), q.org())
	d := poolsData{Roles: st.Provisioning.Roles, DefaultRole: policy.DefaultRole, DefaultPool: policy.DefaultPool}
	for _, p := range pools {
		v, err := admin.ViewPool(q.ctx(), c.opts.Service, q.org(), p)
		if err != nil {
			status, errText = c.errorText(q, err)
		}
		d.Pools = append(d.Pools, v)
	}
	c.render(q, status, "pools", "Pools and roles", "pools", d, notice(q.r), errText)
}

func (c *Console) createPool(q *req) {
	mg := c.manager(q)
	if _, err := c.opts.Service.CreatePool(q.ctx(), mg.Org, mg.Actor, mg.RequestID, strings.TrimSpace(q.r.PostFormValue("id")), strings.TrimSpace(q.r.PostFormValue("name")), ""); err != nil {
		status, text := c.errorText(q, err)
		c.poolsPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/pools", "pool")
}

func (c *Console) renamePool(q *req) {
	mg := c.manager(q)
	version, _ := strconv.ParseUint(q.r.PostFormValue("version"), 10, 64)
	if _, err := c.opts.Service.RenamePool(q.ctx(), mg.Org, mg.Actor, mg.RequestID, q.r.PathValue("id"), version, strings.TrimSpace(q.r.PostFormValue("name"))); err != nil {
		status, text := c.errorText(q, err)
		c.poolsPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/pools", "pool")
}

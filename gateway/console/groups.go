package console

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// groupsShown bounds the members a group's row names (the rest are
// counted).
const groupsShown = 5

type groupRow struct {
	ID, Name, Source string
	Members          int
	Shown            []gateway.Member
	Pool             string // the pool the group maps to ("" none)
}

type groupsData struct {
	Groups         []groupRow
	Total          int
	MappingEnabled bool
	Next, Previous string
}

// groupsPage lists the IdP's groups (those SCIM pushed), their members,
// and the pool each maps to at JIT sign-in.
func (c *Console) groupsPage(q *req) {
	const limit = 50
	offset, _ := strconv.Atoi(q.r.URL.Query().Get("offset"))
	offset = max(offset, 0)
	groups, total, err := c.opts.Store.Groups().List(q.ctx(), q.org(), offset, limit)
	status, errText := http.StatusOK, ""
	if err != nil {
		status, errText = c.errorText(q, err)
	}
	st, _ := c.opts.Service.Current(q.ctx(), q.org())
	d := groupsData{Total: total, MappingEnabled: st.Provisioning.GroupPoolsEnabled}
	policy := c.opts.Service.Policy(q.org())
	for _, g := range groups {
		members, err := c.opts.Store.Groups().Members(q.ctx(), q.org(), g.ID)
		if err != nil {
			status, errText = c.errorText(q, err)
			break
		}
		row := groupRow{ID: g.ID, Name: g.DisplayName, Source: string(g.Source), Members: len(members), Pool: policy.PoolOfGroup(g.DisplayName)}
		row.Shown = members[:min(len(members), groupsShown)]
		d.Groups = append(d.Groups, row)
	}
	page := c.opts.PathPrefix + "/console/groups?offset="
	if offset+limit < total {
		d.Next = page + url.QueryEscape(strconv.Itoa(offset+limit))
	}
	if offset > 0 {
		d.Previous = page + url.QueryEscape(strconv.Itoa(max(offset-limit, 0)))
	}
	c.render(q, status, "groups", "Groups", "groups", d, "", errText)
}

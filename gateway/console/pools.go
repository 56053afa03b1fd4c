package console

import (
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/admin"
)

type poolRow struct {
	admin.PoolView
	Roles    []option // the role it grants; "" follows the default role
	OwnRoles []ownRole
}

// ownRole is a member holding their own role in a pool.
type ownRole struct {
	UserID, Who, Role string
}

type roleRow struct {
	gateway.Role
	Permissions string   // space-separated, for the form
	GrantedBy   []string // the pools granting it
}

type poolsData struct {
	Pools                    []poolRow
	Roles                    []roleRow
	DefaultRole, DefaultPool string
}

func (c *Console) poolsPage(q *req, status int, errText string) {
	ctx := q.ctx()
	pools, err := c.opts.Service.Pools(ctx, q.org())
	if err != nil {
		status, errText = c.errorText(q, err)
	}
	roles, err := c.opts.Service.Roles(ctx, q.org())
	if err != nil {
		status, errText = c.errorText(q, err)
	}
	policy := c.opts.Service.Policy(q.org())
	d := poolsData{DefaultRole: policy.DefaultRole, DefaultPool: policy.DefaultPool}
	granted := map[string][]string{}
	for _, p := range pools {
		v, err := admin.ViewPool(ctx, c.opts.Service, q.org(), p)
		if err != nil {
			status, errText = c.errorText(q, err)
		}
		row := poolRow{PoolView: v}
		row.Roles = append(row.Roles, option{Value: "", Label: "the default role (" + policy.DefaultRole + ")", Checked: p.Role == ""})
		for _, r := range roles {
			row.Roles = append(row.Roles, option{Value: r.Name, Label: r.Name, Checked: p.Role == r.Name})
		}
		granted[v.Role] = append(granted[v.Role], p.ID)
		own, err := c.opts.Service.OwnRoles(ctx, q.org(), p.ID)
		if err != nil {
			status, errText = c.errorText(q, err)
		}
		for userID, role := range own {
			who := userID
			if u, err := c.opts.Store.Users().Get(ctx, q.org(), userID); err == nil {
				who = u.PrimaryEmail()
				if who == "" {
					who = u.UserName
				}
			}
			row.OwnRoles = append(row.OwnRoles, ownRole{UserID: userID, Who: who, Role: role})
		}
		sort.Slice(row.OwnRoles, func(i, j int) bool { return row.OwnRoles[i].Who < row.OwnRoles[j].Who })
		d.Pools = append(d.Pools, row)
	}
	for _, r := range roles {
		d.Roles = append(d.Roles, roleRow{Role: r, Permissions: strings.Join(r.Permissions, " "), GrantedBy: granted[r.Name]})
	}
	c.render(q, status, "pools", "Pools and roles", "pools", d, notice(q.r), errText)
}

func (c *Console) createPool(q *req) {
	mg := c.manager(q)
	if _, err := c.opts.Service.CreatePool(q.ctx(), mg.Org, mg.Actor, mg.RequestID, strings.TrimSpace(q.r.PostFormValue("id")),
		strings.TrimSpace(q.r.PostFormValue("name")), q.r.PostFormValue("role")); err != nil {
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

func (c *Console) setPoolRole(q *req) {
	version, _ := strconv.ParseUint(q.r.PostFormValue("version"), 10, 64)
	if _, err := c.opts.Service.SetPoolRole(q.ctx(), c.manager(q), q.r.PathValue("id"), version, q.r.PostFormValue("role")); err != nil {
		status, text := c.errorText(q, err)
		c.poolsPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/pools", "pool")
}

// saveRole creates a role or replaces its permissions (words separated
// by spaces, commas or new lines).
func (c *Console) saveRole(q *req) {
	name := strings.TrimSpace(q.r.PathValue("role"))
	if name == "" { // the new role form: a role of that name is not replaced
		name = strings.TrimSpace(q.r.PostFormValue("name"))
		if _, err := c.opts.Service.Role(q.ctx(), q.org(), name); err == nil {
			c.poolsPage(q, http.StatusConflict, "There is already a role "+name+": change its permissions in its row.")
			return
		}
	}
	perms := strings.FieldsFunc(q.r.PostFormValue("permissions"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	version, _ := strconv.ParseUint(q.r.PostFormValue("version"), 10, 64)
	if _, err := c.opts.Service.PutRole(q.ctx(), c.manager(q), name, version, perms); err != nil {
		status, text := c.errorText(q, err)
		c.poolsPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/pools", "role")
}

func (c *Console) deleteRole(q *req) {
	if err := c.opts.Service.DeleteRole(q.ctx(), c.manager(q), q.r.PathValue("role")); err != nil {
		status, text := c.errorText(q, err)
		c.poolsPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/pools", "role-gone")
}

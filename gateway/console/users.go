package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/admin"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

type usersData struct {
	Filter                admin.UserFilter
	Users                 []admin.UserView
	Next, First           string
	Sources, Roles, Pools []option
	Manual                bool
	Method                gateway.Source
	Invitations           []gateway.Invitation
	// NewLink is an invitation's link shown once, when no mail server
	// sends it.
	NewLink *gateway.Invitation
}

func (c *Console) usersPage(q *req, status int, errText string) {
	c.usersView(q, status, notice(q.r), errText, nil)
}

func (c *Console) usersView(q *req, status int, noticeText, errText string, newLink *gateway.Invitation) {
	qs := q.r.URL.Query()
	limit, _ := strconv.Atoi(qs.Get("limit"))
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	f := admin.UserFilter{Q: qs.Get("q"), Source: qs.Get("source"), Role: qs.Get("role"), Pool: qs.Get("pool"), Active: qs.Get("active"),
		After: qs.Get("after"), Limit: limit}
	users, next, err := admin.ListUsers(q.ctx(), c.opts.Store, q.org(), f)
	if err != nil {
		status, errText = c.errorText(q, err)
	}
	d := usersData{Filter: f, Users: users, NewLink: newLink}
	if next != "" {
		nq := url.Values{}
		for k, v := range qs {
			nq[k] = v
		}
		nq.Del("done")
		nq.Set("after", next)
		d.Next = c.opts.PathPrefix + "/console/users?" + nq.Encode()
		nq.Del("after")
		d.First = c.opts.PathPrefix + "/console/users?" + nq.Encode()
	} else if f.After != "" {
		fq := url.Values{}
		for k, v := range qs {
			fq[k] = v
		}
		fq.Del("after")
		fq.Del("done")
		d.First = c.opts.PathPrefix + "/console/users?" + fq.Encode()
	}
	for _, s := range []gateway.Source{gateway.SourceSCIM, gateway.SourceJIT, gateway.SourceManual, gateway.SourceSelfService} {
		d.Sources = append(d.Sources, option{Value: string(s), Label: strings.ReplaceAll(string(s), "_", "-"), Checked: f.Source == string(s)})
	}
	policy := c.opts.Service.Policy(q.org())
	d.Roles = c.roleOptions(q, f.Role, policy.DefaultRole)
	d.Pools, err = c.poolOptions(q, []string{f.Pool}, policy.DefaultPool)
	if err != nil {
		status, errText = c.errorText(q, err)
	}
	d.Method, d.Manual = policy.Method, policy.Method == gateway.SourceManual
	if d.Invitations, err = c.opts.Service.Invitations(q.ctx(), q.org()); err != nil {
		status, errText = c.errorText(q, err)
	}
	// The ones a manager can still act on (resend, revoke); the audit log
	// keeps the rest.
	d.Invitations = slices.DeleteFunc(d.Invitations, func(i gateway.Invitation) bool {
		return i.Status != gateway.InvitationPending && i.Status != gateway.InvitationExpired
	})
	c.render(q, status, "users", "Users", "users", d, noticeText, errText)
}

func (c *Console) roleOptions(q *req, selected, def string) []option {
	st, _ := c.opts.Service.Current(q.ctx(), q.org())
	roles := st.Provisioning.Roles
	if len(roles) == 0 {
		roles = []string{gateway.RoleManager, gateway.RoleUser}
	}
	out := make([]option, 0, len(roles))
	for _, r := range roles {
		out = append(out, option{Value: r, Label: r, Checked: r == selected, Default: r == def})
	}
	return out
}

func (c *Console) poolOptions(q *req, selected []string, def string) ([]option, error) {
	pools, err := c.opts.Service.Pools(q.ctx(), q.org())
	if err != nil {
		return nil, err
	}
	out := make([]option, 0, len(pools))
	for _, p := range pools {
		out = append(out, option{Value: p.ID, Label: p.Name, Checked: slices.Contains(selected, p.ID), Default: p.ID == def})
	}
	return out, nil
}

func (c *Console) addUser(q *req) {
	f := q.r.PostForm
	email := strings.ToLower(strings.TrimSpace(f.Get("email")))
	given, family := strings.TrimSpace(f.Get("given_name")), strings.TrimSpace(f.Get("family_name"))
	u := &gateway.User{UserName: email, Active: true, GivenName: given, FamilyName: family,
		DisplayName: strings.TrimSpace(given + " " + family), Role: f.Get("role"), Pools: f["pools"]}
	if email != "" {
		u.Emails = []string{email}
	}
	if _, err := c.opts.Service.AddUser(q.ctx(), c.manager(q), u); err != nil {
		status, text := c.errorText(q, err)
		c.usersPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/users", "user-added")
}

func (c *Console) invite(q *req) {
	f := q.r.PostForm
	inv, err := c.opts.Service.CreateInvitation(q.ctx(), c.manager(q), f.Get("email"), f.Get("role"), f["pools"], c.opts.InvitationTTL, c.orgRoot(q)+"/invite")
	if err != nil {
		status, text := c.errorText(q, err)
		c.usersPage(q, status, text)
		return
	}
	c.invited(q, inv, "invited")
}

// invited tells the manager what happened to a new link: mailed, or (no
// mail server) shown once, here, to copy; never put in a URL.
func (c *Console) invited(q *req, inv gateway.Invitation, notice string) {
	if c.opts.Mails {
		c.done(q, c.opts.PathPrefix+"/console/users", notice)
		return
	}
	q.w.Header().Set("Referrer-Policy", "no-referrer")
	c.usersView(q, http.StatusOK, "Invitation created for "+inv.Email+".", "", &inv)
}

func (c *Console) resend(q *req) {
	inv, err := c.opts.Service.ResendInvitation(q.ctx(), c.manager(q), q.r.PathValue("id"), c.opts.InvitationTTL, c.orgRoot(q)+"/invite")
	if err != nil {
		status, text := c.errorText(q, err)
		c.usersPage(q, status, text)
		return
	}
	c.invited(q, inv, "resent")
}

func (c *Console) revoke(q *req) {
	if err := c.opts.Service.RevokeInvitation(q.ctx(), c.manager(q), q.r.PathValue("id")); err != nil {
		status, text := c.errorText(q, err)
		c.usersPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/users", "revoked")
}

type userData struct {
	User         admin.UserView
	Groups       []string
	Sessions     int
	Roles, Pools []option
	Access       []accessRow
}

// accessRow is what the person may do in one pool, and why.
type accessRow struct {
	Pool, PoolName, Role, Why string
	Permissions               []string
	Choices                   []option // their own role here: "" is the pool's
}

func (c *Console) userPage(q *req, status int, errText string) {
	id := q.r.PathValue("id")
	u, err := c.opts.Store.Users().Get(q.ctx(), q.org(), id)
	if err != nil {
		code, text := c.errorText(q, err)
		c.fail(q.w, q.r, code, text)
		return
	}
	seen, err := c.opts.Store.Sessions().LastLogins(q.ctx(), q.org(), []string{id})
	if err != nil {
		status, errText = c.errorText(q, err)
	}
	d := userData{User: admin.ViewUser(u, seen)}
	if refs, err := c.opts.Store.Groups().Memberships(q.ctx(), q.org(), []string{id}); err == nil {
		for _, g := range refs[id] {
			d.Groups = append(d.Groups, g.DisplayName)
		}
	}
	if sessions, err := c.opts.Store.Sessions().ListUser(q.ctx(), q.org(), id); err == nil {
		now := time.Now()
		for _, se := range sessions {
			if now.Before(se.Expires) {
				d.Sessions++
			}
		}
	}
	d.Roles = c.roleOptions(q, u.Role, "")
	if d.Access, err = c.accessRows(q, u); err != nil {
		status, errText = c.errorText(q, err)
	}
	if d.Pools, err = c.poolOptions(q, u.Pools, ""); err != nil {
		status, errText = c.errorText(q, err)
	}
	title := d.User.Name
	if title == "" {
		title = d.User.UserName
	}
	c.render(q, status, "user", title, "users", d, notice(q.r), errText)
}

// accessRows says, pool by pool, what u may do and why.
func (c *Console) accessRows(q *req, u *gateway.User) ([]accessRow, error) {
	details, err := c.opts.Service.AccessDetails(q.ctx(), u)
	if err != nil {
		return nil, err
	}
	roles, err := c.opts.Service.Roles(q.ctx(), q.org())
	if err != nil {
		return nil, err
	}
	pools, err := c.opts.Service.Pools(q.ctx(), q.org())
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, p := range pools {
		names[p.ID] = p.Name
	}
	rows := make([]accessRow, 0, len(details))
	for _, a := range details {
		row := accessRow{Pool: a.Pool, PoolName: names[a.Pool], Role: a.Role, Permissions: a.Permissions}
		if row.PoolName == "" {
			row.PoolName = a.Pool
		}
		switch a.From {
		case "member":
			row.Why = "their own role in " + row.PoolName
		case "pool":
			row.Why = row.PoolName + " grants " + a.Role
		default:
			row.Why = row.PoolName + " grants the default role, " + a.Role
		}
		row.Choices = append(row.Choices, option{Value: "", Label: "the pool's role", Checked: a.From != "member"})
		for _, r := range roles {
			row.Choices = append(row.Choices, option{Value: r.Name, Label: r.Name, Checked: a.From == "member" && r.Name == a.Role})
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// saveMemberRole sets (or clears) the user's own role in a pool.
func (c *Console) saveMemberRole(q *req) {
	id := q.r.PathValue("id")
	if _, err := c.opts.Service.PutMember(q.ctx(), c.manager(q), q.r.PathValue("pool"), id, q.r.PostFormValue("role")); err != nil {
		status, text := c.errorText(q, err)
		c.userPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/users/"+id, "access")
}

func (c *Console) saveUser(q *req) {
	f := q.r.PostForm
	version, _ := strconv.ParseUint(f.Get("version"), 10, 64)
	role, pools := f.Get("role"), f["pools"]
	if pools == nil {
		pools = []string{}
	}
	id := q.r.PathValue("id")
	if _, err := c.opts.Service.ChangeUser(q.ctx(), c.manager(q), id, version, provision.UserPatch{Role: &role, Pools: &pools}); err != nil {
		status, text := c.errorText(q, err)
		c.userPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/users/"+id, "saved")
}

func (c *Console) setActive(q *req, active bool) {
	id := q.r.PathValue("id")
	if _, err := c.opts.Service.ChangeUser(q.ctx(), c.manager(q), id, 0, provision.UserPatch{Active: &active}); err != nil {
		status, text := c.errorText(q, err)
		c.userPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/users/"+id, map[bool]string{true: "reactivated", false: "deactivated"}[active])
}

func (c *Console) confirmDeactivate(q *req) {
	c.confirmUser(q, "deactivate", "Deactivate", "Deactivate %s? Their sessions end at once and they cannot sign in until reactivated.",
		" The identity provider may reactivate them at its next update.", false)
}

func (c *Console) confirmDelete(q *req) {
	c.confirmUser(q, "delete", "Delete user", "Delete %s and end their sessions? This cannot be undone.",
		" The identity provider provisions them again if they are still assigned there.", true)
}

// confirmUser asks before a destructive change to a user (a page of its
// own, so that it works without JavaScript). scimNote is added for users
// the IdP provisions; withVersion makes the change refuse an edit made
// meanwhile.
func (c *Console) confirmUser(q *req, action, button, question, scimNote string, withVersion bool) {
	id := q.r.PathValue("id")
	u, err := c.opts.Store.Users().Get(q.ctx(), q.org(), id)
	if err != nil {
		code, text := c.errorText(q, err)
		c.fail(q.w, q.r, code, text)
		return
	}
	text := fmt.Sprintf(question, u.UserName)
	if u.Source == gateway.SourceSCIM {
		text += scimNote
	}
	var fields map[string]string
	if withVersion {
		fields = map[string]string{"version": strconv.FormatUint(u.Version, 10)}
	}
	c.render(q, http.StatusOK, "confirm", strings.SplitN(text, "?", 2)[0]+"?", "users", confirmation{Question: text,
		Action: c.opts.PathPrefix + "/console/users/" + id + "/" + action, Button: button,
		Back: c.opts.PathPrefix + "/console/users/" + id, Fields: fields}, "", "")
}

func (c *Console) deleteUser(q *req) {
	id := q.r.PathValue("id")
	if q.r.PostFormValue("confirmed") != "yes" {
		c.confirmDelete(q)
		return
	}
	version, _ := strconv.ParseUint(q.r.PostFormValue("version"), 10, 64)
	if err := c.opts.Service.RemoveUser(q.ctx(), c.manager(q), id, version); err != nil {
		status, text := c.errorText(q, err)
		c.userPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/users", "deleted")
}

package admin

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/fold"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

// UserView is a user as the admin API shows it.
type UserView struct {
	ID         string         `json:"id"`
	UserName   string         `json:"userName"`
	Email      string         `json:"email"`
	Name       string         `json:"name"`
	GivenName  string         `json:"givenName,omitempty"`
	FamilyName string         `json:"familyName,omitempty"`
	Active     bool           `json:"active"`
	Role       string         `json:"role"`
	Pools      []string       `json:"pools"`
	Source     gateway.Source `json:"source" enum:"scim,jit,manual,self_service"`
	JIT        bool           `json:"jit" doc:"created by SSO just-in-time provisioning"`
	Created    time.Time      `json:"created"`
	Modified   time.Time      `json:"modified"`
	Version    uint64         `json:"version"`
	LastLogin  *time.Time     `json:"lastLogin,omitempty" doc:"the last SSO sign-in; absent: never"`
}

// ViewUser is u as the API shows it, with its last sign-in from lastLogin.
func ViewUser(u *gateway.User, lastLogin map[string]time.Time) UserView {
	name := u.DisplayName
	if name == "" {
		name = strings.TrimSpace(u.GivenName + " " + u.FamilyName)
	}
	email := u.PrimaryEmail()
	if email == "" && strings.Contains(u.UserName, "@") {
		email = u.UserName
	}
	v := UserView{ID: u.ID, UserName: u.UserName, Email: email, Name: name, GivenName: u.GivenName, FamilyName: u.FamilyName,
		Active: u.Active, Role: u.Role, Pools: append([]string{}, u.Pools...), Source: u.Source, JIT: u.Source == gateway.SourceJIT,
		Created: u.Created, Modified: u.Modified, Version: u.Version}
	if t, ok := lastLogin[u.ID]; ok {
		v.LastLogin = &t
	}
	return v
}

type userOutput struct {
	ETag string `header:"ETag"`
	Body UserView
}

// UserFilter selects users for the list.
type UserFilter struct {
	Q              string `query:"q" doc:"part of the userName, email or name, any case"`
	Source         string `query:"source" enum:"scim,jit,manual,self_service," doc:"how the users were provisioned"`
	Role           string `query:"role"`
	Pool           string `query:"pool"`
	Active         string `query:"active" enum:"true,false," doc:"true or false; empty: both"`
	JITNotSeenDays int    `query:"jit_not_seen_days" minimum:"0" doc:"only JIT users who have not signed in for this many days (removed at the IdP, perhaps)"`
	After          string `query:"after" doc:"the next value of the previous page"`
	Limit          int    `query:"limit" minimum:"1" maximum:"500" default:"50"`
}

// match reports whether u passes every filter, given its last sign-in.
func (f UserFilter) match(u *gateway.User, lastLogin time.Time, now time.Time) bool {
	if f.JITNotSeenDays > 0 && (u.Source != gateway.SourceJIT || !lastLogin.IsZero() && now.Sub(lastLogin) < time.Duration(f.JITNotSeenDays)*24*time.Hour) {
		return false
	}
	return f.matchIgnoringLogin(u)
}

// matchIgnoringLogin is match without the last-sign-in filter.
func (f UserFilter) matchIgnoringLogin(u *gateway.User) bool {
	if f.Source != "" && string(u.Source) != f.Source || f.Role != "" && u.Role != f.Role ||
		f.Pool != "" && !slices.Contains(u.Pools, f.Pool) || f.Active != "" && (f.Active == "true") != u.Active {
		return false
	}
	if f.Q == "" {
		return true
	}
	q := fold.Key(f.Q)
	has := func(s string) bool { return s != "" && strings.Contains(fold.Key(s), q) }
	if has(u.UserName) || has(u.GivenName) || has(u.FamilyName) || has(u.DisplayName) || slices.ContainsFunc(u.Emails, has) {
		return true
	}
	// "Ada Lovelace" matches across the two names.
	return strings.ContainsRune(q, ' ') && has(u.GivenName+" "+u.FamilyName)
}

type usersOutput struct {
	Body struct {
		Users []UserView `json:"users"`
		Next  string     `json:"next,omitempty" doc:"pass as after= for the next page; absent: last page"`
	}
}

type createUserInput struct {
	// nameHint keeps the schema name the OpenAPI document has published.
	Body struct {
		UserName   string   `json:"userName" minLength:"1" doc:"usually the email address"`
		Email      string   `json:"email,omitempty" format:"email"`
		GivenName  string   `json:"givenName,omitempty"`
		FamilyName string   `json:"familyName,omitempty"`
		Role       string   `json:"role,omitempty" doc:"default: provisioning.default_role"`
		Pools      []string `json:"pools,omitempty" doc:"default: the default pool"`
	} `nameHint:"NewUserBody"`
}

type updateUserInput struct {
	ID      string `path:"id"`
	IfMatch string `header:"If-Match" doc:"the ETag of the user read, to refuse a change made meanwhile"`
	// nameHint keeps the schema name the OpenAPI document has published.
	Body struct {
		Role   *string   `json:"role,omitempty"`
		Pools  *[]string `json:"pools,omitempty" doc:"every pool the user belongs to (at least one)"`
		Active *bool     `json:"active,omitempty" doc:"false deactivates the user and ends their sessions"`
	} `nameHint:"PatchUserBody"`
}

func (a *API) listUsers(ctx context.Context, f *UserFilter) (*usersOutput, error) {
	page, next, err := ListUsers(ctx, a.opts.Store, a.org(ctx), *f)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &usersOutput{}
	out.Body.Users, out.Body.Next = page, next
	return out, nil
}

func (a *API) getUser(ctx context.Context, in *idInput) (*userOutput, error) {
	u, err := a.opts.Store.Users().Get(ctx, a.org(ctx), in.ID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return a.userOutput(ctx, u)
}

func (a *API) createUser(ctx context.Context, in *createUserInput) (*userOutput, error) {
	b := in.Body
	email := strings.ToLower(strings.TrimSpace(b.Email))
	if email == "" && strings.Contains(b.UserName, "@") {
		email = strings.ToLower(strings.TrimSpace(b.UserName))
	}
	u := &gateway.User{UserName: strings.TrimSpace(b.UserName), Active: true, GivenName: b.GivenName, FamilyName: b.FamilyName,
		DisplayName: strings.TrimSpace(b.GivenName + " " + b.FamilyName), Role: b.Role, Pools: b.Pools}
	if email != "" {
		u.Emails = []string{email}
	}
	u, err := a.opts.Service.AddUser(ctx, a.manager(ctx), u)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return a.userOutput(ctx, u)
}

func (a *API) updateUser(ctx context.Context, in *updateUserInput) (*userOutput, error) {
	version, err := ifMatch(in.IfMatch)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	u, err := a.opts.Service.ChangeUser(ctx, a.manager(ctx), in.ID, version, provisionPatch(in.Body.Role, in.Body.Pools, in.Body.Active))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return a.userOutput(ctx, u)
}

func (a *API) roleFromGroups(ctx context.Context, in *idInput) (*userOutput, error) {
	u, err := a.opts.Service.UnpinRole(ctx, a.manager(ctx), in.ID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return a.userOutput(ctx, u)
}

func (a *API) deleteUser(ctx context.Context, in *deleteInput) (*struct{}, error) {
	version, err := ifMatch(in.IfMatch)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	if err := a.opts.Service.RemoveUser(ctx, a.manager(ctx), in.ID, version); err != nil {
		return nil, a.fail(ctx, err)
	}
	return nil, nil
}

// provisionPatch builds a manager's user change.
func provisionPatch(role *string, pools *[]string, active *bool) provision.UserPatch {
	return provision.UserPatch{Role: role, Pools: pools, Active: active}
}

func (a *API) userOutput(ctx context.Context, u *gateway.User) (*userOutput, error) {
	seen, err := a.opts.Store.Sessions().LastLogins(ctx, a.org(ctx), []string{u.ID})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &userOutput{ETag: etag(u.Version), Body: ViewUser(u, seen)}, nil
}

// ListUsers reads a page of users matching f (the console lists with it
// too): the store is scanned in chunks from f.After (the last-login
// filter needs a second read, which may not run inside the scan), so a
// page costs what it scans.
func ListUsers(ctx context.Context, store gateway.Store, org gateway.OrgID, f UserFilter) ([]UserView, string, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	const chunk = 512
	now := time.Now()
	contains := "" // the store's first cut for a search
	if q := fold.Key(f.Q); plainSearch(q) {
		contains = q
	}
	var page []*gateway.User
	after := f.After
	for len(page) <= f.Limit {
		var (
			candidates []*gateway.User
			scanned    int
			last       string
		)
		err := store.Users().ScanSummaries(ctx, org, after, contains, func(u *gateway.User) bool {
			scanned++
			last = u.ID
			if f.matchIgnoringLogin(u) && (f.JITNotSeenDays == 0 || u.Source == gateway.SourceJIT) {
				candidates = append(candidates, u)
			}
			return scanned < chunk
		})
		if err != nil {
			return nil, "", err
		}
		if f.JITNotSeenDays > 0 && len(candidates) > 0 {
			seen, err := store.Sessions().LastLogins(ctx, org, userIDs(candidates))
			if err != nil {
				return nil, "", err
			}
			candidates = slices.DeleteFunc(candidates, func(u *gateway.User) bool { return !f.match(u, seen[u.ID], now) })
		}
		page = append(page, candidates...)
		if scanned < chunk {
			break
		}
		after = last
	}
	next := ""
	if len(page) > f.Limit {
		page = page[:f.Limit]
		next = page[len(page)-1].ID
	}
	seen, err := store.Sessions().LastLogins(ctx, org, userIDs(page))
	if err != nil {
		return nil, "", err
	}
	views := make([]UserView, len(page))
	for i, u := range page {
		views[i] = ViewUser(u, seen)
	}
	return views, next, nil
}

func userIDs(us []*gateway.User) []string {
	ids := make([]string, len(us))
	for i, u := range us {
		ids[i] = u.ID
	}
	return ids
}

// plainSearch reports a search the store can pre-filter on its records'
// bytes: lower-case letters, digits and . @ _ + - (what JSON writes as
// is); anything else (spaces across two names, escaped characters) is
// matched on decoded users only.
func plainSearch(q string) bool {
	for i := 0; i < len(q); i++ {
		c := q[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte(".@_+-", c) >= 0) {
			return false
		}
	}
	return q != ""
}

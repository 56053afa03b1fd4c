package console

import (
	"fmt"
	"io"
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

// option is a choice in a select, radio group or checkbox list.
type option struct {
	Value, Label     string
	Checked, Default bool
	Allowed          bool
	Reason           string
}

func (c *Console) routes(p string) {
	c.mux.HandleFunc("GET "+p+"/identity", c.signedIn(func(q *req) { c.identityPage(q, http.StatusOK, "") }))
	c.mux.HandleFunc("GET "+p+"/identity/test", c.signedIn(func(q *req) { c.identityPage(q, http.StatusOK, "") }))
	c.mux.HandleFunc("POST "+p+"/identity/login", c.signedIn(c.saveLogin))
	c.mux.HandleFunc("POST "+p+"/identity/method", c.signedIn(c.saveMethod))
	c.mux.HandleFunc("POST "+p+"/identity/scim-token", c.signedIn(c.rotateSCIMToken))
	c.mux.HandleFunc("GET "+p+"/sessions/end", c.signedIn(c.confirmEndSessions))
	c.mux.HandleFunc("POST "+p+"/sessions/end", c.signedIn(c.endSessions))
	c.mux.HandleFunc("GET "+p+"/users", c.signedIn(func(q *req) { c.usersPage(q, http.StatusOK, "") }))
	c.mux.HandleFunc("POST "+p+"/users/add", c.signedIn(c.addUser))
	c.mux.HandleFunc("GET "+p+"/users/{id}", c.signedIn(func(q *req) { c.userPage(q, http.StatusOK, "") }))
	c.mux.HandleFunc("POST "+p+"/users/{id}", c.signedIn(c.saveUser))
	c.mux.HandleFunc("GET "+p+"/users/{id}/deactivate", c.signedIn(c.confirmDeactivate))
	c.mux.HandleFunc("POST "+p+"/users/{id}/deactivate", c.signedIn(func(q *req) {
		if q.r.PostFormValue("confirmed") != "yes" {
			c.confirmDeactivate(q)
			return
		}
		c.setActive(q, false)
	}))
	c.mux.HandleFunc("POST "+p+"/users/{id}/reactivate", c.signedIn(func(q *req) { c.setActive(q, true) }))
	c.mux.HandleFunc("GET "+p+"/users/{id}/delete", c.signedIn(c.confirmDelete))
	c.mux.HandleFunc("POST "+p+"/users/{id}/delete", c.signedIn(c.deleteUser))
	c.mux.HandleFunc("POST "+p+"/invitations", c.signedIn(c.invite))
	c.mux.HandleFunc("POST "+p+"/invitations/{id}/resend", c.signedIn(c.resend))
	c.mux.HandleFunc("POST "+p+"/invitations/{id}/revoke", c.signedIn(c.revoke))
	c.mux.HandleFunc("GET "+p+"/pools", c.signedIn(func(q *req) { c.poolsPage(q, http.StatusOK, "") }))
	c.mux.HandleFunc("POST "+p+"/pools", c.signedIn(c.createPool))
	c.mux.HandleFunc("POST "+p+"/pools/{id}", c.signedIn(c.renamePool))
	c.mux.HandleFunc("GET "+p+"/delivery", c.signedIn(func(q *req) { c.deliveryPage(q, http.StatusOK, "") }))
	c.mux.HandleFunc("POST "+p+"/dead-letters/{id}/replay", c.signedIn(c.replay))
	c.mux.HandleFunc("GET "+p+"/audit", c.signedIn(c.auditPage))
}

// --- Identity configuration ---

// maxMetadata bounds an uploaded metadata file (IdP metadata is a few KB).
const maxMetadata = 1 << 20

type identityData struct {
	FromFile                 bool
	Protocols, Methods       []option
	SAMLURL                  string
	SAMLUploaded             bool
	OIDCIssuer, OIDCClientID string
	OIDCSecretSet            bool
	EmailDomains             string
	SCIMBaseURL              string
	SP                       admin.SPInfo
	LastSignIn               *gateway.Identity
	CanTest                  bool
	Version                  uint64
	SCIMVersion              uint64
	MetadataFile             string
}

var methodLabels = map[gateway.Source]string{
	gateway.SourceManual:      "Manual: managers add or invite people",
	gateway.SourceSelfService: "Self-service: people of the organization's domain join through a link",
	gateway.SourceSCIM:        "SCIM: the identity provider provisions people",
	gateway.SourceJIT:         "SSO JIT: people get an account at their first sign-in",
}

func (c *Console) identityPage(q *req, status int, errText string) {
	st, ok := c.opts.Service.Settings(c.opts.Tenant)
	if !ok {
		c.fail(q.w, q.r, http.StatusServiceUnavailable, "The identity settings are not loaded yet.")
		return
	}
	choices, err := c.opts.Service.MethodChoices(q.ctx(), c.opts.Tenant)
	if err != nil {
		status, errText = c.errorText(q, err)
	}
	d := identityData{FromFile: c.opts.SettingsFromFile, SAMLURL: st.SSO.SAML.IDPMetadataURL, SAMLUploaded: st.SSO.SAML.IDPMetadataXML != "",
		OIDCIssuer: st.SSO.OIDC.Issuer, OIDCClientID: st.SSO.OIDC.ClientID, OIDCSecretSet: st.SSO.OIDC.ClientSecret.IsSet(),
		EmailDomains: strings.Join(st.Provisioning.EmailDomain, ", "), SCIMBaseURL: c.opts.SCIMBaseURL, SP: c.spInfo(),
		CanTest: st.SSO.Protocol == gateway.ProtocolSAML || st.SSO.Protocol == gateway.ProtocolOIDC,
		Version: st.Version, MetadataFile: st.SSO.SAML.IDPMetadataFile}
	if d.SCIMVersion, err = c.opts.Service.SCIMTokenVersion(q.ctx(), c.opts.Tenant); err != nil {
		status, errText = c.errorText(q, err)
	}
	for _, p := range []struct{ v, l string }{{"none", "None"}, {"saml", "SAML 2.0"}, {"oidc", "OIDC"}, {"external", "External (the app or another proxy signs people in)"}} {
		d.Protocols = append(d.Protocols, option{Value: p.v, Label: p.l, Checked: st.SSO.Protocol == p.v})
	}
	for _, ch := range choices {
		d.Methods = append(d.Methods, option{Value: string(ch.Method), Label: methodLabels[ch.Method], Checked: st.Provisioning.Method == ch.Method,
			Allowed: ch.Allowed || st.Provisioning.Method == ch.Method, Reason: ch.Reason})
	}
	if c.opts.LastSignIn != nil {
		d.LastSignIn = c.opts.LastSignIn(q.ctx(), q.user.ID)
	}
	c.render(q, status, "identity", "Identity configuration", "identity", d, notice(q.r), errText)
}

func (c *Console) spInfo() admin.SPInfo {
	root := strings.TrimSuffix(c.opts.SCIMBaseURL, "/scim/v2")
	return admin.SPInfo{EntityID: root + "/saml/metadata", MetadataURL: root + "/saml/metadata", ACSURL: root + "/saml/acs", OIDCRedirect: root + "/oidc/callback"}
}

// update applies change to the settings in force through the rules.
// update applies change to the settings in force through the rules, at
// the version the form was rendered from: a change another manager made
// meanwhile is not silently overwritten.
func (c *Console) update(q *req, change func(*gateway.IdentitySettings)) error {
	cur, ok := c.opts.Service.Settings(c.opts.Tenant)
	if !ok {
		return gateway.Errorf(gateway.ErrUnavailable, "the identity settings are not loaded yet")
	}
	version, err := strconv.ParseUint(q.r.PostFormValue("version"), 10, 64)
	if err != nil || version == 0 {
		return gateway.Errorf(gateway.ErrInvalid, "the form is incomplete; reload the page")
	}
	next := cur.IdentitySettings
	change(&next)
	mg := c.manager(q)
	_, err = c.opts.Service.UpdateSettings(q.ctx(), mg.Tenant, mg.Actor, mg.RequestID, version, next, c.opts.SettingsFromFile)
	if gateway.ErrorCodeOf(err) == gateway.ErrPreconditionFailed {
		return gateway.Errorf(gateway.ErrConflict, "another manager changed the identity configuration meanwhile; the page now shows it: check it and save again")
	}
	return err
}

func (c *Console) saveLogin(q *req) {
	f := q.r.PostForm
	var uploaded string
	if file, hdr, err := q.r.FormFile("saml_metadata_file"); err == nil {
		b, _ := io.ReadAll(io.LimitReader(file, maxMetadata+1))
		file.Close()
		if len(b) > maxMetadata || hdr.Size > maxMetadata {
			c.identityPage(q, http.StatusRequestEntityTooLarge, "The metadata file is larger than 1 MiB; IdP metadata is a few kilobytes: check the file.")
			return
		}
		uploaded = string(b)
	}
	err := c.update(q, func(s *gateway.IdentitySettings) {
		s.SSO.Protocol = f.Get("protocol")
		switch u := strings.TrimSpace(f.Get("saml_metadata_url")); {
		case uploaded != "": // an upload replaces the URL shown in the form
			s.SSO.SAML.IDPMetadataURL, s.SSO.SAML.IDPMetadataFile, s.SSO.SAML.IDPMetadataXML = "", "", uploaded
		case u != "" && u != s.SSO.SAML.IDPMetadataURL:
			s.SSO.SAML.IDPMetadataURL, s.SSO.SAML.IDPMetadataFile, s.SSO.SAML.IDPMetadataXML = u, "", ""
		}
		s.SSO.OIDC.Issuer = strings.TrimSpace(f.Get("oidc_issuer"))
		s.SSO.OIDC.ClientID = strings.TrimSpace(f.Get("oidc_client_id"))
		if secret := f.Get("oidc_client_secret"); secret != "" {
			s.SSO.OIDC.ClientSecret = gateway.NewSecret(secret)
		}
	})
	if err != nil {
		status, text := c.errorText(q, err)
		c.identityPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/identity", "login")
}

func (c *Console) saveMethod(q *req) {
	f := q.r.PostForm
	var domains []string
	for _, d := range strings.Split(f.Get("email_domain"), ",") {
		if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
			domains = append(domains, d)
		}
	}
	err := c.update(q, func(s *gateway.IdentitySettings) {
		s.Provisioning.Method = gateway.Source(f.Get("method"))
		s.Provisioning.EmailDomain = domains
	})
	if err != nil {
		status, text := c.errorText(q, err)
		c.identityPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/identity", "method")
}

func (c *Console) rotateSCIMToken(q *req) {
	mg := c.manager(q)
	version, perr := strconv.ParseUint(q.r.PostFormValue("scim_version"), 10, 64)
	grace := c.opts.SCIMTokenGrace
	if q.r.PostFormValue("end_previous") == "yes" {
		grace = 0
	}
	token, until, err := c.opts.Service.RotateSCIMTokenAt(q.ctx(), mg.Tenant, mg.Actor, mg.RequestID, version, grace)
	if perr != nil || gateway.ErrorCodeOf(err) == gateway.ErrPreconditionFailed {
		c.identityPage(q, http.StatusConflict, "The SCIM token was rotated already (a reload sends the form again); rotate again only if you mean to.")
		return
	}
	if err != nil {
		status, text := c.errorText(q, err)
		c.identityPage(q, status, text)
		return
	}
	c.render(q, http.StatusOK, "message", "New SCIM token", "identity", message{
		Message: "Paste this token into the identity provider's SCIM settings (without “Bearer ”). The previous token works until " +
			until.Format("2006-01-02 15:04 MST") + ".",
		Secret: token, SecretLabel: "SCIM token", Back: c.opts.PathPrefix + "/console/identity"}, "", "")
}

func (c *Console) confirmEndSessions(q *req) {
	n, _ := c.opts.Store.Sessions().Count(q.ctx(), c.opts.Tenant)
	c.render(q, http.StatusOK, "confirm", "Sign everyone out?", "identity", confirmation{
		Question: fmt.Sprintf("End all %d sessions now, yours too? Everyone signs in again through the login method in force (do it after changing or distrusting the identity provider).", n),
		Action:   c.opts.PathPrefix + "/console/sessions/end", Button: "Sign everyone out", Back: c.opts.PathPrefix + "/console/identity"}, "", "")
}

func (c *Console) endSessions(q *req) {
	if q.r.PostFormValue("confirmed") != "yes" {
		c.confirmEndSessions(q)
		return
	}
	if _, err := c.opts.Service.EndAllSessions(q.ctx(), c.manager(q)); err != nil {
		status, text := c.errorText(q, err)
		c.identityPage(q, status, text)
		return
	}
	// The manager's own session ended too: sign in again, back here.
	http.Redirect(q.w, q.r, c.opts.PathPrefix+"/login?return="+url.QueryEscape(c.opts.PathPrefix+"/console/identity"), http.StatusSeeOther)
}

// --- Users ---

type usersData struct {
	Filter                admin.UserFilter
	Users                 []admin.UserView
	Next, First           string
	Sources, Roles, Pools []option
	Manual                bool
	Method                gateway.Source
	Invitations           []gateway.Invitation
}

func (c *Console) usersPage(q *req, status int, errText string) {
	qs := q.r.URL.Query()
	limit, _ := strconv.Atoi(qs.Get("limit"))
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	f := admin.UserFilter{Q: qs.Get("q"), Source: qs.Get("source"), Role: qs.Get("role"), Pool: qs.Get("pool"), Active: qs.Get("active"),
		After: qs.Get("after"), Limit: limit}
	users, next, err := admin.ListUsers(q.ctx(), c.opts.Store, c.opts.Tenant, f)
	if err != nil {
		status, errText = c.errorText(q, err)
	}
	d := usersData{Filter: f, Users: users}
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
	policy := c.opts.Service.Policy(c.opts.Tenant)
	d.Roles = c.roleOptions(f.Role, policy.DefaultRole)
	d.Pools, err = c.poolOptions(q, []string{f.Pool}, policy.DefaultPool)
	if err != nil {
		status, errText = c.errorText(q, err)
	}
	d.Method, d.Manual = policy.Method, policy.Method == gateway.SourceManual
	if d.Invitations, err = c.opts.Service.Invitations(q.ctx(), c.opts.Tenant); err != nil {
		status, errText = c.errorText(q, err)
	}
	// The ones a manager can still act on (resend, revoke); the audit log
	// keeps the rest.
	d.Invitations = slices.DeleteFunc(d.Invitations, func(i gateway.Invitation) bool {
		return i.Status != gateway.InvitationPending && i.Status != gateway.InvitationExpired
	})
	c.render(q, status, "users", "Users", "users", d, notice(q.r), errText)
}

func (c *Console) roleOptions(selected, def string) []option {
	st, _ := c.opts.Service.Settings(c.opts.Tenant)
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
	pools, err := c.opts.Service.Pools(q.ctx(), c.opts.Tenant)
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
	if _, err := c.opts.Service.CreateInvitation(q.ctx(), c.manager(q), f.Get("email"), f.Get("role"), f["pools"], c.opts.InvitationTTL, c.opts.InviteBase); err != nil {
		status, text := c.errorText(q, err)
		c.usersPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/users", "invited")
}

func (c *Console) resend(q *req) {
	if _, err := c.opts.Service.ResendInvitation(q.ctx(), c.manager(q), q.r.PathValue("id"), c.opts.InvitationTTL, c.opts.InviteBase); err != nil {
		status, text := c.errorText(q, err)
		c.usersPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/users", "resent")
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
}

func (c *Console) userPage(q *req, status int, errText string) {
	id := q.r.PathValue("id")
	u, err := c.opts.Store.Users().Get(q.ctx(), c.opts.Tenant, id)
	if err != nil {
		code, text := c.errorText(q, err)
		c.fail(q.w, q.r, code, text)
		return
	}
	seen, err := c.opts.Store.Sessions().LastLogins(q.ctx(), c.opts.Tenant, []string{id})
	if err != nil {
		status, errText = c.errorText(q, err)
	}
	d := userData{User: admin.ViewUser(u, seen)}
	if refs, err := c.opts.Store.Groups().Memberships(q.ctx(), c.opts.Tenant, []string{id}); err == nil {
		for _, g := range refs[id] {
			d.Groups = append(d.Groups, g.DisplayName)
		}
	}
	if sessions, err := c.opts.Store.Sessions().ListUser(q.ctx(), c.opts.Tenant, id); err == nil {
		now := time.Now()
		for _, se := range sessions {
			if now.Before(se.Expires) {
				d.Sessions++
			}
		}
	}
	d.Roles = c.roleOptions(u.Role, "")
	if d.Pools, err = c.poolOptions(q, u.Pools, ""); err != nil {
		status, errText = c.errorText(q, err)
	}
	title := d.User.Name
	if title == "" {
		title = d.User.UserName
	}
	c.render(q, status, "user", title, "users", d, notice(q.r), errText)
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
	u, err := c.opts.Store.Users().Get(q.ctx(), c.opts.Tenant, id)
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

// --- Pools and roles ---

type poolsData struct {
	Pools                    []admin.PoolView
	Roles                    []string
	DefaultRole, DefaultPool string
}

func (c *Console) poolsPage(q *req, status int, errText string) {
	pools, err := c.opts.Service.Pools(q.ctx(), c.opts.Tenant)
	if err != nil {
		status, errText = c.errorText(q, err)
	}
	policy := c.opts.Service.Policy(c.opts.Tenant)
	st, _ := c.opts.Service.Settings(c.opts.Tenant)
	d := poolsData{Roles: st.Provisioning.Roles, DefaultRole: policy.DefaultRole, DefaultPool: policy.DefaultPool}
	for _, p := range pools {
		members, err := c.opts.Service.PoolMembers(q.ctx(), c.opts.Tenant, p.ID)
		if err != nil {
			status, errText = c.errorText(q, err)
		}
		d.Pools = append(d.Pools, admin.PoolView{ID: p.ID, Name: p.Name, Members: len(members), Default: p.ID == policy.DefaultPool, Created: p.Created, Version: p.Version})
	}
	c.render(q, status, "pools", "Pools and roles", "pools", d, notice(q.r), errText)
}

func (c *Console) createPool(q *req) {
	mg := c.manager(q)
	if _, err := c.opts.Service.CreatePool(q.ctx(), mg.Tenant, mg.Actor, mg.RequestID, strings.TrimSpace(q.r.PostFormValue("id")), strings.TrimSpace(q.r.PostFormValue("name"))); err != nil {
		status, text := c.errorText(q, err)
		c.poolsPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/pools", "pool")
}

func (c *Console) renamePool(q *req) {
	mg := c.manager(q)
	version, _ := strconv.ParseUint(q.r.PostFormValue("version"), 10, 64)
	if _, err := c.opts.Service.RenamePool(q.ctx(), mg.Tenant, mg.Actor, mg.RequestID, q.r.PathValue("id"), version, strings.TrimSpace(q.r.PostFormValue("name"))); err != nil {
		status, text := c.errorText(q, err)
		c.poolsPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/pools", "pool")
}

// --- Delivery ---

type deliveryData struct {
	Adapters    []admin.DeliveryStatus
	DeadLetters []admin.DeadLetterView
}

func (c *Console) deliveryPage(q *req, status int, errText string) {
	var d deliveryData
	if c.opts.Delivery != nil {
		st, err := c.opts.Delivery.Status(q.ctx())
		if err != nil {
			status, errText = c.errorText(q, err)
		}
		d.Adapters = st
		for _, s := range st {
			dls, err := c.opts.Delivery.DeadLetters(q.ctx(), s.Adapter)
			if err != nil {
				status, errText = c.errorText(q, err)
				continue
			}
			for _, dl := range dls {
				d.DeadLetters = append(d.DeadLetters, admin.ViewDeadLetter(s.Adapter, dl))
			}
		}
	}
	c.render(q, status, "delivery", "Delivery", "delivery", d, notice(q.r), errText)
}

func (c *Console) replay(q *req) {
	mg := c.manager(q)
	if _, err := admin.ReplayDeadLetter(q.ctx(), c.opts.Delivery, c.opts.Store, mg, q.r.PathValue("id")); err != nil {
		status, text := c.errorText(q, err)
		c.deliveryPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/delivery", "replayed")
}

// --- Audit ---

type auditData struct {
	Actor, Target, Next string
	Entries             []gateway.AuditEntry
}

func (c *Console) auditPage(q *req) {
	qs := q.r.URL.Query()
	before, _ := strconv.ParseUint(qs.Get("before"), 10, 64)
	d := auditData{Actor: qs.Get("actor"), Target: qs.Get("target")}
	status, errText := http.StatusOK, ""
	entries, next, err := c.opts.Store.Audit().List(q.ctx(), c.opts.Tenant, gateway.AuditQuery{Actor: d.Actor, Target: d.Target, Before: before, Limit: 50})
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

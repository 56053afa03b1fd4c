package console

import (
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

// SCIM clients (OAuth 2.0 client credentials) on the identity page: a
// manager makes one (its secret shown once), adds a secret to rotate,
// removes one, deletes the client.

// scimClientView is a client as the identity page lists it.
type scimClientView struct {
	ID, Name   string
	Created    string
	Secrets    []scimSecretView
	Assertions bool
}

type scimSecretView struct {
	ID, Created, Expires string
	Expired              bool
}

func viewSCIMClients(list []provision.SCIMClient, now time.Time) []scimClientView {
	out := make([]scimClientView, 0, len(list))
	for _, c := range list {
		v := scimClientView{ID: c.ID, Name: c.Name, Created: c.Created.UTC().Format("2 January 2006"), Assertions: c.Assertion != nil}
		for _, s := range c.Secrets {
			v.Secrets = append(v.Secrets, scimSecretView{ID: s.ID, Created: s.Created.UTC().Format("2 January 2006"),
				Expires: s.Expires.UTC().Format("2 January 2006"), Expired: !now.Before(s.Expires)})
		}
		out = append(out, v)
	}
	return out
}

func (c *Console) createSCIMClient(q *req) {
	mg := c.manager(q)
	name := strings.TrimSpace(q.r.PostFormValue("name"))
	if name == "" {
		c.identityPage(q, http.StatusUnprocessableEntity, "Name the SCIM client (the identity provider or tenant it is for).")
		return
	}
	client, secret, err := c.opts.Service.CreateSCIMClient(q.ctx(), mg.Org, mg.Actor, mg.RequestID, name, 0, nil)
	if err != nil {
		status, text := c.errorText(q, err)
		c.identityPage(q, status, text)
		return
	}
	c.render(q, http.StatusCreated, "message", "New SCIM client", "identity", message{
		Message: "Paste into the identity provider's SCIM settings: the token endpoint " + c.orgRoot(q) + "/oauth/token, the client id " + client.ID +
			" and this secret (shown once; it expires " + client.Secrets[0].Expires.UTC().Format("2 January 2006") + ").",
		Secret: secret, SecretLabel: "Client secret", Back: c.opts.PathPrefix + "/console/identity"}, "", "")
}

func (c *Console) addSCIMClientSecret(q *req) {
	mg := c.manager(q)
	id := q.r.PathValue("id")
	s, secret, err := c.opts.Service.AddSCIMClientSecret(q.ctx(), mg.Org, mg.Actor, mg.RequestID, id, 0)
	if err != nil {
		status, text := c.errorText(q, err)
		c.identityPage(q, status, text)
		return
	}
	c.render(q, http.StatusCreated, "message", "New client secret", "identity", message{
		Message: "Paste this secret into the identity provider for client " + id + " (shown once; it expires " + s.Expires.UTC().Format("2 January 2006") +
			"). The other secrets keep working until you remove them, so no request is lost while you switch.",
		Secret: secret, SecretLabel: "Client secret", Back: c.opts.PathPrefix + "/console/identity"}, "", "")
}

func (c *Console) removeSCIMClientSecret(q *req) {
	mg := c.manager(q)
	if err := c.opts.Service.RemoveSCIMClientSecret(q.ctx(), mg.Org, mg.Actor, mg.RequestID, q.r.PathValue("id"), q.r.PathValue("secret")); err != nil {
		status, text := c.errorText(q, err)
		c.identityPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/identity", "secret-removed")
}

func (c *Console) deleteSCIMClient(q *req) {
	mg := c.manager(q)
	if err := c.opts.Service.DeleteSCIMClient(q.ctx(), mg.Org, mg.Actor, mg.RequestID, q.r.PathValue("id")); err != nil {
		status, text := c.errorText(q, err)
		c.identityPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/identity", "client-deleted")
}

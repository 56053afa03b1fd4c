package console

import (
	"net/http"
)

// option is a choice in a select, radio group or checkbox list.
type option struct {
	Value, Label     string
	Checked, Default bool
	Allowed          bool
	Reason           string
}

func (c *Console) routes(p string) {
	c.mux.HandleFunc("GET "+p+"/overview", c.signedIn(c.overviewPage))
	c.mux.HandleFunc("GET "+p+"/identity", c.signedIn(func(q *req) { c.identityPage(q, http.StatusOK, "") }))
	c.mux.HandleFunc("GET "+p+"/identity/test", c.signedIn(func(q *req) { c.identityPage(q, http.StatusOK, "") }))
	c.mux.HandleFunc("POST "+p+"/identity/login", c.signedIn(c.saveLogin))
	c.mux.HandleFunc("POST "+p+"/identity/method", c.signedIn(c.saveMethod))
	c.mux.HandleFunc("POST "+p+"/identity/scim-token", c.signedIn(c.rotateSCIMToken))
	c.mux.HandleFunc("POST "+p+"/identity/setup-link", c.signedIn(c.setupLink))
	c.mux.HandleFunc("POST "+p+"/identity/scim-clients", c.signedIn(c.createSCIMClient))
	c.mux.HandleFunc("POST "+p+"/identity/scim-clients/{id}/secrets", c.signedIn(c.addSCIMClientSecret))
	c.mux.HandleFunc("POST "+p+"/identity/scim-clients/{id}/secrets/{secret}/remove", c.signedIn(c.removeSCIMClientSecret))
	c.mux.HandleFunc("POST "+p+"/identity/scim-clients/{id}/delete", c.signedIn(c.deleteSCIMClient))
	c.mux.HandleFunc("GET "+p+"/sessions/end", c.signedIn(c.confirmEndSessions))
	c.mux.HandleFunc("POST "+p+"/sessions/end", c.signedIn(c.endSessions))
	c.mux.HandleFunc("GET "+p+"/users", c.signedIn(func(q *req) { c.usersPage(q, http.StatusOK, "") }))
	c.mux.HandleFunc("POST "+p+"/users/add", c.signedIn(c.addUser))
	c.mux.HandleFunc("GET "+p+"/users/{id}", c.signedIn(func(q *req) { c.userPage(q, http.StatusOK, "") }))
	c.mux.HandleFunc("POST "+p+"/users/{id}", c.signedIn(c.saveUser))
	c.mux.HandleFunc("POST "+p+"/users/{id}/pools/{pool}", c.signedIn(c.saveMemberRole))
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
	c.mux.HandleFunc("GET "+p+"/groups", c.signedIn(c.groupsPage))
	c.mux.HandleFunc("GET "+p+"/pools", c.signedIn(func(q *req) { c.poolsPage(q, http.StatusOK, "") }))
	c.mux.HandleFunc("POST "+p+"/pools", c.signedIn(c.createPool))
	c.mux.HandleFunc("POST "+p+"/pools/{id}", c.signedIn(c.renamePool))
	c.mux.HandleFunc("POST "+p+"/pools/{id}/role", c.signedIn(c.setPoolRole))
	c.mux.HandleFunc("POST "+p+"/roles", c.signedIn(c.saveRole))
	c.mux.HandleFunc("POST "+p+"/roles/{role}", c.signedIn(c.saveRole))
	c.mux.HandleFunc("POST "+p+"/roles/{role}/delete", c.signedIn(c.deleteRole))
	c.mux.HandleFunc("GET "+p+"/delivery", c.signedIn(func(q *req) { c.deliveryPage(q, http.StatusOK, "") }))
	c.mux.HandleFunc("POST "+p+"/dead-letters/{id}/replay", c.signedIn(c.replay))
	c.mux.HandleFunc("GET "+p+"/audit", c.signedIn(c.auditPage))
}

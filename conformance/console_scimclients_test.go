package conformance

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// TestConsoleSCIMClients: a manager makes a SCIM client in the console
// (its secret shown once), the identity provider gets an access token
// with it and provisions; a second secret rotates without losing a
// request, a removed secret and a deleted client are refused.
func TestConsoleSCIMClients(t *testing.T) {
	g := startGateway(t, "")
	cookie, csrf := sessionAs(t, g, "mia@example.com", "manager")
	root := "http://" + g.app.MainAddr() + "/gatehouse"
	post := func(path string, form url.Values) (int, string) {
		t.Helper()
		form.Set("csrf", csrf)
		return postForm(t, root+"/console"+path, cookie, form)
	}
	secretIn := regexp.MustCompile(`id="secret" type="text" readonly value="([^"]+)"`)
	status, body := post("/identity/scim-clients", url.Values{"name": {"Microsoft Entra ID"}})
	secret := secretIn.FindStringSubmatch(body)
	clientID := regexp.MustCompile(`client id (scim_[A-Za-z0-9_-]+)`).FindStringSubmatch(body)
	if status != http.StatusCreated || secret == nil || clientID == nil || !strings.Contains(body, "https://app.example.test/gatehouse/oauth/token") {
		t.Fatalf("make a client: %d %.1500s", status, body)
	}
	page := httpGetWithCookie(t, root+"/console/identity", cookie)
	if !strings.Contains(page, `id="scim-clients"`) || !strings.Contains(page, clientID[1]) || strings.Contains(page, secret[1]) {
		t.Fatalf("the identity page should list the client, never its secret: %.300s", page)
	}
	token := func(secret string) int {
		status, _, _ := tokenAt(t, root+"/oauth/token", true, url.Values{"grant_type": {"client_credentials"}}, clientID[1], secret)
		return status
	}
	status, grant, _ := tokenAt(t, root+"/oauth/token", true, url.Values{"grant_type": {"client_credentials"}}, clientID[1], secret[1])
	if status != 200 {
		t.Fatalf("the console's secret at the token endpoint: %d %v", status, grant)
	}
	g.callAuth("Bearer "+grant["access_token"].(string), "POST", "/Users", oktaUser("entra@example.com", "En", "Tra")).must(t, 201)

	// Rotation: a second secret, both work, then the first goes.
	clients, err := g.app.Service().SCIMClients(context.Background(), gateway.DefaultOrg)
	if err != nil || len(clients) != 1 {
		t.Fatalf("clients: %v %v", clients, err)
	}
	first := clients[0].Secrets[0].ID
	status, body = post("/identity/scim-clients/"+clientID[1]+"/secrets", url.Values{})
	second := secretIn.FindStringSubmatch(body)
	if status != http.StatusCreated || second == nil || second[1] == secret[1] {
		t.Fatalf("add a secret: %d %.600s", status, body)
	}
	if token(secret[1]) != 200 || token(second[1]) != 200 {
		t.Fatal("during a rotation both secrets must work")
	}
	if status, _ := post("/identity/scim-clients/"+clientID[1]+"/secrets/"+first+"/remove", url.Values{}); status != http.StatusSeeOther {
		t.Fatalf("remove the first secret: %d", status)
	}
	if token(secret[1]) != http.StatusUnauthorized || token(second[1]) != 200 {
		t.Fatal("after the removal only the second secret may work")
	}
	// Without the CSRF token nothing changes.
	req, _ := http.NewRequest("POST", root+"/console/identity/scim-clients/"+clientID[1]+"/delete", nil)
	req.AddCookie(cookie)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("delete without the CSRF token: %v %v", resp.StatusCode, err)
	}
	if token(second[1]) != 200 {
		t.Fatal("a refused delete deleted the client")
	}
	if status, _ := post("/identity/scim-clients/"+clientID[1]+"/delete", url.Values{}); status != http.StatusSeeOther {
		t.Fatalf("delete the client: %d", status)
	}
	if token(second[1]) != http.StatusUnauthorized {
		t.Fatal("a deleted client still gets tokens")
	}
	if status, body := post("/identity/scim-clients", url.Values{"name": {" "}}); status != http.StatusUnprocessableEntity || !strings.Contains(body, "Name the SCIM client") {
		t.Fatalf("a client without a name: %d", status)
	}
}

package admin

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

// registration registers one operation; it lets one table hold handlers
// of different input and output types.
type registration func(huma.API)

func op[I, O any](o huma.Operation, handler func(context.Context, *I) (*O, error)) registration {
	return func(api huma.API) { huma.Register(api, o, handler) }
}

// register declares every operation.
func (a *API) register() {
	for _, r := range []registration{
		// Identity: the login and provisioning method, credentials and sessions.
		op(huma.Operation{OperationID: "get-identity", Method: http.MethodGet, Path: "/identity", Tags: []string{"identity"},
			Summary: "The identity configuration in force", Description: "The login method (sso) and provisioning method with the configuration file's keys, what to paste into the IdP, and who changed it last."},
			a.getIdentity),
		op(huma.Operation{OperationID: "put-identity", Method: http.MethodPut, Path: "/identity", Tags: []string{"identity"},
			Summary: "Change the login or provisioning method", Errors: []int{409, 412, 422},
			Description: "Takes effect at once, without a restart: SCIM starts or stops answering, JIT starts or stops creating. " +
				"A section left out (sso, provisioning) stays as it is. A change that breaks a rule is refused with 422 naming the rule " +
				"(one_method, scim_requires_sso, jit_requires_sso, single_idp, self_service_domain, defaults, …); with admin.identity_source: file, with 409. Switching never deletes users."},
			a.putIdentity),
		op(huma.Operation{OperationID: "rotate-scim-token", Method: http.MethodPost, Path: "/scim-token", Tags: []string{"identity"},
			Summary: "Rotate the SCIM token", Description: "Makes a new SCIM token and shows it once; the previous one stays valid for admin.scim_token_grace, " +
				"or for previous_valid_for (0s: stops at once, for a leaked token)."},
			a.rotateSCIMToken),
		op(huma.Operation{OperationID: "list-api-tokens", Method: http.MethodGet, Path: "/api-tokens", Tags: []string{"identity"},
			Summary: "List the admin API tokens (never their secrets)"},
			a.listAPITokens),
		op(huma.Operation{OperationID: "create-api-token", Method: http.MethodPost, Path: "/api-tokens", Tags: []string{"identity"},
			Summary: "Create an admin API token", DefaultStatus: http.StatusCreated},
			a.createAPIToken),
		op(huma.Operation{OperationID: "revoke-api-token", Method: http.MethodDelete, Path: "/api-tokens/{id}", Tags: []string{"identity"},
			Summary: "Revoke an admin API token", DefaultStatus: http.StatusNoContent},
			a.revokeAPIToken),
		op(huma.Operation{OperationID: "list-scim-clients", Method: http.MethodGet, Path: "/scim-clients", Tags: []string{"identity"},
			Summary: "List the SCIM OAuth clients (never their secrets)"},
			a.listSCIMClients),
		op(huma.Operation{OperationID: "create-scim-client", Method: http.MethodPost, Path: "/scim-clients", Tags: []string{"identity"},
			Summary: "Create a SCIM OAuth client", DefaultStatus: http.StatusCreated, Errors: []int{422},
			Description: "For an IdP that authenticates to SCIM by OAuth 2.0 client credentials (Entra's gallery): answers client_id and, this once, client_secret, " +
				"which buy short-lived access tokens at token_endpoint. A secret lives secret_expires_in (default a year, at most 3 years)."},
			a.createSCIMClient),
		op(huma.Operation{OperationID: "add-scim-client-secret", Method: http.MethodPost, Path: "/scim-clients/{id}/secrets", Tags: []string{"identity"},
			Summary: "Give a SCIM client another secret (rotation)", DefaultStatus: http.StatusCreated, Errors: []int{404, 409},
			Description: "The client's other secrets keep working until they expire or are removed, so the IdP can be moved to the new one without a gap (at most 5 at once)."},
			a.addSCIMClientSecret),
		op(huma.Operation{OperationID: "remove-scim-client-secret", Method: http.MethodDelete, Path: "/scim-clients/{id}/secrets/{secret_id}", Tags: []string{"identity"},
			Summary: "Remove a SCIM client's secret", DefaultStatus: http.StatusNoContent, Errors: []int{404},
			Description: "The secret buys no token from now on, and the tokens it bought are refused at once."},
			a.removeSCIMClientSecret),
		op(huma.Operation{OperationID: "delete-scim-client", Method: http.MethodDelete, Path: "/scim-clients/{id}", Tags: []string{"identity"},
			Summary: "Delete a SCIM OAuth client", DefaultStatus: http.StatusNoContent, Errors: []int{404},
			Description: "Its secrets buy nothing more and its access tokens are refused at once."},
			a.deleteSCIMClient),
		op(huma.Operation{OperationID: "end-all-sessions", Method: http.MethodDelete, Path: "/sessions", Tags: []string{"identity"},
			Summary: "Sign everyone out", Description: "Ends every session at once, the caller's too (after an IdP change or compromise); people sign in again through the login method in force."},
			a.endAllSessions),
		op(huma.Operation{OperationID: "get-me", Method: http.MethodGet, Path: "/me", Tags: []string{"identity"},
			Summary: "Who is calling, and the CSRF token of a session"},
			a.getMe),

		// Organizations: the operator's registry.
		op(huma.Operation{OperationID: "list-orgs", Method: http.MethodGet, Path: "/orgs", Tags: []string{operatorTag},
			Summary: "List the organizations, in id order, with each one's setup status", Description: "The operator only (admin.token). Each page ends with next when there is more."},
			a.listOrgs),
		op(huma.Operation{OperationID: "create-org", Method: http.MethodPost, Path: "/orgs", Tags: []string{operatorTag},
			Summary: "Add an organization", DefaultStatus: http.StatusCreated, Errors: []int{403, 409, 422},
			Description: "The operator only (admin.token). The id is a URL-safe slug, unique (409); a domain belongs to at most one organization (409) and starts unverified."},
			a.createOrg),
		op(huma.Operation{OperationID: "get-org", Method: http.MethodGet, Path: "/orgs/{org}", Tags: []string{operatorTag},
			Summary: "An organization and its setup status", Errors: []int{403, 404}},
			a.getOrg),
		op(huma.Operation{OperationID: "update-org", Method: http.MethodPatch, Path: "/orgs/{org}", Tags: []string{operatorTag},
			Summary: "Rename an organization or change its domains", Errors: []int{403, 404, 409, 412, 422},
			Description: "The operator only (admin.token). domains lists every domain the organization owns; one kept keeps its verification, one dropped is free for another organization."},
			a.updateOrg),
		op(huma.Operation{OperationID: "delete-org", Method: http.MethodDelete, Path: "/orgs/{org}", Tags: []string{operatorTag}, DefaultStatus: http.StatusAccepted,
			Summary: "Delete an organization and erase its data", Errors: []int{403, 404, 409, 412},
			Description: "The operator only (admin.token). At once: every sign-in, SCIM request and admin call of the organization is refused as if it never existed, its sessions end, its domains are free, and its data is erased (users, groups, sessions, tokens, settings, invitations, pools, its audit log); org.deleted is its last event. Its outbox is delivered, then erased with the registry entry (202 until then; GET shows deleted_at). Audited at the operator level. The organization at the unprefixed URLs cannot be deleted (409)."},
			a.deleteOrg),

		// The organization's domains.
		op(huma.Operation{OperationID: "list-domains", Method: http.MethodGet, Path: "/domains", Tags: []string{"domains"},
			Summary: "The organization's email domains, verified or not, with the DNS record that proves each"},
			a.listDomains),
		op(huma.Operation{OperationID: "verify-domain", Method: http.MethodPost, Path: "/domains/{domain}/verify", Tags: []string{"domains"},
			Summary: "Check a domain's DNS record and mark it verified", Errors: []int{404, 422, 503},
			Description: "Looks up the TXT record txt_name (GET /domains) and marks the domain verified when it holds txt_value; 422 says what DNS holds instead."},
			a.verifyDomain),

		// Users, of any source.
		op(huma.Operation{OperationID: "list-users", Method: http.MethodGet, Path: "/users", Tags: []string{"users"},
			Summary: "List users, filtered and paged", Description: "In creation order; each page ends with next when there is more."},
			a.listUsers),
		op(huma.Operation{OperationID: "get-user", Method: http.MethodGet, Path: "/users/{id}", Tags: []string{"users"},
			Summary: "A user"},
			a.getUser),
		op(huma.Operation{OperationID: "create-user", Method: http.MethodPost, Path: "/users", Tags: []string{"users"},
			Summary: "Add a user (provisioning method manual)", DefaultStatus: http.StatusCreated, Errors: []int{409, 422},
			Description: "Creates the user at once with source manual; refused (422, rule one_method) while another provisioning method is active."},
			a.createUser),
		op(huma.Operation{OperationID: "update-user", Method: http.MethodPatch, Path: "/users/{id}", Tags: []string{"users"},
			Summary: "Change a user's role, pools or activation", Errors: []int{404, 412, 422},
			Description: "Works for users of any source: role and pools are the app's, and the IdP never overwrites them (a role set here wins over provisioning.group_roles until DELETE /users/{id}/role). Records user.updated naming the changed fields, or user.deactivated/reactivated."},
			a.updateUser),
		op(huma.Operation{OperationID: "role-from-groups", Method: http.MethodDelete, Path: "/users/{id}/role", Tags: []string{"users"},
			Summary: "Give a user's role back to the groups-to-roles mapping", Errors: []int{404},
			Description: "Forgets the role a manager set, so provisioning.group_roles decides it again (at once, when it is on). Audited as user.role_from_groups."},
			a.roleFromGroups),
		op(huma.Operation{OperationID: "delete-user", Method: http.MethodDelete, Path: "/users/{id}", Tags: []string{"users"},
			Summary: "Delete a user", DefaultStatus: http.StatusNoContent, Errors: []int{404, 412},
			Description: "Deletes any user and ends their sessions. A JIT user removed at the IdP stays until a manager does this; a SCIM user deleted here comes back if the IdP provisions it again."},
			a.deleteUser),

		// Pools.
		op(huma.Operation{OperationID: "list-pools", Method: http.MethodGet, Path: "/pools", Tags: []string{"pools"},
			Summary: "List the pools and how many users each holds"},
			a.listPools),
		op(huma.Operation{OperationID: "create-pool", Method: http.MethodPost, Path: "/pools", Tags: []string{"pools"},
			Summary: "Create a pool", DefaultStatus: http.StatusCreated, Errors: []int{409, 422}},
			a.createPool),
		op(huma.Operation{OperationID: "update-pool", Method: http.MethodPatch, Path: "/pools/{id}", Tags: []string{"pools"},
			Summary: "Rename a pool or change the role it grants", Errors: []int{404, 412, 422},
			Description: "A change of role records pool.updated and applies to every member's next request."},
			a.updatePool),
		op(huma.Operation{OperationID: "put-pool-member", Method: http.MethodPut, Path: "/pools/{id}/members/{user_id}", Tags: []string{"pools"},
			Summary: "Put a user in a pool, with their own role there if given", Errors: []int{404, 422},
			Description: "Adds the pool to the user's pools (user.updated naming pools) and sets or clears their own role in it (user.updated naming access)."},
			a.putMember),
		op(huma.Operation{OperationID: "remove-pool-member", Method: http.MethodDelete, Path: "/pools/{id}/members/{user_id}", Tags: []string{"pools"},
			Summary: "Take a user out of a pool", DefaultStatus: http.StatusNoContent, Errors: []int{404, 422},
			Description: "A user stays in one pool at least."},
			a.removeMember),

		// Roles and permissions.
		op(huma.Operation{OperationID: "list-roles", Method: http.MethodGet, Path: "/roles", Tags: []string{"roles"},
			Summary: "List the roles and their permissions"},
			a.listRoles),
		op(huma.Operation{OperationID: "put-role", Method: http.MethodPut, Path: "/roles/{role}", Tags: []string{"roles"},
			Summary: "Create a role or replace its permissions", Errors: []int{412, 422},
			Description: "Records role.updated; applies to the next request of every session holding the role in a pool."},
			a.putRole),
		op(huma.Operation{OperationID: "delete-role", Method: http.MethodDelete, Path: "/roles/{role}", Tags: []string{"roles"},
			Summary: "Delete a role no one holds", DefaultStatus: http.StatusNoContent, Errors: []int{404, 409},
			Description: "Refused (409), saying where, while the configuration file names it, a pool grants it or a membership holds it; manager is never deleted."},
			a.deleteRole),
		op(huma.Operation{OperationID: "get-user-access", Method: http.MethodGet, Path: "/users/{id}/access", Tags: []string{"users"},
			Summary: "What a user may do in each pool they are in"},
			a.userAccess),
		op(huma.Operation{OperationID: "delete-pool", Method: http.MethodDelete, Path: "/pools/{id}", Tags: []string{"pools"},
			Summary: "Delete an empty pool", DefaultStatus: http.StatusNoContent, Errors: []int{404, 409, 412},
			Description: "Refused (409) while the pool has members, is the default pool, or an IdP group maps to it."},
			a.deletePool),

		// Audit log.
		op(huma.Operation{OperationID: "list-audit", Method: http.MethodGet, Path: "/audit", Tags: []string{"audit"},
			Summary: "The audit log, newest first", Description: "Every change made through this API, by the configuration file and by bootstrap: who, what, the target before and after, when, and the request id."},
			a.listAudit),

		// Delivery to the adapters.
		op(huma.Operation{OperationID: "get-delivery", Method: http.MethodGet, Path: "/delivery", Tags: []string{"delivery"},
			Summary: "Each adapter's delivery state: lag, oldest undelivered event, dead letters"},
			a.getDelivery),
		op(huma.Operation{OperationID: "list-dead-letters", Method: http.MethodGet, Path: "/dead-letters", Tags: []string{"delivery"},
			Summary: "Events an adapter set aside, with their last error"},
			a.listDeadLetters),
		op(huma.Operation{OperationID: "replay-dead-letter", Method: http.MethodPost, Path: "/dead-letters/{id}/replay", Tags: []string{"delivery"},
			Summary: "Deliver a dead letter again", Errors: []int{404, 422},
			Description: "Schedules the dead letter and the adapter's later ones for delivery again (with each, the other dead letters of the same user or group, so that none overtakes another); delivery goes on in the background."},
			a.replayDeadLetter),

		// Invitations (provisioning method manual).
		op(huma.Operation{OperationID: "list-invitations", Method: http.MethodGet, Path: "/invitations", Tags: []string{"invitations"},
			Summary: "List invitations, newest first, with their state (pending, accepted, revoked, expired)"},
			a.listInvitations),
		op(huma.Operation{OperationID: "create-setup-link", Method: http.MethodPost, Path: "/setup-links", Tags: []string{"setup-links"},
			Summary: "Make a setup link for the organization's IT admin", DefaultStatus: http.StatusCreated, Errors: []int{409, 422},
			Description: "A short-lived, single-use link (shown once; only its hash is kept) for whoever connects the organization's IdP, with no account here: " +
				"it opens, once, into a setup session of that browser (4 hours) that walks them through SAML or OIDC, then SCIM, for this organization only. Audited as setup_link.create; the session's changes are audited as actor setup_link:<id>."},
			a.createSetupLink),
		op(huma.Operation{OperationID: "create-invitation", Method: http.MethodPost, Path: "/invitations", Tags: []string{"invitations"},
			Summary: "Invite a person (provisioning method manual)", DefaultStatus: http.StatusCreated, Errors: []int{409, 422},
			Description: "Records invitation.created with the single-use link, for the app, a webhook or the SMTP sender (email.smtp) to mail; the answer carries the link too. " +
				"Accepting signs the person in through the configured SSO (without SSO the link itself proves the email) and creates the user with source manual and the invitation's role and pools."},
			a.createInvitation),
		op(huma.Operation{OperationID: "resend-invitation", Method: http.MethodPost, Path: "/invitations/{id}/resend", Tags: []string{"invitations"},
			Summary: "Send an invitation again with a new link", Errors: []int{404, 409},
			Description: "Issues a new link (the previous one stops working), valid for expires_in from now, and records invitation.created again."},
			a.resendInvitation),
		op(huma.Operation{OperationID: "revoke-invitation", Method: http.MethodDelete, Path: "/invitations/{id}", Tags: []string{"invitations"},
			Summary: "Revoke a pending invitation", DefaultStatus: http.StatusNoContent, Errors: []int{404, 409}},
			a.revokeInvitation),
	} {
		r(a.api)
	}
}

// idInput is the whole input of the operations that take only a path id.
type idInput struct {
	ID string `path:"id"`
}

// deleteInput is a delete's input: the id and, optionally, the ETag read.
type deleteInput struct {
	ID      string `path:"id"`
	IfMatch string `header:"If-Match"`
}

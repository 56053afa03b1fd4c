package admin

import (
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

// register declares every operation.
func (a *API) register() {
	a.registerIdentity()
	a.registerUsers()
	a.registerPools()
	a.registerAudit()
	a.registerDelivery()
	a.registerInvitations()
}

// provisionPatch builds a manager's user change.
func provisionPatch(role *string, pools *[]string, active *bool) provision.UserPatch {
	return provision.UserPatch{Role: role, Pools: pools, Active: active}
}

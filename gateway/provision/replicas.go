package provision

import (
	"context"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// RecordChanged brings what this process keeps in memory up to a record
// another replica wrote (or, with org "", to everything: changes may
// have been missed; kind "": every record of org): the identity settings in force (the sign-in routes
// and the SCIM switch follow them) and the access model (pools, roles,
// memberships' roles). Credentials and invitations are read from the
// store on every use and need nothing.
func (s *Service) RecordChanged(ctx context.Context, org gateway.OrgID, kind string) {
	if org == "" {
		s.settings.mu.Lock()
		orgs := make([]gateway.OrgID, 0, len(s.settings.current))
		for o := range s.settings.current {
			orgs = append(orgs, o)
		}
		s.settings.mu.Unlock()
		for _, o := range orgs {
			s.Current(ctx, o)
			s.changedAccess(o)
		}
		return
	}
	switch kind {
	case kindSettings:
		s.Current(ctx, org)
	case kindPool, kindRole, kindPoolRole:
		s.changedAccess(org)
	case "": // every kind (the organization's data was erased)
		s.Current(ctx, org)
		s.changedAccess(org)
	}
}

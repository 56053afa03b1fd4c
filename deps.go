//go:build deps

// This file pins the SSO libraries the design card names (SAML SP and OIDC
// RP, built in the SSO issue) at known-good versions before any package
// imports them; the build tag keeps them out of the binary.
package main

import (
	_ "github.com/crewjam/saml"
	_ "github.com/zitadel/oidc/v3/pkg/client/rp"
	_ "github.com/zitadel/oidc/v3/pkg/op"
)

// Package storekit holds what every gateway.Store backend says and checks
// the same way: the errors of the store contract, the compact form of a
// record's document, and the checks of records the provisioning core
// stamped.
package storekit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// NotFound is the error of a record that is not there.
func NotFound(kind, id string) error {
	return gateway.Errorf(gateway.ErrNotFound, "%s %q not found", kind, id)
}

// PreconditionFailed is the error of a write computed from a version that
// is no longer the stored one.
func PreconditionFailed(kind, id string, have uint64) error {
	return gateway.Errorf(gateway.ErrPreconditionFailed, "%s %q has changed (its version is %d): read it again and retry", kind, id, have)
}

// Unstamped reports a record the provisioning core did not stamp as the
// store expects: a bug, never a client error.
func Unstamped(kind, id string, got, want uint64) error {
	return &gateway.Error{Code: gateway.ErrInternal, Message: "internal error",
		Err: fmt.Errorf("%s %q: version %d written where %d was due (records are stamped by the provisioning core)", kind, id, got, want)}
}

// CheckStamped verifies that a changed record was stamped as the next
// version of the stored one: same id and org, version + 1.
func CheckStamped(kind, id string, org gateway.OrgID, old uint64, newID string, newOrg gateway.OrgID, newVersion uint64) error {
	if newID != id || newOrg != org || newVersion != old+1 {
		return Unstamped(kind, id, newVersion, old+1)
	}
	return nil
}

// CheckLeftGroups verifies the groups a deleted user leaves came back
// stamped: each one stored, at its next version.
func CheckLeftGroups(org gateway.OrgID, userID string, stored, stamped []*gateway.Group) error {
	if len(stamped) != len(stored) {
		return fmt.Errorf("user %q leaves %d groups but %d were stamped", userID, len(stored), len(stamped))
	}
	versions := make(map[string]uint64, len(stored))
	for _, g := range stored {
		versions[g.ID] = g.Version
	}
	for _, g := range stamped {
		v, ok := versions[g.ID]
		if !ok {
			return Unstamped("group", g.ID, g.Version, 0)
		}
		if err := CheckStamped("group", g.ID, org, v, g.ID, g.Org, g.Version); err != nil {
			return err
		}
	}
	return nil
}

// UnknownMembers is the error of members naming no user (missing sorted).
func UnknownMembers(missing []string) error {
	const shown = 10
	list := strings.Join(missing[:min(len(missing), shown)], ", ")
	if len(missing) > shown {
		list += fmt.Sprintf(" and %d more", len(missing)-shown)
	}
	return gateway.Errorf(gateway.ErrInvalid, "members name no existing user: %s (provision the users first, or leave them out)", list)
}

// Document is d as compact JSON, as stores keep it (documents built in
// memory then splice cleanly into responses).
func Document(d gateway.Document) ([]byte, error) {
	raw, err := d.JSON()
	if err != nil {
		return nil, err
	}
	var c bytes.Buffer
	if err := json.Compact(&c, raw); err != nil {
		return nil, err
	}
	return c.Bytes(), nil
}

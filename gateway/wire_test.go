package gateway

import "testing"

func TestWireField(t *testing.T) {
	for path, want := range map[string]bool{
		"id": true, "type": true, "seq": true, "tenant": true, "requestId": true, "memberIds": true, "changed": true, "contract": true,
		"user": true, "user.email": true, "user.pools": true, "user.jit": true, "user.attributes": true,
		"user.attributes.name.givenName": true, "user.attributes.urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.department": true,
		"group.displayName": true, "group.attributes.x": true, "invitation.link": true, "invitation.email": true, "organization.id": true, "organization.name": true, "organization.x": false,
		"user.nope": false, "nope": false, "user.email.x": false, "time.x": false, "invitation.attributes": false, "": false,
	} {
		if got := WireField(path); got != want {
			t.Errorf("WireField(%q) = %v, want %v", path, got, want)
		}
	}
	for _, op := range []Op{OpUserCreated, OpGroupMembersRemoved, OpInvitationCreated} {
		if !op.Known() {
			t.Errorf("%s is not known", op)
		}
	}
	if Op("user.exploded").Known() {
		t.Error("an unknown op is known")
	}
}

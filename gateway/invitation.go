package gateway

import "time"

// Invitation statuses.
const (
	InvitationPending  = "pending"
	InvitationAccepted = "accepted"
	InvitationRevoked  = "revoked"
	InvitationExpired  = "expired" // derived: pending past its expiry
)

// Invitation is a manager's offer of an account (method manual): whoever
// proves the email (by SSO, or by the link itself without SSO) gets a
// user with the invitation's role and pools. The link's secret is kept
// only as a hash.
type Invitation struct {
	ID         string    `json:"id"`
	Email      string    `json:"email"`
	Role       string    `json:"role"`
	Pools      []string  `json:"pools"`
	Status     string    `json:"status"`
	Created    time.Time `json:"created"`
	Expires    time.Time `json:"expires"`
	CreatedBy  Actor     `json:"created_by"`
	Sent       int       `json:"sent" doc:"how many links were issued (the first, and each resend)"`
	AcceptedBy string    `json:"accepted_by,omitempty"` // user id
	AcceptedAt time.Time `json:"accepted_at,omitzero"`
	// Link is the acceptance link, carried only by the invitation.created
	// event (for the mail) and the answer that made it; never stored.
	Link string `json:"link,omitempty"`
}

// State is the invitation's status at now (a pending one past its expiry
// is expired).
func (i *Invitation) State(now time.Time) string {
	if i.Status == InvitationPending && !now.Before(i.Expires) {
		return InvitationExpired
	}
	return i.Status
}

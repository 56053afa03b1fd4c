package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

const kindInvitation = "invitation"

// storedInvitation is the record: the invitation and the hash of its
// link's secret. The link itself travels in the invitation.created event
// (outbox, adapters, feed) so that the app or the mailer can send it;
// under SSO it is not enough to accept, and without SSO it cannot make a
// manager.
type storedInvitation struct {
	gateway.Invitation
	SecretHash string `json:"secret_hash"`
}

// InviteToken is what an acceptance link carries: the invitation's id and
// its secret.
func inviteToken(id, secret string) string { return id + "." + secret }

func splitInviteToken(token string) (id, secret string, ok bool) {
	id, secret, ok = strings.Cut(token, ".")
	return id, secret, ok && id != "" && secret != "" && len(id) <= 64 && len(secret) <= 128
}

func (s *Service) readInvitation(ctx context.Context, org gateway.OrgID, id string) (storedInvitation, uint64, error) {
	rec, err := s.store.Records().Get(ctx, org, kindInvitation, id)
	if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
		return storedInvitation{}, 0, gateway.Errorf(gateway.ErrNotFound, "there is no invitation %q", id)
	}
	if err != nil {
		return storedInvitation{}, 0, err
	}
	var si storedInvitation
	if err := json.Unmarshal(rec.Value, &si); err != nil {
		return storedInvitation{}, 0, fmt.Errorf("invitation %q record: %w", id, err)
	}
	return si, rec.Version, nil
}

// issue makes a new secret for si, stamps the link, and returns the
// record to store and the event that carries the link.
func (s *Service) issue(mg Manager, si *storedInvitation, linkBase string) (gateway.Event, string) {
	secret := NewToken()
	si.SecretHash = hashToken(secret)
	si.Sent++
	link := strings.TrimRight(linkBase, "/") + "/" + inviteToken(si.ID, secret)
	ev := s.event(mg.meta(), gateway.OpInvitationCreated)
	inv := si.Invitation
	inv.Link = link
	ev.Invitation = &inv
	return ev, link
}

// CreateInvitation offers an account to email with a role and pools
// (method manual). The acceptance link (linkBase/<token>) is in the
// answer and in the invitation.created event, for the app, a webhook or
// the SMTP sender to mail; only its hash is kept.
func (s *Service) CreateInvitation(ctx context.Context, mg Manager, email, role string, pools []string, ttl time.Duration, linkBase string) (gateway.Invitation, error) {
	s.Current(ctx, mg.Org) // the settings another replica stored count
	if method := s.policy(mg.Org).Method; method != gateway.SourceManual {
		return gateway.Invitation{}, &gateway.RuleError{Violations: []gateway.RuleViolation{{Rule: gateway.RuleOneMethod, Path: "provisioning.method",
			Message: "managers invite people only while the provisioning method is manual; the active method is " + string(method)}}}
	}
	email = strings.ToLower(strings.TrimSpace(email))
	if at := strings.LastIndexByte(email, '@'); at <= 0 || at == len(email)-1 || strings.ContainsAny(email, " ,<>") {
		return gateway.Invitation{}, gateway.Errorf(gateway.ErrInvalid, "%q is not an email address", email)
	}
	if role == "" {
		role = s.policy(mg.Org).DefaultRole
	}
	pools = normalizePools(pools)
	if len(pools) == 0 {
		pools = []string{s.policy(mg.Org).DefaultPool}
	}
	if err := s.checkRoleAndPools(ctx, mg.Org, role, pools); err != nil {
		return gateway.Invitation{}, err
	}
	if role == gateway.RoleManager && !s.ssoSignIn(ctx, mg.Org) {
		return gateway.Invitation{}, errManagerNeedsSSO
	}
	if err := checkTTL(ttl); err != nil {
		return gateway.Invitation{}, err
	}
	if u, err := s.findByEmail(ctx, mg.Org, email); err != nil {
		return gateway.Invitation{}, err
	} else if u != nil {
		return gateway.Invitation{}, gateway.Errorf(gateway.ErrConflict, "%s already has an account", email)
	}
	now := s.clock.Now()
	si := storedInvitation{Invitation: gateway.Invitation{ID: strings.ReplaceAll(NewID(), "-", ""), Email: email, Role: role, Pools: pools,
		Status: gateway.InvitationPending, Created: now, Expires: now.Add(ttl), CreatedBy: mg.Actor}}
	ev, link := s.issue(mg, &si, linkBase)
	raw, _ := json.Marshal(si)
	j := s.audited(mg.Actor, mg.RequestID, "invitation.create", "invitation:"+si.ID, nil, si.Invitation)
	j.Events = []gateway.Event{ev}
	if _, err := s.store.Records().Put(ctx, mg.Org, kindInvitation, si.ID, 0, raw, j); err != nil {
		return gateway.Invitation{}, err
	}
	inv := si.Invitation
	inv.Link = link
	return inv, nil
}

// errManagerNeedsSSO refuses a manager's invitation that the link alone
// would accept: without SSO anyone who sees the link (a mail log, a
// webhook receiver) would become a manager.
var errManagerNeedsSSO = gateway.Errorf(gateway.ErrInvalid,
	"a manager's invitation needs SAML or OIDC sign-in: without it the link alone would make a manager; invite as another role and change the role after")

func checkTTL(ttl time.Duration) error {
	if ttl <= 0 || ttl > 90*24*time.Hour {
		return gateway.Errorf(gateway.ErrInvalid, "an invitation lasts between a second and 90 days")
	}
	return nil
}

// ssoSignIn reports whether people sign in through the gateway's SAML or
// OIDC (an invitation is then accepted by proving the email at the IdP).
func (s *Service) ssoSignIn(ctx context.Context, org gateway.OrgID) bool {
	st, _ := s.Current(ctx, org)
	return st.SSOSignIn()
}

// Invitations lists the invitations, newest first, with their state now.
func (s *Service) Invitations(ctx context.Context, org gateway.OrgID) ([]gateway.Invitation, error) {
	recs, err := s.store.Records().List(ctx, org, kindInvitation)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	out := make([]gateway.Invitation, 0, len(recs))
	for _, rec := range recs {
		var si storedInvitation
		if err := json.Unmarshal(rec.Value, &si); err != nil {
			return nil, fmt.Errorf("invitation %q record: %w", rec.ID, err)
		}
		si.Status = si.State(now)
		out = append(out, si.Invitation)
	}
	slices.Reverse(out) // ids are time-ordered
	return out, nil
}

// ResendInvitation issues a new link (the old one stops working) valid
// for ttl from now, and records invitation.created again for the mail.
func (s *Service) ResendInvitation(ctx context.Context, mg Manager, id string, ttl time.Duration, linkBase string) (gateway.Invitation, error) {
	if err := checkTTL(ttl); err != nil {
		return gateway.Invitation{}, err
	}
	si, version, err := s.readInvitation(ctx, mg.Org, id)
	if err != nil {
		return gateway.Invitation{}, err
	}
	if st := si.State(s.clock.Now()); st != gateway.InvitationPending && st != gateway.InvitationExpired {
		return gateway.Invitation{}, gateway.Errorf(gateway.ErrConflict, "invitation %q is %s; invite again instead", id, st)
	}
	before := si.Invitation
	si.Status, si.Expires = gateway.InvitationPending, s.clock.Now().Add(ttl)
	ev, link := s.issue(mg, &si, linkBase)
	raw, _ := json.Marshal(si)
	j := s.audited(mg.Actor, mg.RequestID, "invitation.resend", "invitation:"+id, before, si.Invitation)
	j.Events = []gateway.Event{ev}
	if _, err := s.store.Records().Put(ctx, mg.Org, kindInvitation, id, version, raw, j); err != nil {
		return gateway.Invitation{}, err
	}
	inv := si.Invitation
	inv.Link = link
	return inv, nil
}

// RevokeInvitation makes a pending invitation's link stop working.
func (s *Service) RevokeInvitation(ctx context.Context, mg Manager, id string) error {
	si, version, err := s.readInvitation(ctx, mg.Org, id)
	if err != nil {
		return err
	}
	if si.Status != gateway.InvitationPending {
		return gateway.Errorf(gateway.ErrConflict, "invitation %q is %s already", id, si.Status)
	}
	before := si.Invitation
	si.Status = gateway.InvitationRevoked
	raw, _ := json.Marshal(si)
	_, err = s.store.Records().Put(ctx, mg.Org, kindInvitation, id, version, raw,
		s.audited(mg.Actor, mg.RequestID, "invitation.revoke", "invitation:"+id, before, si.Invitation))
	return err
}

// CheckInvitation returns the pending invitation a link's token names, or
// the refusal a person sees (unknown, used, revoked or expired links all
// explain themselves; a wrong secret is "not valid").
func (s *Service) CheckInvitation(ctx context.Context, org gateway.OrgID, token string) (gateway.Invitation, error) {
	si, _, err := s.checkInvitation(ctx, org, token)
	return si.Invitation, err
}

func (s *Service) checkInvitation(ctx context.Context, org gateway.OrgID, token string) (storedInvitation, uint64, error) {
	invalid := refuse("invitation_invalid", "This invitation link is not valid. Ask a manager to send you a new one.")
	id, secret, ok := splitInviteToken(token)
	if !ok {
		return storedInvitation{}, 0, invalid
	}
	si, version, err := s.readInvitation(ctx, org, id)
	if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
		return storedInvitation{}, 0, invalid
	}
	if err != nil {
		return storedInvitation{}, 0, err
	}
	// The secret first: without it, a link says nothing about the
	// invitation (the hash is kept after use, so a used link is known).
	if !equalHash(hashToken(secret), si.SecretHash) {
		return storedInvitation{}, 0, invalid
	}
	switch si.State(s.clock.Now()) {
	case gateway.InvitationAccepted:
		return si, 0, refuse("invitation_used", "This invitation has been accepted already. Sign in to the application instead.")
	case gateway.InvitationRevoked:
		return si, 0, refuse("invitation_revoked", "This invitation was withdrawn. Ask a manager if you should have access.")
	case gateway.InvitationExpired:
		return si, 0, refuse("invitation_expired", "This invitation has expired. Ask a manager to send it again.")
	}
	return si, version, nil
}

// AcceptInvitation creates the invited user (source manual, the
// invitation's role and pools) for a person who proved the invited
// email: by SSO (email, verified) or, without SSO, by holding the link
// (email ""). The invitation is used up in the same step: a second
// acceptance is refused.
func (s *Service) AcceptInvitation(ctx context.Context, org gateway.OrgID, token string, id *gateway.Identity) (*gateway.User, error) {
	si, version, err := s.checkInvitation(ctx, org, token)
	if err != nil {
		return nil, err
	}
	if method := s.policy(org).Method; method != gateway.SourceManual {
		return nil, refuse("invitation_method", "Invitations are no longer accepted here: accounts now come from %s. Ask a manager.", methodName(method))
	}
	u := &gateway.User{UserName: si.Email, Active: true, Emails: []string{si.Email}, Role: si.Role, Pools: si.Pools}
	if id != nil {
		if err := s.emailProven(ctx, org, *id, strings.TrimSpace(id.Email), "accept this invitation"); err != nil {
			return nil, err
		}
		switch {
		case strings.ToLower(strings.TrimSpace(id.Email)) != si.Email:
			return nil, refuse("invitation_other_email", "This invitation is for %s, but you signed in as %s. Sign in with the invited account.", si.Email, id.Email)
		}
		// The login policy's domain check, before the invitation is used up.
		if domains := s.policy(org).AllowedDomains; len(domains) > 0 && !slices.Contains(domains, si.Email[strings.LastIndexByte(si.Email, '@')+1:]) {
			return nil, refuse("domain", "Accounts of %s cannot sign in here; ask a manager.", si.Email[strings.LastIndexByte(si.Email, '@')+1:])
		}
		u.GivenName, u.FamilyName = id.GivenName, id.FamilyName
		u.DisplayName = strings.TrimSpace(id.GivenName + " " + id.FamilyName)
	} else if si.Role == gateway.RoleManager {
		// Made while SSO was on; the link alone may not make a manager.
		return nil, refuse("invitation_needs_sso", "This invitation needs single sign-on, which is off now. Ask a manager to invite you again.")
	}
	// Use the invitation up first (versioned: one acceptance wins), then
	// create the user; a failed create leaves an accepted invitation and
	// no user, which a manager sees and resolves by inviting again.
	before := si.Invitation
	si.Status, si.AcceptedAt = gateway.InvitationAccepted, s.clock.Now()
	actor := gateway.Actor{Kind: "invitation", ID: si.ID, Email: si.Email}
	raw, _ := json.Marshal(si)
	if _, err := s.store.Records().Put(ctx, org, kindInvitation, si.ID, version, raw,
		s.audited(actor, "", "invitation.accept", "invitation:"+si.ID, before, si.Invitation)); err != nil {
		if code := gateway.ErrorCodeOf(err); code == gateway.ErrPreconditionFailed || code == gateway.ErrConflict {
			return nil, refuse("invitation_used", "This invitation has been accepted already. Sign in to the application instead.")
		}
		return nil, err
	}
	mg := Manager{Org: org, Actor: actor}
	nu, err := s.createUser(ctx, mg.meta(), u, func(nu *gateway.User) []gateway.AuditEntry {
		return []gateway.AuditEntry{s.auditEntry(actor, "", "user.create", "user:"+nu.ID, nil, Summarize(nu))}
	})
	if gateway.ErrorCodeOf(err) == gateway.ErrConflict {
		return nil, refuse("invitation_exists", "An account for %s exists already. Sign in to the application instead.", si.Email)
	}
	if err != nil {
		return nil, err
	}
	// Record who accepted (best effort: the user exists either way).
	si.AcceptedBy = nu.ID
	raw, _ = json.Marshal(si)
	_, _ = s.store.Records().Put(ctx, org, kindInvitation, si.ID, version+1, raw, gateway.Journal{})
	return nu, nil
}

// methodName says a provisioning method in words.
func methodName(m gateway.Source) string {
	switch m {
	case gateway.SourceSCIM:
		return "the identity provider (SCIM)"
	case gateway.SourceJIT:
		return "single sign-on (created at first sign-in)"
	case gateway.SourceSelfService:
		return "self-service registration"
	}
	return "managers"
}

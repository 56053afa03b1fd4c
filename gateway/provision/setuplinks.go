package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// A setup link lets the customer's IT admin, who has no account, connect
// their IdP for one organization: a manager or the operator makes it
// (short-lived, single-use), whoever opens it gets a setup session in
// that browser, which may change the organization's sign-in and turn on
// SCIM, and nothing else.
const (
	kindSetupLink = "setup-link"
	// MaxSetupLinkTTL bounds how long an unopened link is valid.
	MaxSetupLinkTTL = 7 * 24 * time.Hour
	// SetupSessionTTL is how long a setup session lasts once the link is
	// opened.
	SetupSessionTTL = 4 * time.Hour
)

// ActorSetupLink is the kind of actor of a change made through a setup
// link (its id is the link's).
const ActorSetupLink = "setup_link"

// SetupLink is a link as the manager who made it sees it.
type SetupLink struct {
	ID        string        `json:"id"`
	Link      string        `json:"link,omitempty"` // only when made
	Expires   time.Time     `json:"expires"`
	Created   time.Time     `json:"created"`
	CreatedBy gateway.Actor `json:"created_by"`
	OpenedAt  time.Time     `json:"opened_at,omitzero"`
}

// storedSetupLink is the record: the link, the hash of its secret, and
// once opened the hash of its session's secret.
type storedSetupLink struct {
	SetupLink
	SecretHash     string    `json:"secret_hash"`
	SessionHash    string    `json:"session_hash,omitempty"`
	SessionExpires time.Time `json:"session_expires,omitzero"`
	// Vendor is the IdP the admin said they use (okta, entra): the pages
	// speak its words.
	Vendor string `json:"vendor,omitempty"`
	// Test is what the IdP sent at the admin's last test sign-in.
	Test *gateway.Identity `json:"test,omitempty"`
}

// SetupSession is an opened setup link, as its pages use it.
type SetupSession struct {
	LinkID  string
	Org     gateway.OrgID
	Expires time.Time
	Vendor  string
	Test    *gateway.Identity
}

// Actor is who a setup session's changes are audited as.
func (s SetupSession) Actor() gateway.Actor {
	return gateway.Actor{Kind: ActorSetupLink, ID: s.LinkID}
}

// CreateSetupLink makes a setup link for the manager's organization,
// valid for ttl (at most MaxSetupLinkTTL) until opened; the link is
// linkBase/<token>, shown once (only its hash is kept).
func (s *Service) CreateSetupLink(ctx context.Context, mg Manager, ttl time.Duration, linkBase string) (SetupLink, error) {
	if ttl <= 0 || ttl > MaxSetupLinkTTL {
		return SetupLink{}, gateway.Errorf(gateway.ErrInvalid, "a setup link lasts from a minute to %s", MaxSetupLinkTTL)
	}
	if err := s.CheckActive(ctx, mg.Org); err != nil {
		var refused *LoginError
		if errors.As(err, &refused) {
			return SetupLink{}, gateway.Errorf(gateway.ErrConflict, "%s No setup link is made for it.", refused.Message)
		}
		return SetupLink{}, err
	}
	now := s.clock.Now()
	secret := NewToken()
	sl := storedSetupLink{SetupLink: SetupLink{ID: NewID(), Expires: now.Add(ttl), Created: now, CreatedBy: mg.Actor}, SecretHash: hashToken(secret)}
	value, _ := json.Marshal(sl)
	j := gateway.Journal{Audit: []gateway.AuditEntry{s.auditEntry(mg.Actor, mg.RequestID, "setup_link.create", "setup_link:"+sl.ID, nil, sl.SetupLink)}}
	if _, err := s.store.Records().Put(ctx, mg.Org, kindSetupLink, sl.ID, 0, value, j); err != nil {
		return SetupLink{}, err
	}
	out := sl.SetupLink
	out.Link = strings.TrimRight(linkBase, "/") + "/" + inviteToken(sl.ID, secret)
	return out, nil
}

func (s *Service) readSetupLink(ctx context.Context, org gateway.OrgID, id string) (storedSetupLink, uint64, error) {
	rec, err := s.store.Records().Get(ctx, org, kindSetupLink, id)
	if err != nil {
		return storedSetupLink{}, 0, err
	}
	var sl storedSetupLink
	if err := json.Unmarshal(rec.Value, &sl); err != nil {
		return storedSetupLink{}, 0, fmt.Errorf("setup link %q record: %w", id, err)
	}
	return sl, rec.Version, nil
}

// CheckSetupLink says whether a link's token may still be opened: a
// *LoginError in the admin's words when not.
func (s *Service) CheckSetupLink(ctx context.Context, org gateway.OrgID, token string) error {
	_, _, err := s.checkSetupLink(ctx, org, token)
	return err
}

func (s *Service) checkSetupLink(ctx context.Context, org gateway.OrgID, token string) (storedSetupLink, uint64, error) {
	invalid := refuse("setup_link_invalid", "This setup link is not valid. Ask the person who sent it for a new one.")
	if err := s.CheckActive(ctx, org); err != nil {
		return storedSetupLink{}, 0, err
	}
	id, secret, ok := splitInviteToken(token)
	if !ok {
		return storedSetupLink{}, 0, invalid
	}
	sl, version, err := s.readSetupLink(ctx, org, id)
	switch {
	case gateway.ErrorCodeOf(err) == gateway.ErrNotFound:
		return storedSetupLink{}, 0, invalid
	case err != nil:
		return storedSetupLink{}, 0, err
	case !equalHash(hashToken(secret), sl.SecretHash):
		return storedSetupLink{}, 0, invalid
	case !sl.OpenedAt.IsZero():
		return storedSetupLink{}, 0, refuse("setup_link_used", "This setup link was opened already, in another browser or tab, and works only once. Ask the person who sent it for a new one.")
	case !s.clock.Now().Before(sl.Expires):
		return storedSetupLink{}, 0, refuse("setup_link_expired", "This setup link expired on %s. Ask the person who sent it for a new one.", sl.Expires.UTC().Format("2 January 2006 at 15:04 UTC"))
	}
	return sl, version, nil
}

// OpenSetupLink uses a link up: it starts the setup session of this
// browser and returns its secret (for a cookie). A link opens once.
func (s *Service) OpenSetupLink(ctx context.Context, org gateway.OrgID, token, requestID string) (string, SetupSession, error) {
	sl, version, err := s.checkSetupLink(ctx, org, token)
	if err != nil {
		return "", SetupSession{}, err
	}
	secret := NewToken()
	now := s.clock.Now()
	before := sl.SetupLink
	sl.OpenedAt, sl.SessionHash, sl.SessionExpires = now, hashToken(secret), now.Add(SetupSessionTTL)
	value, _ := json.Marshal(sl)
	actor := gateway.Actor{Kind: ActorSetupLink, ID: sl.ID}
	j := gateway.Journal{Audit: []gateway.AuditEntry{s.auditEntry(actor, requestID, "setup_link.open", "setup_link:"+sl.ID, before, sl.SetupLink)}}
	if _, err := s.store.Records().Put(ctx, org, kindSetupLink, sl.ID, version, value, j); err != nil {
		if gateway.ErrorCodeOf(err) == gateway.ErrPreconditionFailed {
			return "", SetupSession{}, refuse("setup_link_used", "This setup link was opened already, in another browser or tab, and works only once. Ask the person who sent it for a new one.")
		}
		return "", SetupSession{}, err
	}
	return inviteToken(sl.ID, secret), sl.session(org), nil
}

func (sl storedSetupLink) session(org gateway.OrgID) SetupSession {
	return SetupSession{LinkID: sl.ID, Org: org, Expires: sl.SessionExpires, Vendor: sl.Vendor, Test: sl.Test}
}

// SetupSessionOf returns the setup session a cookie's secret opens, or a
// *LoginError saying why there is none (ended, or the organization is
// suspended or deleted).
func (s *Service) SetupSessionOf(ctx context.Context, org gateway.OrgID, secret string) (SetupSession, error) {
	none := refuse("setup_session", "Your setup session has ended (it lasts %s from opening the link). Ask the person who sent the link for a new one.", SetupSessionTTL)
	if err := s.CheckActive(ctx, org); err != nil {
		return SetupSession{}, err
	}
	id, key, ok := splitInviteToken(secret)
	if !ok {
		return SetupSession{}, none
	}
	sl, _, err := s.readSetupLink(ctx, org, id)
	switch {
	case gateway.ErrorCodeOf(err) == gateway.ErrNotFound:
		return SetupSession{}, none
	case err != nil:
		return SetupSession{}, err
	case !equalHash(hashToken(key), sl.SessionHash) || !s.clock.Now().Before(sl.SessionExpires):
		return SetupSession{}, none
	}
	return sl.session(org), nil
}

// UpdateSetupSession records what the admin chose (the IdP vendor) or
// what their last test sign-in received, in their session's link.
func (s *Service) UpdateSetupSession(ctx context.Context, se SetupSession, change func(vendor *string, test **gateway.Identity)) error {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		sl, version, err := s.readSetupLink(ctx, se.Org, se.LinkID)
		if err != nil {
			return err
		}
		change(&sl.Vendor, &sl.Test)
		value, _ := json.Marshal(sl)
		_, err = s.store.Records().Put(ctx, se.Org, kindSetupLink, sl.ID, version, value, gateway.Journal{})
		if gateway.ErrorCodeOf(err) != gateway.ErrPreconditionFailed {
			return err
		}
	}
	return busy("setup link", se.LinkID)
}

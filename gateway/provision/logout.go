package provision

import (
	"context"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// EndIdPSessions ends the sessions an IdP's logout names and audits it
// (actor: the IdP; target: the person, or the subject when no session
// matched). It returns the sessions ended; none is not an error (the
// person may have signed out already), but an email that names no
// account is ErrNotFound.
func (s *Service) EndIdPSessions(ctx context.Context, org gateway.OrgID, l gateway.IdPLogout) ([]gateway.Session, error) {
	var ended []gateway.Session
	target := "idp-subject:" + l.Subject
	switch {
	case l.Email != "":
		u, err := s.findByEmail(ctx, org, l.Email)
		if err != nil {
			return nil, err
		}
		if u == nil {
			return nil, gateway.Errorf(gateway.ErrNotFound, "no account has the email address %s", l.Email)
		}
		target = "user:" + u.ID
		list, err := s.store.Sessions().ListUser(ctx, org, u.ID)
		if err != nil {
			return nil, err
		}
		if _, err := s.store.Sessions().DeleteUser(ctx, org, u.ID); err != nil {
			return nil, err
		}
		ended = list
	case l.Subject != "" || l.Session != "":
		var err error
		if ended, err = s.store.Sessions().EndIdP(ctx, org, l.Subject, l.Session); err != nil {
			return nil, err
		}
		if len(ended) > 0 {
			target = "user:" + ended[0].UserID
		}
	default:
		return nil, gateway.Errorf(gateway.ErrInvalid, "the logout names no person and no session")
	}
	after := map[string]any{"protocol": l.Protocol, "sessions_ended": len(ended)}
	if l.Session != "" {
		after["idp_session"] = l.Session
	}
	entry := s.auditEntry(gateway.Actor{Kind: gateway.ActorIdP, ID: l.Issuer}, l.RequestID, "sessions.idp_logout", target, nil, after)
	if err := s.store.Audit().Append(ctx, org, entry); err != nil {
		return ended, fmt.Errorf("audit the IdP's logout: %w", err)
	}
	return ended, nil
}

// ErrBadIdPToken is a token an IdP did not sign, or that is not for us
// now (expired, another audience, replayed): what it asked is not done.
var ErrBadIdPToken = gateway.Errorf(gateway.ErrForbidden, "the token is not valid")

// IdPTokenCheck is what a token an IdP signed must be.
type IdPTokenCheck struct {
	JWKSURL  string // where the IdP publishes its keys
	Issuer   string
	Audience string // one of the token's audiences
	MaxLife  time.Duration
	// ReplayNS keeps each jti once, until the token's expiry (a token
	// without a jti is refused).
	ReplayNS string
}

// VerifyIdPToken verifies a JWT an organization's IdP signed (asymmetric
// algorithms only; the keys fetched again once on an unknown key) and
// fills claims, besides the registered ones it checks: issuer,
// audience, expiry (required, at most MaxLife ahead), issued-at not in
// the future, and its jti used once. Every failure is ErrBadIdPToken,
// but a key set that cannot be read (ErrUnavailable).
func (s *Service) VerifyIdPToken(ctx context.Context, org gateway.OrgID, raw string, check IdPTokenCheck, claims ...any) (jwt.Claims, error) {
	var std jwt.Claims
	if raw == "" || len(raw) > 16<<10 || check.JWKSURL == "" || check.Issuer == "" || check.Audience == "" {
		return std, ErrBadIdPToken
	}
	tok, err := jwt.ParseSigned(raw, assertionAlgorithms)
	if err != nil {
		return std, ErrBadIdPToken
	}
	now := s.clock.Now()
	verified := false
	for _, fresh := range []bool{false, true} {
		keys, err := s.jwks.keys(ctx, check.JWKSURL, now, fresh)
		if err != nil {
			return std, gateway.Errorf(gateway.ErrUnavailable, "the IdP's keys cannot be read right now")
		}
		if tok.Claims(keys, append([]any{&std}, claims...)...) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return std, ErrBadIdPToken
	}
	const leeway = time.Minute
	if std.Expiry == nil || std.ID == "" ||
		std.ValidateWithLeeway(jwt.Expected{Issuer: check.Issuer, AnyAudience: jwt.Audience{check.Audience}, Time: now}, leeway) != nil ||
		check.MaxLife > 0 && std.Expiry.Time().Sub(now) > check.MaxLife {
		return std, ErrBadIdPToken
	}
	if check.ReplayNS != "" {
		first, err := s.store.Ephemeral().PutIfAbsent(ctx, org, check.ReplayNS, std.Issuer+" "+std.ID, nil, std.Expiry.Time().Add(leeway))
		if err != nil {
			return std, err
		}
		if !first {
			return std, ErrBadIdPToken
		}
	}
	return std, nil
}

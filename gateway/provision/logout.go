package provision

import (
	"context"
	"fmt"
	"slices"
	"strings"
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
		// Every account the address names (its userName, or one of its
		// emails): a logout that ends one session too many is safe, one
		// that ends one too few is not.
		var ids []string
		for _, index := range []gateway.UserIndex{gateway.UserByUserName, gateway.UserByEmail} {
			found, err := s.store.Users().Lookup(ctx, org, index, strings.ToLower(strings.TrimSpace(l.Email)))
			if err != nil {
				return nil, err
			}
			for _, id := range found {
				if !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
		}
		if len(ids) == 0 {
			return nil, gateway.Errorf(gateway.ErrNotFound, "no account has the email address %s", l.Email)
		}
		target = "user:" + ids[0]
		for _, id := range ids {
			list, err := s.store.Sessions().ListUser(ctx, org, id)
			if err != nil {
				return nil, err
			}
			if _, err := s.store.Sessions().DeleteUser(ctx, org, id); err != nil {
				return nil, err
			}
			ended = append(ended, list...)
		}
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
	for _, se := range ended { // the ID tokens kept for their logouts go with them
		_, _ = s.store.Ephemeral().Take(ctx, org, gateway.IDTokenNamespace, se.ID)
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
	// without a jti is refused); "" leaves that to the caller
	// (UseIdPToken), once it has read what the token comes with.
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
		if err := s.UseIdPToken(ctx, org, check.ReplayNS, std); err != nil {
			return std, err
		}
	}
	return std, nil
}

// UseIdPToken records a verified token's jti as used in namespace ns
// until it expires; ErrBadIdPToken when it was used already.
func (s *Service) UseIdPToken(ctx context.Context, org gateway.OrgID, ns string, c jwt.Claims) error {
	if c.ID == "" || c.Expiry == nil {
		return ErrBadIdPToken
	}
	first, err := s.store.Ephemeral().PutIfAbsent(ctx, org, ns, c.Issuer+" "+c.ID, nil, c.Expiry.Time().Add(time.Minute))
	if err != nil {
		return err
	}
	if !first {
		return ErrBadIdPToken
	}
	return nil
}

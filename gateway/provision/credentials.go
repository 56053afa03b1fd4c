package provision

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

const (
	kindCredential = "credential"
	scimTokenID    = "scim"
	kindAPIToken   = "api_token"
)

// scimTokens is the SCIM credential: the hash of the token in use and,
// for a grace period after a rotation, of the one before it.
type scimTokens struct {
	Current       string    `json:"current"` // hex SHA-256
	Previous      string    `json:"previous,omitempty"`
	PreviousUntil time.Time `json:"previous_until,omitempty"`
	RotatedAt     time.Time `json:"rotated_at"`
}

// fileTokens holds, per org, the hash of the SCIM token the
// configuration file names (in use until the first rotation).
type fileTokens struct{ m sync.Map }

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// equalHash compares two hex hashes in constant time.
func equalHash(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// NewToken returns a random token of 32 bytes (256 bits), URL-safe.
func NewToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// SetFileSCIMToken names the SCIM token of the configuration file (""
// for none); it is the token in use until a rotation stores one.
func (s *Service) SetFileSCIMToken(org gateway.OrgID, token string) {
	if token == "" {
		s.fileSCIM.m.Delete(org)
		return
	}
	s.fileSCIM.m.Store(org, hashToken(token))
}

func (s *Service) fileSCIMHash(org gateway.OrgID) string {
	if h, ok := s.fileSCIM.m.Load(org); ok {
		return h.(string)
	}
	return ""
}

func (s *Service) scimTokens(ctx context.Context, org gateway.OrgID) (scimTokens, uint64, error) {
	rec, err := s.store.Records().Get(ctx, org, kindCredential, scimTokenID)
	if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
		return scimTokens{Current: s.fileSCIMHash(org)}, 0, nil
	}
	if err != nil {
		return scimTokens{}, 0, err
	}
	var t scimTokens
	if err := json.Unmarshal(rec.Value, &t); err != nil {
		return scimTokens{}, 0, fmt.Errorf("scim credential record: %w", err)
	}
	return t, rec.Version, nil
}

// StoredSCIMToken reports whether the store holds a rotated SCIM token
// (for check-config, which reads the store without a Service).
func StoredSCIMToken(ctx context.Context, store gateway.Store, org gateway.OrgID) (bool, error) {
	return (&Service{store: store}).HasSCIMToken(ctx, org)
}

// HasSCIMToken reports whether an IdP can authenticate to SCIM.
func (s *Service) HasSCIMToken(ctx context.Context, org gateway.OrgID) (bool, error) {
	t, _, err := s.scimTokens(ctx, org)
	return t.Current != "", err
}

// CheckSCIMToken reports whether token is the org's SCIM token, or
// the one before it within its grace period. The store is read on every
// call, so a rotation takes effect at once (on every replica of a shared
// store, too); hashes are compared in constant time.
func (s *Service) CheckSCIMToken(ctx context.Context, org gateway.OrgID, token string) (bool, error) {
	if token == "" {
		return false, nil
	}
	if strings.HasPrefix(token, accessTokenPrefix) {
		return s.checkAccessToken(ctx, org, token)
	}
	t, _, err := s.scimTokens(ctx, org)
	if err != nil {
		return false, err
	}
	h := hashToken(token)
	current := equalHash(h, t.Current)
	previous := equalHash(h, t.Previous) && s.clock.Now().Before(t.PreviousUntil)
	return current || previous, nil
}

// RotateSCIMToken makes a new SCIM token and returns it (shown once; only
// its hash is kept). The token in use until now stays valid until
// grace has passed, so the IdP can be updated without a gap.
func (s *Service) RotateSCIMToken(ctx context.Context, org gateway.OrgID, actor gateway.Actor, requestID string, grace time.Duration) (string, time.Time, error) {
	return s.rotateSCIMToken(ctx, org, actor, requestID, -1, grace)
}

// SCIMTokenVersion is the version of the SCIM credential (0: none stored
// yet), for a form that must not rotate twice on a reload.
func (s *Service) SCIMTokenVersion(ctx context.Context, org gateway.OrgID) (uint64, error) {
	_, v, err := s.scimTokens(ctx, org)
	return v, err
}

// RotateSCIMTokenAt is RotateSCIMToken only if the credential is still at
// version (ErrPreconditionFailed otherwise: the form was sent again).
func (s *Service) RotateSCIMTokenAt(ctx context.Context, org gateway.OrgID, actor gateway.Actor, requestID string, version uint64, grace time.Duration) (string, time.Time, error) {
	return s.rotateSCIMToken(ctx, org, actor, requestID, int64(version), grace)
}

func (s *Service) rotateSCIMToken(ctx context.Context, org gateway.OrgID, actor gateway.Actor, requestID string, expect int64, grace time.Duration) (string, time.Time, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		cur, version, err := s.scimTokens(ctx, org)
		if err != nil {
			return "", time.Time{}, err
		}
		if expect >= 0 && uint64(expect) != version {
			return "", time.Time{}, gateway.Errorf(gateway.ErrPreconditionFailed, "the SCIM token has been rotated since")
		}
		token := NewToken()
		now := s.clock.Now()
		next := scimTokens{Current: hashToken(token), Previous: cur.Current, PreviousUntil: now.Add(grace), RotatedAt: now}
		raw, _ := json.Marshal(next)
		entry := s.auditEntry(actor, requestID, "scim_token.rotate", "credential:scim", nil,
			map[string]any{"previous_valid_until": next.PreviousUntil})
		_, err = s.store.Records().Put(ctx, org, kindCredential, scimTokenID, version, raw, gateway.Journal{Audit: []gateway.AuditEntry{entry}})
		switch code := gateway.ErrorCodeOf(err); {
		case err == nil:
			return token, next.PreviousUntil, nil
		case (code == gateway.ErrConflict || code == gateway.ErrPreconditionFailed) && expect < 0:
			continue // rotated at the same moment elsewhere: rotate over it
		case code == gateway.ErrConflict || code == gateway.ErrPreconditionFailed:
			return "", time.Time{}, gateway.Errorf(gateway.ErrPreconditionFailed, "the SCIM token has been rotated since")
		default:
			return "", time.Time{}, err
		}
	}
	return "", time.Time{}, busy("SCIM token", scimTokenID)
}

// APIToken is an admin API token as listed (never its secret).
type APIToken struct {
	ID        string        `json:"id"`
	Name      string        `json:"name"`
	Created   time.Time     `json:"created"`
	CreatedBy gateway.Actor `json:"created_by"`
	Expires   time.Time     `json:"expires,omitzero"` // zero: until revoked
}

type storedAPIToken struct {
	APIToken
	Hash string `json:"hash"`
}

// apiTokenPrefix marks the gateway's admin API tokens:
// gha_<org>.<id>_<secret> (tokens made before organizations were named
// in them are gha_<id>_<secret>).
const apiTokenPrefix = "gha_"

// APITokenOrg names the organization an admin API token was made for,
// when the token says (false: not a token of ours, or one from before
// tokens named it). It proves nothing: CheckAPIToken does.
func APITokenOrg(token string) (gateway.OrgID, bool) {
	org, _, ok := splitAPIToken(token)
	return org, ok && org != ""
}

// splitAPIToken takes an API token apart: its organization ("" in the
// older form) and what follows it (<id>_<secret>).
func splitAPIToken(token string) (gateway.OrgID, string, bool) {
	rest, ok := strings.CutPrefix(token, apiTokenPrefix)
	if !ok {
		return "", "", false
	}
	org, tail, named := strings.Cut(rest, ".")
	if !named {
		return "", rest, true
	}
	if gateway.OrgID(org).Check() != nil {
		return "", "", false
	}
	return gateway.OrgID(org), tail, true
}

// CreateAPIToken makes an admin API token and returns it (shown once); it
// works for ttl (0: until revoked).
func (s *Service) CreateAPIToken(ctx context.Context, org gateway.OrgID, actor gateway.Actor, requestID, name string, ttl time.Duration) (string, APIToken, error) {
	if n := strings.TrimSpace(name); n == "" || len(n) > 100 {
		return "", APIToken{}, gateway.Errorf(gateway.ErrInvalid, "an API token needs a name of 1 to 100 characters (what uses it)")
	}
	if ttl < 0 {
		return "", APIToken{}, gateway.Errorf(gateway.ErrInvalid, "an API token's lifetime must not be negative")
	}
	id := strings.ReplaceAll(NewID(), "-", "")
	secret := NewToken()
	t := APIToken{ID: id, Name: name, Created: s.clock.Now(), CreatedBy: actor}
	if ttl > 0 {
		t.Expires = t.Created.Add(ttl)
	}
	raw, _ := json.Marshal(storedAPIToken{APIToken: t, Hash: hashToken(secret)})
	if _, err := s.store.Records().Put(ctx, org, kindAPIToken, id, 0, raw,
		s.audited(actor, requestID, "api_token.create", "api_token:"+id, nil, t)); err != nil {
		return "", APIToken{}, err
	}
	return apiTokenPrefix + string(org) + "." + id + "_" + secret, t, nil
}

// APITokens lists the admin API tokens.
func (s *Service) APITokens(ctx context.Context, org gateway.OrgID) ([]APIToken, error) {
	recs, err := s.store.Records().List(ctx, org, kindAPIToken)
	if err != nil {
		return nil, err
	}
	out := make([]APIToken, 0, len(recs))
	for _, rec := range recs {
		var st storedAPIToken
		if err := json.Unmarshal(rec.Value, &st); err != nil {
			return nil, fmt.Errorf("api token record %q: %w", rec.ID, err)
		}
		out = append(out, st.APIToken)
	}
	return out, nil
}

// RevokeAPIToken deletes an admin API token.
func (s *Service) RevokeAPIToken(ctx context.Context, org gateway.OrgID, actor gateway.Actor, requestID, id string) error {
	err := s.store.Records().Delete(ctx, org, kindAPIToken, id, 0,
		s.audited(actor, requestID, "api_token.revoke", "api_token:"+id, map[string]string{"id": id}, nil))
	if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
		return gateway.Errorf(gateway.ErrNotFound, "there is no API token %q", id)
	}
	return err
}

// CheckAPIToken returns the token's id when token is a valid admin API
// token of the org.
func (s *Service) CheckAPIToken(ctx context.Context, org gateway.OrgID, token string) (string, bool, error) {
	named, rest, ok := splitAPIToken(token)
	if !ok || named != "" && named != org {
		return "", false, nil
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || id == "" || secret == "" || len(id) > 64 {
		return "", false, nil
	}
	rec, err := s.store.Records().Get(ctx, org, kindAPIToken, id)
	if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	var st storedAPIToken
	if err := json.Unmarshal(rec.Value, &st); err != nil {
		return "", false, fmt.Errorf("api token record %q: %w", id, err)
	}
	valid := equalHash(hashToken(secret), st.Hash) && (st.Expires.IsZero() || s.clock.Now().Before(st.Expires))
	return id, valid, nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

// FileSCIMTokenSuperseded reports whether the configuration file names a
// SCIM token that no longer works because one was rotated since (an
// operator replacing a leaked token in the file must rotate instead).
func (s *Service) FileSCIMTokenSuperseded(ctx context.Context, org gateway.OrgID) (bool, error) {
	file := s.fileSCIMHash(org)
	if file == "" {
		return false, nil
	}
	t, version, err := s.scimTokens(ctx, org)
	if err != nil || version == 0 {
		return false, err
	}
	inGrace := equalHash(file, t.Previous) && s.clock.Now().Before(t.PreviousUntil)
	return !equalHash(file, t.Current) && !inGrace, nil
}

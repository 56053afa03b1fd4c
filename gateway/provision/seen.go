package provision

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// scimSeenKind is the record of an organization's last SCIM request: the
// console's overview, the operator's list and the setup link show it
// ("first SCIM request received").
const (
	scimSeenKind = "scim-seen"
	scimSeenID   = "last" // the id of every one-record kind here
	// scimSeenEvery is how stale the record may get: one write a minute
	// per organization, not one per request.
	scimSeenEvery = time.Minute
)

// seenWrites is when this process last wrote each organization's record.
type seenWrites struct {
	mu sync.Mutex
	at map[gateway.OrgID]time.Time
}

type scimSeen struct {
	At time.Time `json:"at"`
}

// NoteSCIMRequest records that org's IdP made an authenticated SCIM
// request now (written at most once a minute per organization; a failed
// write is retried at a later request).
func (s *Service) NoteSCIMRequest(ctx context.Context, org gateway.OrgID) error {
	now := s.clock.Now()
	s.seen.mu.Lock()
	if now.Sub(s.seen.at[org]) < scimSeenEvery {
		s.seen.mu.Unlock()
		return nil
	}
	if s.seen.at == nil {
		s.seen.at = map[gateway.OrgID]time.Time{}
	}
	last := s.seen.at[org]
	s.seen.at[org] = now
	s.seen.mu.Unlock()
	err := s.writeSCIMSeen(ctx, org, now)
	if err != nil {
		s.seen.mu.Lock()
		s.seen.at[org] = last
		s.seen.mu.Unlock()
	}
	return err
}

func (s *Service) writeSCIMSeen(ctx context.Context, org gateway.OrgID, now time.Time) error {
	value, _ := json.Marshal(scimSeen{At: now})
	err := s.putLatest(ctx, org, scimSeenKind, value)
	if code := gateway.ErrorCodeOf(err); code == gateway.ErrConflict || code == gateway.ErrPreconditionFailed {
		return nil // another request (or replica) wrote it just now
	}
	return err
}

// putLatest writes value as the one record of kind (over whatever
// version is stored); a write that raced another is ErrConflict or
// ErrPreconditionFailed.
func (s *Service) putLatest(ctx context.Context, org gateway.OrgID, kind string, value []byte) error {
	rec, err := s.store.Records().Get(ctx, org, kind, scimSeenID)
	var version uint64
	switch {
	case err == nil:
		version = rec.Version
	case gateway.ErrorCodeOf(err) != gateway.ErrNotFound:
		return err
	}
	_, err = s.store.Records().Put(ctx, org, kind, scimSeenID, version, value, gateway.Journal{})
	return err
}

// LastSCIMRequest is when org's IdP last made an authenticated SCIM
// request, to the minute (zero: never).
func (s *Service) LastSCIMRequest(ctx context.Context, org gateway.OrgID) (time.Time, error) {
	rec, err := s.store.Records().Get(ctx, org, scimSeenKind, scimSeenID)
	if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	var seen scimSeen
	if err := json.Unmarshal(rec.Value, &seen); err != nil {
		return time.Time{}, err
	}
	return seen.At, nil
}

// signInTestedKind records an organization's last test sign-in that
// reached the gateway (a manager's, or a setup link's), and the version
// of the settings it tested.
const signInTestedKind = "sign-in-tested"

// SignInTest is the last test sign-in of an organization.
type SignInTest struct {
	At              time.Time `json:"at"`
	SettingsVersion uint64    `json:"settings_version"`
}

// NoteSignInTested records a test sign-in that worked, under the
// settings in force now.
func (s *Service) NoteSignInTested(ctx context.Context, org gateway.OrgID) error {
	st, _ := s.Current(ctx, org)
	value, _ := json.Marshal(SignInTest{At: s.clock.Now(), SettingsVersion: st.Version})
	for attempt := 0; attempt < maxAttempts; attempt++ {
		err := s.putLatest(ctx, org, signInTestedKind, value)
		if code := gateway.ErrorCodeOf(err); code != gateway.ErrConflict && code != gateway.ErrPreconditionFailed {
			return err
		}
	}
	return busy("sign-in test", string(org))
}

// LastSignInTest is the organization's last test sign-in (zero: none).
func (s *Service) LastSignInTest(ctx context.Context, org gateway.OrgID) (SignInTest, error) {
	rec, err := s.store.Records().Get(ctx, org, signInTestedKind, scimSeenID)
	if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
		return SignInTest{}, nil
	}
	if err != nil {
		return SignInTest{}, err
	}
	var t SignInTest
	return t, json.Unmarshal(rec.Value, &t)
}

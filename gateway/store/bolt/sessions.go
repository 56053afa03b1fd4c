package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// sessionStore keeps browser sessions.
type sessionStore struct{ s *Store }

func encodeSession(se *gateway.Session) []byte {
	w := writer{b: make([]byte, 0, 128)}
	w.b = append(w.b, recordFormat)
	w.str(se.UserID)
	w.str(se.Protocol)
	w.time(se.Created)
	w.time(se.LastSeen)
	w.time(se.Expires)
	if se.IdPSubject != "" || se.IdPSession != "" { // absent in sessions from before logout
		w.str(se.IdPSubject)
		w.str(se.IdPSession)
	}
	return w.b
}

func decodeSession(org gateway.OrgID, id string, v []byte) (gateway.Session, error) {
	r := reader{b: v}
	if r.byte() != recordFormat {
		return gateway.Session{}, errCorrupt
	}
	se := gateway.Session{ID: id, Org: org, UserID: r.str(), Protocol: r.str()}
	se.Created, se.LastSeen, se.Expires = r.time(), r.time(), r.time()
	if r.err == nil && len(r.b) > 0 {
		se.IdPSubject, se.IdPSession = r.str(), r.str()
	}
	return se, r.err
}

func sessionNotFound() error {
	return gateway.Errorf(gateway.ErrNotFound, "no such session")
}

func (ss sessionStore) Create(ctx context.Context, se gateway.Session) error {
	if se.ID == "" || se.UserID == "" {
		return &gateway.Error{Code: gateway.ErrInternal, Message: "internal error", Err: fmt.Errorf("session without id or user")}
	}
	err := ss.s.write(ctx, se.Org, func(tb *bolt.Bucket) error {
		if err := tb.Bucket(bSessions).Put([]byte(se.ID), encodeSession(&se)); err != nil {
			return err
		}
		if err := tb.Bucket(bLastLogin).Put([]byte(se.UserID), u64(uint64(se.Created.UnixNano()))); err != nil {
			return err
		}
		if err := tb.Bucket(bUserSessions).Put(pair(se.UserID, se.ID), nil); err != nil {
			return err
		}
		for _, k := range idpKeys(&se) {
			if err := tb.Bucket(bIdPSessions).Put(k, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: create session: %w", err)
	}
	return nil
}

func (ss sessionStore) Get(ctx context.Context, org gateway.OrgID, id string) (gateway.Session, error) {
	var se gateway.Session
	found := false
	err := ss.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		v := tb.Bucket(bSessions).Get([]byte(id))
		if v == nil {
			return nil
		}
		found = true
		var err error
		se, err = decodeSession(org, id, v)
		return err
	})
	if err != nil {
		return se, fmt.Errorf("bolt: read session: %w", err)
	}
	if !found {
		return se, sessionNotFound()
	}
	return se, nil
}

func (ss sessionStore) Touch(ctx context.Context, org gateway.OrgID, id string, at time.Time) error {
	err := ss.s.write(ctx, org, func(tb *bolt.Bucket) error {
		v := tb.Bucket(bSessions).Get([]byte(id))
		if v == nil {
			return sessionNotFound()
		}
		se, err := decodeSession(org, id, v)
		if err != nil {
			return err
		}
		se.LastSeen = at
		return tb.Bucket(bSessions).Put([]byte(id), encodeSession(&se))
	})
	if err != nil {
		return fmt.Errorf("bolt: touch session: %w", err)
	}
	return nil
}

// deleteSession removes a session and its index entry.
func deleteSession(tb *bolt.Bucket, org gateway.OrgID, id string) error {
	v := tb.Bucket(bSessions).Get([]byte(id))
	if v == nil {
		return nil
	}
	se, err := decodeSession(org, id, v)
	if err != nil {
		return err
	}
	if err := tb.Bucket(bUserSessions).Delete(pair(se.UserID, id)); err != nil {
		return err
	}
	for _, k := range idpKeys(&se) {
		if err := tb.Bucket(bIdPSessions).Delete(k); err != nil {
			return err
		}
	}
	return tb.Bucket(bSessions).Delete([]byte(id))
}

// idpKeys are a session's entries in sessions_by_idp: "u" subject and
// "s" IdP session, each 0x00 the session id (the values hold no NUL:
// session.Start keeps none).
func idpKeys(se *gateway.Session) [][]byte {
	var keys [][]byte
	if se.IdPSubject != "" {
		keys = append(keys, pair("u"+se.IdPSubject, se.ID))
	}
	if se.IdPSession != "" {
		keys = append(keys, pair("s"+se.IdPSession, se.ID))
	}
	return keys
}

func (ss sessionStore) EndIdP(ctx context.Context, org gateway.OrgID, subject, idpSession string) ([]gateway.Session, error) {
	if subject == "" && idpSession == "" {
		return nil, gateway.Errorf(gateway.ErrInvalid, "a logout names the IdP's subject or session")
	}
	var ended []gateway.Session
	err := ss.s.write(ctx, org, func(tb *bolt.Bucket) error {
		ended = nil // the function may run again
		index, by := "u"+subject, func(se *gateway.Session) bool { return idpSession == "" || se.IdPSession == idpSession }
		if subject == "" {
			index, by = "s"+idpSession, func(*gateway.Session) bool { return true }
		}
		for _, id := range prefixed(tb.Bucket(bIdPSessions), index) {
			v := tb.Bucket(bSessions).Get([]byte(id))
			if v == nil {
				continue
			}
			se, err := decodeSession(org, id, v)
			if err != nil {
				return err
			}
			if !by(&se) {
				continue
			}
			if err := deleteSession(tb, org, id); err != nil {
				return err
			}
			ended = append(ended, se)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: end IdP sessions: %w", err)
	}
	return ended, nil
}

func (ss sessionStore) Delete(ctx context.Context, org gateway.OrgID, id string) error {
	err := ss.s.write(ctx, org, func(tb *bolt.Bucket) error { return deleteSession(tb, org, id) })
	if err != nil {
		return fmt.Errorf("bolt: delete session: %w", err)
	}
	return nil
}

func (ss sessionStore) DeleteUser(ctx context.Context, org gateway.OrgID, userID string) (int, error) {
	n := 0
	err := ss.s.write(ctx, org, func(tb *bolt.Bucket) error {
		n = 0
		for _, id := range prefixed(tb.Bucket(bUserSessions), userID) {
			if err := deleteSession(tb, org, id); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: end user sessions: %w", err)
	}
	return n, nil
}

func (ss sessionStore) DeleteAll(ctx context.Context, org gateway.OrgID) (int, error) {
	n := 0
	err := ss.s.write(ctx, org, func(tb *bolt.Bucket) error {
		n = tb.Bucket(bSessions).Stats().KeyN
		// Both buckets are emptied whole: recreating them is cheaper than
		// deleting every key.
		for _, name := range [][]byte{bSessions, bUserSessions, bIdPSessions} {
			if err := tb.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := tb.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: end all sessions: %w", err)
	}
	return n, nil
}

func (ss sessionStore) Count(ctx context.Context, org gateway.OrgID) (int, error) {
	n := 0
	err := ss.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb != nil {
			n = tb.Bucket(bSessions).Stats().KeyN
		}
		return nil
	})
	return n, err
}

func (ss sessionStore) Expire(ctx context.Context, org gateway.OrgID, now, idleBefore time.Time) (int, error) {
	var stale []string
	err := ss.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		return tb.Bucket(bSessions).ForEach(func(k, v []byte) error {
			se, err := decodeSession(org, string(k), v)
			if err != nil {
				return err
			}
			if !now.Before(se.Expires) || se.LastSeen.Before(idleBefore) {
				stale = append(stale, string(bytes.Clone(k)))
			}
			return nil
		})
	})
	if err != nil || len(stale) == 0 {
		return 0, err
	}
	err = ss.s.write(ctx, org, func(tb *bolt.Bucket) error {
		for _, id := range stale {
			if err := deleteSession(tb, org, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: expire sessions: %w", err)
	}
	return len(stale), nil
}

func (ss sessionStore) LastLogins(ctx context.Context, org gateway.OrgID, userIDs []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(userIDs))
	err := ss.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		b := tb.Bucket(bLastLogin)
		for _, id := range userIDs {
			if v := b.Get([]byte(id)); len(v) == 8 {
				out[id] = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: read last logins: %w", err)
	}
	return out, nil
}

func (ss sessionStore) ListUser(ctx context.Context, org gateway.OrgID, userID string) ([]gateway.Session, error) {
	var out []gateway.Session
	err := ss.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		for _, id := range prefixed(tb.Bucket(bUserSessions), userID) {
			v := tb.Bucket(bSessions).Get([]byte(id))
			if v == nil {
				continue
			}
			se, err := decodeSession(org, id, v)
			if err != nil {
				return err
			}
			out = append(out, se)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list sessions: %w", err)
	}
	return out, nil
}

package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/store/internal/storekit"
)

// Records are a small binary header holding the typed fields, followed by
// the protocol document as JSON. Reading a page of users is then slicing
// rather than JSON decoding (which was half of a list request's CPU), and
// the document goes back out on the wire without being decoded at all.
//
//	user:  0x01 | str id org userName externalId givenName familyName
//	       displayName source pool role | byte active | uvarint n, n × str
//	       emails | varint created, modified (Unix ns) | uvarint version |
//	       document JSON (rest)
//	group: 0x01 | str id org displayName externalId source | varint
//	       created, modified | uvarint version | document JSON (rest)
//
// str is a uvarint length and the bytes.
const recordFormat = 1

var errCorrupt = errors.New("corrupt record")

type writer struct{ b []byte }

func (w *writer) str(s string) {
	w.b = binary.AppendUvarint(w.b, uint64(len(s)))
	w.b = append(w.b, s...)
}
func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }

// time writes Unix nanoseconds; the zero time (outside UnixNano's range)
// is written as math.MinInt64.
func (w *writer) time(t time.Time) {
	n := int64(math.MinInt64)
	if !t.IsZero() {
		n = t.UnixNano()
	}
	w.b = binary.AppendVarint(w.b, n)
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = errCorrupt
		r.b = nil
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// common reads a string that is usually one of a few values and returns
// the shared value instead of a copy (a scan of a large directory
// allocates less; strings are immutable, so sharing is safe).
func (r *reader) common(values ...string) string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = errCorrupt
		r.b = nil
		return ""
	}
	b := r.b[:n]
	r.b = r.b[n:]
	for _, v := range values {
		if string(b) == v {
			return v
		}
	}
	return string(b)
}

// skip passes over a string.
func (r *reader) skip() {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = errCorrupt
		r.b = nil
		return
	}
	r.b = r.b[n:]
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.err = errCorrupt
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) time() time.Time {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		r.b = nil
		return time.Time{}
	}
	r.b = r.b[n:]
	if v == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

var document = storekit.Document

func encodeUser(u *gateway.User) ([]byte, error) {
	doc, err := document(u.Attributes)
	if err != nil {
		return nil, fmt.Errorf("encode user %q: %w", u.ID, err)
	}
	w := writer{b: make([]byte, 0, 128+len(doc))}
	w.b = append(w.b, recordFormat)
	for _, s := range []string{u.ID, string(u.Org), u.UserName, u.ExternalID, u.GivenName, u.FamilyName, u.DisplayName, string(u.Source), strings.Join(u.Pools, ","), u.Role} {
		w.str(s)
	}
	active := byte(0)
	if u.Active {
		active = 1
	}
	w.b = append(w.b, active)
	w.uvarint(uint64(len(u.Emails)))
	for _, e := range u.Emails {
		w.str(e)
	}
	w.time(u.Created)
	w.time(u.Modified)
	w.uvarint(u.Version)
	return append(w.b, doc...), nil
}

// decodeUser decodes a record. It copies what it keeps: v may be storage
// memory valid only during the transaction.
func decodeUser(v []byte, org gateway.OrgID) (*gateway.User, error) {
	u, doc, err := decodeUserHeader(v, org)
	if err != nil {
		return nil, err
	}
	u.Attributes = gateway.DocumentFromJSON(bytes.Clone(doc))
	return u, nil
}

// userDocument returns a record's document bytes, skipping its header
// without decoding (or copying) anything.
func userDocument(v []byte) ([]byte, bool) {
	r := reader{b: v}
	if r.byte() != recordFormat {
		return nil, false
	}
	for range 10 { // the header's strings, as encodeUser writes them
		r.skip()
	}
	r.byte()
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		r.skip()
	}
	r.time()
	r.time()
	r.uvarint()
	return r.b, r.err == nil
}

// decodeUserHeader decodes a record's typed fields and returns the
// document's bytes undecoded and uncopied (valid only while v is).
func decodeUserHeader(v []byte, org gateway.OrgID) (*gateway.User, []byte, error) {
	r := reader{b: v}
	if r.byte() != recordFormat {
		return nil, nil, fmt.Errorf("user record: unknown format")
	}
	u := &gateway.User{
		ID: r.str(), Org: gateway.OrgID(r.common(string(org))), UserName: r.str(), ExternalID: r.str(), GivenName: r.str(),
		FamilyName: r.str(), DisplayName: r.str(),
		Source: gateway.Source(r.common(string(gateway.SourceSCIM), string(gateway.SourceJIT), string(gateway.SourceManual), string(gateway.SourceSelfService))),
		Pools:  splitPools(r.common("default")), Role: r.common(gateway.RoleUser, gateway.RoleManager),
	}
	u.Active = r.byte() == 1
	if n := r.uvarint(); n > 0 && n <= uint64(len(r.b)) {
		u.Emails = make([]string, n)
		for i := range u.Emails {
			u.Emails[i] = r.str()
		}
	}
	u.Created, u.Modified = r.time(), r.time()
	u.Version = r.uvarint()
	if r.err != nil {
		return nil, nil, fmt.Errorf("user record: %w", r.err)
	}
	return u, r.b, nil
}

// splitPools reads the pool ids of a record (pool ids hold no commas;
// schema version 2 records hold one pool).
func splitPools(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func encodeGroup(g *gateway.Group) ([]byte, error) {
	doc, err := document(g.Attributes)
	if err != nil {
		return nil, fmt.Errorf("encode group %q: %w", g.ID, err)
	}
	w := writer{b: make([]byte, 0, 96+len(doc))}
	w.b = append(w.b, recordFormat)
	for _, s := range []string{g.ID, string(g.Org), g.DisplayName, g.ExternalID, string(g.Source)} {
		w.str(s)
	}
	w.time(g.Created)
	w.time(g.Modified)
	w.uvarint(g.Version)
	return append(w.b, doc...), nil
}

func decodeGroup(v []byte) (*gateway.Group, error) {
	r := reader{b: v}
	if r.byte() != recordFormat {
		return nil, fmt.Errorf("group record: unknown format")
	}
	g := &gateway.Group{ID: r.str(), Org: gateway.OrgID(r.str()), DisplayName: r.str(), ExternalID: r.str(), Source: gateway.Source(r.str())}
	g.Created, g.Modified = r.time(), r.time()
	g.Version = r.uvarint()
	if r.err != nil {
		return nil, fmt.Errorf("group record: %w", r.err)
	}
	g.Attributes = gateway.DocumentFromJSON(bytes.Clone(r.b))
	return g, nil
}

// Outbox events use the same scheme (the seq is the key):
//
//	event: 0x01 | str id org op source requestId | varint occurredAt |
//	       uvarint n, n × str changed | uvarint n, n × str memberIds |
//	       byte has (1 user, 2 group) | [uvarint len, user record] |
//	       [uvarint len, group record]
func encodeEvent(e *gateway.Event) ([]byte, error) {
	w := writer{b: make([]byte, 0, 512)}
	w.b = append(w.b, recordFormat)
	for _, s := range []string{e.ID, string(e.Org), string(e.Op), string(e.Source), e.RequestID} {
		w.str(s)
	}
	w.time(e.OccurredAt)
	for _, list := range [][]string{e.Changed, e.MemberIDs} {
		w.uvarint(uint64(len(list)))
		for _, s := range list {
			w.str(s)
		}
	}
	var has byte
	if e.User != nil {
		has |= 1
	}
	if e.Group != nil {
		has |= 2
	}
	if e.Invitation != nil {
		has |= 4
	}
	if e.Organization != nil {
		has |= 8
	}
	if e.Pool != nil {
		has |= 16
	}
	if e.Role != nil {
		has |= 32
	}
	if e.Connection != nil {
		has |= 64
	}
	w.b = append(w.b, has)
	if e.User != nil {
		rec, err := encodeUser(e.User)
		if err != nil {
			return nil, err
		}
		w.uvarint(uint64(len(rec)))
		w.b = append(w.b, rec...)
	}
	if e.Group != nil {
		rec, err := encodeGroup(e.Group)
		if err != nil {
			return nil, err
		}
		w.uvarint(uint64(len(rec)))
		w.b = append(w.b, rec...)
	}
	if e.Invitation != nil {
		rec, err := json.Marshal(e.Invitation)
		if err != nil {
			return nil, err
		}
		w.uvarint(uint64(len(rec)))
		w.b = append(w.b, rec...)
	}
	for _, v := range []struct {
		present bool
		value   any
	}{{e.Organization != nil, e.Organization}, {e.Pool != nil, e.Pool}, {e.Role != nil, e.Role}, {e.Connection != nil, e.Connection}} {
		if !v.present {
			continue
		}
		rec, err := json.Marshal(v.value)
		if err != nil {
			return nil, err
		}
		w.uvarint(uint64(len(rec)))
		w.b = append(w.b, rec...)
	}
	return w.b, nil
}

func decodeEvent(seq uint64, v []byte) (gateway.Event, error) {
	r := reader{b: v}
	if r.byte() != recordFormat {
		return gateway.Event{}, fmt.Errorf("event %d: unknown format", seq)
	}
	e := gateway.Event{Seq: seq, ID: r.str(), Org: gateway.OrgID(r.str()), Op: gateway.Op(r.str()), Source: gateway.Source(r.str()), RequestID: r.str()}
	e.OccurredAt = r.time()
	for _, list := range []*[]string{&e.Changed, &e.MemberIDs} {
		if n := r.uvarint(); n > 0 && n <= uint64(len(r.b)) {
			*list = make([]string, n)
			for i := range *list {
				(*list)[i] = r.str()
			}
		}
	}
	has := r.byte()
	nested := func() []byte {
		n := r.uvarint()
		if n > uint64(len(r.b)) {
			r.err = errCorrupt
			return nil
		}
		rec := r.b[:n]
		r.b = r.b[n:]
		return rec
	}
	if has&1 != 0 {
		if rec := nested(); r.err == nil {
			u, err := decodeUser(rec, e.Org)
			if err != nil {
				return gateway.Event{}, fmt.Errorf("event %d: %w", seq, err)
			}
			e.User = u
		}
	}
	if has&2 != 0 {
		if rec := nested(); r.err == nil {
			g, err := decodeGroup(rec)
			if err != nil {
				return gateway.Event{}, fmt.Errorf("event %d: %w", seq, err)
			}
			e.Group = g
		}
	}
	if has&4 != 0 {
		if rec := nested(); r.err == nil {
			e.Invitation = &gateway.Invitation{}
			if err := json.Unmarshal(rec, e.Invitation); err != nil {
				return gateway.Event{}, fmt.Errorf("event %d: invitation: %w", seq, err)
			}
		}
	}
	// The JSON-encoded parts, in the order encodeEvent writes them.
	for _, part := range []struct {
		bit  byte
		name string
		into func() any
	}{
		{8, "organization", func() any { e.Organization = &gateway.OrgRef{}; return e.Organization }},
		{16, "pool", func() any { e.Pool = &gateway.Pool{}; return e.Pool }},
		{32, "role", func() any { e.Role = &gateway.Role{}; return e.Role }},
		{64, "connection", func() any { e.Connection = &gateway.Connection{}; return e.Connection }},
	} {
		if has&part.bit == 0 {
			continue
		}
		if rec := nested(); r.err == nil {
			if err := json.Unmarshal(rec, part.into()); err != nil {
				return gateway.Event{}, fmt.Errorf("event %d: %s: %w", seq, part.name, err)
			}
		}
	}
	if r.err != nil {
		return gateway.Event{}, fmt.Errorf("event %d: %w", seq, r.err)
	}
	return e, nil
}

package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Document is a protocol document (a user's or group's SCIM attributes).
// It keeps the encoded JSON it was read as and decodes it only when a
// caller needs the map: most reads just send the stored bytes back out,
// and decoding every record of a page into maps dominated list requests.
// A Document is immutable; Map returns a map the caller may change.
type Document struct {
	raw []byte         // a JSON object, when read from storage
	m   map[string]any // when built in memory
}

// NewDocument wraps a map. The map must not be changed afterwards.
func NewDocument(m map[string]any) Document { return Document{m: m} }

// Map decodes the document into a fresh map the caller owns (top level;
// nested values are shared when the document was built from a map).
func (d Document) Map() (map[string]any, error) {
	if d.raw == nil {
		out := make(map[string]any, len(d.m))
		for k, v := range d.m {
			out[k] = v
		}
		return out, nil
	}
	dec := json.NewDecoder(bytes.NewReader(d.raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode document: %w", err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// JSON returns the document encoded as a JSON object.
func (d Document) JSON() ([]byte, error) {
	if d.raw != nil {
		return d.raw, nil
	}
	if d.m == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(d.m)
}

// MarshalJSON implements json.Marshaler.
func (d Document) MarshalJSON() ([]byte, error) { return d.JSON() }

// UnmarshalJSON keeps a copy of the encoded object (the input may be
// storage memory that is only valid during a transaction).
func (d *Document) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*d = Document{}
		return nil
	}
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("document is not a JSON object")
	}
	*d = Document{raw: bytes.Clone(b)}
	return nil
}

// DocumentFromJSON wraps an encoded JSON object. The bytes must not change
// afterwards (storage code passes a copy it owns).
func DocumentFromJSON(raw []byte) Document {
	if len(raw) == 0 {
		return Document{}
	}
	return Document{raw: raw}
}

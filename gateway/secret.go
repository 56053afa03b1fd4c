package gateway

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
)

// Secret is a sensitive configuration value: a SCIM token, a client
// secret, a webhook signing key. It prints, marshals and logs as
// [REDACTED]; Value returns the real thing. Written as env:NAME or
// file:PATH it is a reference, filled in by Resolve.
type Secret struct {
	value string
	ref   string // env:NAME or file:PATH, when it came from one
	err   string // why the reference could not be resolved
}

// ParseSecret reads a configured value: a reference or a literal.
func ParseSecret(v string) Secret {
	if strings.HasPrefix(v, "env:") || strings.HasPrefix(v, "file:") {
		return Secret{ref: v}
	}
	return Secret{value: v}
}

// NewSecret wraps a literal value.
func NewSecret(v string) Secret { return Secret{value: v} }

func (s Secret) Value() string { return s.value }
func (s Secret) IsSet() bool   { return s.value != "" }

// IsConfigured reports a literal or a reference, resolved or not.
func (s Secret) IsConfigured() bool { return s.value != "" || s.ref != "" }

// Problem says why a reference could not be resolved ("" when fine).
func (s Secret) Problem() string { return s.err }

func (s Secret) String() string       { return s.redacted() }
func (s Secret) GoString() string     { return s.redacted() }
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.redacted()) }

func (s Secret) redacted() string {
	if s.value == "" && s.ref == "" {
		return ""
	}
	return "[REDACTED]"
}

// MarshalText and MarshalJSON redact; YAML and JSON encoders use them.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.redacted()), nil }
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.redacted()) }

// UnmarshalText reads a configured value (YAML and JSON decoders use it).
func (s *Secret) UnmarshalText(b []byte) error {
	*s = ParseSecret(string(b))
	return nil
}

// Resolve fills in a reference from the environment or a file; a literal
// is left alone. What goes wrong is kept for Problem.
func (s *Secret) Resolve(lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) {
	switch {
	case strings.HasPrefix(s.ref, "env:"):
		name := strings.TrimPrefix(s.ref, "env:")
		if v, _ := lookupEnv(name); v != "" {
			s.value = v
		} else {
			s.err = fmt.Sprintf("references environment variable %s, which is not set or empty", name)
		}
	case strings.HasPrefix(s.ref, "file:"):
		path := strings.TrimPrefix(s.ref, "file:")
		b, err := readFile(path)
		if err != nil {
			s.err = fmt.Sprintf("references file %s, which cannot be read: %v", path, err)
			return
		}
		if s.value = strings.TrimSpace(string(b)); s.value == "" {
			s.err = fmt.Sprintf("references file %s, which is empty", path)
		}
	}
}

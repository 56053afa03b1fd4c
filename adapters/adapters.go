// Package adapters delivers provisioning events to the app beside the
// gateway: the registry of adapter types, the decoding and checking of
// their configuration, and the event contract (event.schema.json). Each
// adapter type lives in its own sub-package and imports only the gateway
// domain.
package adapters

import (
	_ "embed"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/gatehouse-id/gatehouse/adapters/directory"
	"github.com/gatehouse-id/gatehouse/adapters/rest"
	"github.com/gatehouse-id/gatehouse/adapters/smtp"
	"github.com/gatehouse-id/gatehouse/adapters/sqldb"
	"github.com/gatehouse-id/gatehouse/adapters/webhook"
	"github.com/gatehouse-id/gatehouse/gateway"
)

// EventSchema is the JSON Schema of gateway.WireEvent, the contract with
// receivers.
//
//go:embed event.schema.json
var EventSchema []byte

// DefaultType is the adapter used when none is configured.
const DefaultType = "directory"

// Types is the registry: each adapter type and a constructor of its empty
// configuration.
func Types() map[string]func() gateway.AdapterConfig {
	return map[string]func() gateway.AdapterConfig{
		"directory": func() gateway.AdapterConfig { return &directory.Config{} },
		"webhook":   func() gateway.AdapterConfig { return &webhook.Config{} },
		"sqldb":     func() gateway.AdapterConfig { return &sqldb.Config{} },
		"rest":      func() gateway.AdapterConfig { return &rest.Config{} },
		"smtp":      func() gateway.AdapterConfig { return &smtp.Config{} },
	}
}

// TypeNames lists the registered types, sorted.
func TypeNames() []string {
	var names []string
	for n := range Types() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Decode builds the configuration of an adapter of type typ with decode
// (which fills a struct from the configuration file, refusing unknown
// keys).
func Decode(typ string, decode func(v any) error) (gateway.AdapterConfig, error) {
	mk, ok := Types()[typ]
	if !ok {
		return nil, fmt.Errorf("unknown adapter type %q (known: %s)", typ, strings.Join(TypeNames(), ", "))
	}
	cfg := mk()
	if err := decode(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// ResolveSecrets fills in every gateway.Secret of cfg (env:NAME and
// file:PATH references) and reports the ones that could not be, with
// their key paths.
func ResolveSecrets(cfg any, lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) []gateway.ConfigProblem {
	var problems []gateway.ConfigProblem
	secretType := reflect.TypeOf(gateway.Secret{})
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(path, v.Elem())
			}
		case reflect.Struct:
			if v.Type() == secretType {
				if !v.CanAddr() {
					return
				}
				s := v.Addr().Interface().(*gateway.Secret)
				s.Resolve(lookupEnv, readFile)
				if p := s.Problem(); p != "" {
					problems = append(problems, gateway.ConfigProblem{Path: path, Message: p})
				}
				return
			}
			for i := range v.NumField() {
				f := v.Type().Field(i)
				if !f.IsExported() {
					continue
				}
				name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if name == "-" {
					continue
				}
				if name == "" {
					name = strings.ToLower(f.Name)
				}
				walk(join(path, name), v.Field(i))
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(fmt.Sprintf("%s[%d]", path, i), v.Index(i))
			}
		}
	}
	walk("", reflect.ValueOf(cfg))
	return problems
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// Package adapters delivers provisioning events to the app beside the
// gateway: the registry of adapter types, their configuration, and the
// event contract (event.schema.json). Each adapter type lives in its own
// sub-package and imports only the gateway domain.
package adapters

import _ "embed"

// EventSchema is the JSON Schema of gateway.WireEvent, the contract with
// receivers.
//
//go:embed event.schema.json
var EventSchema []byte

// Package directory is the default adapter: there is no downstream, the
// gateway's own directory is the source of truth, and the app reads it
// (SCIM GETs, or the events feed). Delivering is acknowledging, so that
// delivered events can age out of the outbox.
package directory

import (
	"context"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// Config has no settings.
type Config struct{}

func (*Config) Validate() []gateway.ConfigProblem { return nil }

func (*Config) Open(context.Context, gateway.AdapterEnv) (gateway.Adapter, error) {
	return adapter{}, nil
}

type adapter struct{}

func (adapter) Deliver(context.Context, gateway.WireEvent) error { return nil }
func (adapter) Close() error                                     { return nil }

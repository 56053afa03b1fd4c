package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Adapter delivers events to one downstream: the app's REST API, a
// webhook receiver, the app's database. The dispatcher calls Deliver for
// one event at a time per resource, with no store transaction open, and
// retries failures; Deliver may see an event again after a crash, so it
// must be idempotent on the event id.
type Adapter interface {
	// Deliver returns nil once the downstream has the event. Wrap
	// ErrPermanent when retrying cannot help (the event goes to the dead
	// letters); return a *RetryAfterError to be retried no sooner.
	Deliver(ctx context.Context, e WireEvent) error
	Close() error
}

// ErrPermanent marks a delivery failure that retrying cannot fix (the
// downstream refused the event as it is).
var ErrPermanent = errors.New("permanent delivery failure")

// RetryAfterError asks for the next attempt no sooner than After (an HTTP
// Retry-After, say).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// AdapterConfig is one adapter type's configuration, decoded from the
// adapters list of the configuration file.
type AdapterConfig interface {
	// Validate returns every problem, each with its key path relative to
	// the adapter's config (e.g. "url").
	Validate() []ConfigProblem
	// Open builds the adapter; secrets are already resolved.
	Open(ctx context.Context, env AdapterEnv) (Adapter, error)
}

// ConfigProblem is one thing wrong with a configuration.
type ConfigProblem struct {
	Path    string
	Message string
}

// AdapterEnv is what an adapter gets from the gateway when it opens.
type AdapterEnv struct {
	ID     string // the adapter's id from the configuration; it delivers every organization's events, each naming its own (Org)
	Logger *slog.Logger
	Store  Store // for state an adapter keeps (id maps)
}

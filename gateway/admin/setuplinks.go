package admin

import (
	"context"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

// defaultSetupLinkTTL is how long a setup link may be opened when the
// caller says nothing: a day, to reach the IT admin by mail.
const defaultSetupLinkTTL = 24 * time.Hour

type createSetupLinkInput struct {
	Body *struct {
		ExpiresIn string `json:"expires_in,omitempty" doc:"how long the link may be opened, e.g. 2h; default 24h, at most 168h"`
	} `required:"false"`
}

type setupLinkOutput struct {
	Body provision.SetupLink
}

func (a *API) createSetupLink(ctx context.Context, in *createSetupLinkInput) (*setupLinkOutput, error) {
	ttl := defaultSetupLinkTTL
	if in.Body != nil && in.Body.ExpiresIn != "" {
		d, err := time.ParseDuration(in.Body.ExpiresIn)
		if err != nil || d < time.Minute {
			return nil, a.fail(ctx, gateway.Errorf(gateway.ErrInvalid, "expires_in: %q is not a duration of at least a minute, such as 2h", in.Body.ExpiresIn))
		}
		ttl = d
	}
	link, err := a.opts.Service.CreateSetupLink(ctx, a.manager(ctx), ttl, a.orgRoot(ctx)+"/setup/link")
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &setupLinkOutput{Body: link}, nil
}

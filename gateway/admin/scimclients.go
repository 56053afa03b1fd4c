package admin

import (
	"context"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

type scimClientsOutput struct {
	Body struct {
		Clients       []provision.SCIMClient `json:"clients"`
		TokenEndpoint string                 `json:"token_endpoint" doc:"where a client's id and secret buy an access token (grant_type=client_credentials)"`
	}
}

type createSCIMClientInput struct {
	Body struct {
		Name            string                    `json:"name" minLength:"1" maxLength:"100" doc:"which IdP uses it"`
		SecretExpiresIn string                    `json:"secret_expires_in,omitempty" doc:"how long the secret works, e.g. 8760h; empty: a year; at most 26280h (3 years)"`
		Assertion       *provision.AssertionTrust `json:"assertion,omitempty" doc:"instead of a secret: the client authenticates by JWTs this issuer signs (private_key_jwt, RFC 7523), for this subject, with keys at jwks_url"`
	}
}

type newSCIMClient struct {
	Body struct {
		ClientID      string               `json:"client_id"`
		ClientSecret  string               `json:"client_secret,omitempty" doc:"shown this once (none for a client that authenticates by assertion)"`
		TokenEndpoint string               `json:"token_endpoint"`
		SCIMBaseURL   string               `json:"scim_base_url"`
		Client        provision.SCIMClient `json:"client"`
	}
}

type addSecretInput struct {
	ID   string `path:"id"`
	Body *struct {
		SecretExpiresIn string `json:"secret_expires_in,omitempty" doc:"how long the secret works; empty: a year"`
	}
}

type newSecret struct {
	Body struct {
		ClientSecret string                 `json:"client_secret" doc:"shown this once"`
		Secret       provision.ClientSecret `json:"secret"`
	}
}

type secretIDInput struct {
	ID       string `path:"id"`
	SecretID string `path:"secret_id"`
}

func (a *API) tokenEndpoint(ctx context.Context) string { return a.orgRoot(ctx) + "/oauth/token" }

func (a *API) secretTTL(ctx context.Context, in string) (time.Duration, error) {
	if in == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(in)
	if err != nil || d <= 0 {
		return 0, a.fail(ctx, gateway.Errorf(gateway.ErrInvalid, "secret_expires_in: %q is not a positive duration such as 8760h", in))
	}
	return d, nil
}

func (a *API) listSCIMClients(ctx context.Context, _ *struct{}) (*scimClientsOutput, error) {
	cs, err := a.opts.Service.SCIMClients(ctx, a.org(ctx))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &scimClientsOutput{}
	out.Body.Clients, out.Body.TokenEndpoint = append(cs, []provision.SCIMClient{}...), a.tokenEndpoint(ctx)
	return out, nil
}

func (a *API) createSCIMClient(ctx context.Context, in *createSCIMClientInput) (*newSCIMClient, error) {
	ttl, err := a.secretTTL(ctx, in.Body.SecretExpiresIn)
	if err != nil {
		return nil, err
	}
	mg := a.manager(ctx)
	c, secret, err := a.opts.Service.CreateSCIMClient(ctx, mg.Org, mg.Actor, mg.RequestID, in.Body.Name, ttl, in.Body.Assertion)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &newSCIMClient{}
	out.Body.ClientID, out.Body.ClientSecret, out.Body.Client = c.ID, secret, c
	out.Body.TokenEndpoint, out.Body.SCIMBaseURL = a.tokenEndpoint(ctx), a.scimBaseURL(ctx)
	return out, nil
}

func (a *API) addSCIMClientSecret(ctx context.Context, in *addSecretInput) (*newSecret, error) {
	var ttl time.Duration
	if in.Body != nil {
		d, err := a.secretTTL(ctx, in.Body.SecretExpiresIn)
		if err != nil {
			return nil, err
		}
		ttl = d
	}
	mg := a.manager(ctx)
	sec, secret, err := a.opts.Service.AddSCIMClientSecret(ctx, mg.Org, mg.Actor, mg.RequestID, in.ID, ttl)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &newSecret{}
	out.Body.ClientSecret, out.Body.Secret = secret, sec
	return out, nil
}

func (a *API) removeSCIMClientSecret(ctx context.Context, in *secretIDInput) (*struct{}, error) {
	mg := a.manager(ctx)
	if err := a.opts.Service.RemoveSCIMClientSecret(ctx, mg.Org, mg.Actor, mg.RequestID, in.ID, in.SecretID); err != nil {
		return nil, a.fail(ctx, err)
	}
	return nil, nil
}

func (a *API) deleteSCIMClient(ctx context.Context, in *idInput) (*struct{}, error) {
	mg := a.manager(ctx)
	if err := a.opts.Service.DeleteSCIMClient(ctx, mg.Org, mg.Actor, mg.RequestID, in.ID); err != nil {
		return nil, a.fail(ctx, err)
	}
	return nil, nil
}

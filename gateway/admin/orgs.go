package admin

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

// OperatorActor is the operator: admin.token. Only the operator manages
// the registry of organizations; managers and API tokens belong to one
// organization.
func OperatorActor() gateway.Actor { return gateway.Actor{Kind: gateway.ActorToken, ID: "admin.token"} }

// operatorTag marks the operations of the operator alone (refused to
// anyone else before their input is read).
const operatorTag = "orgs"

const operatorOnly = "Only the operator (admin.token) manages organizations; a manager or API token acts within its own organization."

// operator is the command context of an operator's call, or a 403 for
// anyone else.
func (a *API) operator(ctx context.Context) (provision.Operator, error) {
	actor, _ := ctx.Value(actorKey{}).(gateway.Actor)
	if actor != OperatorActor() {
		return provision.Operator{}, newProblem(http.StatusForbidden, operatorOnly)
	}
	return provision.Operator{Actor: actor, RequestID: httpx.RequestID(ctx)}, nil
}

// OrgView is an organization with what the operator wants to know of it.
type OrgView struct {
	ID        gateway.OrgID    `json:"id"`
	Name      string           `json:"name"`
	Domains   []gateway.Domain `json:"domains"`
	Suspended bool             `json:"suspended"`
	DeletedAt time.Time        `json:"deleted_at,omitzero" doc:"set once deleted: its data is erased, and it leaves the list once its last events (org.deleted) are delivered"`
	Status    OrgStatus        `json:"status"`
	Created   time.Time        `json:"created"`
	Modified  time.Time        `json:"modified"`
	Version   uint64           `json:"version"`
}

// OrgStatus is how far an organization's setup has come.
type OrgStatus struct {
	SignIn             string `json:"sign_in" doc:"saml, oidc, external or none; \"\" until configured"`
	SignInConfigured   bool   `json:"sign_in_configured" doc:"people sign in through the organization's own IdP"`
	ProvisioningMethod string `json:"provisioning_method" doc:"manual, self_service, scim or jit; \"\" until configured"`
	Users              int    `json:"users"`
	// LastSCIMRequest is when its IdP last made an authenticated SCIM
	// request (to the minute).
	LastSCIMRequest time.Time `json:"last_scim_request,omitzero" doc:"when its IdP last made an authenticated SCIM request (to the minute); absent: never"`
}

func (a *API) orgView(ctx context.Context, o *gateway.Organization) (OrgView, error) {
	return ViewOrg(ctx, a.opts.Service, a.opts.Store, o)
}

// ViewOrg is an organization with its status, as the operator sees it.
func ViewOrg(ctx context.Context, svc *provision.Service, store gateway.Store, o *gateway.Organization) (OrgView, error) {
	st, _ := svc.Current(ctx, o.ID)
	_, users, err := store.Users().List(ctx, o.ID, 0, 0)
	if err != nil {
		return OrgView{}, err
	}
	seen, err := svc.LastSCIMRequest(ctx, o.ID)
	if err != nil {
		return OrgView{}, err
	}
	domains := o.Domains
	if domains == nil {
		domains = []gateway.Domain{}
	}
	return OrgView{ID: o.ID, Name: o.Name, Domains: domains, Suspended: o.Suspended, DeletedAt: o.DeletedAt, Created: o.Created, Modified: o.Modified, Version: o.Version,
		Status: OrgStatus{SignIn: st.SSO.Protocol, SignInConfigured: st.SSOSignIn(), ProvisioningMethod: string(st.Provisioning.Method), Users: users, LastSCIMRequest: seen}}, nil
}

type orgOutput struct {
	ETag string `header:"ETag"`
	Body OrgView
}

func (a *API) orgOutput(ctx context.Context, o *gateway.Organization) (*orgOutput, error) {
	v, err := a.orgView(ctx, o)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &orgOutput{ETag: etag(o.Version), Body: v}, nil
}

type orgInput struct {
	Org string `path:"org"`
}

type listOrgsInput struct {
	After string `query:"after" doc:"the next value of the previous page"`
	Limit int    `query:"limit" minimum:"1" maximum:"500" default:"50"`
}

type orgsOutput struct {
	Body struct {
		Orgs  []OrgView `json:"orgs"`
		Total int       `json:"total" doc:"how many organizations there are"`
		Next  string    `json:"next,omitempty" doc:"pass as after= for the next page; absent: last page"`
	}
}

type createOrgInput struct {
	Body struct {
		ID      string   `json:"id" doc:"fixed for ever, in URLs: lower-case letters, digits and inner hyphens, at most 63"`
		Name    string   `json:"name,omitempty" doc:"shown to people; default: the id"`
		Domains []string `json:"domains,omitempty" doc:"the email domains it owns (each at most one organization's); unverified until their DNS TXT record is checked"`
	}
}

type updateOrgInput struct {
	Org     string `path:"org"`
	IfMatch string `header:"If-Match" doc:"the ETag of the organization read, to refuse a change made meanwhile"`
	Body    struct {
		Name      *string   `json:"name,omitempty"`
		Domains   *[]string `json:"domains,omitempty" doc:"every domain it owns; a domain kept keeps its verification"`
		Suspended *bool     `json:"suspended,omitempty" doc:"true: every sign-in and SCIM request is refused and its sessions end at once; false: resumed"`
	}
}

func (a *API) listOrgs(ctx context.Context, in *listOrgsInput) (*orgsOutput, error) {
	if _, err := a.operator(ctx); err != nil {
		return nil, err
	}
	orgs, total, err := a.opts.Service.Orgs(ctx, gateway.OrgID(in.After), in.Limit+1)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &orgsOutput{}
	out.Body.Orgs, out.Body.Total = []OrgView{}, total
	if len(orgs) > in.Limit {
		orgs = orgs[:in.Limit]
		out.Body.Next = string(orgs[len(orgs)-1].ID)
	}
	for _, o := range orgs {
		v, err := a.orgView(ctx, o)
		if err != nil {
			return nil, a.fail(ctx, err)
		}
		out.Body.Orgs = append(out.Body.Orgs, v)
	}
	return out, nil
}

func (a *API) getOrg(ctx context.Context, in *orgInput) (*orgOutput, error) {
	if _, err := a.operator(ctx); err != nil {
		return nil, err
	}
	o, err := a.opts.Service.Org(ctx, gateway.OrgID(in.Org))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return a.orgOutput(ctx, o)
}

func (a *API) createOrg(ctx context.Context, in *createOrgInput) (*orgOutput, error) {
	op, err := a.operator(ctx)
	if err != nil {
		return nil, err
	}
	o, err := a.opts.Service.CreateOrg(ctx, op, provision.OrgSpec{ID: gateway.OrgID(in.Body.ID), Name: in.Body.Name, Domains: in.Body.Domains})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return a.orgOutput(ctx, o)
}

func (a *API) updateOrg(ctx context.Context, in *updateOrgInput) (*orgOutput, error) {
	op, err := a.operator(ctx)
	if err != nil {
		return nil, err
	}
	version, err := ifMatch(in.IfMatch)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	o, err := a.opts.Service.UpdateOrg(ctx, op, gateway.OrgID(in.Org), version, provision.OrgChange{Name: in.Body.Name, Domains: in.Body.Domains, Suspended: in.Body.Suspended})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return a.orgOutput(ctx, o)
}

type deleteOrgInput struct {
	Org     string `path:"org"`
	IfMatch string `header:"If-Match" doc:"the ETag of the organization read, to refuse a change made meanwhile"`
}

type deletedOrgOutput struct {
	Body OrgView
}

func (a *API) deleteOrg(ctx context.Context, in *deleteOrgInput) (*deletedOrgOutput, error) {
	op, err := a.operator(ctx)
	if err != nil {
		return nil, err
	}
	if gateway.OrgID(in.Org) == a.opts.Org {
		return nil, newProblem(http.StatusConflict, fmt.Sprintf("The organization %q is the one served at the gateway's unprefixed URLs; it cannot be deleted.", in.Org))
	}
	version, err := ifMatch(in.IfMatch)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	o, err := a.opts.Service.DeleteOrg(ctx, op, gateway.OrgID(in.Org), version)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	v, err := a.orgView(ctx, o)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &deletedOrgOutput{Body: v}, nil
}

// DomainView is one of an organization's domains and how to prove it.
type DomainView struct {
	Name       string    `json:"name"`
	Verified   bool      `json:"verified"`
	VerifiedAt time.Time `json:"verified_at,omitzero"`
	TXTName    string    `json:"txt_name" doc:"the DNS name to publish a TXT record at"`
	TXTValue   string    `json:"txt_value" doc:"the TXT record's value"`
}

// ViewDomain is a domain with the DNS record that proves it.
func ViewDomain(d gateway.Domain) DomainView {
	name, value := provision.DomainRecord(d)
	return DomainView{Name: d.Name, Verified: !d.VerifiedAt.IsZero(), VerifiedAt: d.VerifiedAt, TXTName: name, TXTValue: value}
}

type domainsOutput struct {
	Body struct {
		Domains []DomainView `json:"domains"`
	}
}

type domainOutput struct {
	Body DomainView
}

type domainInput struct {
	Domain string `path:"domain"`
}

func (a *API) listDomains(ctx context.Context, _ *struct{}) (*domainsOutput, error) {
	o, err := a.opts.Service.Org(ctx, a.org(ctx))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &domainsOutput{}
	out.Body.Domains = []DomainView{}
	for _, d := range o.Domains {
		out.Body.Domains = append(out.Body.Domains, ViewDomain(d))
	}
	return out, nil
}

func (a *API) verifyDomain(ctx context.Context, in *domainInput) (*domainOutput, error) {
	mg := a.manager(ctx)
	o, err := a.opts.Service.VerifyDomain(ctx, mg.Org, mg.Actor, mg.RequestID, in.Domain)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	name, _ := provision.NormalizeDomain(in.Domain)
	for _, d := range o.Domains {
		if d.Name == name {
			return &domainOutput{Body: ViewDomain(d)}, nil
		}
	}
	return nil, a.fail(ctx, gateway.Errorf(gateway.ErrNotFound, "the organization has no domain %s", name))
}

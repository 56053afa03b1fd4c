package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/fold"
)

// LoginError is a refused login: Reason is a fixed word (for metrics),
// Message the sentence the person sees.
type LoginError struct {
	Reason  string // no_email, unverified_email, domain, not_provisioned, deactivated
	Message string
}

func (e *LoginError) Error() string { return "login refused (" + e.Reason + "): " + e.Message }

// Unwrap makes a LoginError a forbidden domain error.
func (e *LoginError) Unwrap() error {
	return &gateway.Error{Code: gateway.ErrForbidden, Message: e.Message}
}

func refuse(reason, format string, args ...any) error {
	return &LoginError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Login applies the login policy to an identity an IdP vouched for (the
// one funnel after SAML and OIDC): it finds the user by email, creates it
// when SSO just-in-time provisioning is the active method, refreshes a JIT
// user's names from the IdP (never its pool or role), and refuses an
// unknown, deactivated or unverified person. created says a user was made.
func (s *Service) Login(ctx context.Context, org gateway.OrgID, id gateway.Identity) (u *gateway.User, created bool, err error) {
	email := strings.TrimSpace(id.Email)
	switch {
	case email == "" || !strings.Contains(email, "@"):
		return nil, false, refuse("no_email", "The identity provider sent no email address for this account; ask your administrator to release the email attribute to this application.")
	}
	if err := s.emailProven(ctx, org, id, email, "sign in here"); err != nil {
		return nil, false, err
	}
	policy := s.policy(org)
	if domains := policy.AllowedDomains; len(domains) > 0 {
		domain := strings.ToLower(email[strings.LastIndexByte(email, '@')+1:])
		if !slices.Contains(domains, domain) {
			return nil, false, refuse("domain", "Accounts of %s cannot sign in here; ask a manager.", domain)
		}
	}
	if policy.VerifiedDomainsOnly {
		if err := s.checkVerifiedDomain(ctx, org, email); err != nil {
			return nil, false, err
		}
	}
	u, err = s.findByEmail(ctx, org, email)
	if err != nil {
		return nil, false, err
	}
	if s.isBootstrapManager(org, email) {
		return s.bootstrapManager(ctx, org, u, id, email)
	}
	if u == nil {
		if policy.Method == gateway.SourceSelfService {
			return nil, false, refuse("not_provisioned", "You have no account in this application yet; join through the organization's self-service link.")
		}
		if policy.Method != gateway.SourceJIT {
			return nil, false, refuse("not_provisioned", "Your account has not been provisioned in this application; ask a manager to add you.")
		}
		nu := &gateway.User{UserName: strings.ToLower(email), Active: true, GivenName: id.GivenName, FamilyName: id.FamilyName,
			DisplayName: strings.TrimSpace(id.GivenName + " " + id.FamilyName), Emails: []string{strings.ToLower(email)},
			Pools: mappedPools(policy.GroupPools, id.Groups)}
		u, err = s.CreateUser(ctx, Meta{Org: org, Source: gateway.SourceJIT}, nu)
		if gateway.ErrorCodeOf(err) == gateway.ErrConflict {
			// Two first logins at once: the other one created it.
			if u, err = s.findByEmail(ctx, org, email); err == nil && u == nil {
				err = errors.New("the user created by a concurrent login is gone")
			}
			return s.admit(ctx, org, u, id, err)
		}
		if err != nil {
			return nil, false, err
		}
		if err := s.groupsFromIdP(ctx, org, u, id); err != nil {
			return nil, false, err
		}
		return u, true, nil
	}
	return s.admit(ctx, org, u, id, nil)
}

// emailProven checks that the identity's address is the person's: the
// IdP verified it, or (an IdP that does not verify addresses, such as
// Entra) it is at one of the organization's verified domains. what is
// what the address would be used for, in the refusal.
func (s *Service) emailProven(ctx context.Context, org gateway.OrgID, id gateway.Identity, email, what string) error {
	switch {
	case id.EmailVerified:
		return nil
	case !id.EmailAtVerifiedDomain:
		return refuse("unverified_email", "The identity provider has not verified the email address %s, so it cannot be used to %s.", email, what)
	}
	// The IdP vouches for the person, not the address (Entra lets a
	// tenant's admin set any): only an address at one of the
	// organization's verified domains names them.
	err := s.checkVerifiedDomain(ctx, org, email)
	var refused *LoginError
	if errors.As(err, &refused) {
		return refuse("unverified_email", "Your identity provider does not prove that %s is yours, so it is trusted only at this organization's verified domains. %s", email, refused.Message)
	}
	return err
}

// groupsFromIdP syncs a JIT user's groups when the IdP sent the groups
// claim at all (nil: not sent, memberships untouched).
func (s *Service) groupsFromIdP(ctx context.Context, org gateway.OrgID, u *gateway.User, id gateway.Identity) error {
	if id.Groups == nil || u.Source != gateway.SourceJIT || s.policy(org).Method != gateway.SourceJIT {
		return nil
	}
	return s.syncJITGroups(ctx, org, u, id.Groups)
}

// admit checks an existing user and refreshes a JIT user's names.
func (s *Service) admit(ctx context.Context, org gateway.OrgID, u *gateway.User, id gateway.Identity, err error) (*gateway.User, bool, error) {
	if err != nil {
		return nil, false, err
	}
	if !u.Active {
		return nil, false, refuse("deactivated", "Your account is deactivated in this application; ask a manager.")
	}
	if err := s.groupsFromIdP(ctx, org, u, id); err != nil {
		return nil, false, err
	}
	if u.Source != gateway.SourceJIT || s.policy(org).Method != gateway.SourceJIT ||
		(u.GivenName == id.GivenName && u.FamilyName == id.FamilyName) || id.GivenName == "" && id.FamilyName == "" {
		return u, false, nil
	}
	nu, err := s.UpdateUser(ctx, Meta{Org: org, Source: gateway.SourceJIT}, u.ID, 0, func(old *gateway.User) (*gateway.User, error) {
		old.GivenName, old.FamilyName = id.GivenName, id.FamilyName
		old.DisplayName = strings.TrimSpace(id.GivenName + " " + id.FamilyName)
		return old, nil // pool and role stay the app's
	})
	return nu, false, err
}

// findByEmail finds the user whose userName is the address (any case), or
// else the one user holding it as an email (Entra often sets a userName
// that is not the mail).
func (s *Service) findByEmail(ctx context.Context, org gateway.OrgID, email string) (*gateway.User, error) {
	users := s.store.Users()
	for _, index := range []gateway.UserIndex{gateway.UserByUserName, gateway.UserByEmail} {
		ids, err := users.Lookup(ctx, org, index, email)
		if err != nil {
			return nil, err
		}
		if len(ids) == 1 {
			u, err := users.Get(ctx, org, ids[0])
			if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
				return nil, nil
			}
			return u, err
		}
		if len(ids) > 1 {
			return nil, refuse("not_provisioned", "More than one account holds %s; ask a manager to sort it out.", email)
		}
	}
	return nil, nil
}

// SetBootstrapManagers names the emails that get the manager role when
// they sign in (admin.bootstrap_managers), so that a fresh deployment is
// never locked out.
func (s *Service) SetBootstrapManagers(org gateway.OrgID, emails []string) {
	set := make(map[string]bool, len(emails))
	for _, e := range emails {
		set[strings.ToLower(strings.TrimSpace(e))] = true
	}
	s.bootstrap.Store(org, set)
}

func (s *Service) isBootstrapManager(org gateway.OrgID, email string) bool {
	set, ok := s.bootstrap.Load(org)
	return ok && set.(map[string]bool)[strings.ToLower(email)]
}

// bootstrapManager signs in a bootstrap manager: created when unknown
// (whatever the method; by JIT when that is the method), made a manager
// when it holds another role, refused only when deactivated, and then
// admitted as anyone is (a JIT user's groups and names from the IdP).
func (s *Service) bootstrapManager(ctx context.Context, org gateway.OrgID, u *gateway.User, id gateway.Identity, email string) (*gateway.User, bool, error) {
	mg := Manager{Org: org, Actor: gateway.Actor{Kind: gateway.ActorConfig, ID: "admin.bootstrap_managers"}}
	created := false
	if u == nil {
		nu := &gateway.User{UserName: strings.ToLower(email), Active: true, GivenName: id.GivenName, FamilyName: id.FamilyName,
			DisplayName: strings.TrimSpace(id.GivenName + " " + id.FamilyName), Emails: []string{strings.ToLower(email)}, Role: gateway.RoleManager}
		var err error
		if s.policy(org).Method == gateway.SourceJIT {
			u, err = s.createUser(ctx, Meta{Org: org, Source: gateway.SourceJIT}, nu, func(nu *gateway.User) []gateway.AuditEntry {
				return []gateway.AuditEntry{s.auditEntry(mg.Actor, "", "user.bootstrap", "user:"+nu.ID, nil, Summarize(nu))}
			})
		} else {
			u, err = s.addUser(ctx, mg, nu, "user.bootstrap")
		}
		if gateway.ErrorCodeOf(err) == gateway.ErrConflict {
			u, err = s.findByEmail(ctx, org, email)
		}
		if err != nil {
			return nil, false, err
		}
		created = u.Source == gateway.SourceJIT
	}
	if !u.Active {
		return nil, false, refuse("deactivated", "Your account is deactivated in this application; ask a manager.")
	}
	if u.Role != gateway.RoleManager {
		role := gateway.RoleManager
		var err error
		if u, err = s.ChangeUser(ctx, mg, u.ID, 0, UserPatch{Role: &role}); err != nil {
			return nil, false, err
		}
	}
	// Then as every sign-in: the IdP's groups and names for a JIT user.
	u, _, err := s.admit(ctx, org, u, id, nil)
	return u, created, err
}

// mappedPools are the pools a new JIT user's IdP groups map to (nil: none
// does, and the user gets the default pool).
func mappedPools(mapping map[string]string, groups []string) []string {
	var pools []string
	for _, g := range groups {
		if p, ok := mapping[fold.Key(strings.TrimSpace(g))]; ok && !slices.Contains(pools, p) {
			pools = append(pools, p)
		}
	}
	slices.Sort(pools)
	return pools
}

// Join is the self-service link (method self_service): a person whose
// verified email is in the organization's domains creates their own
// account (source self_service, the default pool and role). Someone who
// has an account already just signs in.
func (s *Service) Join(ctx context.Context, org gateway.OrgID, id gateway.Identity) (*gateway.User, bool, error) {
	policy := s.policy(org)
	if policy.Method != gateway.SourceSelfService {
		return nil, false, refuse("join_off", "Self-service registration is not open here: accounts come from %s. Ask a manager.", methodName(policy.Method))
	}
	email := strings.ToLower(strings.TrimSpace(id.Email))
	switch {
	case email == "" || !strings.Contains(email, "@"):
		return nil, false, refuse("no_email", "The identity provider sent no email address for this account; ask your administrator to release the email attribute to this application.")
	}
	if err := s.emailProven(ctx, org, id, email, "join"); err != nil {
		return nil, false, err
	}
	domain := email[strings.LastIndexByte(email, '@')+1:]
	if !slices.Contains(policy.EmailDomains, domain) {
		return nil, false, refuse("join_domain", "Only addresses at %s can join here; %s is not one of them.", strings.Join(policy.EmailDomains, ", "), email)
	}
	if err := s.checkJoinDomain(ctx, org, domain); err != nil {
		return nil, false, err
	}
	if u, err := s.findByEmail(ctx, org, email); err != nil || u != nil {
		return u, false, err
	}
	nu := &gateway.User{UserName: email, Active: true, GivenName: id.GivenName, FamilyName: id.FamilyName,
		DisplayName: strings.TrimSpace(id.GivenName + " " + id.FamilyName), Emails: []string{email}}
	u, err := s.createUser(ctx, Meta{Org: org, Source: gateway.SourceSelfService}, nu, nil)
	if gateway.ErrorCodeOf(err) == gateway.ErrConflict {
		u, err = s.findByEmail(ctx, org, email)
		return u, false, err
	}
	return u, err == nil, err
}

// checkJoinDomain binds the self-service link to the organization's own
// domains: a domain in the registry joins only the organization holding
// it, once verified; a domain nobody registered is the manager's choice
// (a gateway from before organizations).
func (s *Service) checkJoinDomain(ctx context.Context, org gateway.OrgID, domain string) error {
	name, err := NormalizeDomain(domain)
	if err != nil {
		return refuse("join_domain", "Addresses at %s cannot join here.", domain)
	}
	holder, err := s.store.Orgs().ByDomain(ctx, name)
	switch {
	case err != nil:
		return err
	case holder == "":
		return nil
	case holder != org:
		return refuse("join_domain", "Addresses at %s belong to another organization of this application, so they cannot join this one.", domain)
	}
	if verified, err := s.verifiedHolder(ctx, name); err != nil || verified == org {
		return err
	}
	return refuse("join_domain", "The domain %s is not verified for this organization yet, so its addresses cannot join; your administrator verifies it first (a DNS TXT record).", domain)
}

// checkVerifiedDomain refuses an email that is not at one of the
// organization's verified domains (its setting "only people of our
// verified domains"), saying which domains are.
func (s *Service) checkVerifiedDomain(ctx context.Context, org gateway.OrgID, email string) error {
	domain, err := NormalizeDomain(email[strings.LastIndexByte(email, '@')+1:])
	if err == nil {
		var holder gateway.OrgID
		if holder, err = s.verifiedHolder(ctx, domain); err == nil && holder == org {
			return nil
		}
	}
	if err != nil && gateway.ErrorCodeOf(err) != gateway.ErrInvalid {
		return err
	}
	var verified []string
	if o, err := s.store.Orgs().Get(ctx, org); err == nil {
		for _, d := range o.Domains {
			if !d.VerifiedAt.IsZero() {
				verified = append(verified, d.Name)
			}
		}
	}
	if len(verified) == 0 {
		return refuse("domain", "Only people with an address at one of this organization's verified domains may sign in here, and it has verified none yet; ask your administrator.")
	}
	return refuse("domain", "Only people with an address at %s may sign in here; %s is not one of them.", strings.Join(verified, " or "), email)
}

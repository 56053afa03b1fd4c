package provision

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// maxOrgDomains bounds an organization's domains (each is a registry key
// and, later, a DNS lookup).
const maxOrgDomains = 100

// OrgSpec is what the operator says an organization is.
type OrgSpec struct {
	ID      gateway.OrgID
	Name    string
	Domains []string
}

// OrgChange is a partial change to an organization: nil leaves a field
// as it is.
type OrgChange struct {
	Name      *string
	Domains   *[]string
	Suspended *bool
}

// Operator is the command context of the operator's calls (the registry
// of organizations is not any organization's).
type Operator struct {
	Actor     gateway.Actor
	RequestID string
}

// CreateOrg adds an organization to the registry; its domains start
// unverified.
func (s *Service) CreateOrg(ctx context.Context, op Operator, spec OrgSpec) (*gateway.Organization, error) {
	if err := spec.ID.Check(); err != nil {
		return nil, err
	}
	if spec.Name == "" {
		spec.Name = string(spec.ID)
	}
	if err := validOrgName(spec.Name); err != nil {
		return nil, err
	}
	domains, err := orgDomains(spec.Domains, nil)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	o := &gateway.Organization{ID: spec.ID, Name: spec.Name, Domains: domains, Created: now, Modified: now, Version: 1, UpdatedBy: op.Actor}
	if err := s.store.Orgs().Create(ctx, o, s.auditEntry(op.Actor, op.RequestID, "org.create", "org:"+string(o.ID), nil, o)); err != nil {
		return nil, err
	}
	if err := s.seedOrg(ctx, o.ID, op); err != nil {
		return nil, fmt.Errorf("organization %q is registered, but its settings are not stored yet (they are until they are): %w", o.ID, err)
	}
	s.orgHooks.mu.Lock()
	watchers := slices.Clone(s.orgHooks.fns)
	s.orgHooks.mu.Unlock()
	for _, fn := range watchers {
		fn(o.ID)
	}
	return o, nil
}

// orgHooks: who is told of each organization created here (other
// replicas' are found by scanning the registry).
type orgHooks struct {
	mu      sync.Mutex
	fns     []func(org gateway.OrgID)
	deleted []func(org gateway.OrgID)
	txt     TXTResolver
}

// OnOrgCreated registers fn, called after an organization is created.
func (s *Service) OnOrgCreated(fn func(org gateway.OrgID)) {
	s.orgHooks.mu.Lock()
	defer s.orgHooks.mu.Unlock()
	s.orgHooks.fns = append(s.orgHooks.fns, fn)
}

// seedOrg stores a new organization's first settings and its default
// pool (a retry, or another replica, finding them there leaves them).
func (s *Service) seedOrg(ctx context.Context, org gateway.OrgID, op Operator) error {
	start, ok := s.newOrgSettings()
	if !ok {
		return nil // the wiring serves one organization, set up from the file
	}
	if _, err := s.storeSettings(ctx, org, op.Actor, op.RequestID, 0, Settings{}, start, "identity.seed"); err != nil && gateway.ErrorCodeOf(err) != gateway.ErrConflict {
		return err
	}
	if err := s.ensurePool(ctx, org, op.Actor, start.Provisioning.DefaultPool); err != nil {
		return err
	}
	return s.ensureRoles(ctx, org, op.Actor)
}

// EnsureOrg registers an organization the wiring serves from the
// configuration file (the default one) unless it is registered already;
// its settings are the file's (LoadSettings), never a new one's.
func (s *Service) EnsureOrg(ctx context.Context, id gateway.OrgID, name string) error {
	if _, err := s.store.Orgs().Get(ctx, id); gateway.ErrorCodeOf(err) != gateway.ErrNotFound {
		return err
	}
	now := s.clock.Now()
	o := &gateway.Organization{ID: id, Name: name, Created: now, Modified: now, Version: 1, UpdatedBy: gateway.Actor{Kind: gateway.ActorSystem, ID: "gatehouse"}}
	err := s.store.Orgs().Create(ctx, o, s.auditEntry(gateway.Actor{Kind: gateway.ActorSystem, ID: "gatehouse"}, "", "org.create", "org:"+string(id), nil, o))
	if gateway.ErrorCodeOf(err) == gateway.ErrConflict {
		return nil // another replica registered it first
	}
	return err
}

// Org reads one organization of the registry.
func (s *Service) Org(ctx context.Context, id gateway.OrgID) (*gateway.Organization, error) {
	if err := id.Check(); err != nil {
		return nil, gateway.Errorf(gateway.ErrNotFound, "there is no organization %q", string(id))
	}
	return s.store.Orgs().Get(ctx, id)
}

// Orgs lists the registry in id order after after, and how many there are.
func (s *Service) Orgs(ctx context.Context, after gateway.OrgID, limit int) ([]*gateway.Organization, int, error) {
	return s.store.Orgs().List(ctx, after, limit)
}

// liveOrg reads an organization the operator changes: not deleted, and
// at ifVersion (0: whatever its version).
func (s *Service) liveOrg(ctx context.Context, id gateway.OrgID, ifVersion uint64) (*gateway.Organization, error) {
	cur, err := s.Org(ctx, id)
	switch {
	case err != nil:
		return nil, err
	case !cur.DeletedAt.IsZero():
		return nil, gateway.Errorf(gateway.ErrNotFound, "there is no organization %q: it was deleted", string(id))
	case ifVersion != 0 && ifVersion != cur.Version:
		return nil, gateway.Errorf(gateway.ErrPreconditionFailed, "organization %q has changed (its version is %d): read it again and retry", id, cur.Version)
	}
	return cur, nil
}

// UpdateOrg renames an organization or replaces its domains (a domain
// kept keeps its verification; ifVersion 0: whatever its version).
func (s *Service) UpdateOrg(ctx context.Context, op Operator, id gateway.OrgID, ifVersion uint64, change OrgChange) (*gateway.Organization, error) {
	cur, err := s.liveOrg(ctx, id, ifVersion)
	if err != nil {
		return nil, err
	}
	next := *cur
	if change.Name != nil {
		if err := validOrgName(*change.Name); err != nil {
			return nil, err
		}
		next.Name = *change.Name
	}
	if change.Domains != nil {
		if next.Domains, err = orgDomains(*change.Domains, cur.Domains); err != nil {
			return nil, err
		}
	}
	action := "org.update"
	if change.Suspended != nil && *change.Suspended != cur.Suspended {
		next.Suspended = *change.Suspended
		action = map[bool]string{true: "org.suspend", false: "org.resume"}[next.Suspended]
	}
	next.Modified = s.clock.Now()
	next.Version = cur.Version + 1
	next.UpdatedBy = op.Actor
	if err := s.store.Orgs().Replace(ctx, &next, cur.Version, s.auditEntry(op.Actor, op.RequestID, action, "org:"+string(id), cur, &next)); err != nil {
		return nil, err
	}
	if next.Suspended {
		// Its people are signed out at once; sign-ins are refused from now
		// (CheckActive). Retried by a repeated suspend if this fails.
		if _, err := s.store.Sessions().DeleteAll(ctx, id); err != nil {
			return nil, fmt.Errorf("organization %q is suspended, but its sessions could not be ended (suspend it again): %w", id, err)
		}
	}
	return &next, nil
}

// CheckOrg says whether org is an organization of the registry: an
// ErrInvalid or ErrNotFound error when it is not (or is being deleted).
// A URL naming one is checked here before anything of it is served.
func (s *Service) CheckOrg(ctx context.Context, org gateway.OrgID) error {
	if err := org.Check(); err != nil {
		return err
	}
	o, err := s.store.Orgs().Get(ctx, org)
	if err == nil && !o.DeletedAt.IsZero() {
		return gateway.Errorf(gateway.ErrNotFound, "there is no organization %q: it was deleted", string(org))
	}
	return err
}

// OnOrgDeleted registers fn, called after an organization's deletion
// started (its data is erased; its outbox is still to be delivered).
func (s *Service) OnOrgDeleted(fn func(org gateway.OrgID)) {
	s.orgHooks.mu.Lock()
	defer s.orgHooks.mu.Unlock()
	s.orgHooks.deleted = append(s.orgHooks.deleted, fn)
}

// orgDeletionRecord is the record whose write carries org.deleted into
// the organization's outbox (and is erased right after).
const orgDeletionRecord = "org-deletion"

// DeleteOrg deletes an organization: from now on it is gone for everyone
// (sign-ins, SCIM, the admin API; its sessions end, its domains are free
// for another), org.deleted is its last event, and all its data is erased
// but that outbox, which FinishOrgDeletion removes once delivered. The
// operator's audit log keeps the deletion.
func (s *Service) DeleteOrg(ctx context.Context, op Operator, id gateway.OrgID, ifVersion uint64) (*gateway.Organization, error) {
	cur, err := s.liveOrg(ctx, id, ifVersion)
	if err != nil {
		return nil, err
	}
	next := *cur
	next.Domains, next.DeletedAt = nil, s.clock.Now()
	next.Modified, next.Version, next.UpdatedBy = next.DeletedAt, cur.Version+1, op.Actor
	if err := s.store.Orgs().Replace(ctx, &next, cur.Version, s.auditEntry(op.Actor, op.RequestID, "org.delete", "org:"+string(id), cur, &next)); err != nil {
		return nil, err
	}
	if err := s.EraseOrg(ctx, id); err != nil {
		return nil, fmt.Errorf("organization %q is deleted, but erasing its data failed (the gateway retries): %w", id, err)
	}
	return &next, nil
}

// eraseLock orders the steps of one organization's deletion in this
// process (the request's erasure, the retries, the final removal): none
// runs twice at once, and none runs after the organization is gone.
func (s *Service) eraseLock(ctx context.Context, id gateway.OrgID) (func(), error) {
	return s.locks.lock(ctx, "org-deletion\x00"+string(id))
}

// EraseOrg does what a deletion does after it is recorded, and can do
// again after a crash: org.deleted as the last event, the data erased,
// the settings in force forgotten, the hooks told. An organization no
// longer in the registry (its deletion finished) is ErrNotFound, and
// nothing is written.
func (s *Service) EraseOrg(ctx context.Context, id gateway.OrgID) error {
	unlock, err := s.eraseLock(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	o, err := s.store.Orgs().Get(ctx, id)
	switch {
	case err != nil:
		return err
	case o.DeletedAt.IsZero():
		return gateway.Errorf(gateway.ErrConflict, "organization %q is not deleted", string(id))
	}
	last, err := s.store.Outbox().LastSeq(ctx, o.ID)
	if err != nil {
		return err
	}
	var recorded bool
	if last > 0 {
		evs, err := s.store.Outbox().After(ctx, o.ID, last-1, 1)
		if err != nil {
			return err
		}
		recorded = len(evs) == 1 && evs[0].Op == gateway.OpOrgDeleted
	}
	if !recorded {
		ev := s.event(Meta{Org: o.ID, Source: gateway.SourceOperator}, gateway.OpOrgDeleted)
		ev.Organization = &gateway.OrgRef{ID: o.ID, Name: o.Name}
		if _, err := s.store.Records().Put(ctx, o.ID, orgDeletionRecord, NewID(), 0, []byte(`{}`), gateway.Journal{Events: []gateway.Event{ev}}); err != nil {
			return err
		}
	}
	if err := s.store.Orgs().EraseData(ctx, o.ID); err != nil {
		return err
	}
	s.forgetOrg(o.ID)
	s.orgHooks.mu.Lock()
	hooks := slices.Clone(s.orgHooks.deleted)
	s.orgHooks.mu.Unlock()
	for _, fn := range hooks {
		fn(o.ID)
	}
	return nil
}

// FinishOrgDeletion removes a deleted organization's registry entry and
// what is left of it (its outbox), once every consumer is past its last
// event: the caller (the delivery) says so.
func (s *Service) FinishOrgDeletion(ctx context.Context, id gateway.OrgID) error {
	unlock, err := s.eraseLock(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	o, err := s.store.Orgs().Get(ctx, id)
	if err != nil {
		return err
	}
	if o.DeletedAt.IsZero() {
		return gateway.Errorf(gateway.ErrConflict, "organization %q is not deleted", string(id))
	}
	actor := gateway.Actor{Kind: gateway.ActorSystem, ID: "gatehouse"}
	return s.store.Orgs().Delete(ctx, id, o.Version, s.auditEntry(actor, "", "org.erased", "org:"+string(id), o, nil))
}

// forgetOrg drops what this process keeps of an organization's settings:
// one created again under its id starts from its own.
func (s *Service) forgetOrg(org gateway.OrgID) {
	s.settings.mu.Lock()
	delete(s.settings.current, org)
	s.settings.mu.Unlock()
	s.policies.Delete(org)
	s.seen.mu.Lock()
	delete(s.seen.at, org)
	s.seen.mu.Unlock()
}

// OrgForEmail is the organization that holds the email address's domain,
// verified ("" when none does, or its holder has not proven it in DNS
// yet): home-realm discovery routes only what is proven. An address
// without a domain is ErrInvalid.
func (s *Service) OrgForEmail(ctx context.Context, email string) (gateway.OrgID, error) {
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return "", gateway.Errorf(gateway.ErrInvalid, "%q is not an email address", email)
	}
	domain, err := NormalizeDomain(email[at+1:])
	if err != nil {
		return "", err
	}
	return s.verifiedHolder(ctx, domain)
}

// verifiedHolder is the organization holding domain (normalized) once
// it is verified, or "".
func (s *Service) verifiedHolder(ctx context.Context, domain string) (gateway.OrgID, error) {
	org, err := s.store.Orgs().ByDomain(ctx, domain)
	if err != nil || org == "" {
		return "", err
	}
	o, err := s.store.Orgs().Get(ctx, org)
	if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if i := slices.IndexFunc(o.Domains, func(d gateway.Domain) bool { return d.Name == domain }); i >= 0 && !o.Domains[i].VerifiedAt.IsZero() {
		return org, nil
	}
	return "", nil
}

// SingleOrg reports whether the registry holds at most one organization
// (a gateway serving one customer, as before organizations).
func (s *Service) SingleOrg(ctx context.Context) (bool, error) {
	orgs, _, err := s.store.Orgs().List(ctx, "", 2)
	return len(orgs) <= 1, err
}

// CheckActive refuses what an organization's people start (sign-ins,
// SCIM requests) while the operator has it suspended: a *LoginError with
// reason suspended.
func (s *Service) CheckActive(ctx context.Context, org gateway.OrgID) error {
	o, err := s.store.Orgs().Get(ctx, org)
	switch {
	case gateway.ErrorCodeOf(err) == gateway.ErrNotFound:
		return nil // not registered: nothing of it is served, nothing to suspend
	case err != nil:
		return err
	case !o.DeletedAt.IsZero():
		return &LoginError{Reason: "deleted", Message: fmt.Sprintf("%s no longer uses this application.", o.Name)}
	case o.Suspended:
		return &LoginError{Reason: "suspended", Message: fmt.Sprintf("Access for %s is suspended.", o.Name)}
	}
	return nil
}

func validOrgName(name string) error {
	if strings.TrimSpace(name) == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > 200 || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return gateway.Errorf(gateway.ErrInvalid, "an organization's name is 1 to 200 printable characters")
	}
	return nil
}

// orgDomains normalizes the domains given (IDNA to ASCII, lower case,
// without the root's dot, each once), keeping the verification of those
// already held in cur.
func orgDomains(given []string, cur []gateway.Domain) ([]gateway.Domain, error) {
	if len(given) > maxOrgDomains {
		return nil, gateway.Errorf(gateway.ErrInvalid, "an organization holds at most %d domains", maxOrgDomains)
	}
	var out []gateway.Domain
	for _, raw := range given {
		name, err := NormalizeDomain(raw)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(out, func(d gateway.Domain) bool { return d.Name == name }) {
			continue
		}
		d := gateway.Domain{Name: name, Token: NewToken()}
		if i := slices.IndexFunc(cur, func(c gateway.Domain) bool { return c.Name == name }); i >= 0 {
			d = cur[i]
		}
		out = append(out, d)
	}
	return out, nil
}

// NormalizeDomain is an email domain as the registry holds it: a DNS
// name of at least two labels, in ASCII (IDNA), lower case, without the
// root's trailing dot.
func NormalizeDomain(raw string) (string, error) {
	name := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(raw), "."))
	ascii, err := idna.Registration.ToASCII(name)
	tld := ascii[strings.LastIndexByte(ascii, '.')+1:]
	if err != nil || !strings.Contains(ascii, ".") || len(ascii) > 253 || strings.Trim(tld, "0123456789") == "" {
		return "", gateway.Errorf(gateway.ErrInvalid, "%q is not an email domain (e.g. example.com)", raw)
	}
	return ascii, nil
}

// DomainRecord is the DNS TXT record that proves an organization holds a
// domain: its name and the value to publish.
func DomainRecord(d gateway.Domain) (name, value string) {
	return "_gatehouse." + d.Name, "gatehouse-verification=" + d.Token
}

// TXTResolver looks up a name's TXT records.
type TXTResolver func(ctx context.Context, name string) ([]string, error)

// SetTXTResolver sets how domain verification asks DNS.
func (s *Service) SetTXTResolver(fn TXTResolver) {
	s.orgHooks.mu.Lock()
	defer s.orgHooks.mu.Unlock()
	s.orgHooks.txt = fn
}

// VerifyDomain checks that the organization's domain publishes its
// record in DNS and, when it does, marks it verified (audited in the
// operator's scope, with the caller). A record not (yet) there is
// ErrInvalid, saying what was found; DNS not answering, ErrUnavailable.
func (s *Service) VerifyDomain(ctx context.Context, org gateway.OrgID, actor gateway.Actor, requestID, domain string) (*gateway.Organization, error) {
	name, err := NormalizeDomain(domain)
	if err != nil {
		return nil, err
	}
	cur, err := s.Org(ctx, org)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(cur.Domains, func(d gateway.Domain) bool { return d.Name == name })
	if i < 0 {
		return nil, gateway.Errorf(gateway.ErrNotFound, "the organization has no domain %s (the operator adds domains)", name)
	}
	if !cur.Domains[i].VerifiedAt.IsZero() {
		return cur, nil
	}
	s.orgHooks.mu.Lock()
	lookup := s.orgHooks.txt
	s.orgHooks.mu.Unlock()
	if lookup == nil {
		return nil, gateway.Errorf(gateway.ErrUnavailable, "domain verification is not set up on this gateway")
	}
	record, want := DomainRecord(cur.Domains[i])
	found, err := lookup(ctx, record)
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		found = nil
	case err != nil:
		return nil, gateway.Errorf(gateway.ErrUnavailable, "DNS did not answer for %s: %v; try again shortly", record, err)
	}
	if !slices.Contains(found, want) {
		seen := "none"
		if len(found) > 0 {
			seen = strconv.Quote(strings.Join(found, `", "`))
		}
		return nil, gateway.Errorf(gateway.ErrInvalid, "%s has no TXT record %q yet (found: %s); add it at the domain's DNS host and try again (DNS changes can take a while to show)", record, want, seen)
	}
	next := *cur
	next.Domains = slices.Clone(cur.Domains)
	next.Domains[i].VerifiedAt = s.clock.Now()
	next.Modified = next.Domains[i].VerifiedAt
	next.Version = cur.Version + 1
	next.UpdatedBy = actor
	if err := s.store.Orgs().Replace(ctx, &next, cur.Version, s.auditEntry(actor, requestID, "org.domain_verified", "org:"+string(org)+"/domain:"+name, cur, &next)); err != nil {
		return nil, err
	}
	return &next, nil
}

// ApplyFileOrgs brings the organizations the configuration file declares
// into the registry at start: a missing one is created; one the file
// wrote last (or any, with fromFile) takes the file's name and domains;
// one a person changed since keeps its values, and the returned
// conflicts say so. Organizations the file does not name stay.
func (s *Service) ApplyFileOrgs(ctx context.Context, specs []OrgSpec, fromFile bool) (conflicts []string, err error) {
	file := Operator{Actor: fileActor()}
	for _, spec := range specs {
		if spec.Name == "" {
			spec.Name = string(spec.ID)
		}
		cur, err := s.store.Orgs().Get(ctx, spec.ID)
		if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
			if _, err := s.CreateOrg(ctx, file, spec); err != nil {
				return nil, fmt.Errorf("organization %q from the configuration file: %w", spec.ID, err)
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		want, err := orgDomains(spec.Domains, cur.Domains)
		if err != nil {
			return nil, fmt.Errorf("organization %q from the configuration file: %w", spec.ID, err)
		}
		same := cur.Name == spec.Name && slices.EqualFunc(want, cur.Domains, func(a, b gateway.Domain) bool { return a.Name == b.Name })
		switch {
		case same:
		case fromFile || cur.UpdatedBy == fileActor():
			if _, err := s.UpdateOrg(ctx, file, spec.ID, cur.Version, OrgChange{Name: &spec.Name, Domains: &spec.Domains}); err != nil {
				return nil, fmt.Errorf("organization %q from the configuration file: %w", spec.ID, err)
			}
		default:
			conflicts = append(conflicts, fmt.Sprintf("organization %q: the configuration file's name or domains differ from what %s changed at %s through the admin API, which stays in force; "+
				"make the file say the same, or start once with admin.identity_source: file", spec.ID, cur.UpdatedBy.String(), cur.Modified.UTC().Format(time.RFC3339)))
		}
	}
	return conflicts, nil
}

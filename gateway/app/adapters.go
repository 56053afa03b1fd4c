package app

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/gatehouse-id/gatehouse/adapters"
	"github.com/gatehouse-id/gatehouse/adapters/smtp"
	"github.com/gatehouse-id/gatehouse/config"
	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/outbox"
	"github.com/gatehouse-id/gatehouse/gateway/store/postgres"
)

// MailAdapterID is the delivery id of the built-in mailer (email.smtp).
const MailAdapterID = "email"

// configuredAdapter is one adapter of the configuration, decoded, its
// secrets resolved.
type configuredAdapter struct {
	id, typ string
	cfg     gateway.AdapterConfig
	orgs    []gateway.OrgID // none: every organization's events
}

// loadAdapters decodes and checks every configured adapter (the
// directory alone when none is), returning every problem with its full
// key path. It records each decoded config in cfg so that the printed
// configuration shows them redacted.
func loadAdapters(cfg *config.Config) ([]configuredAdapter, []config.Problem) {
	entries := cfg.Adapters
	if len(entries) == 0 {
		entries = config.Adapters{{ID: adapters.DefaultType, Type: adapters.DefaultType}}
	}
	var out []configuredAdapter
	var problems []config.Problem
	for i, e := range entries {
		path := fmt.Sprintf("adapters[%d]", i)
		if e.Type == "" {
			continue // config.Validate reports it
		}
		ac, err := adapters.Decode(e.Type, e.DecodeConfig)
		if err != nil {
			where := path + ".config"
			if ac == nil && e.Type != "" {
				if _, known := adapters.Types()[e.Type]; !known {
					where = path + ".type"
				}
			}
			problems = append(problems, config.Problem{Path: where, Message: err.Error()})
			continue
		}
		for _, p := range adapters.ResolveSecrets(ac, cfg.LookupEnv, os.ReadFile) {
			problems = append(problems, config.Problem{Path: path + ".config." + p.Path, Message: p.Message})
		}
		for _, p := range ac.Validate() {
			problems = append(problems, config.Problem{Path: path + ".config." + p.Path, Message: p.Message})
		}
		if i < len(cfg.Adapters) {
			cfg.Adapters[i].Decoded = ac
		}
		var orgs []gateway.OrgID
		for j, o := range e.Orgs {
			if err := gateway.OrgID(o).Check(); err != nil {
				problems = append(problems, config.Problem{Path: fmt.Sprintf("%s.orgs[%d]", path, j), Message: gateway.ErrorMessageOf(err)})
			}
			orgs = append(orgs, gateway.OrgID(o))
		}
		out = append(out, configuredAdapter{id: e.ID, typ: e.Type, cfg: ac, orgs: orgs})
	}
	if s := cfg.Email.SMTP; s.Host != "" {
		// Invitations are mailed through the outbox like every delivery:
		// nothing is lost while the mail server is down.
		mailer := &smtp.Config{Host: s.Host, Port: s.Port, Username: s.Username, Password: s.Password, From: s.From, TLS: s.TLS}
		for _, p := range mailer.Validate() {
			problems = append(problems, config.Problem{Path: "email.smtp." + p.Path, Message: p.Message})
		}
		for _, e := range entries {
			if e.ID == MailAdapterID {
				problems = append(problems, config.Problem{Path: "adapters", Message: "the id \"" + MailAdapterID + "\" is the built-in mailer's (email.smtp); choose another"})
			}
		}
		out = append(out, configuredAdapter{id: MailAdapterID, typ: "smtp", cfg: mailer})
	}
	return out, problems
}

// startDelivery opens the adapters and starts the outbox dispatcher; it
// is stopped with the other workers, after the servers.
func (a *App) startDelivery() error {
	ctx := context.Background()
	var targets []outbox.Target
	var onlyFor [][]gateway.OrgID
	for _, ca := range a.adapters {
		ad, err := ca.cfg.Open(ctx, gateway.AdapterEnv{ID: ca.id, Logger: a.log.With("adapter", ca.id), Store: a.store})
		if err != nil {
			for _, t := range targets {
				_ = t.Adapter.Close()
			}
			return fmt.Errorf("open adapter %s (%s): %w", ca.id, ca.typ, err)
		}
		targets = append(targets, outbox.Target{ID: ca.id, Adapter: ad})
		onlyFor = append(onlyFor, ca.orgs)
	}
	d := a.cfg.Delivery
	a.delivery = &deliveries{store: a.store, targets: targets, onlyFor: onlyFor, byOrg: map[gateway.OrgID]*outbox.Dispatcher{}, opts: outbox.Options{
		MaxAttempts: d.MaxAttempts,
		BackoffMin:  time.Duration(d.BackoffMin),
		BackoffMax:  time.Duration(d.BackoffMax),
		Timeout:     time.Duration(d.Timeout),
		Lanes:       d.Lanes,
		Retention:   time.Duration(d.Retention),
		Logger:      a.log,
		Metrics:     a.metrics,
	}}
	if feed, ok := a.store.(gateway.ChangeFeed); ok {
		// Another replica's change to settings, pools or roles applies
		// here within a moment (the feed must not wait on the refresh).
		feed.OnRecordChange(func(org gateway.OrgID, kind string) {
			switch {
			case kind == kindReplay:
				go a.delivery.takeReplays(context.Background(), org, a.log)
				return
			case org == "": // notifications may have been missed
				go a.delivery.takeAllReplays(context.Background(), a.log)
			case kind == "":
				go a.delivery.takeReplays(context.Background(), org, a.log)
			}
			go a.service.RecordChanged(context.Background(), org, kind)
		})
	}
	if leaser, ok := a.store.(gateway.Leaser); ok {
		a.delivery.leases, a.delivery.grace = leaser, postgres.LeaseGrace
		a.delivery.keepLeases(ctx, a.log)
	}
	// The default organization's first: the one served before any other.
	if _, err := a.delivery.ensure(ctx, gateway.DefaultOrg); err != nil && err != errDeliveredElsewhere {
		_ = a.delivery.Stop(ctx)
		return err
	}
	if err := a.delivery.ensureRegistered(ctx); err != nil {
		a.log.Error("delivery: some organizations' dispatchers did not start (retried each minute)", "error", err)
	}
	a.workers = append(a.workers, a.delivery)
	// Delivery leases no replica holds (one died or stopped) are claimed
	// within a second or two.
	a.every(1500*time.Millisecond, false, func(ctx context.Context) { a.delivery.keepLeases(ctx, a.log) })
	a.service.OnOrgCreated(func(org gateway.OrgID) {
		if _, err := a.delivery.ensure(context.Background(), org); err != nil && err != errDeliveredElsewhere {
			a.log.Error("delivery: starting a new organization's (retried within a minute)", "org", string(org), "error", err)
		}
	})
	a.service.OnOrgDeleted(func(org gateway.OrgID) {
		if _, err := a.delivery.ensure(context.Background(), org); err != nil && err != errDeliveredElsewhere { // it delivers org.deleted
			a.log.Error("delivery: a deleted organization's last events (retried within a minute)", "org", string(org), "error", err)
		}
		a.delivery.markDeleting(org)
	})
	// Organizations created (or deleted) on another replica, or whose
	// start failed.
	// A deletion a crash interrupted is done again (each step is
	// idempotent).
	a.every(time.Minute, false, func(ctx context.Context) {
		a.delivery.takeAllReplays(ctx, a.log)
		if err := a.delivery.ensureRegistered(ctx); err != nil {
			a.log.Error("delivery: starting the organizations' dispatchers", "error", err)
		}
		for _, org := range a.delivery.pendingDeletions() {
			if err := a.service.EraseOrg(ctx, org); err != nil && gateway.ErrorCodeOf(err) != gateway.ErrNotFound {
				a.log.Error("delivery: erasing a deleted organization (retried)", "org", string(org), "error", err)
			}
		}
	})
	// A deleted organization is gone for good once its last events are
	// delivered.
	a.every(2*time.Second, false, func(ctx context.Context) {
		if err := a.delivery.finishDeletions(ctx, a.service.FinishOrgDeletion); err != nil {
			a.log.Error("delivery: finishing the deletion of organizations (retried)", "error", err)
		}
	})
	return nil
}

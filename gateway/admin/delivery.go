package admin

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/outbox"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

// DeadLetterView is a dead letter: what failed and why, not the user's
// data.
type DeadLetterView struct {
	ID         string    `json:"id" doc:"adapter:seq, for the replay"`
	Adapter    string    `json:"adapter"`
	Seq        uint64    `json:"seq"`
	EventID    string    `json:"eventId"`
	Type       string    `json:"type"`
	Resource   string    `json:"resource"`
	Attempts   int       `json:"attempts"`
	LastError  string    `json:"lastError"`
	At         time.Time `json:"at"`
	HeldBehind uint64    `json:"heldBehind,omitempty" doc:"the seq of an earlier dead letter of the same user or group it waits behind"`
}

type deliveryOutput struct {
	Body struct {
		Adapters []outbox.Status `json:"adapters"`
	}
}

type listDeadLettersInput struct {
	Adapter string `query:"adapter" doc:"one adapter; empty: all"`
}

type deadLettersOutput struct {
	Body struct {
		DeadLetters []DeadLetterView `json:"deadLetters"`
	}
}

type replayDeadLetterInput struct {
	ID string `path:"id" doc:"adapter:seq"`
}

type replayOutput struct {
	Body struct {
		Scheduled int `json:"scheduled" doc:"dead letters scheduled for delivery"`
	}
}

func (a *API) getDelivery(ctx context.Context, _ *struct{}) (*deliveryOutput, error) {
	out := &deliveryOutput{}
	out.Body.Adapters = []outbox.Status{}
	if a.opts.Delivery == nil {
		return out, nil
	}
	st, err := a.opts.Delivery.Status(ctx, a.org(ctx))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out.Body.Adapters = append(out.Body.Adapters, st...)
	return out, nil
}

func (a *API) listDeadLetters(ctx context.Context, in *listDeadLettersInput) (*deadLettersOutput, error) {
	out := &deadLettersOutput{}
	out.Body.DeadLetters = []DeadLetterView{}
	if a.opts.Delivery == nil {
		return out, nil
	}
	st, err := a.opts.Delivery.Status(ctx, a.org(ctx))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	for _, s := range st {
		if in.Adapter != "" && s.Adapter != in.Adapter {
			continue
		}
		dls, err := a.opts.Delivery.DeadLetters(ctx, a.org(ctx), s.Adapter)
		if err != nil {
			return nil, a.fail(ctx, err)
		}
		for _, dl := range dls {
			out.Body.DeadLetters = append(out.Body.DeadLetters, ViewDeadLetter(s.Adapter, dl))
		}
	}
	return out, nil
}

func (a *API) replayDeadLetter(ctx context.Context, in *replayDeadLetterInput) (*replayOutput, error) {
	n, err := ReplayDeadLetter(ctx, a.opts.Delivery, a.opts.Store, a.manager(ctx), in.ID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &replayOutput{}
	out.Body.Scheduled = n
	return out, nil
}

// DeliveryStatus is one adapter's delivery state.
type DeliveryStatus = outbox.Status

// ViewDeadLetter is a dead letter as the API and the console show it.
func ViewDeadLetter(adapter string, dl gateway.DeadLetter) DeadLetterView {
	v := DeadLetterView{ID: adapter + ":" + strconv.FormatUint(dl.Event.Seq, 10), Adapter: adapter, Seq: dl.Event.Seq, EventID: dl.Event.ID,
		Type: string(dl.Event.Op), Attempts: dl.Attempts, LastError: dl.LastError, At: dl.At, HeldBehind: dl.HeldBehind}
	switch {
	case dl.Event.User != nil:
		v.Resource = "user:" + dl.Event.User.ID
	case dl.Event.Group != nil:
		v.Resource = "group:" + dl.Event.Group.ID
	}
	return v
}

// ReplayDeadLetter schedules the dead letter id ("adapter:seq") and the
// adapter's later ones for delivery again, and audits it; it returns how
// many were scheduled.
func ReplayDeadLetter(ctx context.Context, delivery Delivery, store gateway.Store, mg provision.Manager, id string) (int, error) {
	adapter, seqText, ok := strings.Cut(id, ":")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if !ok || err != nil || seq == 0 {
		return 0, gateway.Errorf(gateway.ErrInvalid, "a dead letter id is adapter:seq, as GET /dead-letters lists it")
	}
	if delivery == nil {
		return 0, gateway.Errorf(gateway.ErrNotFound, "delivery is not running")
	}
	dls, err := delivery.DeadLetters(ctx, mg.Org, adapter)
	if err != nil {
		return 0, err
	}
	if !slices.ContainsFunc(dls, func(dl gateway.DeadLetter) bool { return dl.Event.Seq == seq }) {
		return 0, gateway.Errorf(gateway.ErrNotFound, "adapter %q has no dead letter %d", adapter, seq)
	}
	// Audited before it is scheduled: a replay nobody can account for
	// must not happen.
	if err := store.Audit().Append(ctx, mg.Org, gateway.AuditEntry{Time: time.Now().UTC(), Actor: mg.Actor, Action: "dead_letter.replay",
		Target: "dead_letter:" + id, RequestID: mg.RequestID}); err != nil {
		return 0, err
	}
	return delivery.Replay(ctx, mg.Org, adapter, seq)
}

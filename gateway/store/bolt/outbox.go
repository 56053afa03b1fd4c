package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// outboxStore reads and maintains the outbox.
type outboxStore struct{ s *Store }

func (o outboxStore) After(ctx context.Context, org gateway.OrgID, seq uint64, limit int) ([]gateway.Event, error) {
	var out []gateway.Event
	err := o.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		c := tb.Bucket(bOutbox).Cursor()
		for k, v := c.Seek(u64(seq + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			e, err := decodeEvent(binary.BigEndian.Uint64(k), v)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: read outbox: %w", err)
	}
	return out, nil
}

func (o outboxStore) Len(ctx context.Context, org gateway.OrgID) (int, error) {
	n := 0
	err := o.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb != nil {
			n = counter(tb, counterOutbox)
		}
		return nil
	})
	return n, err
}

func (o outboxStore) LastSeq(ctx context.Context, org gateway.OrgID) (uint64, error) {
	var seq uint64
	err := o.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb != nil {
			seq = tb.Bucket(bOutbox).Sequence()
		}
		return nil
	})
	return seq, err
}

func (o outboxStore) Cursor(ctx context.Context, org gateway.OrgID, consumer string) (uint64, error) {
	var seq uint64
	err := o.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		if v := tb.Bucket(bCursors).Get([]byte(consumer)); len(v) == 8 {
			seq = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: read cursor: %w", err)
	}
	return seq, nil
}

func (o outboxStore) Ack(ctx context.Context, org gateway.OrgID, consumer string, seq uint64, add []gateway.DeadLetter, remove []uint64) error {
	// Encode before the transaction: the committer's time is everyone's.
	type kv struct{ k, v []byte }
	encoded := make([]kv, len(add))
	for i := range add {
		v, err := encodeDeadLetter(&add[i])
		if err != nil {
			return fmt.Errorf("bolt: encode dead letter: %w", err)
		}
		encoded[i] = kv{deadLetterKey(consumer, add[i].Event.Seq), v}
	}
	err := o.s.write(ctx, org, func(tb *bolt.Bucket) error {
		cb := tb.Bucket(bCursors)
		if v := cb.Get([]byte(consumer)); len(v) != 8 || binary.BigEndian.Uint64(v) < seq {
			if err := cb.Put([]byte(consumer), u64(seq)); err != nil {
				return err
			}
		}
		db := tb.Bucket(bDeadLetters)
		for _, s := range remove {
			if err := db.Delete(deadLetterKey(consumer, s)); err != nil {
				return err
			}
		}
		for _, e := range encoded {
			if err := db.Put(e.k, e.v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: acknowledge: %w", err)
	}
	return nil
}

func (o outboxStore) DeadLetters(ctx context.Context, org gateway.OrgID, consumer string) ([]gateway.DeadLetter, error) {
	var out []gateway.DeadLetter
	err := o.s.view(ctx, org, func(tb *bolt.Bucket) error {
		if tb == nil {
			return nil
		}
		p := pair(consumer, "")
		c := tb.Bucket(bDeadLetters).Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			dl, err := decodeDeadLetter(binary.BigEndian.Uint64(k[len(p):]), v)
			if err != nil {
				return err
			}
			out = append(out, dl)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: read dead letters: %w", err)
	}
	return out, nil
}

func (o outboxStore) Prune(ctx context.Context, org gateway.OrgID, upTo uint64, before time.Time, limit int) (int, error) {
	n := 0
	err := o.s.write(ctx, org, func(tb *bolt.Bucket) error {
		n = 0
		ob := tb.Bucket(bOutbox)
		c := ob.Cursor()
		for k, v := c.First(); k != nil && n < limit && binary.BigEndian.Uint64(k) <= upTo; k, v = c.Next() {
			at, err := eventTime(v)
			if err != nil {
				return fmt.Errorf("event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if !at.Before(before) {
				break // events are recorded in time order
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return addCounter(tb, counterOutbox, -int64(n))
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: prune outbox: %w", err)
	}
	return n, nil
}

// Changed is signalled by the commit of any write in org's scope (events
// or not: a spurious wake-up costs a consumer one read), and only by
// those: one organization's writes wake none of the others' consumers.
func (o outboxStore) Changed(org gateway.OrgID) <-chan struct{} { return o.s.commits.changed(org) }

func deadLetterKey(consumer string, seq uint64) []byte {
	return append(pair(consumer, ""), u64(seq)...)
}

// A dead letter is its bookkeeping followed by the event record.
func encodeDeadLetter(dl *gateway.DeadLetter) ([]byte, error) {
	ev, err := encodeEvent(&dl.Event)
	if err != nil {
		return nil, err
	}
	w := writer{b: make([]byte, 0, len(ev)+64)}
	w.b = append(w.b, recordFormat)
	w.uvarint(uint64(dl.Attempts))
	w.uvarint(dl.HeldBehind)
	w.time(dl.At)
	w.str(dl.LastError)
	w.b = append(w.b, ev...)
	return w.b, nil
}

func decodeDeadLetter(seq uint64, v []byte) (gateway.DeadLetter, error) {
	r := reader{b: v}
	if r.byte() != recordFormat {
		return gateway.DeadLetter{}, fmt.Errorf("dead letter %d: unknown format", seq)
	}
	dl := gateway.DeadLetter{Attempts: int(r.uvarint()), HeldBehind: r.uvarint()}
	dl.At = r.time()
	dl.LastError = r.str()
	if r.err != nil {
		return gateway.DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, r.err)
	}
	e, err := decodeEvent(seq, r.b)
	if err != nil {
		return gateway.DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	dl.Event = e
	return dl, nil
}

// eventTime reads only an event record's time (pruning looks at no more).
func eventTime(v []byte) (time.Time, error) {
	r := reader{b: v}
	if r.byte() != recordFormat {
		return time.Time{}, errCorrupt
	}
	for range 5 { // id, org, op, source, request id
		r.str()
	}
	t := r.time()
	return t, r.err
}

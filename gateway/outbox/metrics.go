package outbox

import (
	"context"
	"time"
)

func (d *Dispatcher) metricResult(adapter, result string) {
	if m := d.opts.Metrics; m != nil {
		m.OutboxDeliveries.WithLabelValues(adapter, result).Inc()
	}
}

func (d *Dispatcher) metricLatency(adapter string, took time.Duration) {
	if m := d.opts.Metrics; m != nil {
		m.OutboxDuration.WithLabelValues(adapter).Observe(took.Seconds())
	}
}

func (d *Dispatcher) metricDeadLetters(adapter string, n int) {
	if m := d.opts.Metrics; m != nil && !d.opts.SkipGauges {
		m.OutboxDeadLetters.WithLabelValues(adapter).Set(float64(n))
	}
}

// metricProgress refreshes an adapter's lag gauges (and its dead letters
// when they changed) after its cursor was written.
func (d *Dispatcher) metricProgress(ctx context.Context, w *worker, deadLettersChanged bool) {
	m := d.opts.Metrics
	if m == nil || d.opts.SkipGauges {
		return
	}
	st, err := w.status(ctx, deadLettersChanged)
	if err != nil {
		return
	}
	m.OutboxLag.WithLabelValues(w.id).Set(float64(st.Lag))
	oldest := 0.0
	if !st.Oldest.IsZero() {
		oldest = float64(st.Oldest.UnixNano()) / 1e9
	}
	m.OutboxOldest.WithLabelValues(w.id).Set(oldest)
	if deadLettersChanged {
		m.OutboxDeadLetters.WithLabelValues(w.id).Set(float64(st.DeadLetters))
	}
}

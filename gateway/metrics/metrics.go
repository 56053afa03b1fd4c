// Package metrics holds Gatehouse's Prometheus collectors. They are
// registered on a registry passed in, never on the global default, so that
// tests and several gateways in one process do not collide.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is every collector the gateway updates.
type Metrics struct {
	SCIMRequests     *prometheus.CounterVec
	SCIMDuration     *prometheus.HistogramVec
	SCIMAuthFailures prometheus.Counter
}

// CommitStats reads the store's group-commit counters.
type CommitStats func() (commits, writes uint64, seconds float64)

// RegisterCommitStats exposes the store's group commit: how many
// transactions, how many writes they carried (writes per commit is how
// well concurrent requests share an fsync) and the time spent committing.
func RegisterCommitStats(reg prometheus.Registerer, stats CommitStats) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "store", Name: "commits_total",
			Help: "Write transactions committed (each one fsync'd).",
		}, func() float64 { c, _, _ := stats(); return float64(c) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "store", Name: "committed_writes_total",
			Help: "Writes committed; divided by commits_total, the writes that shared each commit.",
		}, func() float64 { _, w, _ := stats(); return float64(w) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "store", Name: "commit_seconds_total",
			Help: "Time spent in write transactions, fsyncs included.",
		}, func() float64 { _, _, s := stats(); return s }),
	)
}

// New creates the collectors and registers them (plus the Go and process
// collectors) on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		SCIMRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "scim", Name: "requests_total",
			Help: "SCIM requests by resource, method and response status.",
		}, []string{"resource", "method", "status"}),
		SCIMDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "gatehouse", Subsystem: "scim", Name: "request_duration_seconds",
			Help:    "SCIM request latency by resource and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"resource", "method"}),
		SCIMAuthFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "scim", Name: "auth_failures_total",
			Help: "SCIM requests rejected for a missing or wrong bearer token.",
		}),
	}
	reg.MustRegister(m.SCIMRequests, m.SCIMDuration, m.SCIMAuthFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

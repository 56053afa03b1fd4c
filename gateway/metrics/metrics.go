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
	// SCIMAuthThrottled counts wrong-token requests answered 429.
	SCIMAuthThrottled prometheus.Counter
	// SCIMOrgThrottled counts requests answered 429 because their
	// organization went past its share (a series appears only for an
	// organization that did).
	SCIMOrgThrottled *prometheus.CounterVec

	OutboxDeliveries  *prometheus.CounterVec
	OutboxDuration    *prometheus.HistogramVec
	OutboxLag         *prometheus.GaugeVec
	OutboxOldest      *prometheus.GaugeVec
	OutboxDeadLetters *prometheus.GaugeVec

	// Logins counts sign-ins by protocol and result: "ok" or the fixed
	// word for why it was refused (bounded).
	Logins       *prometheus.CounterVec
	JITCreations prometheus.Counter

	// ProxyRequests counts requests outside the prefix by status class
	// (2xx..5xx), the gateway's own refusals included.
	ProxyRequests *prometheus.CounterVec
	// ProxyUpstream is the time to the upstream's response headers.
	ProxyUpstream prometheus.Histogram

	// AdminRequests counts admin API calls by operation (the OpenAPI
	// operationId, a fixed set) and status class.
	AdminRequests *prometheus.CounterVec

	// BuildInfo is 1, labelled with the release (and commit) and Go.
	BuildInfo *prometheus.GaugeVec
	// SCIMLastSuccess and LoginLastSuccess are when each organization
	// last had a SCIM request answered 2xx/3xx, and a sign-in completed
	// by protocol, as seen by this process (one series per organization
	// that had one; across replicas, take the max).
	SCIMLastSuccess  *prometheus.GaugeVec
	LoginLastSuccess *prometheus.GaugeVec
	// Logouts counts the IdPs' logout signals by protocol (oidc
	// back-channel, saml single logout, okta universal logout) and
	// result; LogoutSeconds is the time from a signal's arrival to its
	// last session ended in the store (every replica's cache drops it at
	// that commit's change signal).
	Logouts       *prometheus.CounterVec
	LogoutSeconds *prometheus.HistogramVec
	// IdPCertificateExpiry is when each organization's SAML IdP signing
	// certificate (the first to expire) expires; IdPMetadataRefreshed is
	// its metadata's last good fetch, IdPMetadataRefreshFailures the
	// fetches that failed (the last good metadata is kept).
	IdPCertificateExpiry       *prometheus.GaugeVec
	IdPMetadataRefreshed       *prometheus.GaugeVec
	IdPMetadataRefreshFailures *prometheus.CounterVec
}

// RegisterSessionCount exposes how many sessions the store keeps, read at
// scrape time.
func RegisterSessionCount(reg prometheus.Registerer, count func() float64) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "gatehouse", Subsystem: "sso", Name: "sessions",
		Help: "Sessions kept (signed in, not yet ended or swept).",
	}, count))
}

// RegisterSSOOrgsBuilt exposes how many organizations have their sign-in
// (SAML SP or OIDC RP) built in memory: bounded by sso.cached_orgs.
func RegisterSSOOrgsBuilt(reg prometheus.Registerer, count func() float64) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "gatehouse", Subsystem: "sso", Name: "orgs_built",
		Help: "Organizations whose sign-in (SAML SP or OIDC RP) is built in memory (at most sso.cached_orgs).",
	}, count))
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
		SCIMAuthThrottled: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "scim", Name: "auth_throttled_total",
			Help: "Wrong-token SCIM requests answered 429: the client failed more than scim.auth_failures_per_minute times a minute.",
		}),
		SCIMOrgThrottled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "scim", Name: "org_throttled_total",
			Help: "SCIM requests answered 429 because their organization made more than scim.org_requests_per_second.",
		}, []string{"org"}),
	}
	m.OutboxDeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "outbox", Name: "deliveries_total",
		Help: "Delivery outcomes by adapter: delivered, retried, dead_lettered, held_back (behind a dead letter of the same resource), replayed.",
	}, []string{"adapter", "result"})
	m.OutboxDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "gatehouse", Subsystem: "outbox", Name: "delivery_duration_seconds",
		Help:    "Time of one delivery attempt by adapter.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"adapter"})
	m.OutboxLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "gatehouse", Subsystem: "outbox", Name: "lag_events",
		Help: "Events recorded but not yet done (delivered or set aside) by adapter.",
	}, []string{"adapter"})
	m.OutboxOldest = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "gatehouse", Subsystem: "outbox", Name: "oldest_undelivered_timestamp_seconds",
		Help: "When the oldest event not yet done was recorded (0: none); time() minus it is the delivery delay.",
	}, []string{"adapter"})
	m.OutboxDeadLetters = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "gatehouse", Subsystem: "outbox", Name: "dead_letters",
		Help: "Events set aside by adapter, waiting for a replay.",
	}, []string{"adapter"})
	m.Logins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "sso", Name: "logins_total",
		Help: "Sign-ins by protocol and result (ok, or why it was refused).",
	}, []string{"protocol", "result"})
	m.JITCreations = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "sso", Name: "jit_created_total",
		Help: "Users created at their first sign-in (SSO JIT).",
	})
	m.ProxyRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "proxy", Name: "requests_total",
		Help: "Requests to the app through the gateway, by status class (the gateway's own 302/401 included).",
	}, []string{"class"})
	m.ProxyUpstream = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "gatehouse", Subsystem: "proxy", Name: "upstream_duration_seconds",
		Help:    "Time from forwarding a request to the app's response headers.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	m.AdminRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "admin", Name: "requests_total",
		Help: "Admin API calls by operation (operationId) and status class; refused credentials count as 4xx.",
	}, []string{"operation", "class"})
	m.BuildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "gatehouse", Name: "build_info",
		Help: "Always 1: the release (with its commit) and the Go version of this gateway.",
	}, []string{"version", "goversion"})
	m.SCIMLastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "gatehouse", Subsystem: "scim", Name: "last_success_timestamp_seconds",
		Help: "When the organization's last SCIM request was answered without error (Unix time), seen by this process.",
	}, []string{"org"})
	m.LoginLastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "gatehouse", Subsystem: "sso", Name: "last_success_timestamp_seconds",
		Help: "When the organization's last sign-in completed, by protocol (Unix time), seen by this process.",
	}, []string{"org", "protocol"})
	m.Logouts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "sso", Name: "logouts_total",
		Help: "Logout signals from IdPs, by protocol and result (ok, none: no session matched, refused, error).",
	}, []string{"protocol", "result"})
	m.LogoutSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "gatehouse", Subsystem: "sso", Name: "logout_seconds",
		Help:    "Time from an IdP's logout signal to its last session ended, by protocol.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"protocol"})
	m.IdPCertificateExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "gatehouse", Subsystem: "sso", Name: "idp_certificate_expiry_timestamp_seconds",
		Help: "When the organization's SAML IdP signing certificate (the first to expire) expires (Unix time).",
	}, []string{"org"})
	m.IdPMetadataRefreshed = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "gatehouse", Subsystem: "sso", Name: "idp_metadata_refreshed_timestamp_seconds",
		Help: "When the organization's SAML IdP metadata was last fetched from its URL without error (Unix time), seen by this process.",
	}, []string{"org"})
	m.IdPMetadataRefreshFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "sso", Name: "idp_metadata_refresh_failures_total",
		Help: "Fetches of the organization's SAML IdP metadata that failed (the last good metadata is kept).",
	}, []string{"org"})
	reg.MustRegister(m.BuildInfo, m.SCIMLastSuccess, m.LoginLastSuccess, m.Logouts, m.LogoutSeconds,
		m.IdPCertificateExpiry, m.IdPMetadataRefreshed, m.IdPMetadataRefreshFailures)
	reg.MustRegister(m.AdminRequests, m.SCIMRequests, m.SCIMDuration, m.SCIMAuthFailures, m.SCIMAuthThrottled, m.SCIMOrgThrottled, m.Logins, m.JITCreations, m.ProxyRequests, m.ProxyUpstream,
		m.OutboxDeliveries, m.OutboxDuration, m.OutboxLag, m.OutboxOldest, m.OutboxDeadLetters,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

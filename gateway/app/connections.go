package app

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	samlsp "github.com/gatehouse-id/gatehouse/gateway/saml"
)

// connections keeps each organization's IdP connection health, as this
// process sees it: checked when an SP is built, at each metadata refresh
// and every hour for the organizations whose sign-in is built.
type connections struct {
	mu sync.Mutex
	m  map[gateway.OrgID]gateway.ConnectionHealth
}

func (c *connections) update(org gateway.OrgID, fn func(h *gateway.ConnectionHealth)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[gateway.OrgID]gateway.ConnectionHealth{}
	}
	h := c.m[org]
	fn(&h)
	c.m[org] = h
}

func (c *connections) get(org gateway.OrgID) gateway.ConnectionHealth {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[org]
}

func (c *connections) forget(org gateway.OrgID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, org)
}

// connectionHealth is an organization's IdP connection health (the
// console's banner and overview).
func (a *App) connectionHealth(_ context.Context, org gateway.OrgID) gateway.ConnectionHealth {
	return a.conns.get(org)
}

// checkIdPCertificate reads the SP's IdP signing certificate: its expiry
// as a metric and in the health, and the app told (once per threshold)
// when it is within 90, 30 or 7 days.
func (a *App) checkIdPCertificate(ctx context.Context, org gateway.OrgID, sp *samlsp.SP) {
	cert, ok := sp.IDPSigningCertificate()
	if !ok {
		return
	}
	a.conns.update(org, func(h *gateway.ConnectionHealth) { h.CertificateNotAfter = cert.NotAfter })
	a.metrics.IdPCertificateExpiry.WithLabelValues(string(org)).Set(float64(cert.NotAfter.Unix()))
	told, err := a.service.NoteIdPCertificate(ctx, org, sp.IDPEntityID(), cert)
	switch {
	case err != nil:
		a.log.Warn("saml: the IdP certificate warning could not be recorded", "org", string(org), "error", err)
	case told:
		a.log.Warn("saml: the IdP's signing certificate expires soon; the app is told (connection.certificate_expiring)",
			"org", string(org), "not_after", cert.NotAfter.UTC(), "days_left", int(time.Until(cert.NotAfter).Hours()/24))
	}
}

// noteMetadataRefresh records a fetch of the IdP metadata: its time, or
// the failure (the last good metadata stays in use).
func (a *App) noteMetadataRefresh(org gateway.OrgID, err error) {
	now := time.Now()
	a.conns.update(org, func(h *gateway.ConnectionHealth) {
		if err == nil {
			h.MetadataRefreshed, h.MetadataError, h.MetadataFailingSince = now, "", time.Time{}
			return
		}
		if h.MetadataError == "" {
			h.MetadataFailingSince = now
		}
		h.MetadataError = err.Error()
	})
	if err == nil {
		a.metrics.IdPMetadataRefreshed.WithLabelValues(string(org)).Set(float64(now.Unix()))
	} else {
		a.metrics.IdPMetadataRefreshFailures.WithLabelValues(string(org)).Inc()
	}
}

// checkConnections checks every built SAML sign-in's certificate (the
// hourly task).
func (a *App) checkConnections(ctx context.Context) {
	for org, routes := range a.sso.built() {
		if sp, ok := routes.starter.(*samlsp.SP); ok {
			a.checkIdPCertificate(ctx, org, sp)
		}
	}
}

// connectionNotes are /readyz's lines on IdP connections needing care:
// a certificate within 30 days of its end (or past it), metadata that
// no longer refreshes. They do not make the gateway unready.
func (a *App) connectionNotes(context.Context) []string {
	a.conns.mu.Lock()
	defer a.conns.mu.Unlock()
	var notes []string
	for org, h := range a.conns.m {
		if !h.CertificateNotAfter.IsZero() {
			switch left := time.Until(h.CertificateNotAfter); {
			case left <= 0:
				notes = append(notes, fmt.Sprintf("org %s: the IdP signing certificate expired %s: nobody can sign in", org, h.CertificateNotAfter.UTC().Format(time.DateOnly)))
			case left <= 30*24*time.Hour:
				notes = append(notes, fmt.Sprintf("org %s: the IdP signing certificate expires %s, in %d days", org, h.CertificateNotAfter.UTC().Format(time.DateOnly), int(left.Hours()/24)))
			}
		}
		if h.MetadataError != "" {
			notes = append(notes, fmt.Sprintf("org %s: the IdP metadata has not refreshed since %s (%s); the last good one is in use", org,
				h.MetadataFailingSince.UTC().Format(time.RFC3339), h.MetadataError))
		}
	}
	sort.Strings(notes)
	return notes
}

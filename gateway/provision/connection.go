package provision

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// kindCertWarning records each IdP certificate warning given (one per
// certificate and threshold): its write carries the event.
const kindCertWarning = "certificate-warning"

// CertificateThresholds are the days before an IdP signing certificate
// expires at which the app is told (connection.certificate_expiring).
var CertificateThresholds = []int{7, 30, 90}

// CertificateThreshold is the smallest threshold notAfter is within at
// now (0: none yet).
func CertificateThreshold(notAfter, now time.Time) int {
	left := notAfter.Sub(now)
	for _, days := range CertificateThresholds {
		if left <= time.Duration(days)*24*time.Hour {
			return days
		}
	}
	return 0
}

// NoteIdPCertificate tells the app, once per certificate and threshold,
// that the organization's SAML IdP signs with a certificate that expires
// within 90, 30 or 7 days (connection.certificate_expiring). It reports
// whether it recorded a warning now.
func (s *Service) NoteIdPCertificate(ctx context.Context, org gateway.OrgID, idp string, cert *x509.Certificate) (bool, error) {
	now := s.clock.Now()
	threshold := CertificateThreshold(cert.NotAfter, now)
	if threshold == 0 {
		return false, nil
	}
	sum := sha256.Sum256(cert.Raw)
	fp := hex.EncodeToString(sum[:])
	days := int(cert.NotAfter.Sub(now).Hours() / 24)
	if cert.NotAfter.Before(now) {
		days = -int(now.Sub(cert.NotAfter).Hours()/24) - 1
	}
	ev := s.event(Meta{Org: org, Source: gateway.SourceGateway}, gateway.OpCertificateExpiring)
	ev.Connection = &gateway.Connection{Protocol: gateway.ProtocolSAML, IdP: idp, CertificateSubject: cert.Subject.String(),
		CertificateFingerprint: fp, CertificateNotAfter: cert.NotAfter.UTC(), DaysLeft: days, ThresholdDays: threshold}
	raw, err := json.Marshal(ev.Connection)
	if err != nil {
		return false, err
	}
	_, err = s.store.Records().Put(ctx, org, kindCertWarning, fp+"-"+strconv.Itoa(threshold), 0, raw, gateway.Journal{Events: []gateway.Event{ev}})
	if gateway.ErrorCodeOf(err) == gateway.ErrConflict {
		return false, nil // told already (by this replica or another)
	}
	return err == nil, err
}

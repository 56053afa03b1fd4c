package console

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// certWarning is how long before the IdP's signing certificate expires
// the overview warns (IdPs roll theirs over weeks ahead).
const certWarning = 30 * 24 * time.Hour

// check is one line of the setup status: done or not, what it is, and
// what to do.
type check struct {
	ID, Title, Status, Next, Link string
	Done, Warn                    bool
}

type overviewData struct {
	Checks []check
	// Next is the first check not done: the step to take now.
	Next *check
}

func (c *Console) overviewPage(q *req) {
	ctx := q.ctx()
	st, _ := c.opts.Service.Current(ctx, q.org())
	identity := c.opts.PathPrefix + "/console/identity"
	var d overviewData
	add := func(ch check) { d.Checks = append(d.Checks, ch) }

	signIn := check{ID: "sign-in", Title: "Sign-in connected", Link: identity}
	switch st.SSO.Protocol {
	case gateway.ProtocolSAML:
		signIn.Done, signIn.Status = true, "SAML 2.0"
	case gateway.ProtocolOIDC:
		signIn.Done, signIn.Status = true, "OpenID Connect, issuer "+st.SSO.OIDC.Issuer
	case gateway.ProtocolExternal:
		signIn.Done, signIn.Status = true, "External: the application or another proxy signs people in"
	default:
		signIn.Status, signIn.Next = "Not connected: nobody can sign in.", "Connect your identity provider (steps 1 and 2 of the identity page), or make a setup link for whoever runs it."
	}
	add(signIn)

	if st.SSOSignIn() {
		tested := check{ID: "tested", Title: "Sign-in tested", Link: identity + "#test-h"}
		switch last, err := c.opts.Service.LastSignInTest(ctx, q.org()); {
		case err != nil:
			tested.Status = "Unknown right now."
		case last.At.IsZero():
			tested.Status, tested.Next = "Never tested.", "Run a test sign-in (step 3 of the identity page) to see what your identity provider sends."
		case last.SettingsVersion < st.Version:
			tested.Status, tested.Next = "Tested "+when(last.At)+", before the settings changed since.", "Test the sign-in again with the settings in force."
		default:
			tested.Done, tested.Status = true, "Tested "+when(last.At)+"."
		}
		add(tested)
	}

	method := check{ID: "method", Title: "How people get accounts", Link: identity + "#method-h", Done: true, Status: methodLabels[st.Provisioning.Method]}
	add(method)
	if st.Provisioning.Method == gateway.SourceSCIM {
		scim := check{ID: "scim", Title: "SCIM requests arriving", Link: identity + "#scim-h"}
		switch seen, err := c.opts.Service.LastSCIMRequest(ctx, q.org()); {
		case err != nil:
			scim.Status = "Unknown right now."
		case seen.IsZero():
			scim.Status, scim.Next = "No SCIM request yet.", "Paste the SCIM base URL and a token (step 5 of the identity page) into your identity provider's provisioning settings and assign people to the app."
		default:
			scim.Done, scim.Status = true, "Last request "+when(seen)+"."
		}
		add(scim)
	}

	if c.opts.Delivery != nil {
		delivery := check{ID: "delivery", Title: "Delivery to the application healthy", Link: c.opts.PathPrefix + "/console/delivery"}
		adapters, err := c.opts.Delivery.Status(ctx, q.org())
		var lag uint64
		var dead int
		for _, a := range adapters {
			lag += a.Lag
			dead += a.DeadLetters
		}
		switch {
		case err != nil:
			delivery.Status = "Unknown right now."
		case dead > 0:
			delivery.Status, delivery.Next = fmt.Sprintf("%d changes could not be delivered (dead letters).", dead), "Open Delivery, fix what the application refused, and replay them."
		case lag > 0:
			delivery.Done, delivery.Status = true, fmt.Sprintf("Delivering: %d changes waiting.", lag)
		default:
			delivery.Done, delivery.Status = true, "Every change delivered."
		}
		add(delivery)
	}

	if st.SSO.Protocol == gateway.ProtocolSAML && c.opts.IdPCertificateExpiry != nil {
		cert := check{ID: "certificate", Title: "Identity provider's certificate", Link: identity}
		switch expiry, ok := c.opts.IdPCertificateExpiry(ctx, q.org()); {
		case !ok:
			cert.Status = "Unknown right now."
		case time.Until(expiry) <= 0:
			cert.Status, cert.Next = "Expired "+expiry.UTC().Format("2 January 2006")+": nobody can sign in.", "Paste your identity provider's new metadata (step 2 of the identity page)."
		case time.Until(expiry) < certWarning:
			cert.Done, cert.Warn = true, true
			cert.Status = fmt.Sprintf("Expires %s, in %d days.", expiry.UTC().Format("2 January 2006"), int(time.Until(expiry).Hours()/24))
			cert.Next = "Roll over the signing certificate in your identity provider, then paste its new metadata (or keep the metadata URL: the gateway fetches it every hour)."
		default:
			cert.Done, cert.Status = true, "Valid until "+expiry.UTC().Format("2 January 2006")+"."
		}
		if c.opts.ConnectionHealth != nil {
			if h := c.opts.ConnectionHealth(ctx, q.org()); h.MetadataError != "" {
				cert.Warn = true
				cert.Status += " The metadata URL has failed since " + when(h.MetadataFailingSince) + " (" + h.MetadataError + "); the last good metadata is in use."
				if cert.Next == "" {
					cert.Next = "Check the identity provider's metadata URL on the identity page."
				}
			}
		}
		add(cert)
	}
	for i := range d.Checks {
		if ch := &d.Checks[i]; ch.Next != "" && d.Next == nil {
			d.Next = ch
		}
	}
	c.render(q, http.StatusOK, "overview", "Overview", "overview", d, "", "")
}

// connectionBanner is the sentence every console page shows while the
// IdP connection needs care ("" while it does not).
func connectionBanner(h gateway.ConnectionHealth, now time.Time) string {
	switch left := h.CertificateNotAfter.Sub(now); {
	case h.CertificateNotAfter.IsZero():
	case left <= 0:
		return "Your identity provider's signing certificate expired on " + h.CertificateNotAfter.UTC().Format("2 January 2006") + ": nobody can sign in until its new metadata is here."
	case left < certWarning:
		return fmt.Sprintf("Your identity provider's signing certificate expires on %s, in %d days: roll it over there and bring its new metadata here before then.",
			h.CertificateNotAfter.UTC().Format("2 January 2006"), int(left.Hours()/24))
	}
	if h.MetadataError != "" {
		return "Your identity provider's metadata could not be fetched since " + when(h.MetadataFailingSince) + "; the last good one is in use. Check its metadata URL."
	}
	return ""
}

func when(t time.Time) string { return t.UTC().Format("2 January 2006 at 15:04 UTC") }

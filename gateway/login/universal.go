package login

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
	"github.com/gatehouse-id/gatehouse/gateway/provision"
)

// Okta's Universal Logout: the IdP asks, server to server, that every
// session of a person end (a Global Token Revocation request,
// draft-parecki-oauth-global-token-revocation, as Okta's guide for apps
// describes it):
//
//	POST {prefix}[/o/{org}]/global-token-revocation
//	Authorization: Bearer <a JWT the IdP signed: iss, aud this URL, exp, jti>
//	{"sub_id": {"format": "email", "email": "…"}}   or   {"format": "iss_sub", "iss": "…", "sub": "…"}
//
// 204 once the sessions ended; 400 for a body it cannot read or a format
// it does not know, 401 for a token that is not the IdP's or not for
// here, 404 when the person has no account; none of these changes
// anything.

const universalReplayNS = "universal-logout"

// UniversalLogout is the organization's Global Token Revocation endpoint:
// cfg says whose signed requests it takes; endpoint is its public URL
// (the tokens' audience); signInIssuer is the IdP the sessions came from
// (an iss_sub subject must be of it).
func (f *Funnel) UniversalLogout(org gateway.OrgID, cfg gateway.UniversalLogoutSettings, endpoint, signInIssuer string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		received := time.Now()
		w.Header().Set("Cache-Control", "no-store")
		fail := func(status int, code, description string, err error) {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			}
			if status == http.StatusBadRequest || status == http.StatusUnauthorized {
				f.RefusedLogout("universal")
			}
			f.opts.Logger.WarnContext(r.Context(), "universal logout refused", "org", string(org), "error", err)
			httpx.WriteJSON(w, status, "application/json", map[string]string{"error": code, "error_description": description})
		}
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || raw == "" {
			fail(http.StatusUnauthorized, "invalid_token", "a bearer token the IdP signed is required", errors.New("no bearer token"))
			return
		}
		// The jti is used up once the body is read too: a request the IdP
		// must send again (a body this gateway cannot read) keeps its token.
		claims, err := f.opts.Service.VerifyIdPToken(r.Context(), org, strings.TrimSpace(raw), provision.IdPTokenCheck{
			JWKSURL: cfg.KeysURL(), Issuer: cfg.Issuer, Audience: endpoint, MaxLife: time.Hour})
		switch {
		case gateway.ErrorCodeOf(err) == gateway.ErrUnavailable:
			fail(http.StatusServiceUnavailable, "temporarily_unavailable", "the IdP's keys cannot be read right now", err)
			return
		case errors.Is(err, provision.ErrBadIdPToken):
			fail(http.StatusUnauthorized, "invalid_token", "the token is not the IdP's, or not for this endpoint now", err)
			return
		case err != nil:
			fail(http.StatusServiceUnavailable, "temporarily_unavailable", "the request cannot be checked right now", err)
			return
		}
		var body struct {
			SubID struct {
				Format string `json:"format"`
				Email  string `json:"email"`
				Iss    string `json:"iss"`
				Sub    string `json:"sub"`
			} `json:"sub_id"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
		if err := dec.Decode(&body); err != nil {
			fail(http.StatusBadRequest, "invalid_request", "the body is not a JSON object with sub_id", err)
			return
		}
		l := gateway.IdPLogout{Protocol: "universal", Issuer: cfg.Issuer, RequestID: httpx.RequestID(r.Context())}
		switch id := body.SubID; id.Format {
		case "email":
			if !strings.Contains(id.Email, "@") {
				fail(http.StatusBadRequest, "invalid_request", "sub_id.email is not an email address", errors.New("no email"))
				return
			}
			l.Email = strings.TrimSpace(id.Email)
		case "iss_sub":
			// The subject the IdP signed the person in as: the OIDC sub (or
			// the SAML NameID) of the organization's sign-in.
			if id.Sub == "" || id.Iss == "" {
				fail(http.StatusBadRequest, "invalid_request", "sub_id needs iss and sub", errors.New("no iss or sub"))
				return
			}
			if id.Iss != signInIssuer && id.Iss != cfg.Issuer {
				fail(http.StatusNotFound, "invalid_request", "no person of that issuer signs in here", errors.New("iss_sub of issuer "+id.Iss))
				return
			}
			l.Subject = id.Sub
		default:
			fail(http.StatusBadRequest, "invalid_request", `sub_id.format must be "email" or "iss_sub"`, errors.New("format "+id.Format))
			return
		}
		switch err := f.opts.Service.UseIdPToken(r.Context(), org, universalReplayNS, claims); {
		case errors.Is(err, provision.ErrBadIdPToken):
			fail(http.StatusUnauthorized, "invalid_token", "the token was used already", err)
			return
		case err != nil:
			fail(http.StatusServiceUnavailable, "temporarily_unavailable", "the request cannot be recorded right now; send it again", err)
			return
		}
		if _, err := f.IdPLogout(r.Context(), org, l, received); err != nil {
			if gateway.ErrorCodeOf(err) == gateway.ErrNotFound {
				fail(http.StatusNotFound, "invalid_request", "no account has that subject", err)
				return
			}
			fail(http.StatusServiceUnavailable, "temporarily_unavailable", "the sessions cannot be ended right now; send the request again", err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

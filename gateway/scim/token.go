package scim

import (
	"encoding/json"
	"errors"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/httpx"
)

// ServeToken is the OAuth 2.0 token endpoint of org's SCIM API: the
// client credentials grant (RFC 6749 §4.4), the client authenticated by
// HTTP Basic or by client_id and client_secret in the form (§2.3.1), its
// errors as §5.2 writes them. What it issues is a bearer token for org's
// SCIM endpoint alone (Options.IssueToken).
func (s *Server) ServeToken(w http.ResponseWriter, r *http.Request, org gateway.OrgID) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "the token endpoint takes a POST")
		return
	}
	if s.opts.IssueToken == nil || org.Check() != nil {
		oauthError(w, http.StatusNotFound, "invalid_request", "there is no token endpoint here")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "send the request as application/x-www-form-urlencoded")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the form cannot be read")
		return
	}
	form := r.PostForm
	switch grant := form.Get("grant_type"); grant {
	case "client_credentials":
	case "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "grant_type is missing (client_credentials)")
		return
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only grant_type=client_credentials is served here")
		return
	}
	var token string
	var expiresIn time.Duration
	var err error
	id, secret, basic := r.BasicAuth()
	switch {
	case form.Has("client_assertion") || form.Has("client_assertion_type"):
		// RFC 7523 §2.2: the client authenticated by a signed JWT.
		if form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || basic || form.Has("client_secret") {
			oauthError(w, http.StatusBadRequest, "invalid_request", "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer, with no other client authentication")
			return
		}
		if s.opts.IssueTokenByAssertion == nil {
			oauthError(w, http.StatusBadRequest, "invalid_request", "client assertions are not taken here")
			return
		}
		token, expiresIn, err = s.opts.IssueTokenByAssertion(r.Context(), org, form.Get("client_id"), form.Get("client_assertion"))
	case basic:
		// RFC 6749 §2.3.1: the id and secret are form-encoded inside Basic.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			oauthError(w, http.StatusBadRequest, "invalid_request", "the Basic credentials are not form-encoded")
			return
		}
		if form.Has("client_secret") {
			oauthError(w, http.StatusBadRequest, "invalid_request", "authenticate the client one way: Basic or the form, not both")
			return
		}
		token, expiresIn, err = s.opts.IssueToken(r.Context(), org, id, secret)
	default:
		token, expiresIn, err = s.opts.IssueToken(r.Context(), org, form.Get("client_id"), form.Get("client_secret"))
	}
	var gerr *gateway.Error
	switch {
	case err == nil:
	case errors.As(err, &gerr) && gerr.Code == gateway.ErrForbidden:
		// As for a wrong bearer token: a client that keeps failing is
		// slowed down (the right credentials are never held back).
		if ok, wait := s.failures.Fail(httpx.ClientAddress(r), time.Now()); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			oauthError(w, http.StatusTooManyRequests, "invalid_client", "too many failed attempts from this address; retry later")
			return
		}
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse-scim"`)
		}
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed: check the client id and secret (a secret expires; a manager makes a new one)")
		return
	case errors.As(err, &gerr) && gerr.Code == gateway.ErrUnavailable:
		w.Header().Set("Retry-After", "2")
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the token cannot be issued right now; retry shortly")
		return
	default:
		s.opts.Logger.ErrorContext(r.Context(), "scim: issuing an access token", "org", string(org), "error", err)
		oauthError(w, http.StatusInternalServerError, "server_error", "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": token, "token_type": "Bearer", "expires_in": int(expiresIn.Seconds())})
}

func oauthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}

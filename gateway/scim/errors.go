package scim

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	scimerrors "github.com/elimity-com/scim/errors"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// toSCIMError maps a domain error to the SCIM error value the library
// writes. It must return a value, not a pointer: the library turns anything
// else into a 500 carrying the raw error text.
func toSCIMError(err error) scimerrors.ScimError {
	// The PATCH engine reports SCIM errors itself; they may arrive wrapped
	// by the store.
	var se scimerrors.ScimError
	if errors.As(err, &se) {
		return se
	}
	var sp *scimerrors.ScimError
	if errors.As(err, &sp) && sp != nil {
		return *sp
	}
	msg := gateway.ErrorMessageOf(err)
	switch gateway.ErrorCodeOf(err) {
	case gateway.ErrInvalid:
		return scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: scimerrors.ScimTypeInvalidValue, Detail: msg}
	case gateway.ErrMutability:
		return scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: scimerrors.ScimTypeMutability, Detail: msg}
	case gateway.ErrNotFound:
		return scimerrors.ScimError{Status: http.StatusNotFound, Detail: msg}
	case gateway.ErrConflict:
		return scimerrors.ScimError{Status: http.StatusConflict, ScimType: scimerrors.ScimTypeUniqueness, Detail: msg}
	case gateway.ErrPreconditionFailed:
		return scimerrors.ScimError{Status: http.StatusPreconditionFailed, Detail: msg}
	case gateway.ErrForbidden:
		return scimerrors.ScimError{Status: http.StatusForbidden, Detail: msg}
	case gateway.ErrUnavailable:
		return scimerrors.ScimError{Status: http.StatusServiceUnavailable, Detail: msg}
	default:
		return scimerrors.ScimError{Status: http.StatusInternalServerError, Detail: msg}
	}
}

// writeSCIMError writes err as the SCIM error toSCIMError maps it to.
func writeSCIMError(w http.ResponseWriter, err error) {
	se := toSCIMError(err)
	writeError(w, se.Status, se.ScimType, se.Detail)
}

// writeError writes a SCIM error response for failures the gateway detects
// before the library runs (auth, limits, media type).
func writeError(w http.ResponseWriter, status int, scimType scimerrors.ScimType, detail string) {
	body, _ := json.Marshal(struct {
		Schemas  []string `json:"schemas"`
		ScimType string   `json:"scimType,omitempty"`
		Detail   string   `json:"detail"`
		Status   string   `json:"status"`
	}{[]string{errorURN}, string(scimType), detail, strconv.Itoa(status)})
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// invalidFilter reports a filter the parser accepted but that cannot be
// evaluated (e.g. gt on a boolean).
func invalidFilter(err error) error {
	return scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: scimerrors.ScimTypeInvalidFilter, Detail: "The filter cannot be evaluated: " + err.Error()}
}

package gateway

import (
	"errors"
	"fmt"
)

// ErrorCode classifies a domain error. Each transport maps codes to its
// own wire form in one place (SCIM: status + scimType).
type ErrorCode string

const (
	ErrInvalid            ErrorCode = "invalid"             // bad input
	ErrNotFound           ErrorCode = "not_found"           // no such resource
	ErrConflict           ErrorCode = "conflict"            // a unique value is taken
	ErrPreconditionFailed ErrorCode = "precondition_failed" // If-Match did not match
	ErrMutability         ErrorCode = "mutability"          // read-only or immutable target
	ErrForbidden          ErrorCode = "forbidden"           // policy forbids (e.g. provisioning method)
	ErrUnavailable        ErrorCode = "unavailable"         // try again later
	ErrInternal           ErrorCode = "internal"            // a bug or an I/O failure
)

// Error is the one error type of the domain. Message is safe to show to a
// client; Err (the cause) is for logs only and never reaches the wire.
type Error struct {
	Code    ErrorCode
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds a domain error with a client-safe message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCodeOf returns the code of the first *Error in err's chain, or
// ErrInternal for anything else (an unexpected error is a server fault).
func ErrorCodeOf(err error) ErrorCode {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ErrInternal
}

// ErrorMessageOf returns the client-safe message of err. Internal errors get
// a generic sentence so that storage paths or library text never leak.
func ErrorMessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != ErrInternal {
		return e.Message
	}
	return "An internal error occurred; the request was not applied. See the gateway logs for the request id."
}

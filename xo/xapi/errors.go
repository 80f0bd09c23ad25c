package xapi

import (
	"errors"
	"fmt"
	"strings"
)

// Error is an XAPI failure: the ErrorDescription array of a response whose
// Status is "Failure", or the error_info of a failed task. Code is the first
// element (e.g. "HANDLE_INVALID"), Params the rest.
//
// Match codes with errors.Is and the sentinels below
// (errors.Is(err, xapi.ErrHandleInvalid)), or any code with
// errors.Is(err, &xapi.Error{Code: "SR_BACKEND_FAILURE_44"}); read the
// parameters with errors.As.
type Error struct {
	Code   string
	Params []string
}

// Error formats the failure like XAPI's CLI: CODE(param1, param2).
func (e *Error) Error() string {
	if len(e.Params) == 0 {
		return "xapi: " + e.Code
	}
	return "xapi: " + e.Code + "(" + strings.Join(e.Params, ", ") + ")"
}

// Is reports whether target is an *Error with the same Code. The target's
// Params are ignored, so any sentinel matches every failure with its code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Param returns the i-th parameter, or "" when there is none.
func (e *Error) Param(i int) string {
	if i < 0 || i >= len(e.Params) {
		return ""
	}
	return e.Params[i]
}

// newError builds an *Error from an ErrorDescription or error_info array.
func newError(desc []string) *Error {
	if len(desc) == 0 {
		return &Error{Code: "INTERNAL_ERROR", Params: []string{"empty error description"}}
	}
	return &Error{Code: desc[0], Params: desc[1:]}
}

// Sentinels for the XAPI error codes callers commonly branch on. They match
// with errors.Is against any *Error carrying the same code.
var (
	// ErrSessionInvalid: bad, expired or logged-out session [session].
	// The Client re-logs in and retries once before returning it.
	ErrSessionInvalid = &Error{Code: "SESSION_INVALID"}
	// ErrSessionAuthenticationFailed: wrong credentials [user; message].
	ErrSessionAuthenticationFailed = &Error{Code: "SESSION_AUTHENTICATION_FAILED"}
	// ErrHostIsSlave: the contacted host is a pool member [master address].
	// The Client follows it to the master before returning it.
	ErrHostIsSlave = &Error{Code: "HOST_IS_SLAVE"}
	// ErrHandleInvalid: no object with that ref [class; ref].
	ErrHandleInvalid = &Error{Code: "HANDLE_INVALID"}
	// ErrUUIDInvalid: no object with that uuid [class; uuid].
	ErrUUIDInvalid = &Error{Code: "UUID_INVALID"}
	// ErrVMBadPowerState: wrong power state [vm; expected; actual], states lowercase.
	ErrVMBadPowerState = &Error{Code: "VM_BAD_POWER_STATE"}
	// ErrOperationBlocked: the operation is in blocked_operations [ref; reason].
	ErrOperationBlocked = &Error{Code: "OPERATION_BLOCKED"}
	// ErrOtherOperationInProgress: a conflicting operation is running [class; ref; op…].
	ErrOtherOperationInProgress = &Error{Code: "OTHER_OPERATION_IN_PROGRESS"}
	// ErrVDIInUse: the VDI is attached or reserved [vdi; op].
	ErrVDIInUse = &Error{Code: "VDI_IN_USE"}
	// ErrMessageMethodUnknown: the host does not know the method [method];
	// used for feature detection.
	ErrMessageMethodUnknown = &Error{Code: "MESSAGE_METHOD_UNKNOWN"}
	// ErrMessageParameterCountMismatch: wrong argument count [method; expected; received].
	ErrMessageParameterCountMismatch = &Error{Code: "MESSAGE_PARAMETER_COUNT_MISMATCH"}
	// ErrTaskCancelled: the task was cancelled [task].
	ErrTaskCancelled = &Error{Code: "TASK_CANCELLED"}
	// ErrEventsLost: the event queue overflowed; a full reload is needed.
	ErrEventsLost = &Error{Code: "EVENTS_LOST"}
	// ErrEventFromTokenParseFailure: event.from got a token it cannot parse [token].
	ErrEventFromTokenParseFailure = &Error{Code: "EVENT_FROM_TOKEN_PARSE_FAILURE"}
	// ErrInternalError: XAPI's catch-all [message].
	ErrInternalError = &Error{Code: "INTERNAL_ERROR"}
)

// ErrUnreachable matches (errors.Is) every failure to get an XML-RPC or JSON-RPC answer
// from the host: connection refused or reset, TLS failure, a non-2xx HTTP
// status, a truncated or unparsable body. The REST layer maps it to 503.
// Context cancellation and deadlines are reported as the context's error,
// not as ErrUnreachable.
var ErrUnreachable = errors.New("xapi: host unreachable")

// TransportError describes a failed HTTP exchange with a host. It matches
// ErrUnreachable with errors.Is and unwraps to the underlying cause.
type TransportError struct {
	Method     string // XML-RPC method, e.g. "VM.get_all_records"
	URL        string // endpoint, without credentials
	StatusCode int    // HTTP status when the server answered, else 0
	Err        error  // underlying cause
}

// Error describes the exchange and the cause.
func (e *TransportError) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("xapi: %s %s: HTTP status %d", e.Method, e.URL, e.StatusCode)
	}
	return fmt.Sprintf("xapi: %s %s: %v", e.Method, e.URL, e.Err)
}

// Unwrap returns the underlying cause.
func (e *TransportError) Unwrap() error { return e.Err }

// Is makes every TransportError match ErrUnreachable.
func (e *TransportError) Is(target error) bool { return target == ErrUnreachable }

// ErrInvalidResponse matches responses that are not well-formed XML-RPC
// or JSON-RPC, or whose values do not fit the requested Go type.
// Such failures are wrapped in a TransportError, so they also match
// ErrUnreachable.
var ErrInvalidResponse = errors.New("xapi: invalid response")

// Option validation errors, returned by New before any network call.
var (
	// ErrRequiredURL: Options.URL is empty.
	ErrRequiredURL = errors.New("xapi: URL is required")
	// ErrInvalidURL: Options.URL is not an absolute http(s) URL with a host.
	ErrInvalidURL = errors.New("xapi: URL must be http:// or https:// with a host")
	// ErrRequiredUsername: Options.Username is empty.
	ErrRequiredUsername = errors.New("xapi: Username is required")
	// ErrInvalidFingerprint: an Options.Fingerprints entry is not a SHA-256 hex digest.
	ErrInvalidFingerprint = errors.New("xapi: fingerprint must be 64 hex digits (colons allowed)")
	// ErrConflictingTLS: Insecure was set together with a CA or fingerprints.
	ErrConflictingTLS = errors.New("xapi: Insecure excludes CA and fingerprint options")
	// ErrInvalidCA: the CA file or PEM holds no certificate.
	ErrInvalidCA = errors.New("xapi: no certificate found in CA PEM")
	// ErrInvalidTimeout: a negative duration in Options.
	ErrInvalidTimeout = errors.New("xapi: timeouts must not be negative")
	// ErrInvalidTransport: Options.Transport is not "", "auto", "json-rpc" or "xml-rpc".
	ErrInvalidTransport = errors.New(`xapi: Transport must be "auto", "json-rpc" or "xml-rpc"`)
)

// ErrClosed is returned by calls on a Client after Close.
var ErrClosed = errors.New("xapi: client closed")

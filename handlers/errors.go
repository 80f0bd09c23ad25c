package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
)

// HandlerFunc is a route handler. It writes a successful response itself
// and returns an error otherwise; the error is rendered by one adapter
// (XO's JSON {"error", "data"} body with the status of the status table)
// and logged once, in the request's access log line. An error returned after
// the response has started is only logged.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Error kinds. Each decides an HTTP status (see the status table in the
// package documentation); wrap them in an *Error to give the message and
// data of the body, or match them with errors.Is.
var (
	// ErrBadRequest: malformed request, e.g. a filter that does not parse (400).
	ErrBadRequest = errors.New("bad request")
	// ErrUnauthorized: missing or invalid credentials (401, with WWW-Authenticate).
	ErrUnauthorized = errors.New("invalid credentials")
	// ErrForbidden: authenticated but not allowed (403).
	ErrForbidden = errors.New("not enough permissions")
	// ErrNotFound: no such object or route (404).
	ErrNotFound = errors.New("not found")
	// ErrMethodNotAllowed: the path exists, but not with this method (405).
	ErrMethodNotAllowed = errors.New("method not allowed")
	// ErrIncorrectState: the object is not in a state allowing the request (409).
	ErrIncorrectState = errors.New("incorrect state")
	// ErrLengthRequired: the upload needs a Content-Length (411).
	ErrLengthRequired = errors.New("length required")
	// ErrTooLarge: the request body exceeds its limit (413).
	ErrTooLarge = errors.New("request body too large")
	// ErrInvalidParameters: a parameter or body field has a wrong value (422).
	ErrInvalidParameters = errors.New("invalid parameters")
	// ErrNotImplemented: the request is understood but not supported (501).
	ErrNotImplemented = errors.New("not implemented")
	// ErrUnavailable: a backend (XAPI, the token store) cannot be reached (503).
	ErrUnavailable = errors.New("service unavailable")
	// ErrBadGateway: a server xorest fetches from for the client (an
	// import URL) failed: a 5xx answer, no answer (502).
	ErrBadGateway = errors.New("bad gateway")
)

// statusTable maps error kinds to HTTP statuses. It is the only place where
// an error's status is decided (XAPI faults: xapiStatus).
var statusTable = []struct {
	kind   error
	status int
}{
	{ErrBadRequest, http.StatusBadRequest},
	{ErrUnauthorized, http.StatusUnauthorized},
	{ErrForbidden, http.StatusForbidden},
	{ErrNotFound, http.StatusNotFound},
	{ErrMethodNotAllowed, http.StatusMethodNotAllowed},
	{ErrIncorrectState, http.StatusConflict},
	{ErrLengthRequired, http.StatusLengthRequired},
	{ErrTooLarge, http.StatusRequestEntityTooLarge},
	{ErrInvalidParameters, http.StatusUnprocessableEntity},
	{ErrNotImplemented, http.StatusNotImplemented},
	{ErrUnavailable, http.StatusServiceUnavailable},
	{ErrBadGateway, http.StatusBadGateway},
}

// xapiStatus maps XAPI fault codes to HTTP statuses; other codes are 500.
var xapiStatus = map[string]int{
	"HANDLE_INVALID":                http.StatusNotFound,
	"UUID_INVALID":                  http.StatusNotFound,
	"VM_BAD_POWER_STATE":            http.StatusConflict,
	"OTHER_OPERATION_IN_PROGRESS":   http.StatusConflict,
	"OPERATION_BLOCKED":             http.StatusForbidden,
	"RBAC_PERMISSION_DENIED":        http.StatusForbidden,
	"SESSION_AUTHENTICATION_FAILED": http.StatusUnauthorized,
	"MESSAGE_METHOD_UNKNOWN":        http.StatusNotImplemented,
}

// xapiSecretCodes are XAPI faults whose parameters may carry a session ref
// or credentials; their parameters are never shown or logged.
var xapiSecretCodes = map[string]bool{
	"SESSION_INVALID":               true,
	"SESSION_AUTHENTICATION_FAILED": true,
	"SESSION_NOT_REGISTERED":        true,
}

// xapiInfo is the "info" member XO adds to bodies of XAPI errors.
const xapiInfo = "This is a XenServer/XCP-ng error, not an XO error"

// Error is an error with the message and data of XO's JSON error body. Its
// Kind decides the status. The Message and Data are shown to the client, so
// they must not hold secrets; Err, the cause, is only logged.
type Error struct {
	Kind    error          // one of the Err* kinds
	Message string         // the body's "error"; Kind's text when empty
	Data    map[string]any // the body's "data"; omitted when nil
	Err     error          // the underlying cause, for logs and errors.Is/As
}

// Error returns the message, followed by the cause when there is one.
func (e *Error) Error() string {
	msg := e.message()
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) message() string {
	if e.Message != "" {
		return e.Message
	}
	if e.Kind != nil {
		return e.Kind.Error()
	}
	return "internal server error"
}

// Unwrap returns the kind and the cause, so errors.Is matches both.
func (e *Error) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.Kind, e.Err} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// NotFound is XO's noSuchObject: 404 "no such <type> <id>" with data {id, type}.
func NotFound(typ, id string) *Error {
	return &Error{Kind: ErrNotFound, Message: "no such " + typ + " " + id, Data: map[string]any{"id": id, "type": typ}}
}

// InvalidParameters is a 422 with message msg (or "invalid parameters") and data.
func InvalidParameters(msg string, data map[string]any) *Error {
	return &Error{Kind: ErrInvalidParameters, Message: msg, Data: data}
}

// BadRequest is a 400 with message msg and data.
func BadRequest(msg string, data map[string]any) *Error {
	return &Error{Kind: ErrBadRequest, Message: msg, Data: data}
}

// Unauthorized is a 401 with message msg (or "invalid credentials") and the
// cause err (logged only; may be nil).
func Unauthorized(msg string, err error) *Error {
	return &Error{Kind: ErrUnauthorized, Message: msg, Err: err}
}

// Forbidden is a 403 with message msg (or "not enough permissions") and data.
func Forbidden(msg string, data map[string]any) *Error {
	return &Error{Kind: ErrForbidden, Message: msg, Data: data}
}

// IncorrectState is XO's incorrectState: 409 "incorrect state" with data
// such as {actual, expected, object, property}.
func IncorrectState(data map[string]any) *Error {
	return &Error{Kind: ErrIncorrectState, Data: data}
}

// NotImplemented is a 501 with message msg (or "not implemented").
func NotImplemented(msg string) *Error {
	return &Error{Kind: ErrNotImplemented, Message: msg}
}

// Unavailable is a 503 with message msg (or "service unavailable") and the
// cause err (logged only).
func Unavailable(msg string, err error) *Error {
	return &Error{Kind: ErrUnavailable, Message: msg, Err: err}
}

// errorBody is XO's JSON error document.
type errorBody struct {
	Error string         `json:"error"`
	Data  map[string]any `json:"data,omitempty"`
	Info  string         `json:"info,omitempty"`
}

// describe returns the status and body for err. It is the one place that
// turns errors into responses.
func describe(err error) (int, errorBody) {
	if he, ok := errors.AsType[*Error](err); ok {
		status, _ := kindOf(he)
		return status, errorBody{Error: he.message(), Data: he.Data}
	}
	if nf, ok := errors.AsType[*xo.NotFoundError](err); ok {
		typ := nf.Type
		if typ == "" {
			typ = "object"
		}
		return describe(NotFound(typ, nf.ID))
	}
	if xe, ok := errors.AsType[*xapi.Error](err); ok {
		return describeXAPI(xe)
	}
	if errors.Is(err, xapi.ErrUnreachable) {
		return http.StatusServiceUnavailable, errorBody{Error: "XAPI is unreachable"}
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return http.StatusRequestEntityTooLarge, errorBody{Error: ErrTooLarge.Error()}
	}
	if status, kind := kindOf(err); kind != nil {
		return status, errorBody{Error: kind.Error()}
	}
	return http.StatusInternalServerError, errorBody{Error: "internal server error"}
}

// kindOf returns the status of the first kind of statusTable that err
// matches and that kind, or 500 and nil.
func kindOf(err error) (status int, kind error) {
	for _, row := range statusTable {
		if errors.Is(err, row.kind) {
			return row.status, row.kind
		}
	}
	return http.StatusInternalServerError, nil
}

// describeXAPI renders an XAPI fault as XO does ("CODE(p1, p2)" plus info),
// with the code and parameters in data; parameters that may hold secrets
// are dropped.
func describeXAPI(xe *xapi.Error) (int, errorBody) {
	status, ok := xapiStatus[xe.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	params := redactXAPIParams(xe)
	msg := xe.Code
	if len(params) > 0 {
		msg += "(" + strings.Join(params, ", ") + ")"
	}
	return status, errorBody{
		Error: msg,
		Data:  map[string]any{"code": xe.Code, "params": params},
		Info:  xapiInfo,
	}
}

// redactXAPIParams returns the parameters of xe that may be shown: none for
// session faults, and a session handle is never shown.
func redactXAPIParams(xe *xapi.Error) []string {
	if xapiSecretCodes[xe.Code] || (xe.Code == "HANDLE_INVALID" && len(xe.Params) > 0 && xe.Params[0] == "session") {
		return []string{}
	}
	if xe.Params == nil {
		return []string{}
	}
	return xe.Params
}

// logMessage is err's text for the logs, with the parameters of XAPI
// session faults (which may hold session refs) replaced.
func logMessage(err error) string {
	msg := err.Error()
	if xe, ok := errors.AsType[*xapi.Error](err); ok && len(redactXAPIParams(xe)) < len(xe.Params) {
		for _, p := range xe.Params {
			if p != "" {
				msg = strings.ReplaceAll(msg, p, "[redacted]")
			}
		}
	}
	return msg
}

// writeError renders err as the response, unless the response has already
// started or the client has gone, and records it for the access log.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	info := requestInfoFrom(r.Context())
	if info != nil {
		info.err = err
	}
	if rw, ok := w.(*responseRecorder); ok && rw.started() {
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away: nobody reads the answer
	}
	status, body := describe(err)
	if info != nil {
		info.status = status
	}
	writeErrorBody(w, status, body)
}

// writeErrorBody writes an error document with its status.
func writeErrorBody(w http.ResponseWriter, status int, body errorBody) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	h.Del("Content-Encoding")
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="xo"`)
	}
	w.WriteHeader(status)
	data, err := json.MarshalIndent(body, "", "  ")
	if err != nil { // only unencodable data values get here
		data = []byte(`{"error": "internal server error"}`)
	}
	_, _ = w.Write(data)
}

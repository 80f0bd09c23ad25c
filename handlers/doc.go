// Package handlers serves the Xen Orchestra REST API (/rest/v0) as one
// net/http handler, built by New from one route table: the ServeMux and
// the OpenAPI document (GET /rest/v0/docs/swagger.json, browsable at
// /rest/v0/docs) are both generated from it, so they cannot drift.
//
// Every route requires authentication (withAuthentication): a token in the
// authenticationToken cookie (or the legacy token cookie) or in
// Authorization: Bearer, or HTTP Basic with XAPI credentials checked by
// Config.VerifyBasic. Tokens are minted by POST
// /rest/v0/users/authentication_tokens and kept as hashes in an auth.Store.
//
// Handlers are HandlerFuncs: they return an error instead of writing it.
// One adapter renders errors as XO does, JSON {"error": …, "data": …}
// pretty-printed with two spaces, with one status table:
//
//	ErrBadRequest (filter parse error, two auth methods)  400
//	ErrUnauthorized (+ WWW-Authenticate: Basic realm="xo") 401
//	ErrForbidden                                          403
//	ErrNotFound (NotFound: "no such VM <id>", {id, type})  404
//	ErrMethodNotAllowed                                   405
//	ErrIncorrectState                                     409
//	ErrTooLarge                                           413
//	ErrInvalidParameters                                  422
//	ErrNotImplemented                                     501
//	ErrUnavailable, xapi.ErrUnreachable                   503
//	XAPI faults (*xapi.Error), with data {code, params}:
//	  HANDLE_INVALID, UUID_INVALID                        404
//	  VM_BAD_POWER_STATE, OTHER_OPERATION_IN_PROGRESS     409
//	  OPERATION_BLOCKED, RBAC_PERMISSION_DENIED           403
//	  SESSION_AUTHENTICATION_FAILED                       401
//	  MESSAGE_METHOD_UNKNOWN                              501
//	  any other code                                      500
//	anything else: 500 "internal server error"
//
// Each request gets an id (X-Request-Id, echoed or generated) and one slog
// access log line, which carries the error if there was one: errors are
// logged exactly once. Credentials never reach logs or error bodies, and
// the parameters of XAPI session faults are dropped.
//
// Collections are answered by WriteCollection (URLs, picked fields, or
// whole objects, as JSON, NDJSON or markdown, streamed) after ParseQuery
// has parsed the common query parameters; watch streams by WriteWatch.
package handlers

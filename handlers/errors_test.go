package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
)

func TestErrorResponses(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
	}{
		{"no such VM", NotFound("VM", "abc-123"), 404},
		{"wrapped not found", fmt.Errorf("loading: %w", NotFound("SR", "x")), 404},
		{"invalid parameters", InvalidParameters("", map[string]any{"limit": map[string]any{"message": "invalid number value", "value": "x"}}), 422},
		{"bad request", BadRequest("parse error: expected end of input at position 3", map[string]any{"stringToParse": "foo)"}), 400},
		{"unauthorized", Unauthorized("", errors.New("cause with secret-token")), 401},
		{"forbidden", Forbidden("forbidden operation: destroy is blocked", nil), 403},
		{"incorrect state", IncorrectState(map[string]any{"actual": "Halted", "expected": "Running", "object": "vm", "property": "power_state"}), 409},
		{"not implemented", NotImplemented("OVA import is not supported"), 501},
		{"unavailable", Unavailable("", errors.New("dial tcp")), 503},
		{"kind only", fmt.Errorf("nope: %w", ErrForbidden), 403},
		{"too large", &http.MaxBytesError{Limit: 10}, 413},
		{"xapi HANDLE_INVALID", &xapi.Error{Code: "HANDLE_INVALID", Params: []string{"VM", "OpaqueRef:1"}}, 404},
		{"xapi UUID_INVALID", &xapi.Error{Code: "UUID_INVALID", Params: []string{"VM", "u"}}, 404},
		{"xapi VM_BAD_POWER_STATE", fmt.Errorf("VM.start: %w", &xapi.Error{Code: "VM_BAD_POWER_STATE", Params: []string{"OpaqueRef:v", "halted", "running"}}), 409},
		{"xapi OTHER_OPERATION_IN_PROGRESS", &xapi.Error{Code: "OTHER_OPERATION_IN_PROGRESS", Params: []string{"VM", "OpaqueRef:v", "clean_shutdown"}}, 409},
		{"xapi OPERATION_BLOCKED", &xapi.Error{Code: "OPERATION_BLOCKED", Params: []string{"OpaqueRef:v", "protected"}}, 403},
		{"xapi RBAC_PERMISSION_DENIED", &xapi.Error{Code: "RBAC_PERMISSION_DENIED", Params: []string{"VM.destroy", "no"}}, 403},
		{"xapi SESSION_AUTHENTICATION_FAILED", &xapi.Error{Code: "SESSION_AUTHENTICATION_FAILED", Params: []string{"root", "Authentication failure"}}, 401},
		{"xapi MESSAGE_METHOD_UNKNOWN", &xapi.Error{Code: "MESSAGE_METHOD_UNKNOWN", Params: []string{"VM.frobnicate"}}, 501},
		{"xapi other code", &xapi.Error{Code: "SR_BACKEND_FAILURE_44", Params: []string{"", "no space", ""}}, 500},
		{"xapi no params", &xapi.Error{Code: "INTERNAL_ERROR"}, 500},
		{"xapi SESSION_INVALID", &xapi.Error{Code: "SESSION_INVALID", Params: []string{"OpaqueRef:secret-session"}}, 500},
		{"xapi HANDLE_INVALID session", &xapi.Error{Code: "HANDLE_INVALID", Params: []string{"session", "OpaqueRef:secret-session"}}, 404},
		{"xapi unreachable", fmt.Errorf("VM.get_all_records: %w", &xapi.TransportError{Method: "VM.get_all_records", URL: "https://h/", Err: errors.New("refused")}), 503},
		{"explicit error wins over xapi cause", &Error{Kind: ErrNotFound, Message: "no such VDI x", Err: &xapi.Error{Code: "INTERNAL_ERROR"}}, 404},
		{"xo no such VM", fmt.Errorf("GET: %w", &xo.NotFoundError{Type: "VM", ID: "abc-123"}), 404},
		{"xo no such object", &xo.NotFoundError{ID: "OpaqueRef:x"}, 404},
		{"xo pools unreachable", errors.Join(
			fmt.Errorf("pool https://a/: %w", &xapi.TransportError{Method: "event.from", URL: "https://a/", Err: errors.New("refused")}),
			fmt.Errorf("pool https://b/: %w", &xapi.TransportError{Method: "event.from", URL: "https://b/", Err: errors.New("timeout")})), 503},
		{"anything else", errors.New("database password=hunter2 failed"), 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			h := f.s.withRequestID(f.s.withAccessLog(f.s.adapt(func(http.ResponseWriter, *http.Request) error { return tt.err })))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
			if rec.Code != tt.status {
				t.Errorf("status %d, want %d", rec.Code, tt.status)
			}
			if got := rec.Header().Get("Content-Type"); got != contentJSON {
				t.Errorf("Content-Type %q", got)
			}
			if got := rec.Header().Get("WWW-Authenticate"); (got != "") != (tt.status == 401) {
				t.Errorf("WWW-Authenticate %q with status %d", got, tt.status)
			}
			golden(t, goldenName("errors", tt.name, "json"), rec.Body.Bytes())
			for _, secret := range []string{"secret-session", "hunter2", "secret-token"} {
				if strings.Contains(rec.Body.String(), secret) {
					t.Errorf("body leaks %q: %s", secret, rec.Body)
				}
			}
			if strings.Contains(f.logs.String(), "secret-session") {
				t.Errorf("log leaks the session: %s", f.logs)
			}
			if lines := logLines(t, f.logs.String()); len(lines) != 1 || lines[0]["error"] == nil {
				t.Errorf("want the error logged once: %s", f.logs)
			}
		})
	}
}

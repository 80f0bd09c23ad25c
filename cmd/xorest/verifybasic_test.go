package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/xorest/xorest/auth"
	"github.com/xorest/xorest/handlers"
	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// TestVerifyBasic checks who may use the REST API with HTTP Basic: the
// local superuser and subjects whose roles let them manage subjects
// (pool-admin); other subjects are refused with 403, wrong credentials
// fail the login.
func TestVerifyBasic(t *testing.T) {
	srv := xapisim.NewServer(t, xapisim.Default())
	root := srv.Session()
	verify := verifyBasic(xapi.Options{URL: srv.URL})
	users := []struct {
		name, role string
	}{
		{"admin", xapisim.RolePoolAdmin},
		{"operator", xapisim.RolePoolOperator},
		{"poweradmin", xapisim.RoleVMPowerAdmin},
		{"reader", xapisim.RoleReadOnly},
	}
	for _, u := range users {
		sid := srv.AddExternalUser(u.name, "pw-"+u.name)
		subject, err := srv.Call(t.Context(), "subject.create", root, map[string]any{
			"subject_identifier": sid,
			"other_config":       map[string]any{"subject-name": u.name},
		})
		if err != nil {
			t.Fatal(err)
		}
		if u.role != xapisim.RolePoolAdmin {
			for _, call := range []struct{ method, role string }{
				{"subject.remove_from_roles", xapisim.RolePoolAdmin},
				{"subject.add_to_roles", u.role},
			} {
				if _, err := srv.Call(t.Context(), call.method, root, subject, xapisim.RoleRef(call.role)); err != nil {
					t.Fatalf("%s %s: %v", call.method, call.role, err)
				}
			}
		}
	}
	tests := []struct {
		name, user, password string
		want                 error // nil: accepted
	}{
		{"local superuser", srv.User, srv.Password, nil},
		{"pool-admin subject", "admin", "pw-admin", nil},
		{"pool-operator subject", "operator", "pw-operator", handlers.ErrForbidden},
		{"vm-power-admin subject", "poweradmin", "pw-poweradmin", handlers.ErrForbidden},
		{"read-only subject", "reader", "pw-reader", handlers.ErrForbidden},
		{"wrong password", "reader", "nope", xapi.ErrSessionAuthenticationFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verify(t.Context(), tt.user, tt.password)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}

	// Through the handlers: a read-only subject can neither read nor mint
	// a token; a pool-admin subject can.
	store, err := auth.NewFileStore(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := handlers.New(handlers.Config{Tokens: store, Collections: []string{"vms"}, VerifyBasic: verify})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, method, path, user, password string
		want                               int
	}{
		{"read-only subject reads", http.MethodGet, "/rest/v0", "reader", "pw-reader", http.StatusForbidden},
		{"read-only subject mints a token", http.MethodPost, "/rest/v0/users/authentication_tokens", "reader", "pw-reader", http.StatusForbidden},
		{"pool-admin subject reads", http.MethodGet, "/rest/v0", "admin", "pw-admin", http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			req.SetBasicAuth(tt.user, tt.password)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("%s %s as %s: %d %s, want %d", tt.method, tt.path, tt.user, rec.Code, rec.Body, tt.want)
			}
		})
	}
}

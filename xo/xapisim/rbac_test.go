package xapisim

import (
	"strings"
	"testing"
)

// rbacPool serves Default with an external user alice (password "pw")
// whose subject has exactly role, and returns the server, a client, a root
// session and alice's session.
func rbacPool(t *testing.T, role string) (*Server, *testClient, string, string) {
	t.Helper()
	srv, c := newTestServer(t)
	root := c.login()
	sid := srv.AddExternalUser("alice", "pw")
	subject := c.must("subject.create", root, map[string]any{
		"subject_identifier": sid,
		"other_config":       map[string]any{"subject-name": `CORP\alice`},
	}).(string)
	if roles := c.must("subject.get_roles", root, subject).([]any); len(roles) != 1 || roles[0] != RoleRef(RolePoolAdmin) {
		t.Fatalf("new subject's roles %v, want pool-admin", roles)
	}
	if role != RolePoolAdmin {
		c.must("subject.remove_from_roles", root, subject, RoleRef(RolePoolAdmin))
		c.must("subject.add_to_roles", root, subject, RoleRef(role))
	}
	alice := c.must("session.login_with_password", "alice", "pw", "1.0", "rbac-test").(string)
	return srv, c, root, alice
}

// TestRBAC checks Rbac.check for the sessions of subjects with each role
// on calls needing increasing privileges: read-only can read, and each
// call is refused below its datamodel roles with XAPI's wording.
func TestRBAC(t *testing.T) {
	type call struct {
		method string
		params func(vm, pool string) []any
		roles  string // allowed roles, as RBAC_PERMISSION_DENIED lists them
	}
	all := "pool-admin, pool-operator, vm-power-admin, vm-admin, vm-operator, client-cert, read-only"
	calls := []call{
		{"VM.get_all_records", func(vm, pool string) []any { return nil }, all},
		{"VM.get_name_label", func(vm, pool string) []any { return []any{vm} }, all},
		{"event.from", func(vm, pool string) []any { return []any{[]any{"vm"}, "", 0.0} }, all},
		{"VM.start", func(vm, pool string) []any { return []any{vm, false, false} }, "pool-admin, pool-operator, vm-power-admin, vm-admin, vm-operator"},
		{"VM.set_name_description", func(vm, pool string) []any { return []any{vm, "rbac"} }, "pool-admin, pool-operator, vm-power-admin, vm-admin"},
		{"VM.snapshot", func(vm, pool string) []any { return []any{vm, "snap"} }, "pool-admin, pool-operator, vm-power-admin"},
		{"pool.set_name_description", func(vm, pool string) []any { return []any{pool, "rbac"} }, "pool-admin, pool-operator"},
		{"subject.get_permissions_name_label", func(vm, pool string) []any { return []any{"OpaqueRef:NULL"} }, ""},
	}
	for _, role := range []string{RolePoolAdmin, RolePoolOperator, RoleVMPowerAdmin, RoleVMAdmin, RoleVMOperator, RoleReadOnly} {
		t.Run(role, func(t *testing.T) {
			_, c, root, alice := rbacPool(t, role)
			vm := vmNamed(t, c, root)
			pool := c.must("pool.get_all", root).([]any)[0].(string)
			for _, cl := range calls {
				if cl.roles == "" {
					continue
				}
				_, err := c.call(cl.method, append([]any{alice}, cl.params(vm, pool)...)...)
				allowed := strings.Contains(", "+cl.roles+", ", ", "+role+", ")
				f, isFault := err.(*Fault)
				denied := isFault && f.Code == "RBAC_PERMISSION_DENIED"
				if allowed && denied {
					t.Errorf("%s as %s: %v, want allowed", cl.method, role, err)
				}
				if !allowed {
					wantFault(t, err, "RBAC_PERMISSION_DENIED", strings.ToLower(cl.method),
						"No permission in user session. (Roles with this permission: "+cl.roles+")")
				}
			}
			// The local superuser is never refused.
			if _, err := c.call("pool.set_name_description", root, pool, "root"); err != nil {
				t.Errorf("pool.set_name_description as root: %v", err)
			}
		})
	}
}

// vmNamed returns a halted VM that is not a template.
func vmNamed(t *testing.T, c *testClient, root string) string {
	t.Helper()
	recs := c.must("VM.get_all_records", root).(map[string]any)
	for ref, r := range recs {
		rec := r.(map[string]any)
		if rec["is_a_template"] == false && rec["is_control_domain"] == false && rec["power_state"] == "Halted" {
			return ref
		}
	}
	t.Fatal("no halted VM in the model")
	return ""
}

// TestExternalLogin checks the logins of Xapi_session with external
// authentication: the directory's answer, the subject list, the roles.
func TestExternalLogin(t *testing.T) {
	srv, c := newTestServer(t)
	root := c.login()
	sid := srv.AddExternalUser("bob", "secret")
	login := func(user, pwd string) error {
		_, err := c.call("session.login_with_password", user, pwd, "1.0", "")
		return err
	}
	wantFault(t, login("bob", "wrong"), "SESSION_AUTHENTICATION_FAILED", "bob", "Authentication failure")
	wantFault(t, login("nobody", "x"), "SESSION_AUTHENTICATION_FAILED", "nobody", "Authentication failure")
	err := login("bob", "secret")
	wantFault(t, err, "SESSION_AUTHORIZATION_FAILED")
	if f := err.(*Fault); len(f.Params) != 2 || f.Params[0] != "bob" || !strings.Contains(f.Params[1], "has no access rights in this pool") {
		t.Errorf("not a subject: %v", f.Params)
	}
	subject := c.must("subject.create", root, map[string]any{"subject_identifier": sid, "other_config": map[string]any{"subject-name": `CORP\bob`}}).(string)
	_, err = c.call("subject.create", root, map[string]any{"subject_identifier": sid})
	wantFault(t, err, "SUBJECT_ALREADY_EXISTS")
	_, err = c.call("subject.add_to_roles", root, subject, RoleRef(RolePoolAdmin))
	wantFault(t, err, "ROLE_ALREADY_EXISTS")
	_, err = c.call("subject.add_to_roles", root, subject, "OpaqueRef:nope")
	wantFault(t, err, "ROLE_NOT_FOUND")

	session := c.must("session.login_with_password", "bob", "secret", "1.0", "").(string)
	rec := c.must("session.get_record", session, session).(map[string]any)
	if rec["is_local_superuser"] != false || rec["subject"] != subject || rec["auth_user_sid"] != sid || rec["auth_user_name"] != `CORP\bob` {
		t.Errorf("session of a subject: %v", rec)
	}

	c.must("subject.remove_from_roles", root, subject, RoleRef(RolePoolAdmin))
	wantFault(t, login("bob", "secret"), "RBAC_PERMISSION_DENIED", "bob",
		"Subject bob (identifier "+sid+") has no roles in this pool")
	// The root credentials still work.
	if err := login("root", "password"); err != nil {
		t.Errorf("root login: %v", err)
	}
}

// TestRoleRefs checks the static role refs against the datamodel's
// default of subject.roles (pool-admin) and that they are distinct.
func TestRoleRefs(t *testing.T) {
	seen := map[string]string{}
	for _, n := range roleNames() {
		ref := RoleRef(n)
		if other, dup := seen[ref]; dup {
			t.Errorf("%s and %s share %s", n, other, ref)
		}
		seen[ref] = n
		if got, ok := roleOfRef(ref); !ok || got != n {
			t.Errorf("roleOfRef(%s) = %q, want %q", ref, got, n)
		}
	}
	def := ""
	c, _ := Schema("subject")
	for _, f := range c.Fields {
		if f.Name == "roles" {
			def = f.Default.([]string)[0]
		}
	}
	if def != RoleRef(RolePoolAdmin) {
		t.Errorf("subject.roles defaults to %s, RoleRef(pool-admin) is %s", def, RoleRef(RolePoolAdmin))
	}
}

package xapisim

import (
	"crypto/md5"
	"fmt"
	"slices"
	"strings"
)

// RBAC as XAPI does it (xen-api, ocaml/xapi):
//
//   - with external authentication enabled (host.external_auth_type), a
//     login that is not the local superuser's is checked by the directory
//     (Xapi_session.login_with_password, do_external_auth); the user must
//     be a subject of the pool (subject.subject_identifier), else
//     SESSION_AUTHORIZATION_FAILED [uname; "Subject <uname> (identifier
//     <sid>, from <origin>) has no access rights in this pool"]; a subject
//     without roles gets RBAC_PERMISSION_DENIED [uname; "Subject <uname>
//     (identifier <sid>) has no roles in this pool"];
//   - the session of a subject has is_local_superuser false, subject,
//     auth_user_sid and auth_user_name (the subject's other_config
//     subject-name);
//   - each call is checked (Rbac.check) against the permission named
//     after the call in lower case ("vm.start"): a session that lacks it
//     gets RBAC_PERMISSION_DENIED [permission; "No permission in user
//     session. (Roles with this permission: <roles>)"] where the roles are
//     the message's allowed_roles from the datamodel (messageRoles,
//     generated from xenapi.json). The local superuser passes every check.
//
// The simulator's directory is AddExternalUser. Its subject.create takes
// other_config as given (XAPI fills it from the directory), and
// subject.roles defaults to pool-admin as in the datamodel.

// Roles of XAPI, most privileged first (Datamodel_roles.ordered).
const (
	RolePoolAdmin    = "pool-admin"
	RolePoolOperator = "pool-operator"
	RoleVMPowerAdmin = "vm-power-admin"
	RoleVMAdmin      = "vm-admin"
	RoleVMOperator   = "vm-operator"
	RoleClientCert   = "client-cert"
	RoleReadOnly     = "read-only"
)

// roleNames returns XAPI's static roles in Datamodel_roles.ordered order.
func roleNames() []string {
	return []string{RolePoolAdmin, RolePoolOperator, RoleVMPowerAdmin, RoleVMAdmin, RoleVMOperator, RoleClientCert, RoleReadOnly}
}

// RoleRef returns the ref of a static role as XAPI makes it
// (Xapi_role.ref_of_role, gen_rbac.ml): OpaqueRef: and the role's UUID,
// Constants.rbac_pool_admin_uuid for pool-admin, else the MD5 of the name
// as a UUID (hash2uuid).
func RoleRef(name string) string {
	if name == RolePoolAdmin {
		return "OpaqueRef:0165f154-ba3e-034e-6b27-5d271af109ba"
	}
	h := md5.Sum([]byte(name))
	return fmt.Sprintf("OpaqueRef:%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// roleOfRef returns the name of the static role ref.
func roleOfRef(ref string) (string, bool) {
	for _, n := range roleNames() {
		if RoleRef(n) == ref {
			return n, true
		}
	}
	return "", false
}

// externalUser is an account of the simulated directory.
type externalUser struct{ sid, password string }

// AddExternalUser adds an account to the simulated external directory
// and returns its subject identifier; the pool's hosts get
// external_auth_type "AD" (external authentication enabled). The user
// can log in once a subject with that identifier exists (subject.create).
func (s *Simulator) AddExternalUser(name, password string) string {
	s.mu.Lock()
	if s.directory == nil {
		s.directory = map[string]externalUser{}
	}
	u, ok := s.directory[name]
	if !ok {
		u.sid = fmt.Sprintf("S-1-5-21-3623811015-3361044348-30300820-%d", 1100+len(s.directory))
	}
	u.password = password
	s.directory[name] = u
	s.mu.Unlock()
	_ = s.DB.Write(func(tx *Tx) error {
		for _, h := range tx.All("host") {
			setField(tx, h, "external_auth_type", "AD")
			setField(tx, h, "external_auth_service_name", "xapisim.local")
		}
		return nil
	})
	return u.sid
}

// externalLogin authenticates a user of the directory and returns the
// fields of the new session, or the fault of Xapi_session's external
// login.
func (s *Simulator) externalLogin(user, password string) (Record, error) {
	s.mu.RLock()
	u, ok := s.directory[user]
	s.mu.RUnlock()
	if !ok || u.password != password {
		return nil, NewFault("SESSION_AUTHENTICATION_FAILED", user, "Authentication failure")
	}
	var subject string
	var roles []string
	name := user
	s.DB.Read(func(tx *Tx) {
		refs := tx.All("subject")
		slices.Sort(refs)
		for _, ref := range refs {
			rec, _ := tx.GetClass("subject", ref)
			if str(rec, "subject_identifier") == u.sid {
				subject = ref
				roles = strSet(rec, "roles")
				if n := strMap(rec, "other_config")["subject-name"]; n != "" {
					name = n
				}
				return
			}
		}
	})
	if subject == "" {
		return nil, NewFault("SESSION_AUTHORIZATION_FAILED", user,
			fmt.Sprintf("Subject %s (identifier %s, from %s) has no access rights in this pool", user, u.sid, "xapisim"))
	}
	if len(s.permissions(roles)) == 0 {
		return nil, NewFault("RBAC_PERMISSION_DENIED", user,
			fmt.Sprintf("Subject %s (identifier %s) has no roles in this pool", user, u.sid))
	}
	rec := NewRecord(sessionClass)
	rec["rbac_permissions"] = s.permissions(roles)
	rec["is_local_superuser"] = false
	rec["subject"] = subject
	rec["auth_user_sid"] = u.sid
	rec["auth_user_name"] = name
	return rec, nil
}

// allowedRoles returns the roles allowed to call method, as
// RBAC_PERMISSION_DENIED lists them. A method the datamodel does not list
// is, as a getter, for every role (default_field_reader_roles), else for
// pool admins (default_field_writer_roles).
func allowedRoles(method string) string {
	if roles, ok := messageRoles(method); ok {
		return roles
	}
	if _, m, _ := strings.Cut(method, "."); strings.HasPrefix(m, "get_") {
		return strings.Join(roleNames(), ", ")
	}
	return RolePoolAdmin
}

// permissions returns the sorted permission names (lower-case method
// names) that the role refs grant among the simulator's methods, as
// Xapi_session.get_permissions stores them in session.rbac_permissions.
func (s *Simulator) permissions(roleRefs []string) []string {
	var names []string
	for _, ref := range roleRefs {
		if n, ok := roleOfRef(ref); ok {
			names = append(names, n)
		}
	}
	var perms []string
	for _, m := range s.Methods() {
		allowed := strings.Split(allowedRoles(m), ", ")
		for _, n := range names {
			if slices.Contains(allowed, n) {
				perms = append(perms, strings.ToLower(m))
				break
			}
		}
	}
	slices.Sort(perms)
	return slices.Compact(perms)
}

// checkPermission is Rbac.check for a call of method with the session
// whose record is session: nil when allowed (the local superuser, a pool
// session, or a permission in session.rbac_permissions, computed at
// login), else RBAC_PERMISSION_DENIED.
func (s *Simulator) checkPermission(method string, session Record) *Fault {
	if boolField(session, "is_local_superuser") || boolField(session, "pool") {
		return nil
	}
	perm := strings.ToLower(method)
	if _, ok := slices.BinarySearch(strSet(session, "rbac_permissions"), perm); ok {
		return nil
	}
	return NewFault("RBAC_PERMISSION_DENIED", perm,
		"No permission in user session. (Roles with this permission: "+allowedRoles(method)+")")
}

func (s *Simulator) registerSubject() {
	roleArg := func(c *Call) (subject, role string, err error) {
		if subject, err = c.String(0); err != nil {
			return "", "", err
		}
		if role, err = c.String(1); err != nil {
			return "", "", err
		}
		ok := false
		c.Sim.DB.Read(func(tx *Tx) { _, ok = tx.GetClass("subject", subject) })
		if !ok {
			return "", "", HandleInvalid("subject", subject)
		}
		if _, ok := roleOfRef(role); !ok {
			return "", "", NewFault("ROLE_NOT_FOUND")
		}
		return subject, role, nil
	}
	// Xapi_subject.create: one subject per identifier.
	if create, ok := s.lookup("subject.create"); ok && create.Handler != nil {
		implicit := create.Handler
		create.Handler = func(c *Call) (any, error) {
			args, _ := c.Args[0].(map[string]any)
			sid, _ := args["subject_identifier"].(string)
			exists := false
			c.Sim.DB.Read(func(tx *Tx) {
				for _, ref := range tx.All("subject") {
					rec, _ := tx.GetClass("subject", ref)
					exists = exists || str(rec, "subject_identifier") == sid
				}
			})
			if exists {
				return nil, NewFault("SUBJECT_ALREADY_EXISTS")
			}
			return implicit(c)
		}
		s.Register("subject.create", create)
	}
	// Xapi_subject.add_to_roles / remove_from_roles.
	s.Register("subject.add_to_roles", Method{Params: 2, Handler: func(c *Call) (any, error) {
		subject, role, err := roleArg(c)
		if err != nil {
			return nil, err
		}
		return nil, c.Sim.DB.Write(func(tx *Tx) error {
			rec, _ := tx.GetClass("subject", subject)
			roles := strSet(rec, "roles")
			if slices.Contains(roles, role) {
				return NewFault("ROLE_ALREADY_EXISTS")
			}
			tx.Modify(subject)["roles"] = append(slices.Clone(roles), role)
			return nil
		})
	}})
	s.Register("subject.remove_from_roles", Method{Params: 2, Handler: func(c *Call) (any, error) {
		subject, role, err := roleArg(c)
		if err != nil {
			return nil, err
		}
		return nil, c.Sim.DB.Write(func(tx *Tx) error {
			rec, _ := tx.GetClass("subject", subject)
			roles := strSet(rec, "roles")
			i := slices.Index(roles, role)
			if i < 0 {
				return NewFault("ROLE_NOT_FOUND")
			}
			tx.Modify(subject)["roles"] = slices.Delete(slices.Clone(roles), i, i+1)
			return nil
		})
	}})
}

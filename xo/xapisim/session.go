package xapisim

import (
	"context"
	"strings"
)

// sessionClass is the registry class of sessions.
const sessionClass = "session"

// SessionValid reports whether ref is a live session.
func (s *Simulator) SessionValid(ref string) bool {
	if !strings.HasPrefix(ref, "OpaqueRef:") {
		return false
	}
	ok := false
	s.DB.Read(func(tx *Tx) {
		_, ok = tx.GetClass(sessionClass, ref)
	})
	return ok
}

// Login creates a session for user as session.login_with_password does,
// without checking a password, and returns its ref. Data-plane handlers
// use it for HTTP Basic authentication.
func (s *Simulator) Login(user, originator string) string {
	rec := NewRecord(sessionClass)
	rec["is_local_superuser"] = true
	rec["auth_user_name"] = user
	return s.newSession(rec, originator)
}

// newSession stores a session made of rec (the subject's fields) and
// returns its ref.
func (s *Simulator) newSession(rec Record, originator string) string {
	host := s.MasterHost()
	now := s.Now()
	var ref string
	_ = s.DB.Write(func(tx *Tx) error {
		rec["this_host"] = host
		rec["this_user"] = NullRef
		rec["last_active"] = now
		rec["validation_time"] = now
		rec["originator"] = originator
		rec["pool"] = false
		ref = tx.NewRef()
		tx.CreateWithRef(sessionClass, ref, rec)
		return nil
	})
	return ref
}

// loginWithPassword is Xapi_session.login_with_password on the master:
// the local superuser's credentials, else (with external authentication
// enabled) a subject of the directory.
func (s *Simulator) loginWithPassword(user, password, originator string) (string, error) {
	if s.CheckPassword(user, password) {
		return s.Login(user, originator), nil
	}
	s.mu.RLock()
	external := len(s.directory) > 0
	s.mu.RUnlock()
	if !external {
		return "", NewFault("SESSION_AUTHENTICATION_FAILED", user, "Authentication failure")
	}
	rec, err := s.externalLogin(user, password)
	if err != nil {
		return "", err
	}
	return s.newSession(rec, originator), nil
}

// Logout destroys session ref; it reports whether it existed.
func (s *Simulator) Logout(ref string) bool {
	found := false
	_ = s.DB.Write(func(tx *Tx) error {
		if _, ok := tx.GetClass(sessionClass, ref); ok {
			tx.Delete(ref)
			found = true
		}
		return nil
	})
	return found
}

// SetMasterAddress sets the address that pool members' listeners
// (StartHost) give in HOST_IS_SLAVE, Pool_role.get_master_address on a
// real member. The default, "", is the pool master's host.address; a test
// serving the master on a loopback port sets "127.0.0.1:port" so that
// clients can follow it.
func (s *Simulator) SetMasterAddress(address string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.masterAddr = address
}

// masterAddress is the master address members give in HOST_IS_SLAVE.
func (s *Simulator) masterAddress() string {
	s.mu.RLock()
	addr := s.masterAddr
	s.mu.RUnlock()
	if addr != "" {
		return addr
	}
	master := s.MasterHost()
	s.DB.Read(func(tx *Tx) {
		rec, _ := tx.GetClass("host", master)
		addr = str(rec, "address")
	})
	return addr
}

// memberRPCKey is the context key marking an RPC that arrived on the
// listener of a pool member (StartHost), not on the master's.
type memberRPCKey struct{}

// isMemberListener reports whether ctx is an RPC received by the listener
// of a host other than the pool master. Calls that data-plane handlers
// make (Simulator.Call) are not: a real member's handlers reach the
// master with a pool session.
func (s *Simulator) isMemberListener(ctx context.Context) bool {
	if ctx == nil {
		return false
	}
	member, _ := ctx.Value(memberRPCKey{}).(bool)
	return member
}

// CheckPassword reports whether user and password are the simulator's
// credentials.
func (s *Simulator) CheckPassword(user, password string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return user == s.user && password == s.password
}

func (s *Simulator) registerSession() {
	login := func(c *Call) (any, error) {
		user, err := c.String(0)
		if err != nil {
			return nil, err
		}
		pwd, err := c.String(1)
		if err != nil {
			return nil, err
		}
		originator, err := c.String(3)
		if err != nil {
			return nil, err
		}
		s.mu.RLock()
		master := s.master
		s.mu.RUnlock()
		if master != "" {
			return nil, NewFault("HOST_IS_SLAVE", master)
		}
		if c.Method == "session.login_with_password" && s.isMemberListener(c.Ctx) {
			// Xapi_session.login_with_password on a supporter.
			return nil, NewFault("HOST_IS_SLAVE", s.masterAddress())
		}
		if c.Method == "session.slave_local_login_with_password" {
			if !s.CheckPassword(user, pwd) {
				return nil, NewFault("SESSION_AUTHENTICATION_FAILED", user, "Authentication failure")
			}
			return s.Login(user, originator), nil
		}
		return s.loginWithPassword(user, pwd, originator)
	}
	s.Register("session.login_with_password", Method{Params: 4, Defaults: 2, NoSession: true, Handler: login})
	s.Register("session.slave_local_login_with_password", Method{Params: 2, NoSession: true, Handler: login})
	s.Register("session.logout", Method{Handler: func(c *Call) (any, error) {
		s.Logout(c.Session)
		return nil, nil
	}})
	s.Register("session.local_logout", Method{Handler: func(c *Call) (any, error) {
		s.Logout(c.Session)
		return nil, nil
	}})
	s.Register("session.change_password", Method{Params: 2, Handler: func(c *Call) (any, error) {
		old, _ := c.String(0)
		pwd, err := c.String(1)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if old != s.password {
			return nil, NewFault("SESSION_AUTHENTICATION_FAILED", s.user, "Authentication failure")
		}
		s.password = pwd
		return nil, nil
	}})
	s.registerSubject()
	s.Register("session.get_all_subject_identifiers", Method{Handler: func(c *Call) (any, error) {
		return []string{}, nil
	}})
	s.Register("session.logout_subject_identifier", Method{Params: 1, Handler: func(c *Call) (any, error) {
		return nil, nil
	}})
}

// Restart simulates a toolstack (xapi) restart: every session and every
// task is dropped, as XAPI persists neither, and running tasks are
// cancelled. Clients then get SESSION_INVALID and must log in again.
func (s *Simulator) Restart() {
	s.cancelTasks()
	s.tasksMu.Lock()
	clear(s.tasks)
	s.tasksMu.Unlock()
	s.legacy.mu.Lock()
	clear(s.legacy.subs)
	s.legacy.mu.Unlock()
	_ = s.DB.Write(func(tx *Tx) error {
		for _, class := range []string{sessionClass, taskClass} {
			for _, ref := range tx.All(class) {
				tx.Delete(ref)
			}
		}
		return nil
	})
}

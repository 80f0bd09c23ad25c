package xapisim

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// Session expiry as XAPI does it (xen-api, ocaml/xapi):
//
//   - Session_check.check refreshes a session's last_active on each call,
//     unless it was refreshed less than Xapi_globs.threshold_last_active
//     (600 s) ago;
//   - the DB GC thread (Db_gc.start_db_gc_thread, every db_GC_TIMER =
//     30 s) runs Db_gc_util.timeout_sessions, which destroys
//     (Xapi_session.destroy_db_session) every unused session whose
//     last_active is older than Xapi_globs.inactive_session_timeout
//     (86400 s), and, in each group of sessions holding more than its
//     limit, the least recently active ones beyond the limit. The groups
//     are: pool (intra-pool) sessions, limit max_sessions (2 × max_tasks =
//     400); sessions of root (auth_user_name "" or "root") without an
//     originator, limit max_sessions; root sessions per originator, limit
//     max_sessions_per_originator (500); other users' sessions per
//     auth_user_name, limit max_sessions_per_user_name (500). A session is
//     unused when none of its tasks (nor its parent's) is pending.
//
// The simulator runs no GC thread: the pass runs lazily, before a call is
// dispatched or a data-plane request authenticated, when GCInterval has
// passed on the simulator's clock since the previous pass. With SetClock
// a test decides exactly when sessions expire.

// SessionLimits are the settings of session expiry. A zero field takes
// XAPI's default (DefaultSessionLimits).
type SessionLimits struct {
	// InactiveTimeout is Xapi_globs.inactive_session_timeout: a session
	// not used for longer is destroyed by the next GC pass.
	InactiveTimeout time.Duration
	// RefreshAfter is Xapi_globs.threshold_last_active: a call refreshes
	// last_active only when it is older than this.
	RefreshAfter time.Duration
	// GCInterval is Db_gc.db_GC_TIMER, the time between GC passes.
	GCInterval time.Duration
	// MaxSessions is Xapi_globs.max_sessions, the limit of pool sessions
	// and of root sessions without an originator.
	MaxSessions int
	// MaxPerOriginator is Xapi_globs.max_sessions_per_originator, the
	// limit of root sessions per originator.
	MaxPerOriginator int
	// MaxPerUserName is Xapi_globs.max_sessions_per_user_name, the limit
	// of the sessions of one (non-root) user name.
	MaxPerUserName int
}

// DefaultSessionLimits returns XAPI's settings (xapi_globs.ml).
func DefaultSessionLimits() SessionLimits {
	return SessionLimits{
		InactiveTimeout:  24 * time.Hour,
		RefreshAfter:     10 * time.Minute,
		GCInterval:       30 * time.Second,
		MaxSessions:      400,
		MaxPerOriginator: 500,
		MaxPerUserName:   500,
	}
}

// withDefaults returns l with its zero fields set to XAPI's defaults.
func (l SessionLimits) withDefaults() SessionLimits {
	d := DefaultSessionLimits()
	if l.InactiveTimeout <= 0 {
		l.InactiveTimeout = d.InactiveTimeout
	}
	if l.RefreshAfter <= 0 {
		l.RefreshAfter = d.RefreshAfter
	}
	if l.GCInterval <= 0 {
		l.GCInterval = d.GCInterval
	}
	if l.MaxSessions <= 0 {
		l.MaxSessions = d.MaxSessions
	}
	if l.MaxPerOriginator <= 0 {
		l.MaxPerOriginator = d.MaxPerOriginator
	}
	if l.MaxPerUserName <= 0 {
		l.MaxPerUserName = d.MaxPerUserName
	}
	return l
}

// sessionGC is the state of the lazy session GC.
type sessionGC struct {
	mu     sync.Mutex
	limits SessionLimits
	last   time.Time // simulator time of the previous pass
}

// SetSessionLimits replaces the session expiry settings (zero fields take
// XAPI's defaults) and restarts the GC period from now.
func (s *Simulator) SetSessionLimits(l SessionLimits) {
	now := s.Now()
	s.gc.mu.Lock()
	defer s.gc.mu.Unlock()
	s.gc.limits = l.withDefaults()
	s.gc.last = now
}

// SessionLimits returns the session expiry settings in force.
func (s *Simulator) SessionLimits() SessionLimits {
	s.gc.mu.Lock()
	defer s.gc.mu.Unlock()
	return s.gc.limits.withDefaults()
}

// maybeCollectSessions runs a GC pass when GCInterval has passed since the
// previous one.
func (s *Simulator) maybeCollectSessions() {
	now := s.Now()
	s.gc.mu.Lock()
	l := s.gc.limits.withDefaults()
	if s.gc.last.IsZero() || now.Before(s.gc.last) {
		s.gc.last = now // first call, or the clock was set back
	}
	due := now.Sub(s.gc.last) >= l.GCInterval
	if due {
		s.gc.last = now
	}
	s.gc.mu.Unlock()
	if due {
		s.collectSessions(now, l)
	}
}

// CollectSessions runs one pass of the session GC now, as
// Db_gc_util.timeout_sessions, and returns the refs of the sessions it
// destroyed, sorted.
func (s *Simulator) CollectSessions() []string {
	now := s.Now()
	s.gc.mu.Lock()
	l := s.gc.limits.withDefaults()
	s.gc.last = now
	s.gc.mu.Unlock()
	return s.collectSessions(now, l)
}

// gcSession is a disposable session: its ref and last activity.
type gcSession struct {
	ref    string
	active time.Time
}

func (s *Simulator) collectSessions(now time.Time, l SessionLimits) []string {
	var doomed []string
	_ = s.DB.Write(func(tx *Tx) error {
		var pool, anon []string
		orig := map[string][]string{}
		name := map[string][]string{}
		for _, ref := range tx.All(sessionClass) {
			rec, _ := tx.GetClass(sessionClass, ref)
			user := str(rec, "auth_user_name")
			root := user == "" || user == "root"
			switch {
			case boolField(rec, "pool"):
				pool = append(pool, ref)
			case root && str(rec, "originator") == "":
				anon = append(anon, ref)
			case root:
				orig[str(rec, "originator")] = append(orig[str(rec, "originator")], ref)
			default:
				name[user] = append(name[user], ref)
			}
		}
		doomed = append(doomed, timeoutSessions(tx, now, l.InactiveTimeout, pool, l.MaxSessions)...)
		doomed = append(doomed, timeoutSessions(tx, now, l.InactiveTimeout, anon, l.MaxSessions)...)
		for _, refs := range orig {
			doomed = append(doomed, timeoutSessions(tx, now, l.InactiveTimeout, refs, l.MaxPerOriginator)...)
		}
		for _, refs := range name {
			doomed = append(doomed, timeoutSessions(tx, now, l.InactiveTimeout, refs, l.MaxPerUserName)...)
		}
		for _, ref := range doomed {
			tx.Delete(ref)
		}
		return nil
	})
	if len(doomed) > 0 {
		s.forgetSessions(doomed)
	}
	slices.Sort(doomed)
	return doomed
}

// timeoutSessions returns the sessions of one group to destroy
// (Db_gc_util.timeout_sessions_common): the unused ones inactive for
// longer than timeout, and the least recently active unused ones beyond
// limit.
func timeoutSessions(tx *Tx, now time.Time, timeout time.Duration, refs []string, limit int) []string {
	var young []gcSession
	var doomed []string
	threshold := now.Add(-timeout)
	for _, ref := range refs {
		if !sessionUnused(tx, ref, 0) {
			continue
		}
		rec, _ := tx.GetClass(sessionClass, ref)
		active, _ := rec["last_active"].(time.Time)
		if active.After(threshold) {
			young = append(young, gcSession{ref, active})
		} else {
			doomed = append(doomed, ref)
		}
	}
	if len(young) > limit {
		// Most recently active first; ties by ref so that the pass is
		// deterministic.
		slices.SortFunc(young, func(a, b gcSession) int {
			if c := b.active.Compare(a.active); c != 0 {
				return c
			}
			return cmp.Compare(a.ref, b.ref)
		})
		for _, g := range young[limit:] {
			doomed = append(doomed, g.ref)
		}
	}
	return doomed
}

// sessionUnused reports whether no task of the session, nor of its
// parents, is pending (a missing session or task counts as unused).
func sessionUnused(tx *Tx, ref string, depth int) bool {
	rec, ok := tx.GetClass(sessionClass, ref)
	if !ok || depth > 16 {
		return true
	}
	for _, t := range strSet(rec, "tasks") {
		if task, ok := tx.GetClass(taskClass, t); ok && str(task, "status") == "pending" {
			return false
		}
	}
	parent := str(rec, "parent")
	return parent == "" || parent == NullRef || sessionUnused(tx, parent, depth+1)
}

// forgetSessions drops what the simulator keeps for destroyed sessions
// outside the database (Xapi_event.on_session_deleted): their legacy
// event subscriptions.
func (s *Simulator) forgetSessions(refs []string) {
	s.legacy.mu.Lock()
	defer s.legacy.mu.Unlock()
	for _, ref := range refs {
		delete(s.legacy.subs, ref)
	}
}

// checkSession is Session_check.check for a call with session ref on the
// listener of ctx: SESSION_INVALID for an unknown session, HOST_IS_SLAVE
// for a non-pool session on a pool member's listener, else the session's
// last_active is refreshed (at most once per RefreshAfter). It returns
// the session's record.
func (s *Simulator) checkSession(ctx context.Context, ref string) (Record, *Fault) {
	var rec Record
	ok := false
	if strings.HasPrefix(ref, "OpaqueRef:") {
		s.DB.Read(func(tx *Tx) { rec, ok = tx.GetClass(sessionClass, ref) })
	}
	if !ok {
		return nil, NewFault("SESSION_INVALID", ref)
	}
	if !boolField(rec, "pool") && s.isMemberListener(ctx) {
		return nil, NewFault("HOST_IS_SLAVE", s.masterAddress())
	}
	now := s.Now()
	last, _ := rec["last_active"].(time.Time)
	if now.Sub(last) > s.SessionLimits().RefreshAfter {
		_ = s.DB.Write(func(tx *Tx) error {
			if _, ok := tx.GetClass(sessionClass, ref); ok {
				tx.Modify(ref)["last_active"] = now
			}
			return nil
		})
	}
	return rec, nil
}

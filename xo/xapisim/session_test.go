package xapisim

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a simulator clock that only moves when the test says so.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sessionExists reports whether ref is in the simulator's database.
func sessionExists(s *Simulator, ref string) bool {
	ok := false
	s.DB.Read(func(tx *Tx) { _, ok = tx.GetClass(sessionClass, ref) })
	return ok
}

// TestSessionExpiry checks Db_gc_util.timeout_sessions' inactivity rule
// and Session_check's last_active refresh, over XML-RPC and the data
// plane, on the simulator's clock.
func TestSessionExpiry(t *testing.T) {
	limits := SessionLimits{InactiveTimeout: time.Hour, RefreshAfter: time.Minute, GCInterval: 30 * time.Second}
	tests := []struct {
		name  string
		steps []time.Duration // idle time before each call
		want  string          // fault of the last call, "" for success
	}{
		{"used before the timeout", []time.Duration{59 * time.Minute}, ""},
		{"idle past the timeout", []time.Duration{time.Hour + 31*time.Second}, "SESSION_INVALID"},
		{"kept alive by calls", []time.Duration{50 * time.Minute, 50 * time.Minute, 50 * time.Minute}, ""},
		{"idle after activity", []time.Duration{50 * time.Minute, 61 * time.Minute}, "SESSION_INVALID"},
		// The GC runs every GCInterval: a session just past the timeout
		// lives until the next pass.
		{"past the timeout between passes", []time.Duration{59*time.Minute + 50*time.Second, 0, 20 * time.Second}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := newTestServer(t)
			clock := newFakeClock()
			srv.SetClock(clock.now)
			srv.SetSessionLimits(limits)
			ref := c.login()
			var err error
			for _, d := range tt.steps {
				clock.advance(d)
				_, err = c.call("VM.get_all", ref)
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("VM.get_all: %v", err)
				}
				return
			}
			wantFault(t, err, tt.want, ref)
			if sessionExists(srv.Simulator, ref) {
				t.Error("the expired session is still in the database")
			}
			// The data plane sees the same: a request with the session is
			// refused.
			r := httptest.NewRequest(http.MethodGet, "/export_raw_vdi?session_id="+url.QueryEscape(ref), nil)
			if _, _, err := srv.HTTPSession(r); err == nil {
				t.Error("HTTPSession accepted the expired session")
			}
		})
	}
}

// TestSessionLimits checks the per-group limits of timeout_sessions: the
// least recently active sessions beyond the limit are destroyed, groups
// are counted apart, and a session with a pending task is kept.
func TestSessionLimits(t *testing.T) {
	srv, _ := newTestServer(t)
	clock := newFakeClock()
	srv.SetClock(clock.now)
	srv.SetSessionLimits(SessionLimits{InactiveTimeout: time.Hour, MaxSessions: 3, MaxPerOriginator: 2, MaxPerUserName: 2})

	login := func(user, originator string) string {
		clock.advance(time.Second)
		return srv.Login(user, originator)
	}
	var anon, xo, alice []string
	for range 4 {
		anon = append(anon, login("root", ""))
	}
	for range 3 {
		xo = append(xo, login("root", "xo"))
	}
	other := login("root", "other") // alone under its originator: kept

	for range 3 {
		alice = append(alice, login("alice", "xo"))
	}
	busy := login("root", "busy")
	task := srv.newTask("long", "", false)
	_ = srv.DB.Write(func(tx *Tx) error {
		tx.Modify(busy)["tasks"] = []string{task}
		return nil
	})
	want := []string{anon[0], xo[0], alice[0]}
	slices.Sort(want)
	if got := srv.CollectSessions(); !slices.Equal(got, want) {
		t.Fatalf("first pass destroyed %q, want %q", got, want)
	}
	if !sessionExists(srv.Simulator, other) {
		t.Error("the only session of its originator was destroyed")
	}

	// Two hours later every idle session is gone, but the one whose task
	// is pending.
	clock.advance(2 * time.Hour)
	got := srv.CollectSessions()
	if len(got) != 4+3+1+3-3 || slices.Contains(got, busy) {
		t.Errorf("second pass destroyed %d sessions (busy one included: %v), want 8 without it", len(got), slices.Contains(got, busy))
	}
	if !sessionExists(srv.Simulator, busy) {
		t.Error("the session with a pending task was destroyed")
	}
}

// TestSessionGCBeforeCall checks that the lazy GC pass runs before a call
// when GCInterval has passed, and not before.
func TestSessionGCBeforeCall(t *testing.T) {
	srv, c := newTestServer(t)
	clock := newFakeClock()
	srv.SetClock(clock.now)
	srv.SetSessionLimits(SessionLimits{MaxPerOriginator: 1, GCInterval: time.Minute})
	first := srv.Login("root", "xo")
	clock.advance(time.Second)
	second := srv.Login("root", "xo")
	if _, err := c.call("VM.get_all", first); err != nil {
		t.Fatalf("before the GC period: %v", err)
	}
	clock.advance(time.Minute)
	// The call refreshed first's last_active only if RefreshAfter (10
	// min) had passed: it had not, so first is still the older one.
	_, err := c.call("VM.get_all", first)
	wantFault(t, err, "SESSION_INVALID", first)
	if _, err := c.call("VM.get_all", second); err != nil {
		t.Fatalf("the newer session: %v", err)
	}
}

// TestMemberListener checks a pool member's own listener: logins and
// calls with a (non-pool) session answer HOST_IS_SLAVE [master address]
// as Xapi_session.login_with_password and Session_check.check do on a
// supporter, while data-plane requests with the master's session are
// served (Xapi_http.validate_session only looks the session up).
func TestMemberListener(t *testing.T) {
	m := LocalStorage()
	m.DiskSize = 1 << 20
	m.User, m.Password = "root", "password"
	srv := NewServer(t, m)
	ep, err := srv.StartHost("host1", "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close(context.Background()) })
	master := &testClient{t: t, url: srv.URL}
	member := &testClient{t: t, url: ep.URL}
	session := master.login()

	var masterAddr, vdi string
	srv.DB.Read(func(tx *Tx) {
		rec, _ := tx.GetClass("host", srv.MasterHost())
		masterAddr = str(rec, "address")
		for _, ref := range tx.All("VDI") {
			v, _ := tx.GetClass("VDI", ref)
			sr, _ := tx.GetClass("SR", str(v, "SR"))
			if str(sr, "name_label") == "host1 local storage" && !boolField(v, "is_a_snapshot") {
				vdi = ref
			}
		}
	})
	if masterAddr == "" || vdi == "" {
		t.Fatalf("model without a master address (%q) or a VDI on host1's storage (%q)", masterAddr, vdi)
	}

	tests := []struct {
		name   string
		method string
		params []any
		want   []string // fault; nil for success
	}{
		{"login", "session.login_with_password", []any{"root", "password"}, []string{"HOST_IS_SLAVE", masterAddr}},
		{"login with a bad password", "session.login_with_password", []any{"root", "wrong"}, []string{"HOST_IS_SLAVE", masterAddr}},
		{"call with the master's session", "VM.get_all", []any{session}, []string{"HOST_IS_SLAVE", masterAddr}},
		{"call with an unknown session", "VM.get_all", []any{"OpaqueRef:nope"}, []string{"SESSION_INVALID", "OpaqueRef:nope"}},
		{"call without a session", "system.listMethods", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := member.call(tt.method, tt.params...)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("%s: %v", tt.method, err)
				}
				return
			}
			wantFault(t, err, tt.want[0], tt.want[1:]...)
		})
	}

	t.Run("master address set", func(t *testing.T) {
		srv.SetMasterAddress("127.0.0.1:4443")
		defer srv.SetMasterAddress("")
		_, err := member.call("session.login_with_password", "root", "password")
		wantFault(t, err, "HOST_IS_SLAVE", "127.0.0.1:4443")
	})

	t.Run("data plane with the master's session", func(t *testing.T) {
		resp, err := http.Get(ep.URL + "export_raw_vdi?format=raw&vdi=" + url.QueryEscape(vdi) + "&session_id=" + url.QueryEscape(session))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		n, _ := io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK || n != 1<<20 {
			t.Fatalf("GET /export_raw_vdi on the member: %s, %d bytes", resp.Status, n)
		}
		if ep.Served() != 1 {
			t.Errorf("the member served %d requests, want 1", ep.Served())
		}
	})

	// The master itself is unchanged.
	if _, err := master.call("VM.get_all", session); err != nil {
		t.Errorf("VM.get_all on the master: %v", err)
	}
}

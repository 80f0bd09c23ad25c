package xapisim

import (
	"net/http/httptest"
	"testing"
)

// Server is a simulator served over loopback HTTP for a test.
type Server struct {
	*Simulator
	// URL is the base URL of the pool, e.g. "http://127.0.0.1:34567/".
	URL string
	// User and Password are the credentials login_with_password accepts.
	User, Password string
}

// NewServer builds a simulator from m, serves it on 127.0.0.1 and stops it
// when the test ends (t.Cleanup).
func NewServer(t testing.TB, m Model) *Server {
	t.Helper()
	sim := New(m)
	ts := httptest.NewServer(sim)
	t.Cleanup(func() {
		ts.Close()
		sim.cancelTasks()
		_ = sim.Close() // NBD server and VDI content files (vdidata.go)
	})
	sim.mu.RLock()
	user, pwd := sim.user, sim.password
	sim.mu.RUnlock()
	return &Server{Simulator: sim, URL: ts.URL + "/", User: user, Password: pwd}
}

// Session logs in (without HTTP) and returns a session ref for direct
// calls with Simulator.Call.
func (s *Server) Session() string { return s.Login(s.User, "") }

package xapi_test

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// stepClock is a simulator clock moved by the test only.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestSessionExpiryRelogin lets the client's session sit idle past
// XAPI's inactivity timeout (the simulator's DB GC destroys it): the next
// call logs in again transparently, and the expired session is gone.
func TestSessionExpiryRelogin(t *testing.T) { eachTransport(t, testSessionExpiryRelogin) }

func testSessionExpiryRelogin(t *testing.T, transport string) {
	ctx := context.Background()
	c, srv := newClientT(t, xapisim.Default(), transport)
	clock := &stepClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	srv.SetClock(clock.now)
	srv.SetSessionLimits(xapisim.SessionLimits{InactiveTimeout: time.Hour, RefreshAfter: time.Minute})

	if _, err := c.Call(ctx, "VM.get_all"); err != nil {
		t.Fatal(err)
	}
	old := c.Session()
	// Activity keeps the session alive past the timeout...
	for range 3 {
		clock.advance(40 * time.Minute)
		if _, err := c.Call(ctx, "VM.get_all"); err != nil {
			t.Fatal(err)
		}
	}
	if c.Session() != old {
		t.Fatalf("session renewed while in use: %s -> %s", old, c.Session())
	}
	// ...idleness ends it.
	clock.advance(time.Hour + time.Minute)
	if _, err := c.Call(ctx, "VM.get_all"); err != nil {
		t.Fatalf("call after expiry: %v", err)
	}
	if c.Session() == old || srv.SessionValid(string(old)) || !srv.SessionValid(string(c.Session())) {
		t.Fatalf("after expiry: old %s (valid %v), now %s", old, srv.SessionValid(string(old)), c.Session())
	}
}

// TestMemberURLFollowsMaster gives the client the URL of a pool member's
// own listener: its login answers HOST_IS_SLAVE [master address] and the
// client logs in on the master.
func TestMemberURLFollowsMaster(t *testing.T) {
	srv := xapisim.NewServer(t, xapisim.LocalStorage())
	ep, err := srv.StartHost("host1", "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close(context.Background()) })
	mu, _ := url.Parse(srv.URL)
	srv.SetMasterAddress(mu.Host)
	c, err := xapi.New(xapi.Options{URL: ep.URL, Username: srv.User, Password: srv.Password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	if _, err := c.Call(t.Context(), "VM.get_all"); err != nil {
		t.Fatal(err)
	}
	if u, _ := url.Parse(c.URL()); u.Host != mu.Host || !srv.SessionValid(string(c.Session())) {
		t.Fatalf("client on %s with session %s, want the master %s", c.URL(), c.Session(), mu.Host)
	}
}

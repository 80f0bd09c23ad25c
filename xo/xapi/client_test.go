package xapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// newClient starts a simulator with model m and returns a client for it;
// both are closed when the test ends.
func newClient(t testing.TB, m xapisim.Model) (*xapi.Client, *xapisim.Server) {
	t.Helper()
	return newClientT(t, m, "")
}

// transports are the Options.Transport values the integration tests run
// with: the default (auto, which settles on JSON-RPC with the simulator)
// and each protocol forced.
var transports = []string{xapi.TransportAuto, xapi.TransportJSONRPC, xapi.TransportXMLRPC}

// eachTransport runs test once per transport, as subtests named after it.
func eachTransport(t *testing.T, test func(t *testing.T, transport string)) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) { test(t, tr) })
	}
}

// newClientT is newClient with Options.Transport set to transport.
func newClientT(t testing.TB, m xapisim.Model, transport string) (*xapi.Client, *xapisim.Server) {
	t.Helper()
	srv := xapisim.NewServer(t, m)
	c, err := xapi.New(xapi.Options{URL: srv.URL, Username: srv.User, Password: srv.Password, Transport: transport})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c, srv
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		opts xapi.Options
		want error
	}{
		{name: "no url", opts: xapi.Options{Username: "root"}, want: xapi.ErrRequiredURL},
		{name: "bad scheme", opts: xapi.Options{URL: "ftp://h", Username: "root"}, want: xapi.ErrInvalidURL},
		{name: "no host", opts: xapi.Options{URL: "https://", Username: "root"}, want: xapi.ErrInvalidURL},
		{name: "credentials in url", opts: xapi.Options{URL: "https://root:pw@h", Username: "root"}, want: xapi.ErrInvalidURL},
		{name: "no user", opts: xapi.Options{URL: "https://h"}, want: xapi.ErrRequiredUsername},
		{name: "bad fingerprint", opts: xapi.Options{URL: "https://h", Username: "root", Fingerprints: []string{"abc"}}, want: xapi.ErrInvalidFingerprint},
		{name: "insecure with pin", opts: xapi.Options{URL: "https://h", Username: "root", Insecure: true,
			Fingerprints: []string{strings.Repeat("ab", 32)}}, want: xapi.ErrConflictingTLS},
		{name: "bad CA", opts: xapi.Options{URL: "https://h", Username: "root", CAPEM: []byte("nope")}, want: xapi.ErrInvalidCA},
		{name: "negative timeout", opts: xapi.Options{URL: "https://h", Username: "root", CallTimeout: -1}, want: xapi.ErrInvalidTimeout},
		{name: "ok with colon fingerprint", opts: xapi.Options{URL: "https://h", Username: "root",
			Fingerprints: []string{strings.TrimSuffix(strings.Repeat("AB:", 32), ":")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := xapi.New(tc.opts)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("New() error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestLoginAndRecords(t *testing.T) { eachTransport(t, testLoginAndRecords) }

func testLoginAndRecords(t *testing.T, transport string) {
	ctx := context.Background()
	c, srv := newClientT(t, xapisim.Default(), transport)
	if err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	if !srv.SessionValid(string(c.Session())) {
		t.Fatalf("session %s unknown to the simulator", c.Session())
	}
	if want := map[string]string{xapi.TransportAuto: xapi.TransportJSONRPC}[transport]; want != "" && c.Transport() != want ||
		want == "" && c.Transport() != transport {
		t.Fatalf("Transport() = %s", c.Transport())
	}

	pools, err := c.Pools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pools) != 1 {
		t.Fatalf("%d pools", len(pools))
	}
	var pool *xapi.Pool
	for _, p := range pools {
		pool = p
	}
	if pool.NameLabel != "pool0" || pool.Master.IsNull() {
		t.Fatalf("pool = %+v", pool)
	}

	vms, err := xapi.GetAllRecords[xapi.VM](ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	generic, err := c.GetAllRecords(ctx, "VM")
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != len(generic) || len(vms) == 0 {
		t.Fatalf("typed %d VMs, generic %d", len(vms), len(generic))
	}
	states := map[string]int{}
	for ref, vm := range vms {
		g := generic[ref]
		if g == nil || g["uuid"] != vm.UUID || g["name_label"] != vm.NameLabel || g["power_state"] != vm.PowerState {
			t.Fatalf("typed and generic records of %s differ: %+v vs %v", ref, vm, g)
		}
		if g["VCPUs_max"] == "" || vm.VCPUsMax <= 0 {
			t.Fatalf("VCPUs_max: generic %q typed %d", g["VCPUs_max"], vm.VCPUsMax)
		}
		if !vm.IsATemplate && !vm.IsControlDomain && !vm.IsASnapshot {
			states[vm.PowerState]++
			if vm.Metrics.IsNull() {
				t.Fatalf("%s has no metrics", vm.NameLabel)
			}
		}
	}
	for _, s := range []string{"Running", "Halted", "Suspended", "Paused"} {
		if states[s] == 0 {
			t.Errorf("no %s guest among %v", s, states)
		}
	}

	// every class the REST layer reads decodes into its typed record
	checks := []struct {
		class string
		get   func() (int, error)
	}{
		{"host", func() (int, error) { m, err := c.Hosts(ctx); return len(m), err }},
		{"host_metrics", func() (int, error) { m, err := c.HostMetricsRecords(ctx); return len(m), err }},
		{"VM_metrics", func() (int, error) { m, err := c.VMMetricsRecords(ctx); return len(m), err }},
		{"VM_guest_metrics", func() (int, error) { m, err := c.VMGuestMetricsRecords(ctx); return len(m), err }},
		{"SR", func() (int, error) { m, err := c.SRs(ctx); return len(m), err }},
		{"PBD", func() (int, error) { m, err := c.PBDs(ctx); return len(m), err }},
		{"SM", func() (int, error) { m, err := c.SMs(ctx); return len(m), err }},
		{"VDI", func() (int, error) { m, err := c.VDIs(ctx); return len(m), err }},
		{"VBD", func() (int, error) { m, err := c.VBDs(ctx); return len(m), err }},
		{"VIF", func() (int, error) { m, err := c.VIFs(ctx); return len(m), err }},
		{"PIF", func() (int, error) { m, err := c.PIFs(ctx); return len(m), err }},
		{"PIF_metrics", func() (int, error) { m, err := c.PIFMetricsRecords(ctx); return len(m), err }},
		{"network", func() (int, error) { m, err := c.Networks(ctx); return len(m), err }},
		{"Bond", func() (int, error) { m, err := c.Bonds(ctx); return len(m), err }},
		{"PCI", func() (int, error) { m, err := c.PCIs(ctx); return len(m), err }},
		{"PGPU", func() (int, error) { m, err := c.PGPUs(ctx); return len(m), err }},
		{"GPU_group", func() (int, error) { m, err := c.GPUGroups(ctx); return len(m), err }},
		{"message", func() (int, error) { m, err := c.Messages(ctx); return len(m), err }},
		{"task", func() (int, error) { m, err := c.Tasks(ctx); return len(m), err }},
	}
	for _, ch := range checks {
		t.Run(ch.class, func(t *testing.T) {
			n, err := ch.get()
			if err != nil {
				t.Fatal(err)
			}
			g, err := c.GetAllRecords(ctx, ch.class)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(g) {
				t.Fatalf("typed %d, generic %d", n, len(g))
			}
		})
	}

	t.Run("get_record and errors", func(t *testing.T) {
		for ref := range vms {
			vm, err := xapi.GetRecord[xapi.VM](ctx, c, ref)
			if err != nil || vm.UUID != vms[ref].UUID {
				t.Fatalf("GetRecord: %v, %v", vm, err)
			}
			break
		}
		_, err := xapi.GetRecord[xapi.VM](ctx, c, "OpaqueRef:nope")
		var xe *xapi.Error
		if !errors.Is(err, xapi.ErrHandleInvalid) || !errors.As(err, &xe) || xe.Param(0) != "VM" {
			t.Fatalf("err = %v", err)
		}
		_, err = c.Call(ctx, "VM.get_by_uuid", "no-such-uuid")
		if !errors.Is(err, xapi.ErrUUIDInvalid) {
			t.Fatalf("err = %v", err)
		}
		_, err = c.Call(ctx, "VM.no_such_method")
		if !errors.Is(err, xapi.ErrMessageMethodUnknown) {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("listMethods without session", func(t *testing.T) {
		var methods []string
		if _, err := c.CallWithoutSession(ctx, &methods, "system.listMethods"); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, m := range methods {
			found = found || m == "VM.get_all_records"
		}
		if !found {
			t.Fatalf("VM.get_all_records not among %d methods", len(methods))
		}
	})
}

func TestWrongPassword(t *testing.T) { eachTransport(t, testWrongPassword) }

func testWrongPassword(t *testing.T, transport string) {
	srv := xapisim.NewServer(t, xapisim.Default())
	c, err := xapi.New(xapi.Options{Transport: transport, URL: srv.URL, Username: srv.User, Password: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Call(context.Background(), "pool.get_all")
	if !errors.Is(err, xapi.ErrSessionAuthenticationFailed) {
		t.Fatalf("err = %v", err)
	}
}

func TestSessionInvalidRelogin(t *testing.T) { eachTransport(t, testSessionInvalidRelogin) }

func testSessionInvalidRelogin(t *testing.T, transport string) {
	ctx := context.Background()
	c, srv := newClientT(t, xapisim.Default(), transport)
	if err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	old := c.Session()
	if !srv.Logout(string(old)) { // the session dies behind the client's back
		t.Fatal("simulator did not know the session")
	}
	if _, err := c.Call(ctx, "pool.get_all"); err != nil {
		t.Fatalf("call after session loss: %v", err)
	}
	if c.Session() == old || !srv.SessionValid(string(c.Session())) {
		t.Fatalf("session not renewed: %s -> %s", old, c.Session())
	}

	// a second failure in a row is returned, not retried forever
	remove := srv.InjectFault(xapisim.FaultRule{Method: "pool.get_all", Fault: xapisim.NewFault("SESSION_INVALID", "x"), Count: 2})
	defer remove()
	if _, err := c.Call(ctx, "pool.get_all"); !errors.Is(err, xapi.ErrSessionInvalid) {
		t.Fatalf("err = %v", err)
	}
}

func TestHostIsSlave(t *testing.T) { eachTransport(t, testHostIsSlave) }

func testHostIsSlave(t *testing.T, transport string) {
	ctx := context.Background()
	master := xapisim.NewServer(t, xapisim.Default())
	member := xapisim.NewServer(t, xapisim.Default())
	mu, _ := url.Parse(master.URL)
	member.SetPoolMember(mu.Host)

	t.Run("at login", func(t *testing.T) {
		c, err := xapi.New(xapi.Options{Transport: transport, URL: member.URL, Username: "root", Password: "password"})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login(ctx); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(c.URL(), mu.Host) || !master.SessionValid(string(c.Session())) {
			t.Fatalf("client went to %s, session %s", c.URL(), c.Session())
		}
	})
	t.Run("on a call", func(t *testing.T) {
		other := xapisim.NewServer(t, xapisim.Default())
		c, err := xapi.New(xapi.Options{Transport: transport, URL: other.URL, Username: "root", Password: "password"})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login(ctx); err != nil {
			t.Fatal(err)
		}
		// the pool's master changes: the old host now redirects
		other.InjectFault(xapisim.FaultRule{Method: "VM.get_all", Fault: xapisim.NewFault("HOST_IS_SLAVE", mu.Host)})
		if _, err := c.Call(ctx, "VM.get_all"); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(c.URL(), mu.Host) {
			t.Fatalf("client stayed at %s", c.URL())
		}
	})
}

func TestUnreachable(t *testing.T) { eachTransport(t, testUnreachable) }

func testUnreachable(t *testing.T, transport string) {
	srv := xapisim.NewServer(t, xapisim.Default())
	// port 1 on loopback: nothing listens there, the connection is refused
	c, err := xapi.New(xapi.Options{URL: "http://127.0.0.1:1/", Username: "root"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Call(context.Background(), "pool.get_all")
	var te *xapi.TransportError
	if !errors.Is(err, xapi.ErrUnreachable) || !errors.As(err, &te) {
		t.Fatalf("err = %v", err)
	}

	// an HTTP error page (XAPI answers malformed requests with a 500)
	h500 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "<html><body><h1>Internal Error</h1></body></html>")
	}))
	defer h500.Close()
	c500, _ := xapi.New(xapi.Options{Transport: transport, URL: h500.URL, Username: "root"})
	_, err = c500.Call(context.Background(), "pool.get_all")
	if !errors.Is(err, xapi.ErrUnreachable) || !errors.As(err, &te) || te.StatusCode != 500 {
		t.Fatalf("HTTP 500: %v", err)
	}

	// a 200 whose body is not XML-RPC
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html>proxy login page</html>")
	}))
	defer bad.Close()
	cbad, _ := xapi.New(xapi.Options{Transport: transport, URL: bad.URL, Username: "root"})
	_, err = cbad.Call(context.Background(), "pool.get_all")
	if !errors.Is(err, xapi.ErrUnreachable) || !errors.Is(err, xapi.ErrInvalidResponse) {
		t.Fatalf("non-XML-RPC body: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c2, _ := xapi.New(xapi.Options{Transport: transport, URL: srv.URL, Username: "root", Password: "password"})
	if _, err := c2.Call(ctx, "pool.get_all"); !errors.Is(err, context.Canceled) || errors.Is(err, xapi.ErrUnreachable) {
		t.Fatalf("cancelled call: %v", err)
	}
}

func TestConcurrentCallsNotSerialized(t *testing.T) {
	eachTransport(t, testConcurrentCallsNotSerialized)
}

func testConcurrentCallsNotSerialized(t *testing.T, transport string) {
	ctx := context.Background()
	c, srv := newClientT(t, xapisim.Default(), transport)
	if err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	// VM.get_all blocks in the simulator until every caller has arrived:
	// a client that serialised calls would deadlock here (until ctx ends).
	const n = 8
	var arrived sync.WaitGroup
	arrived.Add(n)
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // never leave handlers blocked
	go func() { arrived.Wait(); once.Do(func() { close(release) }) }()
	orig, _ := srv.Method("pool.get_all")
	srv.Register("pool.get_all", xapisim.Method{Handler: func(call *xapisim.Call) (any, error) {
		arrived.Done()
		<-release
		return orig.Handler(call)
	}})
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := c.Call(ctx, "pool.get_all")
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

package xo_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// twoPools starts two simulated pools with different seeds and returns
// them with a Pools over both.
func twoPools(t *testing.T) (a, b *xapisim.Server, ps *xo.Pools) {
	t.Helper()
	ma, mb := xapisim.Default(), xapisim.Default()
	ma.Seed, mb.Seed = "pool-a", "pool-b"
	mb.PoolName = "pool1"
	a, b = xapisim.NewServer(t, ma), xapisim.NewServer(t, mb)
	ps, err := xo.New(xo.Config{XAPI: []xapi.Options{
		{URL: a.URL, Username: a.User, Password: a.Password},
		{URL: b.URL, Username: b.User, Password: b.Password},
	}, Pool: xo.PoolOptions{EventTimeout: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ps.Close(t.Context()) })
	return a, b, ps
}

func TestPools(t *testing.T) {
	_, _, ps := twoPools(t)
	ctx := t.Context()
	vms, err := ps.Objects(ctx, "VM")
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != 12 {
		t.Fatalf("%d VMs, want 6 per pool", len(vms))
	}
	pa, pb := ps.All()[0], ps.All()[1]
	if pa.UUID() == pb.UUID() || pa.UUID() == "" {
		t.Fatalf("pool uuids %q %q", pa.UUID(), pb.UUID())
	}
	for i, vm := range vms {
		want := pa.UUID()
		if i >= 6 {
			want = pb.UUID()
		}
		if vm["$pool"] != want {
			t.Errorf("VM %d is in pool %v, want %v (pools in order)", i, vm["$pool"], want)
		}
	}
	templates, err := ps.Objects(ctx, "VM-template")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, o := range templates {
		if ids[o["id"].(string)] {
			t.Errorf("duplicate template id %v", o["id"])
		}
		ids[o["id"].(string)] = true
	}

	inB := vms[8]
	for _, tc := range []struct {
		name, kind, id string
		want           xo.Object
		pool           *xo.Pool
		err            error
	}{
		{"by uuid", "VM", inB["id"].(string), inB, pb, nil},
		{"by ref", "VM", inB["_xapiRef"].(string), inB, pb, nil},
		{"any kind", "", inB["id"].(string), inB, pb, nil},
		{"pool a", "VM", vms[1]["id"].(string), vms[1], pa, nil},
		{"wrong kind", "VM-template", inB["id"].(string), nil, nil, xo.ErrNotFound},
		{"unknown", "VM", "00000000-0000-0000-0000-000000000000", nil, nil, xo.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, p, err := ps.Object(ctx, tc.kind, tc.id)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if err != nil {
				var nf *xo.NotFoundError
				if !errors.As(err, &nf) || nf.ID != tc.id || nf.Type != tc.kind {
					t.Errorf("error %#v", err)
				}
				return
			}
			if o["id"] != tc.want["id"] || p != tc.pool {
				t.Errorf("got %v in %p, want %v in %p", o["id"], p, tc.want["id"], tc.pool)
			}
		})
	}

	p, err := ps.Pool(ctx, pb.UUID())
	if err != nil || p != pb {
		t.Errorf("Pool(%s) = %p, %v", pb.UUID(), p, err)
	}

	t.Run("write and watch", func(t *testing.T) {
		sub := ps.Watch(xo.WatchOptions{Kinds: []string{"VM"}})
		defer sub.Close()
		for _, vm := range []xo.Object{vms[0], inB} {
			_, pool, err := ps.Object(ctx, "VM", vm["id"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pool.Client().Call(ctx, "VM.set_name_label", xapi.Ref(vm["_xapiRef"].(string)), "renamed in "+pool.UUID()); err != nil {
				t.Fatal(err)
			}
			o, _, err := ps.Object(ctx, "VM", vm["id"].(string))
			if err != nil || o["name_label"] != "renamed in "+pool.UUID() {
				t.Errorf("read %v, %v after the write", o["name_label"], err)
			}
			c := waitFor(t, sub, func(c xo.Change) bool { return c.Op == "update" && c.ID == vm["id"] })
			if c.Pool != pool.UUID() {
				t.Errorf("change from pool %v, want %v", c.Pool, pool.UUID())
			}
		}
	})
}

func TestConfig(t *testing.T) {
	if _, err := xo.New(xo.Config{}); !errors.Is(err, xo.ErrNoPool) {
		t.Errorf("empty config: %v", err)
	}
	_, err := xo.New(xo.Config{XAPI: []xapi.Options{{URL: "ftp://x", Username: "root"}}})
	if !errors.Is(err, xapi.ErrInvalidURL) {
		t.Errorf("bad URL: %v", err)
	}
}

// TestUnreachable checks that a pool that cannot be reached gives an
// error matching xapi.ErrUnreachable (the HTTP layer's 503).
func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ps, err := xo.New(xo.Config{XAPI: []xapi.Options{{URL: "http://" + addr, Username: "root"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close(t.Context())
	if _, err := ps.Objects(t.Context(), "VM"); !errors.Is(err, xapi.ErrUnreachable) {
		t.Errorf("Objects on an unreachable pool: %v, want ErrUnreachable", err)
	}
}

package xo_test

import (
	"context"
	"flag"
	"testing"
	"time"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// newClient returns a client logged in to srv, closed when the test ends.
func newClient(t testing.TB, srv *xapisim.Server) *xapi.Client {
	t.Helper()
	c, err := xapi.New(xapi.Options{URL: srv.URL, Username: srv.User, Password: srv.Password, EventTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

// newPool starts a simulator for m and returns it with a loaded cache.
func newPool(t testing.TB, m xapisim.Model) (*xapisim.Server, *xo.Pool) {
	t.Helper()
	srv := xapisim.NewServer(t, m)
	p := xo.NewPool(newClient(t, srv), xo.PoolOptions{EventTimeout: 2 * time.Second})
	t.Cleanup(p.Close)
	if err := p.Fresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	return srv, p
}

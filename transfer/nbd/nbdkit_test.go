package nbd_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/xorest/xorest/transfer/nbd"
)

// requireTool fails the test when an external peer is missing.
func requireTool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		tb.Fatalf("%s is needed by this test and is missing: apt-get install -y nbdkit libnbd-bin gnutls-bin qemu-utils (%v)", name, err)
	}
	return p
}

// server is an nbdkit process serving on a unix socket or a 127.0.0.1 port.
type server struct {
	tb      testing.TB
	network string
	addr    string
	args    []string
	cmd     *exec.Cmd
}

// startNbdkit starts `nbdkit -r --foreground ARGS` on a unix socket (tcp
// false) or on a free 127.0.0.1 port, waits until it accepts connections
// and stops it when the test ends.
func startNbdkit(tb testing.TB, tcp bool, args ...string) *server {
	tb.Helper()
	requireTool(tb, "nbdkit")
	s := &server{tb: tb, network: "unix", args: args}
	if tcp {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		s.network, s.addr = "tcp", l.Addr().String()
		l.Close()
	} else {
		// Short path: unix socket paths are limited to 108 bytes.
		dir, err := os.MkdirTemp("", "nbd")
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { os.RemoveAll(dir) })
		s.addr = filepath.Join(dir, "sock")
	}
	s.start()
	tb.Cleanup(s.kill)
	return s
}

func (s *server) start() {
	s.tb.Helper()
	args := []string{"-r", "--foreground", "--exit-with-parent"}
	if s.network == "unix" {
		os.Remove(s.addr)
		args = append(args, "--unix", s.addr)
	} else {
		host, port, _ := net.SplitHostPort(s.addr)
		args = append(args, "-i", host, "-p", port)
	}
	cmd := exec.Command("nbdkit", append(args, s.args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("starting nbdkit: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd = cmd
	for deadline := time.Now().Add(20 * time.Second); ; {
		c, err := net.DialTimeout(s.network, s.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			s.tb.Fatalf("nbdkit %v exited: %s", s.args, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.kill()
			s.tb.Fatalf("nbdkit %v does not accept connections on %s: %s", s.args, s.addr, stderr.String())
		}
	}
}

// kill stops nbdkit at once (SIGKILL), as a crashing server would.
func (s *server) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGKILL)
		s.cmd.Process.Wait()
		s.cmd = nil
	}
}

// options returns the Options to reach the server.
func (s *server) options() nbd.Options {
	return nbd.Options{Network: s.network, Address: s.addr}
}

// randomFile writes size deterministic pseudo-random bytes, with zero
// stretches, and returns the path and the content.
func randomFile(tb testing.TB, size int64, seed uint64) (string, []byte) {
	tb.Helper()
	data := make([]byte, size)
	rnd := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	rnd.Read(data)
	// Zero a few 2 MiB-aligned blocks so that block lists have holes.
	for b := int64(1); b*nbd.BlockSize < size; b += 3 {
		clear(data[b*nbd.BlockSize : min(size, (b+1)*nbd.BlockSize)])
	}
	path := filepath.Join(tb.TempDir(), "disk-"+strconv.FormatUint(seed, 10)+".raw")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path, data
}

func dial(tb testing.TB, opts nbd.Options) *nbd.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := nbd.Dial(ctx, opts)
	if err != nil {
		tb.Fatalf("Dial %s: %v", opts.Address, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

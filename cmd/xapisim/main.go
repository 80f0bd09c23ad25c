// Command xapisim serves a simulated XAPI pool (package xo/xapisim) over
// HTTP, for demos, real-client checks and benchmarks.
//
//	xapisim --listen 127.0.0.1:8080 --user root --password secret --vms 20
//
// Every flag can also be set with an environment variable XOREST_<FLAG>
// (upper case, dashes as underscores: XOREST_DISK_SIZE); a flag on the
// command line wins. The server prints its URL and stops gracefully on
// SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xorest/xorest/xo/xapisim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "xapisim:", err)
		os.Exit(2)
	}
}

// config is the command line, after flags and environment.
type config struct {
	listen     string
	user       string
	password   string
	vms        int
	diskSize   int64
	nbd        string
	nbdTLS     bool
	poolMember string
}

// parseConfig reads flags, falling back to XOREST_<FLAG> variables.
func parseConfig(args []string, getenv func(string) string) (config, error) {
	def := xapisim.Default()
	cfg := config{listen: "127.0.0.1:8080", user: def.User, password: def.Password, vms: def.VMs, diskSize: def.DiskSize}
	fs := flag.NewFlagSet("xapisim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.listen, "listen", cfg.listen, "address to serve on (XOREST_LISTEN)")
	fs.StringVar(&cfg.user, "user", cfg.user, "user name that login accepts (XOREST_USER)")
	fs.StringVar(&cfg.password, "password", cfg.password, "password that login accepts (XOREST_PASSWORD)")
	fs.IntVar(&cfg.vms, "vms", cfg.vms, "number of guest VMs (XOREST_VMS)")
	fs.Int64Var(&cfg.diskSize, "disk-size", cfg.diskSize, "virtual size in bytes of each guest's first disk (XOREST_DISK_SIZE)")
	fs.StringVar(&cfg.nbd, "nbd", "", "serve VDIs over NBD on this address, e.g. 127.0.0.1:10809, and give network0 the NBD purpose (XOREST_NBD)")
	fs.BoolVar(&cfg.nbdTLS, "nbd-tls", false, "require TLS on NBD: network purpose nbd instead of insecure_nbd (XOREST_NBD_TLS)")
	fs.StringVar(&cfg.poolMember, "pool-member-of", "", "play a pool member whose master is at this address: login answers HOST_IS_SLAVE (XOREST_POOL_MEMBER_OF)")
	// Environment first, so that flags given on the command line win.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "XOREST_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
	})
	if envErr != nil {
		return cfg, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			var b strings.Builder
			fs.SetOutput(&b)
			fs.PrintDefaults()
			return cfg, fmt.Errorf("usage: xapisim [flags]\n%s", b.String())
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case cfg.nbdTLS && cfg.nbd == "":
		return cfg, errors.New("--nbd-tls needs --nbd ADDR")
	case cfg.vms < 0:
		return cfg, fmt.Errorf("--vms %d: must be >= 0", cfg.vms)
	case cfg.diskSize <= 0 || cfg.diskSize%512 != 0:
		return cfg, fmt.Errorf("--disk-size %d: must be a positive multiple of 512", cfg.diskSize)
	}
	return cfg, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	cfg, err := parseConfig(args, getenv)
	if err != nil {
		return err
	}
	m := xapisim.Default()
	m.User, m.Password = cfg.user, cfg.password
	m.VMs = cfg.vms
	m.DiskSize = cfg.diskSize
	sim := xapisim.New(m)
	defer sim.Close()
	if cfg.poolMember != "" {
		sim.SetPoolMember(cfg.poolMember)
	}
	url, shutdown, err := sim.Start(cfg.listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "xapisim: serving a pool of %s VMs at %s (user %q)\n", strconv.Itoa(cfg.vms), url, cfg.user)
	if cfg.nbd != "" {
		addr, err := sim.ServeNBD(cfg.nbd, cfg.nbdTLS)
		if err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = shutdown(sctx)
			return err
		}
		mode := "plain, network purpose insecure_nbd"
		if cfg.nbdTLS {
			mode = "TLS required, network purpose nbd"
		}
		fmt.Fprintf(out, "xapisim: NBD server at %s (%s)\n", addr, mode)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// Command xapisim serves a simulated XAPI pool (package xo/xapisim) over
// HTTP, for demos, real-client checks and benchmarks.
//
//	xapisim --listen 127.0.0.1:8080 --user root --password secret --vms 20
//
// Pool members can have listeners of their own, as each XAPI host has an
// address: --member-listen host1=127.0.0.1:8082 (repeatable, or
// comma-separated) starts host1's listener there (xapisim StartHost), sets
// host1's address to its IP, and makes the master redirect the transfers
// of objects on host1's local storage (--local-storage) to it. With
// --member-tls the listeners use TLS with a self-signed certificate of
// their own, whose SHA-256 fingerprint is printed. A listener cannot be on
// the pool URL's port, so an XAPI client reaches a member through an
// explicit URL (xo/xapi Options.HostURLs, keyed by the host uuid printed).
// As on a real member, a login there answers HOST_IS_SLAVE, with the
// master's listener address; the master's sessions serve its transfers.
//
//	xapisim --local-storage --member-listen host1=127.0.0.1:8082 --member-tls
//
// Every flag can also be set with an environment variable XOREST_<FLAG>
// (upper case, dashes as underscores: XOREST_DISK_SIZE); a flag on the
// command line wins. The server prints its URL and stops gracefully on
// SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	neturl "net/url"
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
	// members is --member-listen as given: host=addr pairs separated by
	// commas (see memberListens).
	members      string
	memberTLS    bool
	localStorage bool
}

// memberListen is one --member-listen pair.
type memberListen struct{ host, addr string }

// memberListens parses the host=addr pairs of --member-listen.
func memberListens(s string) ([]memberListen, error) {
	var out []memberListen
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		host, addr, ok := strings.Cut(part, "=")
		if !ok || host == "" || addr == "" {
			return nil, fmt.Errorf("--member-listen %q: want HOST=ADDR, e.g. host1=127.0.0.1:8082", part)
		}
		if seen[host] {
			return nil, fmt.Errorf("--member-listen: host %q given twice", host)
		}
		seen[host] = true
		out = append(out, memberListen{host, addr})
	}
	return out, nil
}

// listFlag is a string flag whose repetitions are joined with commas.
type listFlag struct{ s *string }

func (f listFlag) String() string {
	if f.s == nil {
		return ""
	}
	return *f.s
}

func (f listFlag) Set(v string) error {
	if *f.s != "" {
		*f.s += ","
	}
	*f.s += v
	return nil
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
	fs.Var(listFlag{&cfg.members}, "member-listen", "start a pool member's own listener, HOST=ADDR (name, uuid or ref; e.g. host1=127.0.0.1:8082); repeatable or comma-separated (XOREST_MEMBER_LISTEN)")
	fs.BoolVar(&cfg.memberTLS, "member-tls", false, "serve the member listeners over TLS, each with its own self-signed certificate (XOREST_MEMBER_TLS)")
	fs.BoolVar(&cfg.localStorage, "local-storage", false, "no shared SR: every disk is on its host's local SR, so transfers of a member's objects are redirected to its listener (XOREST_LOCAL_STORAGE)")
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
	// A --member-listen on the command line replaces the environment's.
	fromEnv := cfg.members
	cfg.members = ""
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
	if cfg.members == "" {
		cfg.members = fromEnv
	}
	members, err := memberListens(cfg.members)
	if err != nil {
		return cfg, err
	}
	switch {
	case cfg.nbdTLS && cfg.nbd == "":
		return cfg, errors.New("--nbd-tls needs --nbd ADDR")
	case cfg.memberTLS && len(members) == 0:
		return cfg, errors.New("--member-tls needs --member-listen HOST=ADDR")
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
	if cfg.localStorage {
		m = xapisim.LocalStorage()
	}
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
	members, _ := memberListens(cfg.members) // checked by parseConfig
	if len(members) > 0 {
		// A login on a member answers HOST_IS_SLAVE with the address of
		// the master: this listener's, so that clients can follow it.
		if u, err := neturl.Parse(url); err == nil {
			sim.SetMasterAddress(u.Host)
		}
	}
	for _, ml := range members {
		ep, err := sim.StartHost(ml.host, ml.addr, cfg.memberTLS)
		if err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = shutdown(sctx)
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = ep.Close(sctx)
		}()
		uuid := ""
		sim.DB.Read(func(tx *xapisim.Tx) {
			_, rec, _ := tx.Get(ep.Host)
			uuid, _ = rec["uuid"].(string)
		})
		fmt.Fprintf(out, "xapisim: member %s (host uuid %s) at %s", ml.host, uuid, ep.URL)
		if ep.Certificate != nil {
			sum := sha256.Sum256(ep.Certificate)
			fmt.Fprintf(out, " (certificate sha256 %s)", hex.EncodeToString(sum[:]))
		}
		fmt.Fprintln(out)
	}
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

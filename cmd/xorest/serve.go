package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/xorest/xorest/auth"
	"github.com/xorest/xorest/handlers"
	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// serveConfig is what `xorest serve` runs with, from flags and environment.
type serveConfig struct {
	listen       string
	xapi         multiFlag
	xapiUser     string
	xapiPassword string
	caFile       string
	fingerprints multiFlag
	hostURLs     map[string]string
	insecure     bool
	tokenStore   string
	logLevel     string
	logFormat    string
	s3           exportS3Config
	importAllow  multiFlag
}

func parseServe(args []string, getenv func(string) string) (serveConfig, error) {
	cfg := serveConfig{}
	fs := flag.NewFlagSet("xorest serve", flag.ContinueOnError)
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8080", "address to serve HTTP on")
	fs.Var(&cfg.xapi, "xapi", "URL of a pool master, e.g. https://192.168.1.10 (repeat for several pools); none starts an embedded simulated pool")
	fs.StringVar(&cfg.xapiUser, "xapi-user", "root", "XAPI user for the service connections (password: XOREST_XAPI_PASSWORD)")
	fs.StringVar(&cfg.caFile, "xapi-ca-file", "", "PEM file of the CA (or self-signed certificate) that signs the hosts' certificates")
	var hosts multiFlag
	fs.Var(&hosts, "xapi-host-url", hostURLsUsage)
	fs.Var(&cfg.fingerprints, "xapi-fingerprint", "pinned SHA-256 fingerprint of a host certificate (repeatable)")
	fs.BoolVar(&cfg.insecure, "xapi-insecure", false, "do not verify the hosts' TLS certificates (unsafe)")
	fs.StringVar(&cfg.tokenStore, "token-store", defaultTokenStore(getenv), "where tokens are stored: file:PATH or s3://bucket/prefix")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "text or json")
	cfg.s3.register(fs)
	fs.Var(&cfg.importAllow, "import-allow", importAllowUsage)
	if err := parseFlags(fs, args, getenv); err != nil {
		return cfg, err
	}
	if _, err := importAllow(cfg.importAllow); err != nil {
		return cfg, err
	}
	var err error
	if cfg.hostURLs, err = hostURLs(hosts); err != nil {
		return cfg, err
	}
	if fs.NArg() != 0 {
		return cfg, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	cfg.xapiPassword = getenv("XOREST_XAPI_PASSWORD")
	if len(cfg.xapi) > 0 && cfg.xapiPassword == "" {
		return cfg, fmt.Errorf("%w: XOREST_XAPI_PASSWORD is not set (the password of --xapi-user)", errUsage)
	}
	return cfg, nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q", errUsage, level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q (text or json)", errUsage, format)
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseServe(args, getenv)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.logLevel, cfg.logFormat)
	if err != nil {
		return err
	}
	store, err := openTokenStore(cfg.tokenStore)
	if err != nil {
		return err
	}

	var printToken string
	if len(cfg.xapi) == 0 {
		// No pool given: serve an embedded simulated pool, for demos and
		// for trying the API (`make run`).
		m := xapisim.Default()
		m.User, m.Password = "root", randomHex(12)
		sim := xapisim.New(m)
		simURL, stopSim, err := sim.Start("127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("starting the simulated pool: %w", err)
		}
		defer stopSim(context.Background())
		cfg.xapi = multiFlag{strings.TrimSuffix(simURL, "/")}
		cfg.xapiUser, cfg.xapiPassword = m.User, m.Password
		secret, _, err := mintToken(ctx, store, auth.NewParams{User: m.User, Description: "xorest serve (simulated pool)", Now: time.Now()})
		if err != nil {
			return err
		}
		printToken = secret
		log.Info("serving an embedded simulated pool", "xapi", simURL, "user", m.User)
	}

	opts := make([]xapi.Options, len(cfg.xapi))
	for i, u := range cfg.xapi {
		opts[i] = xapi.Options{
			URL: u, Username: cfg.xapiUser, Password: cfg.xapiPassword,
			CAFile: cfg.caFile, Fingerprints: cfg.fingerprints, Insecure: cfg.insecure, HostURLs: cfg.hostURLs,
		}
	}
	pools, err := xo.New(xo.Config{XAPI: opts})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := pools.Close(cctx); err != nil {
			log.Warn("closing the XAPI sessions", "error", err)
		}
	}()
	hc := handlers.Config{
		Logger:      log,
		Tokens:      store,
		Pools:       pools,
		VerifyBasic: verifyBasic(opts[0]),
	}
	if hc.ImportAllow, err = importAllow(cfg.importAllow); err != nil {
		return err
	}
	if err := cfg.s3.apply(ctx, &hc); err != nil {
		return err
	}
	h, err := handlers.NewServer(hc)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	// Watch streams and task waits last until the client leaves: at
	// shutdown, requests get shutdownGrace to finish, then their contexts
	// are cancelled so that streams end too.
	baseCtx, cancelRequests := context.WithCancel(context.Background())
	defer cancelRequests()
	srv := &http.Server{
		Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext: func(net.Listener) context.Context { return baseCtx },
	}
	srv.RegisterOnShutdown(func() { time.AfterFunc(shutdownGrace, cancelRequests) })
	base := "http://" + ln.Addr().String() + handlers.BasePath
	fmt.Fprintf(stdout, "xorest: serving %s\n", base)
	if printToken != "" {
		fmt.Fprintf(stdout, "xorest: admin token (shown once): %s\n", printToken)
		fmt.Fprintf(stdout, "xorest: try: curl -b authenticationToken=%s '%s/vms?fields=name_label,power_state'\n", printToken, base)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	// Jobs (actions, imports) get the rest of the grace period; then they
	// are stopped and their tasks fail, rather than stay pending forever.
	if err := h.Shutdown(sctx); err != nil {
		log.Warn("jobs stopped by the shutdown", "error", err)
	}
	return nil
}

// shutdownGrace is how long requests may run on after a shutdown starts
// before their contexts are cancelled.
const shutdownGrace = 5 * time.Second

// verifyBasic checks HTTP Basic credentials by logging into the pool with
// them; only pool admins (the local superuser, or a subject whose session
// may manage subjects) may use the API.
func verifyBasic(base xapi.Options) func(ctx context.Context, user, password string) error {
	return func(ctx context.Context, user, password string) error {
		opts := base
		opts.Username, opts.Password = user, password
		opts.Originator = "xorest-basic"
		c, err := xapi.New(opts)
		if err != nil {
			return err
		}
		if err := c.Login(ctx); err != nil {
			return err
		}
		defer c.Logout(context.WithoutCancel(ctx))
		var superuser bool
		if err := c.CallInto(ctx, &superuser, "session.get_is_local_superuser", c.Session()); err != nil {
			return err
		}
		if superuser {
			return nil
		}
		var perms []string
		if err := c.CallInto(ctx, &perms, "session.get_rbac_permissions", c.Session()); err != nil {
			return err
		}
		for _, p := range perms {
			if strings.EqualFold(p, "subject.create") {
				return nil
			}
		}
		return handlers.Forbidden("only pool admins may use the REST API", nil)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

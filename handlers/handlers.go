package handlers

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/xorest/xorest/auth"
	"github.com/xorest/xorest/transfer/s3"
	"github.com/xorest/xorest/xo"
)

// BasePath is the root of every route.
const BasePath = "/rest/v0"

// DefaultCollections returns the collections GET /rest/v0 lists when
// Config.Collections is nil: every collection of XO backed by XAPI.
func DefaultCollections() []string {
	return []string{
		"vms", "vm-templates", "vm-snapshots", "vm-controllers", "hosts", "pools", "srs",
		"vdis", "vdi-snapshots", "vbds", "vifs", "pifs", "networks", "pbds", "pcis", "pgpus",
		"sms", "messages", "alarms", "tasks",
	}
}

// Defaults of Config.
const (
	DefaultKeepAlive    = 30 * time.Second
	DefaultWaitTimeout  = 10 * time.Minute
	DefaultMaxBodyBytes = 1 << 20
)

// Config configures the handler returned by New.
type Config struct {
	// Logger receives one access log line per request (with the error, if
	// any) and server events. Nil discards logs.
	Logger *slog.Logger
	// Tokens is the token store (required).
	Tokens auth.Store
	// Pools is the object cache of the XAPI pools the collections show.
	// Nil serves every route, but the routes that need a pool answer 503.
	Pools *xo.Pools
	// VerifyBasic checks HTTP Basic credentials, typically by logging into
	// XAPI, and accepts pool admins only. It returns nil when user may use
	// the API. Its errors are rendered with the status table: an error
	// matching ErrUnauthorized or an XAPI SESSION_AUTHENTICATION_FAILED
	// fault is a 401, ErrForbidden or RBAC_PERMISSION_DENIED a 403,
	// xapi.ErrUnreachable a 503. Nil refuses every Basic login (401).
	VerifyBasic func(ctx context.Context, user, password string) error
	// Collections are the collection names GET /rest/v0 lists; nil means
	// DefaultCollections().
	Collections []string
	// KeepAlive is the interval of keep-alive newlines in watch streams;
	// 0 means DefaultKeepAlive.
	KeepAlive time.Duration
	// WaitTimeout bounds how long a ?wait request waits; 0 means
	// DefaultWaitTimeout.
	WaitTimeout time.Duration
	// MaxBodyBytes caps JSON request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Now is the clock (token creation and expiry); nil means time.Now.
	Now func() time.Time
	// S3 stores what the export action exports; nil answers that action
	// with a 501.
	S3 *s3.Client
	// S3Bucket is the bucket of exports whose body names none.
	S3Bucket string
	// PresignExpiry is the validity of the download URL of an export; 0
	// means DefaultPresignExpiry.
	PresignExpiry time.Duration
	// ImportAllow lists the hosts ("minio.internal", "*.s3.internal"),
	// addresses and CIDR prefixes ("10.0.0.0/8") that URL imports may
	// reach besides public addresses (urlsource.NewPolicy); loopback,
	// link-local, private and reserved addresses are refused otherwise.
	// The host of S3's endpoint is allowed for s3://bucket/key imports
	// without being listed.
	ImportAllow []string
	// Dispatch hands over a job (work that outlives its request: actions,
	// imports from a URL) to be run by Server.RunJob, in this process or
	// another (deploy.Async: an asynchronous Lambda invocation); it
	// returns once the job is handed over. Nil runs jobs in goroutines of
	// this process (Server.Wait waits for them).
	Dispatch func(ctx context.Context, job []byte) error
}

// server holds the configuration and the routes of one handler.
type server struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	routes []route
	mux    *http.ServeMux
	// docs builds, on first use, the OpenAPI document generated from
	// routes and the documentation page (a cold Lambda instance would
	// otherwise spend most of its start on them).
	docs func() (*docs, error)
	// jobs are the jobs running in this process (Config.Dispatch nil),
	// under jobsCtx, which stopJobs cancels.
	jobs     sync.WaitGroup
	jobsCtx  context.Context
	stopJobs context.CancelCauseFunc
}

// route is one row of the route table: the mux and the OpenAPI document are
// both generated from it.
type route struct {
	method  string      // HTTP method
	pattern string      // http.ServeMux path pattern, e.g. "/rest/v0/vms/{id}"
	handler HandlerFunc // the handler
	summary string      // one line for the documentation
	tag     string      // documentation group
	params  []string    // accepted query parameters (names of paramSpecs), parsed before handler runs
	body    bodyDoc     // the request body, for the documentation
	resp    respDoc     // the success response, for the documentation
}

// bodyDoc describes a JSON request body in the documentation.
type bodyDoc struct {
	schema map[string]any // JSON schema; nil means no body
}

// respDoc describes the success response in the documentation.
type respDoc struct {
	status      int            // 0 means 200
	description string         // what the response holds
	types       []string       // media types; nil means application/json
	schema      map[string]any // schema of the JSON response, if any
}

// routeTable returns every route xorest serves. Adding a route is adding a
// row.
func (s *server) routeTable() []route {
	routes := []route{
		{
			method: "GET", pattern: BasePath, handler: s.listCollections, tag: "root",
			summary: "List the collections",
			params:  collectionParams,
			resp:    collectionResp("The collection URLs (or objects {id, href, url} with fields)"),
		},
		{
			method: "POST", pattern: BasePath + "/users/authentication_tokens", handler: s.createToken, tag: "users",
			summary: "Create an authentication token (HTTP Basic authentication with XAPI credentials)",
			body:    bodyDoc{schema: tokenRequestSchema},
			resp:    respDoc{status: http.StatusCreated, description: "The new token; its id is the secret, shown only once", schema: tokenResponseSchema},
		},
		{
			method: "POST", pattern: BasePath + "/users/{id}/authentication_tokens", handler: s.createToken, tag: "users",
			summary: "Create an authentication token for yourself (id: me or your user name; HTTP Basic authentication)",
			body:    bodyDoc{schema: tokenRequestSchema},
			resp:    respDoc{status: http.StatusCreated, description: "The new token; its id is the secret, shown only once", schema: tokenResponseSchema},
		},
		{
			method: "GET", pattern: BasePath + "/docs", handler: s.docsPage, tag: "docs",
			summary: "Browsable API documentation",
			resp:    respDoc{description: "An HTML page", types: []string{"text/html"}},
		},
		{
			method: "GET", pattern: BasePath + "/docs/swagger.json", handler: s.docsSpec, tag: "docs",
			summary: "This OpenAPI 3 document",
			resp:    respDoc{description: "The OpenAPI document", schema: map[string]any{"type": "object"}},
		},
	}
	for _, c := range collections() {
		routes = append(routes, s.collectionRoutes(c)...)
	}
	routes = append(routes, s.statsRoutes()...)
	routes = append(routes, s.hostRoutes()...)
	return s.withTransfers(append(append(routes, s.taskRoutes()...), s.writeRoutes()...))
}

// collectionParams are the query parameters of every collection route.
var collectionParams = []string{"fields", "filter", "limit", "ndjson", "markdown"}

// collectionResp documents a collection response.
func collectionResp(description string) respDoc {
	return respDoc{
		description: description,
		types:       []string{"application/json", "application/x-ndjson", "text/markdown"},
		schema:      map[string]any{"type": "array", "items": map[string]any{}},
	}
}

// New returns the handler of every /rest/v0 route, wrapped in request ids,
// access logging, panic recovery and authentication (required on every
// route). It is NewServer for callers that run no jobs of other
// processes.
func New(cfg Config) (http.Handler, error) {
	return NewServer(cfg)
}

// Server is the handler of every /rest/v0 route (see New), and the runner
// of the jobs it dispatches (Config.Dispatch).
type Server struct {
	s *server
	h http.Handler
}

// NewServer returns the Server of cfg.
func NewServer(cfg Config) (*Server, error) {
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	return &Server{s: s, h: s.handler()}, nil
}

// ServeHTTP serves a request.
func (sv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { sv.h.ServeHTTP(w, r) }

// RunJob runs a job that Config.Dispatch received, within ctx, and records
// its outcome on its XAPI task. When ctx has a deadline (a Lambda
// invocation's), the job is stopped some seconds before it, so that the
// outcome is recorded and what the job started is cleaned up. The error
// (for the log) is the job's; a job that cannot be decoded is reported
// only there.
func (sv *Server) RunJob(ctx context.Context, job []byte) error { return sv.s.runJob(ctx, job) }

// ErrShutdown is the cause of the failure of the jobs that Shutdown
// stopped.
var ErrShutdown = errors.New("xorest is shutting down")

// Shutdown waits for the jobs running in goroutines of this process
// (Config.Dispatch nil) to end. When ctx ends first, it stops them (their
// tasks fail with ErrShutdown, what they started is cleaned up), waits
// for them to record that, and returns ctx's error. Requests that come
// after it has begun run their jobs under a cancelled context.
func (sv *Server) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		sv.s.jobs.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	sv.s.stopJobs(ErrShutdown)
	<-done
	return fmt.Errorf("stopping the jobs still running: %w", ctx.Err())
}

// handler wraps the mux in the middleware every request goes through.
func (s *server) handler() http.Handler {
	return s.withRequestID(s.withAccessLog(s.withRecover(s.withCleanPath(s.withAuthentication(s.mux)))))
}

// newServer validates cfg, fills in defaults and builds the mux, the
// OpenAPI document and the documentation page from the route table.
func newServer(cfg Config) (*server, error) {
	if cfg.Tokens == nil {
		return nil, errors.New("handlers: Config.Tokens is required")
	}
	if cfg.PresignExpiry < 0 || cfg.PresignExpiry > s3.MaxPresignExpiry {
		return nil, fmt.Errorf("handlers: Config.PresignExpiry %s not in [0, %s]", cfg.PresignExpiry, s3.MaxPresignExpiry)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Collections == nil {
		cfg.Collections = DefaultCollections()
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = DefaultWaitTimeout
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s := &server{cfg: cfg, log: cfg.Logger, now: cfg.Now, mux: http.NewServeMux()}
	s.jobsCtx, s.stopJobs = context.WithCancelCause(context.Background())
	if s.now == nil {
		s.now = time.Now
	}
	s.routes = s.routeTable()
	for _, rt := range s.routes {
		for _, p := range rt.params {
			if _, ok := paramSpecs[p]; !ok {
				return nil, fmt.Errorf("handlers: route %s %s: unknown query parameter %q", rt.method, rt.pattern, p)
			}
		}
		s.mux.Handle(rt.method+" "+rt.pattern, s.adaptRoute(rt))
	}
	s.mux.Handle("/", s.adapt(s.noRoute))
	s.docs = sync.OnceValues(s.buildDocs)
	return s, nil
}

// adaptRoute is adapt for a route: the query parameters the route declares
// are parsed before its handler runs (errors are rendered like the
// handler's), and the handler reads them with queryOf.
func (s *server) adaptRoute(rt route) http.Handler {
	return s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		q, err := ParseQuery(r.URL.Query(), rt.params)
		if err != nil {
			return err
		}
		return rt.handler(w, r.WithContext(context.WithValue(r.Context(), queryKey{}, q)))
	})
}

type queryKey struct{}

// queryOf returns the query parameters of r parsed by adaptRoute, as its
// route declares them.
func queryOf(r *http.Request) Query {
	if q, ok := r.Context().Value(queryKey{}).(Query); ok {
		return q
	}
	return Query{Limit: -1}
}

// adapt turns a HandlerFunc into an http.Handler that renders its error.
func (s *server) adapt(h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// noRoute answers requests no route matches: 405 when the path exists with
// another method, else 404.
func (s *server) noRoute(w http.ResponseWriter, r *http.Request) error {
	var allowed []string
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		return &Error{Kind: ErrMethodNotAllowed, Message: "method " + r.Method + " not allowed on " + r.URL.Path}
	}
	return &Error{Kind: ErrNotFound, Message: "no such route " + r.Method + " " + r.URL.Path}
}

// listCollections answers GET /rest/v0.
func (s *server) listCollections(w http.ResponseWriter, r *http.Request) error {
	items := make([]map[string]any, len(s.cfg.Collections))
	for i, c := range s.cfg.Collections {
		items[i] = map[string]any{"id": c}
	}
	return WriteCollection(w, r, queryOf(r), slices.Values(items), HrefIn(BasePath))
}

// requestInfo is what the access log learns about a request while it runs.
type requestInfo struct {
	id     string
	user   string // the authenticated principal, if any
	status int    // the error status, when an error was rendered
	err    error  // the error returned by the handler, if any
}

type requestInfoKey struct{}

func requestInfoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return info
}

// RequestID returns the id of the request being served by ctx, or "".
func RequestID(ctx context.Context) string {
	if info := requestInfoFrom(ctx); info != nil {
		return info.id
	}
	return ""
}

// validRequestID reports whether a client-sent X-Request-Id can be echoed:
// 1 to 128 characters of [A-Za-z0-9._:-].
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// withRequestID gives every request an id: the client's X-Request-Id when
// valid, else a random one; it is echoed in the response header.
func (s *server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = rand.Text()
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestInfoKey{}, &requestInfo{id: id})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// withAccessLog logs one line per request, with the error if there was one.
// This is the only place errors of requests are logged.
func (s *server) withAccessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &responseRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		info := requestInfoFrom(r.Context())
		attrs := []slog.Attr{
			slog.String("request_id", info.id),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.statusCode()),
			slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)),
		}
		if info.user != "" {
			attrs = append(attrs, slog.String("user", info.user))
		}
		level := slog.LevelInfo
		if info.err != nil {
			attrs = append(attrs, slog.String("error", logMessage(info.err)))
			switch {
			case r.Context().Err() != nil:
				attrs = append(attrs, slog.Bool("client_gone", true))
			case info.status == 0 || info.status >= 500: // 0: failed after the response started
				level = slog.LevelError
			default:
				level = slog.LevelWarn
			}
		}
		s.log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

// withRecover turns a panic into a 500 whose stack is logged.
func (s *server) withRecover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.writeError(w, r, fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// withCleanPath accepts a trailing slash, as XO (Express, non-strict) does.
func (s *server) withCleanPath(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
			r = r.Clone(r.Context())
			r.URL.Path = strings.TrimRight(p, "/")
			if r.URL.Path == "" {
				r.URL.Path = "/"
			}
			r.URL.RawPath = ""
		}
		next.ServeHTTP(w, r)
	})
}

// responseRecorder records the status and size of a response.
type responseRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *responseRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *responseRecorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Flush sends buffered data to the client.
func (w *responseRecorder) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *responseRecorder) started() bool { return w.status != 0 }

func (w *responseRecorder) statusCode() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

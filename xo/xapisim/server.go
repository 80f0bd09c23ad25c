package xapisim

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"strconv"
)

// MaxRPCSize is the largest RPC request body XAPI accepts (300 KiB,
// Constants.http_limit_max_rpc_size).
const MaxRPCSize = 300 << 10

// HandleHTTP registers a data-plane handler (e.g. "GET /export",
// "PUT /import_raw_vdi") with net/http.ServeMux pattern syntax. Requests
// that match a registered pattern go to it; every other POST is an RPC.
func (s *Simulator) HandleHTTP(pattern string, h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mux.Handle(pattern, h)
	s.handlers++
}

// ServeHTTP serves XAPI's HTTP interface: XML-RPC on POST to any path
// (/, /RPC2, /xmlrpc, ...), JSON-RPC on POST /jsonrpc, CORS preflight on
// OPTIONS, and the data-plane handlers registered with HandleHTTP.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	mux, nh := s.mux, s.handlers
	s.mu.RUnlock()
	if nh > 0 {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
	}
	switch r.Method {
	case http.MethodOptions:
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Headers", "X-Requested-With, Content-Type")
		h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	case http.MethodPost:
		s.serveRPC(w, r)
	case http.MethodGet, http.MethodPut, http.MethodConnect, http.MethodHead:
		// XAPI has handlers for these methods but none for this path.
		httpError(w, http.StatusForbidden, "Forbidden", "")
	default:
		httpError(w, http.StatusNotImplemented, "Not Implemented", "")
	}
}

// httpError writes XAPI's HTML error page.
func httpError(w http.ResponseWriter, code int, title, detail string) {
	body := "<html><body><h1>HTTP " + strconv.Itoa(code) + " " + title + "</h1>"
	if detail != "" {
		body += "<h1> Additional information </h1>" + html.EscapeString(detail)
	}
	body += "</body></html>"
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Connection", "close")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

func (s *Simulator) serveRPC(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength < 0 {
		httpError(w, http.StatusInternalServerError, "Internal Server Error", "We require a content-length")
		return
	}
	if r.ContentLength > MaxRPCSize {
		httpError(w, http.StatusInternalServerError, "Internal Server Error",
			fmt.Sprintf("Request body of %d bytes is larger than the limit of %d", r.ContentLength, MaxRPCSize))
		return
	}
	body := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		httpError(w, http.StatusInternalServerError, "Internal Server Error", "Short request body: "+err.Error())
		return
	}
	isJSON := r.URL.Path == "/jsonrpc"
	var (
		req *request
		err error
	)
	if isJSON {
		req, err = decodeJSONRequest(body)
	} else {
		req, err = decodeXMLRequest(body)
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, "Internal Server Error", err.Error())
		return
	}
	ctx := r.Context()
	if h, ok := ctx.Value(localHostKey{}).(string); ok && h != s.MasterHost() {
		ctx = context.WithValue(ctx, memberRPCKey{}, true)
	}
	result, fault, bare := s.dispatch(ctx, req.method, req.params)
	buf := s.getBuffer()
	defer s.putBuffer(buf)
	var out []byte
	if isJSON {
		out, err = appendJSONResponse(buf.b[:0], req, result, fault)
		if err != nil {
			out, _ = appendJSONResponse(buf.b[:0], req, nil, internalError(err))
		}
	} else {
		out, err = appendXMLResponse(buf.b[:0], result, fault, bare)
		if err != nil {
			out, _ = appendXMLResponse(buf.b[:0], nil, internalError(err), false)
		}
	}
	buf.b = out
	h := w.Header()
	if isJSON {
		h.Set("Content-Type", "application/json")
	} else {
		h.Set("Content-Type", "text/xml")
	}
	h.Set("Content-Length", strconv.Itoa(len(out)))
	h.Set("Access-Control-Allow-Origin", "*")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

type buffer struct{ b []byte }

func (s *Simulator) getBuffer() *buffer {
	if b, ok := s.bufs.Get().(*buffer); ok {
		return b
	}
	return &buffer{b: make([]byte, 0, 4096)}
}

// putBuffer recycles a response buffer; large ones (over 16 MiB) are
// dropped.
func (s *Simulator) putBuffer(b *buffer) {
	if cap(b.b) <= 16<<20 {
		b.b = b.b[:0]
		s.bufs.Put(b)
	}
}

// Start serves the simulator over HTTP on addr (e.g. "127.0.0.1:0") and
// returns its base URL and a function that shuts the server down.
func (s *Simulator) Start(addr string) (url string, stop func(context.Context) error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("xapisim: listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = ln.Close()
		}
	}()
	stop = func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		s.cancelTasks()
		return err
	}
	return "http://" + ln.Addr().String() + "/", stop, nil
}

// cancelTasks cancels the context of every running task.
func (s *Simulator) cancelTasks() {
	s.tasksMu.Lock()
	defer s.tasksMu.Unlock()
	for _, run := range s.tasks {
		run.cancel()
	}
}

// HTTPError writes XAPI's HTML error page with status code and an optional
// detail (the "Additional information" section), for data-plane handlers.
func HTTPError(w http.ResponseWriter, code int, detail string) {
	httpError(w, code, http.StatusText(code), detail)
}

// Unauthorized writes XAPI's 401 answer to a data-plane request without
// valid credentials.
func Unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="xapi"`)
	httpError(w, http.StatusUnauthorized, "Unauthorised", "")
}

// requestParam returns a parameter of a data-plane request: the cookie
// first, then the query (xapi_http.ml lookup_param_of_req).
func requestParam(r *http.Request, name string) string {
	if c, err := r.Cookie(name); err == nil && c.Value != "" {
		return c.Value
	}
	return r.URL.Query().Get(name)
}

// HTTPSession authenticates a data-plane request as XAPI does: session_id
// in a cookie or the query, else HTTP Basic credentials, for which a
// temporary session is created. Call logout when the request is done (it
// ends the temporary session, and does nothing for a caller's session). The
// error is a *Fault: SESSION_INVALID or SESSION_AUTHENTICATION_FAILED (or,
// for a user of the external directory, SESSION_AUTHORIZATION_FAILED or
// RBAC_PERMISSION_DENIED); the handler should then answer with
// Unauthorized. Expired sessions are collected first (sessiongc.go).
func (s *Simulator) HTTPSession(r *http.Request) (session string, logout func(), err error) {
	s.maybeCollectSessions()
	if ref := requestParam(r, "session_id"); ref != "" {
		if !s.SessionValid(ref) {
			return "", nil, NewFault("SESSION_INVALID", ref)
		}
		return ref, func() {}, nil
	}
	if user, pwd, ok := r.BasicAuth(); ok {
		ref, err := s.loginWithPassword(user, pwd, "")
		if err != nil {
			return "", nil, err
		}
		return ref, func() { s.Logout(ref) }, nil
	}
	return "", nil, NewFault("SESSION_AUTHENTICATION_FAILED")
}

// RequestTask returns the task a data-plane request runs in: the task_id
// parameter (cookie or query) if it names a task, else a new task labelled
// label that the handler completes with CompleteTask. created reports
// whether the task was made here.
func (s *Simulator) RequestTask(r *http.Request, label string) (task string, created bool, err error) {
	if ref := requestParam(r, "task_id"); ref != "" {
		ok := false
		s.DB.Read(func(tx *Tx) { _, ok = tx.GetClass(taskClass, ref) })
		if !ok {
			return "", false, HandleInvalid(taskClass, ref)
		}
		return ref, false, nil
	}
	return s.newTask(label, "", false), true, nil
}

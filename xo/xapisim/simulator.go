package xapisim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Simulator is an in-process XAPI pool: an object registry, the dispatch
// table of XAPI methods, sessions, tasks and events, served over HTTP by
// Simulator.ServeHTTP.
type Simulator struct {
	// DB holds every object of the pool.
	DB *Registry

	mu       sync.RWMutex
	methods  map[string]Method
	user     string
	password string
	master   string // master address when playing a pool member, "" for the master
	// masterAddr is the address members' listeners give in HOST_IS_SLAVE
	// ("" for the master host's address).
	masterAddr string
	directory  map[string]externalUser // simulated external directory (rbac.go)
	now        func() time.Time
	mux        *http.ServeMux
	handlers   int        // patterns registered on mux
	data       *dataPlane // transfers, VDI contents and NBD (vdidata.go)

	hooks  hooks
	legacy legacyEvents // event.register subscriptions

	bufs sync.Pool // *buffer, response buffers

	tasksMu sync.Mutex
	tasks   map[string]*taskRun // running tasks by ref

	gc sessionGC // session expiry (sessiongc.go)
}

// New returns a simulator holding m's inventory, with the core methods
// (session, event, task, system), the implicit messages of every class of
// the schema, and the per-class behaviour registered. Credentials are
// m.User and m.Password (default "root" / "password").
func New(m Model) *Simulator {
	if m.Seed == "" {
		m.Seed = "xapisim"
	}
	if m.User == "" && m.Password == "" {
		m.User, m.Password = "root", "password"
	}
	s := &Simulator{
		DB:       NewRegistry(m.Seed),
		methods:  make(map[string]Method),
		user:     m.User,
		password: m.Password,
		now:      func() time.Time { return time.Now().UTC().Truncate(time.Second) },
		mux:      http.NewServeMux(),
		tasks:    make(map[string]*taskRun),
	}
	s.registerImplicit()
	s.registerSystem()
	s.registerSession()
	s.registerEvent()
	s.registerTask()
	for _, register := range classRegistrars {
		register(s)
	}
	_ = s.DB.Write(func(tx *Tx) error {
		m.populate(tx)
		return nil
	})
	return s
}

// Register adds or replaces the method called name ("Class.method").
func (s *Simulator) Register(name string, m Method) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.methods == nil {
		s.methods = make(map[string]Method)
	}
	s.methods[name] = m
}

// Unregister removes the method called name, so that calls to it get
// MESSAGE_METHOD_UNKNOWN (as on an older XAPI).
func (s *Simulator) Unregister(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.methods, name)
}

// Method returns the method registered as name.
func (s *Simulator) Method(name string) (Method, bool) { return s.lookup(name) }

// lookup returns the method called name.
func (s *Simulator) lookup(name string) (Method, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.methods[name]
	return m, ok
}

// Methods returns the sorted wire names of every registered method, as
// system.listMethods reports them (no Async., no system.*).
func (s *Simulator) Methods() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.methods))
	for n := range s.methods {
		if !strings.HasPrefix(n, "system.") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// SetCredentials changes the user name and password that
// session.login_with_password accepts.
func (s *Simulator) SetCredentials(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user, s.password = user, password
}

// SetPoolMember makes the simulator play a pool member whose master is at
// masterAddress: session.login_with_password then fails with
// HOST_IS_SLAVE [masterAddress]. An empty address makes it the master again.
func (s *Simulator) SetPoolMember(masterAddress string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.master = masterAddress
}

// SetClock replaces the simulator's clock (task and session times).
func (s *Simulator) SetClock(now func() time.Time) {
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
	s.gc.mu.Lock()
	s.gc.last = time.Time{} // the GC period restarts on the new clock
	s.gc.mu.Unlock()
}

// Now returns the simulator's current time, in UTC and whole seconds as
// XAPI's dates have.
func (s *Simulator) Now() time.Time {
	s.mu.RLock()
	now := s.now
	s.mu.RUnlock()
	return now().UTC().Truncate(time.Second)
}

// MasterHost returns the ref of the pool master (OpaqueRef:NULL without a
// pool).
func (s *Simulator) MasterHost() string {
	host := NullRef
	s.DB.Read(func(tx *Tx) {
		for _, p := range tx.All("pool") {
			rec, _ := tx.GetClass("pool", p)
			if h, _ := rec["master"].(string); h != "" {
				host = h
			}
		}
	})
	return host
}

// internalError is the fault for a handler's non-XAPI error.
func internalError(err error) *Fault {
	return NewFault("INTERNAL_ERROR", err.Error())
}

// asFault converts a handler error to the fault sent to the client.
func asFault(err error) *Fault {
	var f *Fault
	if errors.As(err, &f) {
		return f
	}
	return internalError(err)
}

// dispatch runs one decoded call in XAPI's order (§1.6): UTF-8 check,
// Async. prefix, method lookup (with the Class_method spelling), unknown
// method (session check first), parameter count, session check, async
// mode, hooks, then the handler. It returns the result, or the fault, and
// whether the result is sent bare (system.listMethods).
func (s *Simulator) dispatch(ctx context.Context, name string, params []any) (any, *Fault, bool) {
	if bad, ok := invalidUTF8(params); ok {
		return nil, NewFault("INVALID_VALUE", "Invalid UTF-8 string in parameter", bad), false
	}
	s.maybeCollectSessions()
	label := name
	async := strings.HasPrefix(name, "Async.")
	if async {
		name = strings.TrimPrefix(name, "Async.")
	}
	m, ok := s.lookup(name)
	if !ok && !async {
		if canon, found := s.alternative(name); found {
			name = canon
			m, ok = s.lookup(name)
		}
	}
	if !ok {
		if len(params) > 0 {
			if ref, isStr := params[0].(string); isStr && !s.SessionValid(ref) {
				return nil, NewFault("SESSION_INVALID", ref), false
			}
		}
		return nil, NewFault("MESSAGE_METHOD_UNKNOWN", name), false
	}
	args := params
	session := ""
	if !m.NoSession {
		if len(params) == 0 {
			return nil, countMismatch(name, m, -1), false
		}
		args = params[1:]
	}
	if len(args) < m.Params-m.Defaults || (m.Defaults == 0 && len(args) != m.Params) {
		return nil, countMismatch(name, m, len(args)), false
	}
	if len(args) > m.Params {
		args = args[:m.Params] // trailing params beyond the defaulted ones are ignored
	}
	if !m.NoSession {
		ref, isStr := params[0].(string)
		if !isStr {
			return nil, NewFault("SESSION_INVALID", fmt.Sprint(params[0])), false
		}
		rec, f := s.checkSession(ctx, ref)
		if f != nil {
			return nil, f, false
		}
		if f := s.checkPermission(name, rec); f != nil {
			return nil, f, false
		}
		session = ref
	}
	if async && !m.Async {
		return nil, NewFault("Fault", "No async mode for this operation (rpc: "+name+")"), false
	}
	call := &Call{Ctx: ctx, Sim: s, Method: name, Session: session, Args: args}
	if async {
		ref := s.startAsync(call, m, label)
		return ref, nil, false
	}
	if m.Async {
		// XAPI runs sync calls of async-capable methods in a DB task too,
		// destroyed at the end of the call.
		s.runTransient(call, label)
	}
	res, err := s.invoke(call, m)
	if call.Task != "" {
		s.endTask(call.Task)
	}
	if err != nil {
		return nil, asFault(err), false
	}
	return res, nil, name == "system.listMethods"
}

// invoke runs the handler, turning a panic into INTERNAL_ERROR so that one
// bad handler cannot take the server down.
func (s *Simulator) invoke(c *Call, m Method) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = internalError(fmt.Errorf("%s: panic: %v", c.Method, r))
		}
	}()
	if m.Handler == nil {
		return nil, internalError(fmt.Errorf("%s: no handler", c.Method))
	}
	if f := s.hooks.before(c.Ctx, c.Method); f != nil {
		return nil, f
	}
	return m.Handler(c)
}

func countMismatch(name string, m Method, received int) *Fault {
	return NewFault("MESSAGE_PARAMETER_COUNT_MISMATCH", name,
		strconv.Itoa(m.Params-m.Defaults), strconv.Itoa(received))
}

// alternative resolves the "Class_method" spelling of a sync call.
func (s *Simulator) alternative(name string) (string, bool) {
	if strings.Contains(name, ".") {
		return "", false
	}
	for i := 0; i < len(name); i++ {
		if name[i] != '_' {
			continue
		}
		canon := name[:i] + "." + name[i+1:]
		if _, ok := s.lookup(canon); ok {
			return canon, true
		}
	}
	return "", false
}

// Call runs method as a client call would, without HTTP: params include
// the session ref (if the method takes one). It is meant for tests and for
// data-plane handlers.
func (s *Simulator) Call(ctx context.Context, method string, params ...any) (any, error) {
	res, f, _ := s.dispatch(ctx, method, params)
	if f != nil {
		return nil, f
	}
	return materialize(res), nil
}

func (s *Simulator) registerSystem() {
	s.Register("system.listMethods", Method{NoSession: true, Handler: func(c *Call) (any, error) {
		return c.Sim.Methods(), nil
	}})
}

package xapisim

import "sync"

// Simulator is an in-process XAPI pool: an object registry, the dispatch
// table of XAPI methods, sessions, tasks and events, served over HTTP by
// Simulator.ServeHTTP.
type Simulator struct {
	// DB holds every object of the pool.
	DB *Registry

	mu      sync.RWMutex
	methods map[string]Method
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

// lookup returns the method called name.
func (s *Simulator) lookup(name string) (Method, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.methods[name]
	return m, ok
}

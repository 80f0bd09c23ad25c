package xo

import "slices"

// TransformClass transforms every cached record of class once, as a
// load or a change does, and returns how many objects it built. For
// benchmarks.
func (p *Pool) TransformClass(class string) int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	n := 0
	c := tctx{s: &p.st, memo: &memo{}}
	for r, rec := range p.st.recs {
		if rec.class != class {
			continue
		}
		c.self = r
		if c.transform(class, rec.fields) != nil {
			n++
		}
		c.finish()
	}
	return n
}

// BuildAll transforms every cached record, as listing every kind after a
// cold load does, and returns how many it built. For benchmarks.
func (p *Pool) BuildAll() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(build(&p.st, p.allKinds(), nil))
}

// CachedClasses lists the classes a Pool loads.
func CachedClasses() []string { return cachedClasses() }

// Indexed reports whether the dependency index of the last load is built.
func (p *Pool) Indexed() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.indexed
}

// Built returns the kinds whose objects are built, sorted.
func (p *Pool) Built() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []string
	for c, ok := range p.built {
		if ok {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// KindMismatches returns, for every cached record whose object's kind
// differs from the kind recordKind predicts, "<ref>: <predicted> != <kind>".
func (p *Pool) KindMismatches() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st.indexUUIDs()
	var out []string
	for r, rec := range p.st.recs {
		c := tctx{s: &p.st, self: r}
		predicted := c.recordKind(rec.class, rec.fields)
		obj := c.transform(rec.class, rec.fields)
		if obj == nil {
			continue
		}
		if k := kindOf(rec.class, obj); k != predicted {
			out = append(out, string(r)+": "+predicted+" != "+k)
		}
	}
	return out
}

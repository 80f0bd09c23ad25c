package xo_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapisim"
)

// BenchmarkColdLoad compares a cold load of the Large model (10,000 VMs,
// every cached class, all objects built) with the bare
// VM.get_all_records that a cache-less gateway would need at least.
func BenchmarkColdLoad(b *testing.B) {
	srv := xapisim.NewServer(b, xapisim.Large())
	c := newClient(b, srv)
	if err := c.Login(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Run("bare-VM.get_all_records", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			recs, err := c.GetAllRecords(b.Context(), "VM")
			if err != nil {
				b.Fatal(err)
			}
			if len(recs) < 10000 {
				b.Fatalf("%d VMs", len(recs))
			}
		}
	})
	// The same classes the cache loads, fetched one after the other and
	// not transformed: what any gateway building complete VM objects
	// (links, metrics, $container) must fetch.
	b.Run("bare-all-classes", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			for _, class := range xo.CachedClasses() {
				if _, err := c.GetAllRecords(b.Context(), class); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	// What a cold GET /vms needs (the VMs are built, no other kind), and
	// what listing every kind costs on top.
	for _, tc := range []struct {
		name  string
		kinds []string
	}{
		{"xo.Pool/VMs", []string{"VM"}},
		{"xo.Pool/every-kind", xo.Kinds()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			defer reportCPU(b)()
			for b.Loop() {
				p := xo.NewPool(c, xo.PoolOptions{})
				if err := p.Fresh(b.Context()); err != nil {
					b.Fatal(err)
				}
				for _, kind := range tc.kinds {
					p.Objects(kind)
				}
				if n := len(p.Objects("VM")); n != 10000 {
					b.Fatalf("%d VMs", n)
				}
				p.Close()
			}
		})
	}
}

// BenchmarkWarmFresh measures the cost of Fresh on a loaded cache with
// nothing to apply (one event.from round trip; the simulator scans its
// whole database for changes, so Large costs more on its side).
func BenchmarkWarmFresh(b *testing.B) {
	for _, m := range []struct {
		name  string
		model xapisim.Model
	}{{"Default", xapisim.Default()}, {"Large", xapisim.Large()}} {
		b.Run(m.name, func(b *testing.B) {
			_, p := newPool(b, m.model)
			// The first catch-up after a load applies the load's own
			// event.inject and builds the dependency index: not warm yet.
			if err := p.Fresh(b.Context()); err != nil {
				b.Fatal(err)
			}
			defer reportCPU(b)()
			for b.Loop() {
				if err := p.Fresh(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTransform measures building objects from cached records:
// per VM, and for the whole Large pool (what a cold load adds to the
// fetching).
func BenchmarkTransform(b *testing.B) {
	_, p := newPool(b, xapisim.Large())
	b.Run("VM", func(b *testing.B) {
		n := 0
		start := cpuTime()
		for b.Loop() {
			n = p.TransformClass("VM")
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/VM")
		b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(b.N*n), "cpu-ns/VM")
	})
	b.Run("all", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			p.BuildAll()
		}
	})
}

// reportCPU reports the process CPU time (user+system) per op: on a
// shared machine it is steadier than wall time. The simulator runs in
// the process, so its work counts for both sides of a comparison.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric((cpuTime()-start).Seconds()/float64(b.N), "cpu-s/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

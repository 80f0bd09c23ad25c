package filter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// benchVMCount is the size of a large pool's VM collection.
const benchVMCount = 10000

// benchFilters are typical ?filter= values; each benchmark iteration matches
// one of them against every VM.
var benchFilters = []struct{ name, filter string }{
	{"property", "power_state:Running"},
	{"bare-word", "mra"},
	{"tags-and-state", "tags:prod !power_state:Halted CPUs:number:>2"},
	{"glob", "name_label:web*01"},
	{"regexp-prefix", "name_label:/^VM-001/i"},
	{"regexp", "name_label:/^vm-0*1[0-9]+-db$/i"},
	{"number-or-string", "CPUs:max:4"},
	{"truthy-comparison", "auto_poweron? memory:size:>4e9 snapshots:length:>=2"},
	{"or-not", `|(power_state:Paused tags:"xo:no-bak") !name_label:test`},
	{"deep-miss", "nonexistent_value_xyz"},
	{"make-bench", "power_state:Running !name_label:/^vm1/ CPUs:number:>=1"}, // the rest section of `make bench`
}

// benchVMs builds deterministic VM objects shaped like XO's (reference §B.1),
// as decoded JSON values.
func benchVMs(n int) []any {
	rng := rand.New(rand.NewPCG(42, 7))
	uuid := func() string {
		return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xffff,
			rng.Uint32()&0xffff, rng.Uint64()&0xffffffffffff)
	}
	uuids := func(k int) []any {
		out := make([]any, k)
		for i := range out {
			out[i] = uuid()
		}
		return out
	}
	pool := uuid()
	hosts := uuids(8)
	roles := []string{"web", "db", "cache", "worker", "proxy", "test", "ci", "mail"}
	states := []string{"Running", "Running", "Running", "Halted", "Halted", "Paused", "Suspended"}
	allTags := []string{"prod", "dev", "staging", "xo:no-bak", "backup-daily", "web", "db", "team-a", "team-b"}
	oses := []string{"Debian GNU/Linux 12 (bookworm)", "Ubuntu 22.04.4 LTS", "Windows Server 2022", "Rocky Linux 9.3", "Alpine Linux v3.19"}
	vms := make([]any, n)
	for i := range vms {
		id := uuid()
		state := states[rng.IntN(len(states))]
		running := state == "Running" || state == "Paused"
		cpus := float64(int(1) << rng.IntN(4))
		mem := float64(int64(1+rng.IntN(16)) << 30)
		tags := []any{}
		for _, t := range allTags {
			if rng.IntN(4) == 0 {
				tags = append(tags, t)
			}
		}
		name := fmt.Sprintf("vm-%05d-%s", i, roles[rng.IntN(len(roles))])
		if i == 4242 {
			name = "MRA XOA"
		}
		vm := map[string]any{
			"type":             "VM",
			"id":               id,
			"uuid":             id,
			"$pool":            pool,
			"$poolId":          pool,
			"_xapiRef":         fmt.Sprintf("OpaqueRef:%s", uuid()),
			"name_label":       name,
			"name_description": fmt.Sprintf("%s server for project %d, created from template", roles[rng.IntN(len(roles))], rng.IntN(100)),
			"power_state":      state,
			"tags":             tags,
			"snapshots":        uuids(rng.IntN(4)),
			"auto_poweron":     rng.IntN(3) == 0,
			"CPUs":             map[string]any{"max": cpus * 2, "number": cpus},
			"memory": map[string]any{
				"dynamic": []any{mem, mem},
				"static":  []any{float64(1 << 30), mem * 2},
				"size":    mem,
			},
			"boot":                map[string]any{"order": "cd", "firmware": []string{"bios", "uefi"}[rng.IntN(2)]},
			"bios_strings":        map[string]any{"bios-vendor": "Xen", "bios-version": "", "system-manufacturer": "Xen", "system-product-name": "HVM domU", "system-version": "", "system-serial-number": "", "hp-rombios": "", "oem-1": "Xen", "oem-2": "MS_VM_CERT/SHA1/bdbeb6e0a816d43fa6d3fe8aaef04c2bad9d3e3d"},
			"blockedOperations":   map[string]any{},
			"creation":            map[string]any{"date": "2024-12-18T15:08:43.142Z", "template": uuid(), "user": uuid()},
			"current_operations":  map[string]any{},
			"expNestedHvm":        false,
			"viridian":            rng.IntN(2) == 0,
			"high_availability":   "",
			"isFirmwareSupported": true,
			"installTime":         float64(1700000000 + rng.IntN(30000000)),
			"needsVtpm":           false,
			"other":               map[string]any{"base_template_name": "Debian Bookworm 12", "import_task": "OpaqueRef:NULL", "mac_seed": uuid(), "install-methods": "cdrom,nfs,http,ftp", "linux_template": "true"},
			"os_version":          nil,
			"parent":              uuid(),
			"hasVendorDevice":     false,
			"startDelay":          0.0,
			"startTime":           nil,
			"secureBoot":          false,
			"VIFs":                uuids(1 + rng.IntN(2)),
			"VTPMs":               []any{},
			"virtualizationMode":  "hvm",
			"xenTools":            false,
			"$container":          hosts[rng.IntN(len(hosts))],
			"$VBDs":               uuids(1 + rng.IntN(3)),
			"VGPUs":               []any{},
			"$VGPUs":              []any{},
			"xenStoreData":        map[string]any{"vm-data/mmio-hole-size": "268435456"},
			"vga":                 "std",
			"videoram":            8.0,
			"attachedPcis":        []any{},
			"addresses":           map[string]any{},
			"href":                "/rest/v0/vms/" + id,
		}
		if running {
			ip := fmt.Sprintf("10.%d.%d.%d", rng.IntN(256), rng.IntN(256), 1+rng.IntN(254))
			vm["startTime"] = float64(1730000000 + rng.IntN(1000000))
			vm["addresses"] = map[string]any{"0/ipv4/0": ip, "0/ipv6/0": fmt.Sprintf("fe80::%x", rng.Uint32())}
			vm["mainIpAddress"] = ip
			vm["os_version"] = map[string]any{"name": oses[rng.IntN(len(oses))], "uname": "6.1.0-18-amd64", "distro": "debian", "major": "12", "minor": "5"}
			vm["xenTools"] = map[string]any{"major": 8.0, "minor": 4.0, "version": 8.4}
			vm["memory"].(map[string]any)["usage"] = mem / 2
		}
		vms[i] = vm
	}
	return vms
}

// timePasses returns the mean wall-clock and CPU time of countMatches over
// at least min, as bench.js measures node.
func timePasses(n Node, objects []any, min time.Duration) (wall, cpu float64) {
	for range 5 { // warm up, as bench.js does
		countMatches(n, objects)
	}
	runtime.GC()
	passes := 0
	start, startCPU := time.Now(), processCPUTime()
	for time.Since(start) < min {
		countMatches(n, objects)
		passes++
	}
	wall = float64(time.Since(start).Nanoseconds()) / float64(passes)
	cpu = float64((processCPUTime() - startCPU).Nanoseconds()) / float64(passes)
	return wall, cpu
}

func countMatches(n Node, objects []any) int {
	count := 0
	for _, o := range objects {
		if n.Match(o) {
			count++
		}
	}
	return count
}

// BenchmarkMatch matches each filter of benchFilters against 10,000 VM
// objects per iteration: ns/op is the time for one ?filter= over a large
// pool.
func BenchmarkMatch(b *testing.B) {
	vms := benchVMs(benchVMCount)
	for _, bf := range benchFilters {
		n, err := Parse(bf.filter)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bf.name, func(b *testing.B) {
			b.ReportAllocs()
			matches := 0
			for b.Loop() {
				matches = countMatches(n, vms)
			}
			b.ReportMetric(float64(matches), "matches")
		})
	}
}

// BenchmarkParse parses the complex-matcher fixture pattern.
func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(fixturePattern); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMatchNode runs the same filters over the same VMs with the npm
// complex-matcher in node (testdata/bench.js) and reports node's time for
// one pass over the 10,000 VMs as its ns/op. Right after node, it times the
// Go matcher the same way (go-ns/op) and reports node/go, the speed-up of Go
// over node (above 1: Go is faster). Both sides also report the CPU time
// their process used per pass (node-cpu-ns/op, go-cpu-ns/op, node/go-cpu),
// which a busy machine distorts less than wall-clock time. It checks that
// both count the same matches.
func BenchmarkMatchNode(b *testing.B) {
	node, modules := nodePeer(b)
	vms := benchVMs(benchVMCount)
	objects, err := json.Marshal(vms)
	if err != nil {
		b.Fatal(err)
	}
	for _, bf := range benchFilters {
		n, err := Parse(bf.filter)
		if err != nil {
			b.Fatal(err)
		}
		want := countMatches(n, vms)
		b.Run(bf.name, func(b *testing.B) {
			// node measures for at least a second, so this function runs
			// once (b.N == 1).
			var in bytes.Buffer
			fmt.Fprintf(&in, `{"filter":%q,"minMillis":1000,"objects":%s}`, bf.filter, objects)
			cmd := exec.Command(node, filepath.Join("testdata", "bench.js"))
			cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
			cmd.Stdin = &in
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				b.Fatalf("node: %v\n%s", err, stderr.String())
			}
			var res struct {
				NsPerPass    float64 `json:"nsPerPass"`
				CPUNsPerPass float64 `json:"cpuNsPerPass"`
				Matches      int     `json:"matches"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				b.Fatal(err)
			}
			if res.Matches != want {
				b.Fatalf("%q: node matches %d VMs, Go %d", bf.filter, res.Matches, want)
			}
			goNs, goCPU := timePasses(n, vms, time.Second)
			b.ReportMetric(res.NsPerPass, "ns/op")
			b.ReportMetric(goNs, "go-ns/op")
			b.ReportMetric(res.NsPerPass/goNs, "node/go")
			b.ReportMetric(res.CPUNsPerPass, "node-cpu-ns/op")
			b.ReportMetric(goCPU, "go-cpu-ns/op")
			if goCPU > 0 {
				b.ReportMetric(res.CPUNsPerPass/goCPU, "node/go-cpu")
			}
			b.ReportMetric(float64(res.Matches), "matches")
		})
	}
}

package xapisim

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Model describes the inventory of a simulated pool: how many objects of
// each kind New creates. Object names are predictable (pool0, host0, vm0,
// sr0, network0, ...) and refs and UUIDs are a deterministic function of
// Seed and the model, so two simulators built from the same Model hold
// identical objects.
//
// The zero value is a pool with one host (and its control domain) and
// nothing else; start from Default or Large and change fields.
type Model struct {
	// PoolName is the pool's name_label. Default "pool0".
	PoolName string
	// Hosts is the number of hosts, named host0, host1, ...; host0 is the
	// pool master. At least one host is always created. Default 2.
	Hosts int
	// VMs is the number of guest VMs, named vm0, vm1, ... Their power
	// states cycle through Running, Halted, Running, Suspended, Paused,
	// Halted (so vm0 runs, vm1 is halted, vm3 suspended, vm4 paused).
	// Each has a disk (VBD "0" + VDI of DiskSize on sr0, or without
	// shared SRs on the local SR of host i%Hosts, where it runs), an
	// empty CD drive (VBD "3") and a VIF on network0. Default 6;
	// xapisim flag --vms.
	VMs int
	// Templates is the number of custom (non-default) templates, named
	// template0, ..., each with one disk. Default 1.
	Templates int
	// DefaultTemplates is the number of built-in default templates
	// (is_default_template, other_config.default_template="true"), with
	// names such as "Debian Bookworm 12". Default 3, at most 5.
	DefaultTemplates int
	// SharedSRs is the number of shared NFS SRs, named sr0, ...; sr0 is the
	// pool's default SR. Default 1.
	SharedSRs int
	// LocalSRs adds one local "ext" SR per host, named "host0 local
	// storage", .... Without shared SRs the first one is the default SR.
	// Default true.
	LocalSRs bool
	// ISOSR adds a shared ISO library SR "iso0" holding one ISO VDI, and
	// the "XCP-ng Tools" SR with the guest-tools ISO. Default true.
	ISOSR bool
	// Networks is the number of networks, named network0, ..., each with a
	// physical PIF eth<i> on every host; network0 carries the management
	// PIFs (static IPs 192.168.0.10+i). Default 2.
	Networks int
	// Snapshots is the number of snapshots taken of each guest VM (snapshot
	// names "<vm> snapshot <n>"), with their disk snapshots. Default 1.
	Snapshots int
	// DiskSize is the virtual size in bytes of each guest's first disk.
	// Default 10 GiB; xapisim flag --disk-size.
	DiskSize int64
	// Messages is the number of messages the inventory starts with (host
	// alarms, VM events, pool notices). VM operations add XAPI's lifecycle
	// messages (VM_STARTED, VM_SHUTDOWN, ...) as they run. Default 3.
	Messages int
	// GPUs adds one GPU PCI device, its PGPU, and a pool-wide GPU_group per
	// host. Default true.
	GPUs bool
	// User and Password are the credentials that session.login_with_password
	// accepts. Default "root" / "password"; xapisim flags --user and
	// --password.
	User, Password string
	// Seed makes refs and UUIDs deterministic. Default "xapisim".
	Seed string
	// OpDelay is how long each VM, VDI, VBD and VIF operation stays in
	// current_operations before it takes effect, so clients can observe
	// it. It is kept in pool.other_config["xapisim:operation_delay"] (a
	// Go duration), where clients may change it at run time. Default 0.
	OpDelay time.Duration
}

// Default returns the model of a small realistic pool: 1 pool, 2 hosts, a
// shared NFS SR plus a local SR per host, an ISO library and the tools SR,
// 2 networks with PIFs, 3 default templates and 1 custom template, 6 guest
// VMs in every power state with disks, CD drives and VIFs, one snapshot per
// VM, 3 messages, and a GPU per host.
func Default() Model {
	return Model{
		PoolName:         "pool0",
		Hosts:            2,
		VMs:              6,
		Templates:        1,
		DefaultTemplates: 3,
		SharedSRs:        1,
		LocalSRs:         true,
		ISOSR:            true,
		Networks:         2,
		Snapshots:        1,
		DiskSize:         10 << 30,
		Messages:         3,
		GPUs:             true,
		User:             "root",
		Password:         "password",
		Seed:             "xapisim",
	}
}

// LocalStorage returns Default without shared storage, the common
// XCP-ng setup with local disks only: every guest's disks are on the local
// SR of host i%2 where it runs, so vm1 (halted) has its disk and snapshot
// on "host1 local storage", which only host1, a pool member, can read and
// write, and the default SR is the master's local SR. Serve host1 with
// Simulator.StartHost to have the master's data-plane handlers redirect
// to it as XAPI does.
func LocalStorage() Model {
	m := Default()
	m.SharedSRs = 0
	return m
}

// Large returns Default scaled up for benchmarks: 4 hosts and 10,000 guest
// VMs, without snapshots.
func Large() Model {
	m := Default()
	m.Hosts = 4
	m.VMs = 10000
	m.Snapshots = 0
	m.Messages = 100
	return m
}

// baseTime is the fixed "now" of a freshly built inventory (install and
// boot times), so that two builds are identical.
var baseTime = time.Date(2024, 1, 15, 8, 0, 0, 0, time.UTC)

// poolState holds the refs of the singleton objects that populate needs
// while it builds the graph.
type poolState struct {
	m         Model
	pool      string
	hosts     []string
	defaultSR string
	sharedSR  string   // first shared disk SR, "" if none
	localSRs  []string // per host
	isoVDI    string
	networks  []string
	gpuGroup  string
	domids    map[string]int64 // last domid used per host
}

// populate creates the model's object graph in tx, keeping every reverse
// reference consistent.
func (m Model) populate(tx *Tx) {
	if m.Hosts < 1 {
		m.Hosts = 1
	}
	if m.PoolName == "" {
		m.PoolName = "pool0"
	}
	if m.DiskSize <= 0 {
		m.DiskSize = 10 << 30
	}
	p := &poolState{m: m}
	p.pool = newObject(tx, "pool", Record{"name_label": m.PoolName})
	for i := range m.Hosts {
		p.hosts = append(p.hosts, p.createHost(tx, i))
	}
	p.createStorage(tx)
	p.createNetworks(tx)
	if m.GPUs {
		p.createGPUs(tx)
	}
	p.finishPool(tx)
	for i := range min(m.DefaultTemplates, len(defaultTemplates)) {
		p.createDefaultTemplate(tx, i)
	}
	for i := range m.Templates {
		p.createGuest(tx, fmt.Sprintf("template%d", i), i, "Halted", true)
	}
	for i := range m.VMs {
		states := [...]string{"Running", "Halted", "Running", "Suspended", "Paused", "Halted"}
		vm := p.createGuest(tx, fmt.Sprintf("vm%d", i), i, states[i%len(states)], false)
		for n := range m.Snapshots {
			name := fmt.Sprintf("vm%d snapshot %d", i, n)
			snapshotVM(tx, vm, name, "snapshot", nil, baseTime.Add(time.Duration(n+1)*time.Hour))
		}
	}
	p.createMessages(tx)
	if m.OpDelay > 0 {
		oc := maps.Clone(strMap(tx.Modify(p.pool), "other_config"))
		oc[operationDelayKey] = m.OpDelay.String()
		tx.Modify(p.pool)["other_config"] = oc
	}
	for _, ref := range tx.All("SR") {
		updateSRUsage(tx, ref)
	}
	for _, ref := range tx.All("VM") {
		updateVMAllowedOperations(tx, ref)
	}
	for _, ref := range tx.All("VDI") {
		updateVDIAllowedOperations(tx, ref)
	}
	for _, ref := range tx.All("VBD") {
		updateVBDAllowedOperations(tx, ref)
	}
	for _, ref := range tx.All("VIF") {
		updateVIFAllowedOperations(tx, ref)
	}
	for _, ref := range tx.All("host") {
		updateHostAllowedOperations(tx, ref)
	}
	for _, ref := range tx.All("SR") {
		updateSRAllowedOperations(tx, ref)
	}
}

// relation is a forward reference field whose reverse set XAPI's database
// maintains. Weak relations may dangle after the target is destroyed
// (snapshot_of and parent keep pointing at a destroyed VM, as in XAPI).
type relation struct {
	class, field, target, reverse string
	weak                          bool
}

// relations lists every forward/reverse pair the simulator maintains. It is
// never modified.
var relations = []relation{
	{class: "VBD", field: "VM", target: "VM", reverse: "VBDs"},
	{class: "VBD", field: "VDI", target: "VDI", reverse: "VBDs"},
	{class: "VIF", field: "VM", target: "VM", reverse: "VIFs"},
	{class: "VIF", field: "network", target: "network", reverse: "VIFs"},
	{class: "VDI", field: "SR", target: "SR", reverse: "VDIs"},
	{class: "VDI", field: "snapshot_of", target: "VDI", reverse: "snapshots", weak: true},
	{class: "PBD", field: "SR", target: "SR", reverse: "PBDs"},
	{class: "PBD", field: "host", target: "host", reverse: "PBDs"},
	{class: "PIF", field: "host", target: "host", reverse: "PIFs"},
	{class: "PIF", field: "network", target: "network", reverse: "PIFs"},
	{class: "VM", field: "resident_on", target: "host", reverse: "resident_VMs"},
	{class: "VM", field: "snapshot_of", target: "VM", reverse: "snapshots", weak: true},
	{class: "VM", field: "parent", target: "VM", reverse: "children", weak: true},
	{class: "PCI", field: "host", target: "host", reverse: "PCIs"},
	{class: "PGPU", field: "host", target: "host", reverse: "PGPUs"},
	{class: "PGPU", field: "GPU_group", target: "GPU_group", reverse: "PGPUs"},
	{class: "console", field: "VM", target: "VM", reverse: "consoles"},
	{class: "VTPM", field: "VM", target: "VM", reverse: "VTPMs"},
	{class: "VLAN", field: "tagged_PIF", target: "PIF", reverse: "VLAN_slave_of"},
	{class: "Bond", field: "master", target: "PIF", reverse: "bond_master_of"},
	{class: "PIF", field: "bond_slave_of", target: "Bond", reverse: "slaves"},
}

// isRef reports whether ref names an object (not "", NULL or a Ref:n id).
func isRef(ref string) bool {
	return ref != "" && ref != NullRef && len(ref) > 10 && ref[:10] == "OpaqueRef:"
}

// newObject creates an object of class from the class defaults overlaid
// with fields, adds it to the reverse sets of the objects it refers to, and
// returns its ref.
func newObject(tx *Tx, class string, fields Record) string {
	rec := NewRecord(class)
	for k, v := range fields {
		rec[k] = v
	}
	ref := tx.Create(class, rec)
	for _, r := range relations {
		if r.class != class {
			continue
		}
		if t, _ := rec[r.field].(string); isRef(t) {
			if _, tr, ok := tx.Get(t); ok {
				// A fresh ref cannot be in the set yet.
				set, _ := tr[r.reverse].([]string)
				tx.Modify(t)[r.reverse] = append(set, ref)
			}
		}
	}
	return ref
}

// deleteObject removes ref and takes it out of the reverse sets of the
// objects it refers to. Objects that refer to ref are the caller's business.
func deleteObject(tx *Tx, ref string) {
	class, rec, ok := tx.Get(ref)
	if !ok {
		return
	}
	for _, r := range relations {
		if r.class != class {
			continue
		}
		if t, _ := rec[r.field].(string); isRef(t) {
			removeFromSet(tx, t, r.reverse, ref)
		}
	}
	tx.Delete(ref)
}

// setRef changes the forward reference field of ref to target and moves ref
// between the reverse sets of the old and new targets.
func setRef(tx *Tx, ref, field, target string) {
	class, rec, ok := tx.Get(ref)
	if !ok {
		return
	}
	old, _ := rec[field].(string)
	if old == target {
		return
	}
	tx.Modify(ref)[field] = target
	for _, r := range relations {
		if r.class != class || r.field != field {
			continue
		}
		if isRef(old) {
			removeFromSet(tx, old, r.reverse, ref)
		}
		if isRef(target) {
			addToSet(tx, target, r.reverse, ref)
		}
	}
	if class == "VM" && field == "resident_on" {
		// A host's allowed operations depend on its resident guests.
		updateHostAllowedOperations(tx, old)
		updateHostAllowedOperations(tx, target)
	}
}

// addToSet appends v to the set field of ref unless it is already there.
func addToSet(tx *Tx, ref, field, v string) {
	_, rec, ok := tx.Get(ref)
	if !ok {
		return
	}
	set, _ := rec[field].([]string)
	if slices.Contains(set, v) {
		return
	}
	// Appending in place is safe: records leave the registry only as
	// copies or encoded under its lock.
	tx.Modify(ref)[field] = append(set, v)
}

// removeFromSet removes v from the set field of ref.
func removeFromSet(tx *Tx, ref, field, v string) {
	_, rec, ok := tx.Get(ref)
	if !ok {
		return
	}
	set, _ := rec[field].([]string)
	if !slices.Contains(set, v) {
		return
	}
	out := make([]string, 0, len(set))
	for _, e := range set {
		if e != v {
			out = append(out, e)
		}
	}
	tx.Modify(ref)[field] = out
}

// setField sets one field of ref, marking it modified only if the value
// changes (comparable values only; maps and sets are always written).
func setField(tx *Tx, ref, field string, v any) {
	_, rec, ok := tx.Get(ref)
	if !ok {
		return
	}
	switch old := rec[field].(type) {
	case string, int64, bool, float64:
		if old == v {
			return
		}
	}
	tx.Modify(ref)[field] = v
}

// str returns a string field of rec.
func str(rec Record, field string) string {
	s, _ := rec[field].(string)
	return s
}

// strMap returns a (string -> string) map field of rec (never nil).
func strMap(rec Record, field string) map[string]string {
	m, _ := rec[field].(map[string]string)
	if m == nil {
		return map[string]string{}
	}
	return m
}

// strSet returns a set field of rec.
func strSet(rec Record, field string) []string {
	s, _ := rec[field].([]string)
	return s
}

// mac returns a deterministic locally administered MAC address for n.
func mac(prefix byte, n int) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", 0x02, prefix, byte(n>>16), byte(n>>8), byte(n), 0x01)
}

// epochString renders t as XAPI's float-seconds other_config timestamps.
func epochString(t time.Time) string {
	return fmt.Sprintf("%d.", t.Unix())
}

// allowedOperations returns, in order, the candidate operations that
// allowed accepts: allowed_operations computed from the same checker that
// produces the operations' errors.
func allowedOperations(candidates []string, allowed func(op string) bool) []string {
	ops := []string{}
	for _, op := range candidates {
		if allowed(op) {
			ops = append(ops, op)
		}
	}
	return ops
}

// setAllowedOperations stores ops as the allowed_operations of ref (whose
// record is rec), touching the object, and so emitting a mod event, only
// when they changed.
func setAllowedOperations(tx *Tx, ref string, rec Record, ops []string) {
	if !slices.Equal(ops, strSet(rec, "allowed_operations")) {
		tx.Modify(ref)["allowed_operations"] = ops
	}
}

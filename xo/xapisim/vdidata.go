package xapisim

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// VDI contents.
//
// Every VDI has contents, kept in a sparse temporary file that is unlinked
// as soon as it is made (closed by Close, and freed by the system at exit
// in any case), so a 10 GiB disk costs the few MiB it holds. Files are made
// on first use:
//
//   - the disks, snapshots, suspend images and ISOs of the model get seeded
//     data: a few MiB of pseudo-random bytes, a function of the VDI's UUID
//     (snapshots of a model disk get the disk's data minus its last
//     writes), at a few offsets, the rest holes, so exports are
//     reproducible byte for byte;
//   - a snapshot or clone (is_a_snapshot + snapshot_of, or
//     sm_config["vhd-parent"]) gets a copy of its origin's contents, taken
//     before the origin is next written or destroyed;
//   - VDI.copy, VM.copy and VDI.pool_migrate copy the contents of their
//     source;
//   - any other VDI (VDI.create, imports) starts all zeros.
//
// VDI.destroy (and everything that deletes a VDI record) deletes the file.

// dataPlane is the per-simulator state of the data plane: VDI contents, the
// ova.xml id counter and the NBD server. It is the handler registered for
// the transfer paths.
type dataPlane struct {
	sim *Simulator

	mu       sync.Mutex
	disks    map[string]*vdiDisk // by VDI ref
	modelGen int64               // registry generation of the model's objects
	closed   bool
	nbd      *nbdServer

	endpoints map[string]hostEndpoint // started hosts by ref (redirect.go)

	nextID atomic.Int64 // ova.xml "Ref:N" ids, never reset (XAPI's make_id)
}

// vdiDisk is the contents of one VDI.
type vdiDisk struct {
	ref, uuid string
	f         *os.File
	path      string // file name, while the file is still linked
}

// dataPlane returns the simulator's data plane, registering the transfer
// handlers, VDI.get_nbd_info and the content-keeping wrappers of the VDI
// and VM copy and destroy calls on first use. The transfer paths are
// registered without a method (so that a test's "GET /export/" hook stays
// more specific and wins) and also with a trailing slash, which XAPI's
// prefix matching accepts (XO uses /export/ and /import/).
func (s *Simulator) dataPlane() *dataPlane {
	s.mu.Lock()
	if dp := s.data; dp != nil {
		s.mu.Unlock()
		return dp
	}
	dp := &dataPlane{sim: s, disks: map[string]*vdiDisk{}, modelGen: -1}
	s.data = dp
	for _, p := range []string{"/export", "/import", "/export_raw_vdi", "/import_raw_vdi"} {
		s.mux.Handle(p, dp)
		s.mux.Handle(p+"/", dp)
		s.handlers += 2
	}
	s.mu.Unlock()
	dp.registerMethods()
	return dp
}

// registerDataPlane sets the data plane up when the simulator is built
// (one of the class registrars).
func registerDataPlane(s *Simulator) { s.dataPlane() }

// ServeHTTP routes the transfer paths: GET for exports, PUT for imports.
// Other methods get what XAPI gives them on any path (POST is an XML-RPC
// call, which fails to parse a transfer body).
func (dp *dataPlane) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := trimSlash(r.URL.Path)
	switch {
	case (path == "/export" || path == "/export_raw_vdi") && r.Method == http.MethodGet,
		(path == "/import" || path == "/import_raw_vdi") && r.Method == http.MethodPut:
		if dp.redirect(w, r, path) {
			return
		}
	}
	switch {
	case path == "/export" && r.Method == http.MethodGet:
		dp.serveExport(w, r)
	case path == "/import" && r.Method == http.MethodPut:
		dp.serveImport(w, r)
	case path == "/export_raw_vdi" && r.Method == http.MethodGet:
		dp.serveExportRaw(w, r)
	case path == "/import_raw_vdi" && r.Method == http.MethodPut:
		dp.serveImportRaw(w, r)
	default:
		other := r.Clone(r.Context())
		other.URL.Path = "/"
		dp.sim.ServeHTTP(w, other)
	}
}

func trimSlash(p string) string {
	for len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}

// Close stops the NBD server, if any, and deletes the files holding VDI
// contents. The simulator keeps answering RPCs; transfers fail afterwards.
func (s *Simulator) Close() error {
	s.mu.RLock()
	dp := s.data
	s.mu.RUnlock()
	if dp == nil {
		return nil
	}
	return dp.close()
}

func (dp *dataPlane) close() error {
	dp.mu.Lock()
	nbd := dp.nbd
	dp.nbd = nil
	dp.closed = true
	for _, d := range dp.disks {
		dp.drop(d)
	}
	dp.mu.Unlock()
	if nbd != nil {
		return nbd.close()
	}
	return nil
}

// errClosed reports use of VDI contents after Simulator.Close.
var errClosed = errors.New("xapisim: simulator closed")

// vdiInfo is what the content store needs of a VDI record.
type vdiInfo struct {
	ref, uuid  string
	size       int64
	origin     string // snapshot_of, or the VDI named by sm_config vhd-parent
	modelDisk  bool   // created with the model
	isSnapshot bool
	seedUUID   string // UUID whose seeded data the VDI holds
}

// lookupVDI reads the VDI record of ref (a ref or a UUID).
func (dp *dataPlane) lookupVDI(tx *Tx, ref string) (vdiInfo, bool) {
	rec, ok := tx.GetClass("VDI", ref)
	if !ok {
		if class, r, found := tx.ByUUID(ref); found && class == "VDI" {
			ref = r
			rec, ok = tx.GetClass("VDI", ref)
		}
	}
	if !ok {
		return vdiInfo{}, false
	}
	if dp.modelGen < 0 {
		dp.modelGen = 0
		if pools := tx.All("pool"); len(pools) > 0 {
			dp.modelGen = tx.r.objects[pools[0]].created
		}
	}
	info := vdiInfo{ref: ref, uuid: str(rec, "uuid"), seedUUID: str(rec, "uuid")}
	info.size, _ = rec["virtual_size"].(int64)
	info.isSnapshot, _ = rec["is_a_snapshot"].(bool)
	if o := tx.r.objects[ref]; o != nil {
		info.modelDisk = o.created == dp.modelGen
	}
	if so := str(rec, "snapshot_of"); info.isSnapshot && so != "" && so != NullRef {
		info.origin = so
	} else if p := strMap(rec, "sm_config")["vhd-parent"]; p != "" {
		if class, r, found := tx.ByUUID(p); found && class == "VDI" {
			info.origin = r
		} else {
			for _, d := range dp.disks {
				if d.uuid == p {
					info.origin = d.ref
				}
			}
		}
	}
	if info.modelDisk && info.isSnapshot {
		if orec, ok := tx.GetClass("VDI", info.origin); ok {
			info.seedUUID = str(orec, "uuid")
		}
	}
	return info, true
}

// open returns the contents of VDI ref (ref or UUID), making them on first
// use, and the VDI's virtual size. The file stays owned by the store.
func (dp *dataPlane) open(ref string) (*vdiDisk, int64, error) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	var info vdiInfo
	var ok bool
	dp.sim.DB.Read(func(tx *Tx) { info, ok = dp.lookupVDI(tx, ref) })
	if !ok {
		return nil, 0, HandleInvalid("VDI", ref)
	}
	d, err := dp.resolve(info, 0)
	if err != nil {
		return nil, 0, err
	}
	return d, info.size, nil
}

// openForWrite is open for a VDI about to be written: snapshots and clones
// of it that have no contents yet get theirs first.
func (dp *dataPlane) openForWrite(ref string) (*vdiDisk, int64, error) {
	d, size, err := dp.open(ref)
	if err != nil {
		return nil, 0, err
	}
	dp.mu.Lock()
	defer dp.mu.Unlock()
	if err := dp.pinLocked(map[string]bool{d.ref: true}); err != nil {
		return nil, 0, err
	}
	return d, size, nil
}

// resolve returns the contents of info's VDI, making them if needed.
// Callers hold dp.mu.
func (dp *dataPlane) resolve(info vdiInfo, depth int) (*vdiDisk, error) {
	if dp.closed {
		return nil, errClosed
	}
	if d := dp.disks[info.ref]; d != nil {
		if st, err := d.f.Stat(); err == nil && st.Size() < info.size {
			if err := d.f.Truncate(info.size); err != nil {
				return nil, fmt.Errorf("xapisim: grow VDI %s: %w", info.uuid, err)
			}
		}
		return d, nil
	}
	d, err := dp.newDisk(info)
	if err != nil {
		return nil, err
	}
	switch {
	case info.modelDisk:
		err = writeSeeded(d.f, info.seedUUID, info.size, !info.isSnapshot)
	case info.origin != "" && depth < 64:
		var src *vdiDisk
		if od := dp.disks[info.origin]; od != nil {
			src = od
		} else {
			var oi vdiInfo
			var ok bool
			dp.sim.DB.Read(func(tx *Tx) { oi, ok = dp.lookupVDI(tx, info.origin) })
			if ok {
				src, err = dp.resolve(oi, depth+1)
			}
		}
		if err == nil && src != nil {
			err = copySparse(d.f, src.f, info.size)
		}
	}
	if err == nil {
		err = d.f.Truncate(info.size)
	}
	if err != nil {
		dp.drop(d)
		return nil, fmt.Errorf("xapisim: contents of VDI %s: %w", info.uuid, err)
	}
	return d, nil
}

// newDisk creates the empty file of a VDI. The file is unlinked at once
// (where the system allows it), so that it takes no space once closed,
// even when the simulator is never closed or the process dies.
func (dp *dataPlane) newDisk(info vdiInfo) (*vdiDisk, error) {
	f, err := os.CreateTemp("", "xapisim-vdi-*.raw")
	if err != nil {
		return nil, fmt.Errorf("xapisim: VDI store: %w", err)
	}
	d := &vdiDisk{ref: info.ref, uuid: info.uuid, f: f}
	if os.Remove(f.Name()) != nil {
		d.path = f.Name() // removed by drop
	}
	dp.disks[info.ref] = d
	return d, nil
}

// drop deletes a VDI's contents.
func (dp *dataPlane) drop(d *vdiDisk) {
	delete(dp.disks, d.ref)
	_ = d.f.Close()
	if d.path != "" {
		_ = os.Remove(d.path)
	}
}

// pinLocked gives contents to every VDI that has none yet and derives from
// one of the VDIs in from (or from any VDI when from is nil), so that they
// keep the data their origin has now. Callers hold dp.mu.
func (dp *dataPlane) pinLocked(from map[string]bool) error {
	var todo []vdiInfo
	dp.sim.DB.Read(func(tx *Tx) {
		for ref, o := range tx.r.byClass["VDI"] {
			if dp.disks[ref] != nil || o.created == dp.modelGen {
				continue
			}
			info, ok := dp.lookupVDI(tx, ref)
			if !ok || info.modelDisk || info.origin == "" {
				continue
			}
			if from == nil || from[info.origin] {
				todo = append(todo, info)
			}
		}
	})
	for _, info := range todo {
		if _, err := dp.resolve(info, 0); err != nil {
			return err
		}
	}
	return nil
}

// reconcile deletes the contents of VDIs that no longer exist, after
// giving their unresolved snapshots and clones their data.
func (dp *dataPlane) reconcile() {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	gone := map[string]bool{}
	dp.sim.DB.Read(func(tx *Tx) {
		for ref := range dp.disks {
			if _, ok := tx.GetClass("VDI", ref); !ok {
				gone[ref] = true
			}
		}
	})
	if len(gone) == 0 {
		return
	}
	_ = dp.pinLocked(gone)
	for ref := range gone {
		dp.drop(dp.disks[ref])
	}
}

// link gives dst a copy of src's contents (VDI.copy and friends). src may
// be a VDI whose record is gone but whose contents are still kept (until
// the next reconcile).
func (dp *dataPlane) link(src, dst string) error {
	dp.mu.Lock()
	s := dp.disks[src]
	dp.mu.Unlock()
	if s == nil {
		var err error
		if s, _, err = dp.open(src); err != nil {
			return err
		}
	}
	dp.mu.Lock()
	defer dp.mu.Unlock()
	var info vdiInfo
	var ok bool
	dp.sim.DB.Read(func(tx *Tx) { info, ok = dp.lookupVDI(tx, dst) })
	if !ok {
		return HandleInvalid("VDI", dst)
	}
	if old := dp.disks[info.ref]; old != nil {
		dp.drop(old)
	}
	d, err := dp.newDisk(info)
	if err != nil {
		return err
	}
	if err := copySparse(d.f, s.f, info.size); err != nil {
		dp.drop(d)
		return err
	}
	return d.f.Truncate(info.size)
}

// ReadVDIAt reads len(p) bytes of the contents of VDI vdi (a ref or a
// UUID) at offset off, like io.ReaderAt; reads past the virtual size are
// short with io.EOF.
func (s *Simulator) ReadVDIAt(vdi string, p []byte, off int64) (int, error) {
	d, size, err := s.dataPlane().open(vdi)
	if err != nil {
		return 0, err
	}
	if off >= size {
		return 0, io.EOF
	}
	if rest := size - off; int64(len(p)) > rest {
		n, err := d.f.ReadAt(p[:rest], off)
		if err == nil {
			err = io.EOF
		}
		return n, err
	}
	return d.f.ReadAt(p, off)
}

// WriteVDIAt writes p into the contents of VDI vdi (a ref or a UUID) at
// offset off; writes past the virtual size fail with VDI_IO_ERROR.
func (s *Simulator) WriteVDIAt(vdi string, p []byte, off int64) (int, error) {
	d, size, err := s.dataPlane().openForWrite(vdi)
	if err != nil {
		return 0, err
	}
	if off < 0 || off+int64(len(p)) > size {
		return 0, NewFault("VDI_IO_ERROR", fmt.Sprintf("write of %d bytes at %d past the end of the disk (%d bytes)", len(p), off, size))
	}
	return d.f.WriteAt(p, off)
}

// VDIContent returns the contents of VDI vdi (a ref or a UUID) as a reader
// of its whole virtual size.
func (s *Simulator) VDIContent(vdi string) (*io.SectionReader, error) {
	d, size, err := s.dataPlane().open(vdi)
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(d.f, 0, size), nil
}

// registerMethods adds VDI.get_nbd_info and wraps the calls that copy or
// delete VDIs so that contents follow their records.
func (dp *dataPlane) registerMethods() {
	s := dp.sim
	s.Register("VDI.get_nbd_info", Method{Params: 1, Handler: dp.getNBDInfo})
	// Calls that make snapshots or clones (origin recorded in the new VDI),
	// or that delete VDIs: pin derived VDIs before, drop deleted ones after.
	for _, name := range []string{
		"VDI.snapshot", "VDI.clone", "VDI.destroy", "VDI.forget", "VDI.data_destroy",
		"VM.snapshot", "VM.checkpoint", "VM.snapshot_with_quiesce", "VM.clone", "VM.revert",
		"VM.destroy", "SR.destroy", "SR.forget",
	} {
		dp.wrap(name, nil)
	}
	// Copies, which do not record their origin.
	dp.wrap("VDI.copy", func(c *Call, res any) error {
		src, _ := c.String(0)
		dst, _ := res.(string)
		return dp.link(src, dst)
	})
	// VDI.pool_migrate deletes its source: keep the source's contents
	// (made before the call by wrap's pin) for the link.
	dp.wrap("VDI.pool_migrate", func(c *Call, res any) error {
		src, _ := c.String(0)
		dst, _ := res.(string)
		return dp.link(src, dst)
	})
	dp.wrapMoves("VM.migrate_send")
	dp.wrap("VM.copy", func(c *Call, res any) error {
		src, _ := c.String(0)
		dst, _ := res.(string)
		return dp.linkVMDisks(src, dst)
	})
}

// wrap replaces method name (if registered) with a version that pins
// derived VDIs before the call and, after a successful call, runs after
// and drops the contents of deleted VDIs.
func (dp *dataPlane) wrap(name string, after func(c *Call, res any) error) {
	m, ok := dp.sim.Method(name)
	if !ok || m.Handler == nil {
		return
	}
	inner := m.Handler
	m.Handler = func(c *Call) (any, error) {
		dp.mu.Lock()
		err := dp.pinLocked(nil)
		dp.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if after != nil {
			// The source of a copy gets its contents now, in case the
			// call deletes it.
			if src, serr := c.String(0); serr == nil {
				_, _, _ = dp.open(src)
			}
		}
		res, err := inner(c)
		if err == nil && after != nil {
			if lerr := after(c, res); lerr != nil && !errors.Is(lerr, errClosed) && dpFaultCode(lerr) != "HANDLE_INVALID" {
				err = lerr
			}
		}
		dp.reconcile()
		return res, err
	}
	dp.sim.Register(name, m)
}

// dpFaultCode returns the code of a *Fault error ("" otherwise).
func dpFaultCode(err error) string {
	var f *Fault
	if errors.As(err, &f) {
		return f.Code
	}
	return ""
}

// wrapMoves wraps a call that moves the disks of VM (its first argument)
// to new VDIs (storage migration): the contents follow each VBD from its
// old VDI to its new one.
func (dp *dataPlane) wrapMoves(name string) {
	m, ok := dp.sim.Method(name)
	if !ok || m.Handler == nil {
		return
	}
	inner := m.Handler
	disks := func(vm string) map[string]string {
		out := map[string]string{}
		dp.sim.DB.Read(func(tx *Tx) {
			rec, _ := tx.GetClass("VM", vm)
			for _, vbd := range strSet(rec, "VBDs") {
				br, _ := tx.GetClass("VBD", vbd)
				if vdi := str(br, "VDI"); isRef(vdi) {
					out[vbd] = vdi
				}
			}
		})
		return out
	}
	m.Handler = func(c *Call) (any, error) {
		vm, err := c.String(0)
		if err != nil {
			return inner(c)
		}
		before := disks(vm)
		for _, vdi := range before {
			_, _, _ = dp.open(vdi)
		}
		res, err := inner(c)
		if err == nil {
			for vbd, vdi := range disks(vm) {
				if old := before[vbd]; old != "" && old != vdi {
					if lerr := dp.link(old, vdi); lerr != nil && !errors.Is(lerr, errClosed) {
						err = lerr
					}
				}
			}
		}
		dp.reconcile()
		return res, err
	}
	dp.sim.Register(name, m)
}

// linkVMDisks copies the disk contents of VM src to the VM dst made from
// it by VM.copy, pairing their VBDs by userdevice.
func (dp *dataPlane) linkVMDisks(src, dst string) error {
	pairs := map[string]string{}
	dp.sim.DB.Read(func(tx *Tx) {
		byDevice := map[string]string{}
		srec, _ := tx.GetClass("VM", src)
		for _, vbd := range strSet(srec, "VBDs") {
			vr, _ := tx.GetClass("VBD", vbd)
			if isRef(str(vr, "VDI")) {
				byDevice[str(vr, "userdevice")] = str(vr, "VDI")
			}
		}
		drec, _ := tx.GetClass("VM", dst)
		for _, vbd := range strSet(drec, "VBDs") {
			vr, _ := tx.GetClass("VBD", vbd)
			if from := byDevice[str(vr, "userdevice")]; from != "" && isRef(str(vr, "VDI")) && str(vr, "VDI") != from {
				pairs[from] = str(vr, "VDI")
			}
		}
	})
	for from, to := range pairs {
		if err := dp.link(from, to); err != nil {
			return err
		}
	}
	return nil
}

// Seeded contents: regions of pseudo-random data, the rest holes.

// seededRegion is one run of seeded data.
type seededRegion struct{ off, n int64 }

// seededRegions lays out a disk's seeded data: the first MiB and a bit,
// 2 MiB a third of the way in, the last 1.5 MiB, and for a live disk (not a
// snapshot) also 1 MiB half way and 4 KiB at 64 KiB, its "writes since the
// snapshot".
func seededRegions(size int64, live bool) []seededRegion {
	rs := []seededRegion{
		{0, 1<<20 + 3*512},
		{size / 3 &^ (64<<10 - 1), 2 << 20},
		{(size - 3<<19) &^ 511, 3 << 19},
	}
	if live {
		rs = append(rs, seededRegion{size / 2 &^ (4<<10 - 1), 1 << 20}, seededRegion{64 << 10, 4 << 10})
	}
	out := rs[:0]
	for _, r := range rs {
		if r.off < 0 {
			r.n += r.off
			r.off = 0
		}
		if r.off+r.n > size {
			r.n = size - r.off
		}
		if r.n > 0 {
			out = append(out, r)
		}
	}
	return out
}

// writeSeeded writes the seeded data of the VDI with UUID seed.
func writeSeeded(f *os.File, seed string, size int64, live bool) error {
	if err := f.Truncate(size); err != nil {
		return err
	}
	for i, r := range seededRegions(size, live) {
		key := sha256.Sum256(fmt.Appendf(nil, "xapisim-vdi/%s/%d", seed, i))
		rng := rand.NewChaCha8(key)
		buf := make([]byte, r.n)
		_, _ = rng.Read(buf)
		if _, err := f.WriteAt(buf, r.off); err != nil {
			return err
		}
	}
	return nil
}

// Sparse file helpers.

// seekData and seekHole are lseek's SEEK_DATA and SEEK_HOLE (Linux,
// FreeBSD, Solaris); elsewhere the seek fails and files read as all data.
const (
	seekData = 3
	seekHole = 4
)

// extent is a run of a file that may hold data.
type extent struct{ off, end int64 }

// dataExtents returns the runs of f below size that may hold non-zero
// data, using SEEK_DATA/SEEK_HOLE where available (else one run).
func dataExtents(f *os.File, size int64) []extent {
	var out []extent
	for off := int64(0); off < size; {
		start, err := f.Seek(off, seekData)
		if err != nil {
			if off == 0 && !isNoData(err) {
				return []extent{{0, size}}
			}
			break
		}
		if start >= size {
			break
		}
		end, err := f.Seek(start, seekHole)
		if err != nil || end > size {
			end = size
		}
		out = append(out, extent{start, end})
		off = end
	}
	return out
}

// isNoData reports lseek's ENXIO (no data after the offset).
func isNoData(err error) bool {
	return errors.Is(err, syscall.ENXIO)
}

// copySparse copies the first size bytes of src into dst, skipping holes
// and zero runs so that dst stays sparse.
func copySparse(dst, src *os.File, size int64) error {
	if err := dst.Truncate(0); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for _, e := range dataExtents(src, size) {
		for off := e.off; off < e.end; {
			n := min(int64(len(buf)), e.end-off)
			m, err := src.ReadAt(buf[:n], off)
			if m > 0 && !allZero(buf[:m]) {
				if _, werr := dst.WriteAt(buf[:m], off); werr != nil {
					return werr
				}
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			if m == 0 {
				break
			}
			off += int64(m)
		}
	}
	return dst.Truncate(size)
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// diskReader streams a VDI's contents from its file: holes are produced
// without reading them, data extents are read in 1 MiB pieces, and ctx is
// checked between pieces.
type diskReader struct {
	ctx     context.Context
	f       *os.File
	size    int64
	off     int64
	extents []extent
	onRead  func(n int64)
}

func newDiskReader(ctx context.Context, d *vdiDisk, size int64, onRead func(int64)) *diskReader {
	return &diskReader{ctx: ctx, f: d.f, size: size, extents: dataExtents(d.f, size), onRead: onRead}
}

// Read implements io.Reader.
func (r *diskReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if len(p) > 1<<20 {
		p = p[:1<<20]
	}
	if rest := r.size - r.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	for len(r.extents) > 0 && r.extents[0].end <= r.off {
		r.extents = r.extents[1:]
	}
	var n int
	var err error
	switch {
	case len(r.extents) == 0:
		clear(p)
		n = len(p)
	case r.extents[0].off > r.off:
		gap := min(int64(len(p)), r.extents[0].off-r.off)
		clear(p[:gap])
		n = int(gap)
	default:
		m := min(int64(len(p)), r.extents[0].end-r.off)
		n, err = r.f.ReadAt(p[:m], r.off)
		if errors.Is(err, io.EOF) {
			clear(p[n:m])
			n, err = int(m), nil
		}
	}
	r.off += int64(n)
	if r.onRead != nil {
		r.onRead(int64(n))
	}
	return n, err
}

// WriteTo implements io.WriterTo: holes are written from a zero buffer
// that is never cleared again, data read in 1 MiB pieces.
func (r *diskReader) WriteTo(w io.Writer) (int64, error) {
	zeros := make([]byte, 1<<20)
	buf := make([]byte, 1<<20)
	var total int64
	for r.off < r.size {
		if err := r.ctx.Err(); err != nil {
			return total, err
		}
		for len(r.extents) > 0 && r.extents[0].end <= r.off {
			r.extents = r.extents[1:]
		}
		var p []byte
		n := min(int64(len(buf)), r.size-r.off)
		switch {
		case len(r.extents) == 0:
			p = zeros[:n]
		case r.extents[0].off > r.off:
			p = zeros[:min(n, r.extents[0].off-r.off)]
		default:
			m, err := r.Read(buf[:min(n, r.extents[0].end-r.off)])
			if err != nil && !errors.Is(err, io.EOF) {
				return total, err
			}
			written, err := w.Write(buf[:m])
			total += int64(written)
			if err != nil {
				return total, err
			}
			continue
		}
		written, err := w.Write(p)
		total += int64(written)
		r.off += int64(written)
		if r.onRead != nil {
			r.onRead(int64(written))
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

var (
	_ io.Reader   = (*diskReader)(nil)
	_ io.WriterTo = (*diskReader)(nil)
)

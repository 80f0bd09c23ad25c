package xapisim

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dpNBD starts the NBD server of srv and returns its address and, for the
// VDI, the first get_nbd_info record of session.
func dpNBD(t testing.TB, srv *Server, session, vdi string, useTLS bool) (string, Record) {
	t.Helper()
	addr, err := srv.ServeNBD("127.0.0.1:0", useTLS)
	if err != nil {
		t.Fatal(err)
	}
	infos := dpCall(t, srv, session, "VDI.get_nbd_info", vdi).([]any)
	if len(infos) == 0 {
		t.Fatal("get_nbd_info: no record while the NBD server runs")
	}
	return addr, infos[0].(Record)
}

// dpNBDURI is the libnbd URI of an export.
func dpNBDURI(addr, exportName string, useTLS bool, query string) string {
	scheme := "nbd"
	if useTLS {
		scheme = "nbds"
	}
	u := scheme + "://" + addr + "/" + url.PathEscape(exportName)
	if query != "" {
		u += "?" + query
	}
	return u
}

func TestGetNBDInfo(t *testing.T) {
	srv := dpServer(t, dpModel())
	session := srv.Session()
	disk := dpDisk(t, srv.Simulator, dpByName(t, srv.Simulator, "VM", "vm1"))
	if got := dpCall(t, srv, session, "VDI.get_nbd_info", disk).([]any); len(got) != 0 {
		t.Fatalf("get_nbd_info without an NBD network: %v", got)
	}
	addr, _ := dpNBD(t, srv, session, disk, true)
	infos := dpCall(t, srv, session, "VDI.get_nbd_info", disk).([]any)
	if len(infos) != 2 {
		t.Errorf("%d records, want one per host (2)", len(infos))
	}
	host, port, _ := net.SplitHostPort(addr)
	for _, i := range infos {
		rec := i.(Record)
		if rec["exportname"] != "/"+dpField(srv.Simulator, disk, "uuid").(string)+"?session_id="+session {
			t.Errorf("exportname %v", rec["exportname"])
		}
		if rec["address"] != host || strconv.FormatInt(rec["port"].(int64), 10) != port {
			t.Errorf("address %v port %v, want %s", rec["address"], rec["port"], addr)
		}
		block, _ := pem.Decode([]byte(rec["cert"].(string)))
		if block == nil {
			t.Fatalf("cert %q is not PEM", rec["cert"])
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if err := cert.VerifyHostname(rec["subject"].(string)); err != nil {
			t.Errorf("subject %v: %v", rec["subject"], err)
		}
	}
	// The network's purpose follows the mode.
	net0 := refByNameQuiet(srv.Simulator, "network", "network0")
	if p := dpField(srv.Simulator, net0, "purpose").([]string); !slices.Equal(p, []string{"nbd"}) {
		t.Errorf("network0 purpose %v", p)
	}
	// No record once the PIFs are unplugged.
	_ = srv.DB.Write(func(tx *Tx) error {
		for _, pif := range tx.All("PIF") {
			tx.Modify(pif)["currently_attached"] = false
		}
		return nil
	})
	if got := dpCall(t, srv, session, "VDI.get_nbd_info", disk).([]any); len(got) != 0 {
		t.Errorf("get_nbd_info without attached PIFs: %d records", len(got))
	}
	_ = srv.DB.Write(func(tx *Tx) error {
		tx.Modify(disk)["type"] = "cbt_metadata"
		return nil
	})
	if _, err := srv.Call(t.Context(), "VDI.get_nbd_info", session, disk); dpFault(err) != "VDI_INCOMPATIBLE_TYPE" {
		t.Errorf("cbt_metadata VDI: %v", err)
	}
}

func TestNBDRealClients(t *testing.T) {
	dpPeer(t, "nbdinfo", "libnbd-bin")
	dpPeer(t, "nbdcopy", "libnbd-bin")
	dpPeer(t, "qemu-img", "qemu-utils")
	for _, useTLS := range []bool{false, true} {
		name := "plain"
		if useTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			srv := dpServer(t, dpModel())
			session := srv.Session()
			disk := dpDisk(t, srv.Simulator, dpByName(t, srv.Simulator, "VM", "vm1"))
			want := dpContent(t, srv.Simulator, disk)
			addr, info := dpNBD(t, srv, session, disk, useTLS)
			dir := t.TempDir()
			certDir := filepath.Join(dir, "pki")
			if err := os.Mkdir(certDir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(certDir, "ca-cert.pem"), []byte(info["cert"].(string)), 0o600); err != nil {
				t.Fatal(err)
			}
			exportName := info["exportname"].(string)
			query := ""
			if useTLS {
				query = "tls-certificates=" + certDir
			}
			uri := dpNBDURI(addr, exportName, useTLS, query)

			out, err := exec.Command("nbdinfo", "--size", uri).CombinedOutput()
			if err != nil {
				t.Fatalf("nbdinfo --size %s: %v\n%s", uri, err, out)
			}
			if strings.TrimSpace(string(out)) != strconv.Itoa(len(want)) {
				t.Errorf("nbdinfo --size: %s, want %d", out, len(want))
			}
			out, err = exec.Command("nbdinfo", uri).CombinedOutput()
			if err != nil {
				t.Fatalf("nbdinfo: %v\n%s", err, out)
			}
			for _, s := range []string{"is_read_only: true", "protocol: newstyle-fixed without TLS, using simple packets"} {
				if useTLS {
					s = strings.Replace(s, "without", "with", 1)
				}
				if !strings.Contains(string(out), s) {
					t.Errorf("nbdinfo output lacks %q:\n%s", s, out)
				}
			}

			copyPath := filepath.Join(dir, "nbdcopy.raw")
			if out, err := exec.Command("nbdcopy", uri, copyPath).CombinedOutput(); err != nil {
				t.Fatalf("nbdcopy: %v\n%s", err, out)
			}
			if got, _ := os.ReadFile(copyPath); !bytes.Equal(got, want) {
				t.Error("nbdcopy output differs from the disk")
			}
			if useTLS {
				insecure := dpNBDURI(addr, exportName, true, "tls-verify-peer=false")
				if out, err := exec.Command("nbdcopy", insecure, "null:").CombinedOutput(); err != nil {
					t.Errorf("nbdcopy with tls-verify-peer=false: %v\n%s", err, out)
				}
			}

			// qemu-img asks for NBD_OPT_GO, then NBD_OPT_LIST, which
			// xapi-nbd (NBDLIB without an offer list) denies with
			// NBD_REP_ERR_POLICY: qemu cannot read from XAPI directly.
			host, port, _ := net.SplitHostPort(addr)
			opts := "driver=nbd,host=" + host + ",port=" + port + ",export=" + strings.ReplaceAll(exportName, ",", ",,")
			args := []string{"convert", "-O", "raw"}
			if useTLS {
				args = append(args, "--object", "tls-creds-x509,id=tls0,dir="+certDir+",endpoint=client")
				opts += ",tls-creds=tls0"
			}
			args = append(args, "--image-opts", opts, filepath.Join(dir, "direct.raw"))
			out, err = exec.Command("qemu-img", args...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "Denied by server for option 3 (list)") {
				t.Errorf("qemu-img straight from the server: %v, want the denial of NBD_OPT_LIST:\n%s", err, out)
			}
			// Through nbdkit's nbd plugin (libnbd), qemu-img reads it all.
			dpPeer(t, "nbdkit", "nbdkit")
			qemuPath := filepath.Join(dir, "qemu.raw")
			kit := []string{"-U", "-", "-r", "nbd", "hostname=" + host, "port=" + port, "export=" + exportName}
			if useTLS {
				kit = append(kit, "tls=require", "tls-certificates="+certDir)
			}
			kit = append(kit, "--run", "qemu-img convert -f raw -O raw \"$uri\" "+qemuPath)
			cmd := exec.Command("nbdkit", kit...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("qemu-img through nbdkit: %v\n%s", err, out)
			}
			if got, _ := os.ReadFile(qemuPath); !bytes.Equal(got, want) {
				t.Error("qemu-img convert from NBD differs from the disk")
			}

			// A wrong session is refused.
			bad := strings.Replace(exportName, session, "OpaqueRef:bad", 1)
			if out, err := exec.Command("nbdinfo", "--size", dpNBDURI(addr, bad, useTLS, query)).CombinedOutput(); err == nil {
				t.Errorf("nbdinfo with a bad session succeeded: %s", out)
			}
		})
	}
}

// nbdTestClient speaks the client side of the protocol for tests.
type nbdTestClient struct {
	t    testing.TB
	conn net.Conn
	rw   io.ReadWriter
}

func dialNBD(t testing.TB, addr string) *nbdTestClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	c := &nbdTestClient{t: t, conn: conn, rw: conn}
	var greet [18]byte
	if _, err := io.ReadFull(conn, greet[:]); err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint64(greet[:]) != nbdMagic || binary.BigEndian.Uint64(greet[8:]) != nbdOptMagic {
		t.Fatalf("greeting %x", greet)
	}
	if flags := binary.BigEndian.Uint16(greet[16:]); flags != nbdFlagFixedNewstyle {
		t.Errorf("handshake flags %#x, want FIXED_NEWSTYLE only", flags)
	}
	c.write(binary.BigEndian.AppendUint32(nil, nbdFlagFixedNewstyle))
	return c
}

func (c *nbdTestClient) write(b []byte) {
	c.t.Helper()
	if _, err := c.rw.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *nbdTestClient) option(opt uint32, data []byte) {
	b := binary.BigEndian.AppendUint64(nil, nbdOptMagic)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	c.write(append(b, data...))
}

// reply reads an option reply and returns its type.
func (c *nbdTestClient) reply(opt uint32) uint32 {
	c.t.Helper()
	var r [20]byte
	if _, err := io.ReadFull(c.rw, r[:]); err != nil {
		c.t.Fatalf("option %d reply: %v", opt, err)
	}
	if binary.BigEndian.Uint64(r[:]) != nbdRepMagic || binary.BigEndian.Uint32(r[8:]) != opt {
		c.t.Fatalf("bad option reply %x", r)
	}
	if n := binary.BigEndian.Uint32(r[16:]); n > 0 {
		_, _ = io.CopyN(io.Discard, c.rw, int64(n))
	}
	return binary.BigEndian.Uint32(r[12:])
}

// exportName sends NBD_OPT_EXPORT_NAME and returns the size and flags, or
// an error when the server closes the connection.
func (c *nbdTestClient) exportName(name string) (uint64, uint16, error) {
	c.option(nbdOptExportName, []byte(name))
	var ans [134]byte
	if _, err := io.ReadFull(c.rw, ans[:]); err != nil {
		return 0, 0, err
	}
	if !allZero(ans[10:]) {
		c.t.Error("export reply padding is not zero")
	}
	return binary.BigEndian.Uint64(ans[:]), binary.BigEndian.Uint16(ans[8:]), nil
}

// request sends a command and reads its simple reply (and data for READ).
func (c *nbdTestClient) request(typ uint16, handle, off uint64, n uint32, payload []byte) (uint32, []byte) {
	c.t.Helper()
	b := binary.BigEndian.AppendUint32(nil, nbdRequestMagic)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint64(b, handle)
	b = binary.BigEndian.AppendUint64(b, off)
	b = binary.BigEndian.AppendUint32(b, n)
	c.write(append(b, payload...))
	var r [16]byte
	if _, err := io.ReadFull(c.rw, r[:]); err != nil {
		c.t.Fatalf("reply: %v", err)
	}
	if binary.BigEndian.Uint32(r[:]) != nbdReplyMagic || binary.BigEndian.Uint64(r[8:]) != handle {
		c.t.Fatalf("bad reply %x", r)
	}
	errno := binary.BigEndian.Uint32(r[4:])
	if typ == nbdCmdRead && errno == 0 {
		data := make([]byte, n)
		if _, err := io.ReadFull(c.rw, data); err != nil {
			c.t.Fatal(err)
		}
		return 0, data
	}
	return errno, nil
}

func TestNBDProtocol(t *testing.T) {
	srv := dpServer(t, dpModel())
	session := srv.Session()
	disk := dpDisk(t, srv.Simulator, dpByName(t, srv.Simulator, "VM", "vm1"))
	want := dpContent(t, srv.Simulator, disk)
	addr, info := dpNBD(t, srv, session, disk, false)
	name := info["exportname"].(string)

	t.Run("options", func(t *testing.T) {
		c := dialNBD(t, addr)
		for _, tc := range []struct {
			opt  uint32
			want uint32
		}{
			{7, nbdRepErrUnsup}, // GO
			{6, nbdRepErrUnsup}, // INFO
			{8, nbdRepErrUnsup}, // STRUCTURED_REPLY
			{10, nbdRepErrUnsup},
			{nbdOptList, nbdRepErrPolicy},
			{nbdOptStartTLS, nbdRepErrPolicy}, // plain mode
		} {
			c.option(tc.opt, nil)
			if got := c.reply(tc.opt); got != tc.want {
				t.Errorf("option %d: reply %#x, want %#x", tc.opt, got, tc.want)
			}
		}
		c.option(nbdOptAbort, nil)
		if got := c.reply(nbdOptAbort); got != nbdRepAck {
			t.Errorf("abort: %#x", got)
		}
	})
	for _, bad := range []string{
		"/" + dpField(srv.Simulator, disk, "uuid").(string) + "?session_id=OpaqueRef:bad",
		"/no-such-uuid?session_id=" + session,
		"/" + dpField(srv.Simulator, disk, "uuid").(string),
		"",
	} {
		t.Run("refused "+bad, func(t *testing.T) {
			c := dialNBD(t, addr)
			if _, _, err := c.exportName(bad); err == nil {
				t.Error("export accepted")
			}
		})
	}
	t.Run("transmission", func(t *testing.T) {
		c := dialNBD(t, addr)
		size, flags, err := c.exportName(name)
		if err != nil {
			t.Fatal(err)
		}
		if size != uint64(len(want)) || flags != nbdTransHasFlags|nbdTransReadOnly {
			t.Errorf("size %d flags %#x", size, flags)
		}
		// Attached to dom0 while connected.
		vbds := dpField(srv.Simulator, disk, "VBDs").([]string)
		var dom0VBD string
		for _, v := range vbds {
			rec := dpRecord(srv.Simulator, v)
			if vm := dpRecord(srv.Simulator, str(rec, "VM")); vm["is_control_domain"] == true && rec["currently_attached"] == true {
				dom0VBD = v
			}
		}
		if dom0VBD == "" {
			t.Error("no attached dom0 VBD while connected")
		}
		if _, err := srv.Call(t.Context(), "VDI.destroy", session, disk); dpFault(err) != "VDI_IN_USE" {
			t.Errorf("VDI.destroy while connected: %v, want VDI_IN_USE", err)
		}
		for i, tc := range []struct {
			typ   uint16
			off   uint64
			n     uint32
			errno uint32
		}{
			{nbdCmdRead, 0, 1 << 20, 0},
			{nbdCmdRead, uint64(len(want)) - 4096, 4096, 0},
			{nbdCmdRead, 512, 100, nbdEINVAL},
			{nbdCmdRead, 100, 512, nbdEINVAL},
			{nbdCmdRead, uint64(len(want)), 512, nbdEINVAL},
			{nbdCmdRead, 0, nbdMaxRequest + 512, nbdEINVAL},
			{nbdCmdWrite, 0, 512, nbdEPERM},
			{3, 0, 0, nbdEINVAL},   // FLUSH
			{4, 0, 512, nbdEINVAL}, // TRIM
		} {
			var payload []byte
			if tc.typ == nbdCmdWrite {
				payload = make([]byte, tc.n)
			}
			errno, data := c.request(tc.typ, uint64(i)+100, tc.off, tc.n, payload)
			if errno != tc.errno {
				t.Errorf("command %d at %d+%d: errno %d, want %d", tc.typ, tc.off, tc.n, errno, tc.errno)
			}
			if errno == 0 && !bytes.Equal(data, want[tc.off:tc.off+uint64(tc.n)]) {
				t.Errorf("READ at %d+%d returned other data", tc.off, tc.n)
			}
		}
		b := binary.BigEndian.AppendUint32(nil, nbdRequestMagic)
		b = binary.BigEndian.AppendUint16(b, 0)
		b = binary.BigEndian.AppendUint16(b, nbdCmdDisc)
		c.write(append(b, make([]byte, 20)...))
		if _, err := c.conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("after DISC: %v, want EOF", err)
		}
		// Detached afterwards, and destroy works.
		deadline := time.Now().Add(10 * time.Second)
		for dpRecord(srv.Simulator, dom0VBD) != nil && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if dpRecord(srv.Simulator, dom0VBD) != nil {
			t.Fatal("dom0 VBD remains after the client left")
		}
		dpCall(t, srv, session, "VDI.destroy", disk)
	})
}

func TestNBDTLSProtocol(t *testing.T) {
	srv := dpServer(t, dpModel())
	session := srv.Session()
	disk := dpDisk(t, srv.Simulator, dpByName(t, srv.Simulator, "VM", "vm1"))
	addr, info := dpNBD(t, srv, session, disk, true)
	name := info["exportname"].(string)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(info["cert"].(string))) {
		t.Fatal("bad cert")
	}

	t.Run("TLS required", func(t *testing.T) {
		c := dialNBD(t, addr)
		for _, opt := range []uint32{7, nbdOptList, 8} {
			c.option(opt, nil)
			if got := c.reply(opt); got != nbdRepErrTLS {
				t.Errorf("option %d before STARTTLS: %#x, want ERR_TLS_REQD", opt, got)
			}
		}
		if _, _, err := c.exportName(name); err == nil {
			t.Error("EXPORT_NAME in clear text accepted")
		}
	})
	t.Run("STARTTLS", func(t *testing.T) {
		c := dialNBD(t, addr)
		c.option(nbdOptStartTLS, nil)
		if got := c.reply(nbdOptStartTLS); got != nbdRepAck {
			t.Fatalf("STARTTLS: %#x", got)
		}
		tc := tls.Client(c.conn, &tls.Config{RootCAs: pool, ServerName: info["subject"].(string)})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		c.rw = tc
		c.option(nbdOptStartTLS, nil)
		if got := c.reply(nbdOptStartTLS); got != nbdRepErrInval {
			t.Errorf("second STARTTLS: %#x", got)
		}
		size, _, err := c.exportName(name)
		if err != nil {
			t.Fatal(err)
		}
		if errno, data := c.request(nbdCmdRead, 1, 0, 4096, nil); errno != 0 || uint64(len(data)) != 4096 || size == 0 {
			t.Errorf("READ over TLS: errno %d, %d bytes", errno, len(data))
		}
	})
	t.Run("contradictory purposes", func(t *testing.T) {
		net1 := refByNameQuiet(srv.Simulator, "network", "network1")
		_ = srv.DB.Write(func(tx *Tx) error {
			tx.Modify(net1)["purpose"] = []string{"insecure_nbd"}
			return nil
		})
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(conn, make([]byte, 18)); err == nil {
			t.Error("server greeted despite nbd and insecure_nbd purposes")
		}
	})
}

// FuzzNBDSession feeds arbitrary client bytes to the server side of the
// protocol (handshake and transmission, plain mode).
func FuzzNBDSession(f *testing.F) {
	hello := binary.BigEndian.AppendUint32(nil, nbdFlagFixedNewstyle)
	opt := func(b []byte, o uint32, data string) []byte {
		b = binary.BigEndian.AppendUint64(b, nbdOptMagic)
		b = binary.BigEndian.AppendUint32(b, o)
		b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
		return append(b, data...)
	}
	req := func(b []byte, typ uint16, off uint64, n uint32) []byte {
		b = binary.BigEndian.AppendUint32(b, nbdRequestMagic)
		b = binary.BigEndian.AppendUint16(b, 0)
		b = binary.BigEndian.AppendUint16(b, typ)
		b = binary.BigEndian.AppendUint64(b, 7)
		b = binary.BigEndian.AppendUint64(b, off)
		return binary.BigEndian.AppendUint32(b, n)
	}
	s := opt(bytes.Clone(hello), 7, "")
	s = opt(s, nbdOptExportName, "/x?session_id=y")
	s = req(s, nbdCmdRead, 0, 512)
	s = req(s, nbdCmdRead, 3, 512)
	s = req(s, nbdCmdWrite, 0, 4)
	s = append(s, 1, 2, 3, 4)
	s = req(s, nbdCmdDisc, 0, 0)
	f.Add(s)
	f.Add(opt(bytes.Clone(hello), nbdOptStartTLS, ""))
	f.Add(opt(opt(bytes.Clone(hello), nbdOptList, ""), nbdOptAbort, ""))
	f.Add([]byte{})
	disk := bytes.Repeat([]byte{0xa5}, 64<<10)
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		sess := &nbdSession{
			rw: struct {
				io.Reader
				io.Writer
			}{bytes.NewReader(in), &out},
			open: func(name string) (nbdExport, func(), error) {
				if _, _, err := parseExportName(name); err != nil {
					return nil, nil, err
				}
				return &fileExport{f: bytes.NewReader(disk), size: int64(len(disk))}, func() {}, nil
			},
		}
		exp, release, err := sess.handshake()
		if err != nil || exp == nil {
			return
		}
		defer release()
		_ = sess.transmit(exp)
		if out.Len() < 18 {
			t.Fatalf("no greeting: %d bytes out", out.Len())
		}
	})
}

// BenchmarkNBDCopy4GiB reads a 4 GiB sparse disk with nbdcopy (which
// reads every byte: the server offers no block status), plain and TLS.
func BenchmarkNBDCopy4GiB(b *testing.B) {
	dpPeer(b, "nbdcopy", "libnbd-bin")
	for _, useTLS := range []bool{false, true} {
		name := "plain"
		if useTLS {
			name = "tls"
		}
		b.Run(name, func(b *testing.B) {
			m := dpModel()
			m.VMs, m.DiskSize = 2, 4<<30
			srv := dpServer(b, m)
			session := srv.Session()
			disk := dpDisk(b, srv.Simulator, dpByName(b, srv.Simulator, "VM", "vm1"))
			addr, info := dpNBD(b, srv, session, disk, useTLS)
			query := ""
			if useTLS {
				query = "tls-verify-peer=false"
			}
			uri := dpNBDURI(addr, info["exportname"].(string), useTLS, query)
			b.SetBytes(4 << 30)
			for b.Loop() {
				if out, err := exec.Command("nbdcopy", uri, "null:").CombinedOutput(); err != nil {
					b.Fatalf("nbdcopy: %v\n%s", err, out)
				}
			}
		})
	}
}

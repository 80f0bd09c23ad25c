package xapisim

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// NBD (xapi.md §9): an NBD server with xapi-nbd's behaviour, and
// VDI.get_nbd_info.
//
//   - Fixed newstyle only; the greeting's flags are FIXED_NEWSTYLE (no
//     NO_ZEROES).
//   - When a network's purpose holds "nbd" TLS is required: options other
//     than STARTTLS get NBD_REP_ERR_TLS_REQD and EXPORT_NAME in clear text
//     closes the connection. With "insecure_nbd" only, STARTTLS gets
//     NBD_REP_ERR_POLICY. With both, or neither, connections are refused.
//   - Options: EXPORT_NAME, ABORT, LIST (ERR_POLICY), STARTTLS; everything
//     else (GO, INFO, STRUCTURED_REPLY, ...) gets NBD_REP_ERR_UNSUP.
//   - The export name is "/<vdi-uuid>?session_id=<session ref>", valid
//     while the session lives. The answer is size, flags HAS_FLAGS|READ_ONLY
//     and 124 zero bytes (134 bytes).
//   - Read-only: READ needs 512-aligned offset and length (else EINVAL),
//     WRITE gets EPERM, DISC closes, everything else EINVAL; simple replies,
//     in order.
//   - While connected, the VDI has an attached read-only VBD on the pool
//     master's control domain, so VDI.destroy fails with VDI_IN_USE.

// NBD protocol constants.
const (
	nbdMagic        = 0x4e42444d41474943 // "NBDMAGIC"
	nbdOptMagic     = 0x49484156454f5054 // "IHAVEOPT"
	nbdRepMagic     = 0x0003e889045565a9
	nbdRequestMagic = 0x25609513
	nbdReplyMagic   = 0x67446698

	nbdFlagFixedNewstyle = 1

	nbdOptExportName = 1
	nbdOptAbort      = 2
	nbdOptList       = 3
	nbdOptStartTLS   = 5

	nbdRepAck       = 1
	nbdRepErrUnsup  = 1<<31 | 1
	nbdRepErrPolicy = 1<<31 | 2
	nbdRepErrInval  = 1<<31 | 3
	nbdRepErrTLS    = 1<<31 | 5

	nbdTransHasFlags = 1
	nbdTransReadOnly = 2

	nbdCmdRead  = 0
	nbdCmdWrite = 1
	nbdCmdDisc  = 2

	nbdEPERM  = 1
	nbdEINVAL = 22
	nbdEIO    = 5

	// nbdMaxOption bounds an option's data (export names are short).
	nbdMaxOption = 64 << 10
	// nbdMaxRequest bounds one READ (qemu asks for at most 32 MiB).
	nbdMaxRequest = 32 << 20
	// nbdPort is the port get_nbd_info reports when the server is not on
	// a TCP listener.
	nbdPort = 10809
)

// nbdServer serves the VDIs of a simulator over NBD.
type nbdServer struct {
	dp      *dataPlane
	ln      net.Listener
	tls     *tls.Config
	certPEM string
	subject string

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// ServeNBD starts the simulator's NBD server on addr (e.g.
// "127.0.0.1:0") and returns the address it listens on. It sets the purpose
// of network0 (the management network) to "nbd" when useTLS is set, else
// "insecure_nbd", so that VDI.get_nbd_info reports the server: one record
// per host with a plugged PBD for the VDI's SR and an attached PIF on that
// network, with this server's address and port and its certificate, a
// self-signed one made here. Close stops it.
func (s *Simulator) ServeNBD(addr string, useTLS bool) (string, error) {
	dp := s.dataPlane()
	cert, certPEM, err := selfSignedCert(s)
	if err != nil {
		return "", fmt.Errorf("xapisim: NBD certificate: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("xapisim: NBD listen %s: %w", addr, err)
	}
	srv := &nbdServer{
		dp:      dp,
		ln:      ln,
		tls:     &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		certPEM: certPEM,
		subject: "localhost",
		conns:   map[net.Conn]bool{},
	}
	dp.mu.Lock()
	old := dp.nbd
	dp.nbd = srv
	dp.mu.Unlock()
	if old != nil {
		_ = old.close()
	}
	purpose := "insecure_nbd"
	if useTLS {
		purpose = "nbd"
	}
	_ = s.DB.Write(func(tx *Tx) error {
		for _, n := range tx.All("network") {
			if rec, _ := tx.GetClass("network", n); str(rec, "name_label") == "network0" {
				tx.Modify(n)["purpose"] = []string{purpose}
			}
		}
		return nil
	})
	srv.wg.Add(1)
	go srv.serve()
	return ln.Addr().String(), nil
}

// selfSignedCert makes the server certificate: ECDSA P-256, valid for
// localhost, 127.0.0.1, ::1 and every host's hostname and address, and its
// own CA so that clients can trust it directly.
func selfSignedCert(s *Simulator) (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	names := []string{"localhost"}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	s.DB.Read(func(tx *Tx) {
		for _, h := range tx.All("host") {
			rec, _ := tx.GetClass("host", h)
			if hn := str(rec, "hostname"); hn != "" {
				names = append(names, hn)
			}
			if ip := net.ParseIP(str(rec, "address")); ip != nil {
				ips = append(ips, ip)
			}
		}
	})
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"xapisim"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              names,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certPEM, nil
}

// NBDCertificate returns the PEM certificate of the NBD server ("" when
// ServeNBD was not called), for clients that verify it.
func (s *Simulator) NBDCertificate() string {
	dp := s.dataPlane()
	dp.mu.Lock()
	defer dp.mu.Unlock()
	if dp.nbd == nil {
		return ""
	}
	return dp.nbd.certPEM
}

func (srv *nbdServer) serve() {
	defer srv.wg.Done()
	for {
		conn, err := srv.ln.Accept()
		if err != nil {
			return
		}
		srv.mu.Lock()
		if srv.conns == nil {
			srv.mu.Unlock()
			_ = conn.Close()
			return
		}
		srv.conns[conn] = true
		srv.mu.Unlock()
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			srv.handle(conn)
			srv.mu.Lock()
			delete(srv.conns, conn)
			srv.mu.Unlock()
			_ = conn.Close()
		}()
	}
}

// close stops the listener, closes the connections and waits for them.
func (srv *nbdServer) close() error {
	err := srv.ln.Close()
	srv.mu.Lock()
	for c := range srv.conns {
		_ = c.Close()
	}
	srv.conns = nil
	srv.mu.Unlock()
	srv.wg.Wait()
	return err
}

// tlsMode is what the networks' purposes ask of the server.
type tlsMode int

const (
	nbdRefuse tlsMode = iota
	nbdPlain
	nbdTLS
)

// mode reads the network purposes (xapi-nbd's xapi_says_use_tls).
func (srv *nbdServer) mode() tlsMode {
	secure, insecure := false, false
	srv.dp.sim.DB.Read(func(tx *Tx) {
		for _, n := range tx.All("network") {
			rec, _ := tx.GetClass("network", n)
			p := strSet(rec, "purpose")
			secure = secure || slices.Contains(p, "nbd")
			insecure = insecure || slices.Contains(p, "insecure_nbd")
		}
	})
	switch {
	case secure && insecure, !secure && !insecure:
		return nbdRefuse
	case secure:
		return nbdTLS
	}
	return nbdPlain
}

// nbdExport is the disk a connection serves.
type nbdExport interface {
	io.ReaderAt
	Size() int64
}

// handle runs one connection: handshake, then transmission.
func (srv *nbdServer) handle(conn net.Conn) {
	mode := srv.mode()
	if mode == nbdRefuse {
		return
	}
	sess := &nbdSession{
		rw:       conn,
		tls:      mode == nbdTLS,
		tlsConf:  srv.tls,
		open:     srv.openExport,
		deadline: conn.SetDeadline,
	}
	exp, release, err := sess.handshake()
	if err != nil || exp == nil {
		return
	}
	defer release()
	_ = conn.SetDeadline(time.Time{})
	_ = sess.transmit(exp)
}

// openExport validates an export name and attaches the VDI to dom0.
func (srv *nbdServer) openExport(name string) (nbdExport, func(), error) {
	uuid, session, err := parseExportName(name)
	if err != nil {
		return nil, nil, err
	}
	sim := srv.dp.sim
	if !sim.SessionValid(session) {
		return nil, nil, fmt.Errorf("nbd: session %s is not valid", session)
	}
	var vdi string
	sim.DB.Read(func(tx *Tx) {
		if c, r, ok := tx.ByUUID(uuid); ok && c == "VDI" {
			vdi = r
		}
	})
	if vdi == "" {
		return nil, nil, fmt.Errorf("nbd: no VDI with UUID %s", uuid)
	}
	disk, size, err := srv.dp.open(vdi)
	if err != nil {
		return nil, nil, err
	}
	vbd := srv.attach(vdi)
	release := func() { srv.detach(vbd) }
	return &fileExport{f: disk.f, size: size}, release, nil
}

// attach plugs a read-only VBD of vdi into the master's control domain, as
// xapi-nbd does for the duration of a connection.
func (srv *nbdServer) attach(vdi string) string {
	var vbd string
	_ = srv.dp.sim.DB.Write(func(tx *Tx) error {
		dom0 := ""
		for _, p := range tx.All("pool") {
			pr, _ := tx.GetClass("pool", p)
			hr, _ := tx.GetClass("host", str(pr, "master"))
			dom0 = str(hr, "control_domain")
		}
		if _, ok := tx.GetClass("VM", dom0); !ok {
			return nil
		}
		vm, _ := tx.GetClass("VM", dom0)
		used := map[string]bool{}
		for _, b := range strSet(vm, "VBDs") {
			br, _ := tx.GetClass("VBD", b)
			used[str(br, "userdevice")] = true
		}
		dev := 0
		for used[strconv.Itoa(dev)] {
			dev++
		}
		vbd = newObject(tx, "VBD", Record{
			"VM": dom0, "VDI": vdi, "userdevice": strconv.Itoa(dev), "device": "xvd" + string(rune('a'+dev%26)),
			"mode": "RO", "type": "Disk", "currently_attached": true, "unpluggable": true,
			"other_config": map[string]string{"xapi-nbd": "true"},
		})
		updateVBDAllowedOperations(tx, vbd)
		updateVDIAllowedOperations(tx, vdi)
		return nil
	})
	return vbd
}

// detach removes the control-domain VBD made by attach.
func (srv *nbdServer) detach(vbd string) {
	if vbd == "" {
		return
	}
	_ = srv.dp.sim.DB.Write(func(tx *Tx) error {
		rec, ok := tx.GetClass("VBD", vbd)
		if !ok {
			return nil
		}
		vdi := str(rec, "VDI")
		deleteObject(tx, vbd)
		updateVDIAllowedOperations(tx, vdi)
		return nil
	})
}

// parseExportName splits "/<vdi-uuid>?session_id=<ref>".
func parseExportName(name string) (uuid, session string, err error) {
	path, query, ok := strings.Cut(name, "?")
	uuid = strings.TrimPrefix(path, "/")
	if !ok || uuid == "" || strings.Contains(uuid, "/") {
		return "", "", fmt.Errorf("nbd: export name %.100q is not /<vdi-uuid>?session_id=<ref>", name)
	}
	for _, kv := range strings.Split(query, "&") {
		if v, found := strings.CutPrefix(kv, "session_id="); found {
			session = v
		}
	}
	if session == "" {
		return "", "", fmt.Errorf("nbd: export name %.100q has no session_id", name)
	}
	return uuid, session, nil
}

// fileExport serves a VDI's file.
type fileExport struct {
	f interface {
		ReadAt([]byte, int64) (int, error)
	}
	size int64
}

func (e *fileExport) ReadAt(p []byte, off int64) (int, error) {
	n, err := e.f.ReadAt(p, off)
	if errors.Is(err, io.EOF) && off+int64(len(p)) <= e.size {
		clear(p[n:])
		return len(p), nil
	}
	return n, err
}

func (e *fileExport) Size() int64 { return e.size }

// nbdSession is the protocol side of one connection, independent of the
// simulator (the fuzz target drives it over a pipe).
type nbdSession struct {
	rw       io.ReadWriter
	br       *bufio.Reader
	tls      bool // TLS required
	tlsConf  *tls.Config
	secured  bool
	open     func(name string) (nbdExport, func(), error)
	deadline func(time.Time) error
}

// errNBDClose ends a connection without an error worth reporting.
var errNBDClose = errors.New("nbd: connection closed by protocol")

// handshake runs the fixed-newstyle negotiation and returns the export the
// client chose, or nil when the client aborted.
func (s *nbdSession) handshake() (nbdExport, func(), error) {
	if s.deadline != nil {
		_ = s.deadline(time.Now().Add(30 * time.Second))
	}
	s.br = bufio.NewReader(s.rw)
	var greet [18]byte
	binary.BigEndian.PutUint64(greet[0:], nbdMagic)
	binary.BigEndian.PutUint64(greet[8:], nbdOptMagic)
	binary.BigEndian.PutUint16(greet[16:], nbdFlagFixedNewstyle)
	if _, err := s.rw.Write(greet[:]); err != nil {
		return nil, nil, err
	}
	var cflags [4]byte
	if _, err := io.ReadFull(s.br, cflags[:]); err != nil {
		return nil, nil, err
	}
	if binary.BigEndian.Uint32(cflags[:])&nbdFlagFixedNewstyle == 0 {
		return nil, nil, errors.New("nbd: client does not speak fixed newstyle")
	}
	for {
		var hdr [16]byte
		if _, err := io.ReadFull(s.br, hdr[:]); err != nil {
			return nil, nil, err
		}
		if binary.BigEndian.Uint64(hdr[0:]) != nbdOptMagic {
			return nil, nil, errors.New("nbd: bad option magic")
		}
		opt := binary.BigEndian.Uint32(hdr[8:])
		n := binary.BigEndian.Uint32(hdr[12:])
		if n > nbdMaxOption {
			return nil, nil, fmt.Errorf("nbd: option %d of %d bytes is too long", opt, n)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(s.br, data); err != nil {
			return nil, nil, err
		}
		switch {
		case opt == nbdOptAbort:
			_ = s.reply(opt, nbdRepAck, nil)
			return nil, nil, errNBDClose
		case s.tls && !s.secured && opt == nbdOptExportName:
			return nil, nil, errors.New("nbd: EXPORT_NAME before STARTTLS")
		case s.tls && !s.secured && opt != nbdOptStartTLS:
			if err := s.reply(opt, nbdRepErrTLS, nil); err != nil {
				return nil, nil, err
			}
		case opt == nbdOptStartTLS:
			switch {
			case !s.tls:
				if err := s.reply(opt, nbdRepErrPolicy, nil); err != nil {
					return nil, nil, err
				}
			case s.secured || n != 0:
				if err := s.reply(opt, nbdRepErrInval, nil); err != nil {
					return nil, nil, err
				}
			default:
				if err := s.reply(opt, nbdRepAck, nil); err != nil {
					return nil, nil, err
				}
				if s.br.Buffered() > 0 {
					return nil, nil, errors.New("nbd: data after STARTTLS before the TLS handshake")
				}
				conn, ok := s.rw.(net.Conn)
				if !ok {
					return nil, nil, errors.New("nbd: STARTTLS needs a network connection")
				}
				tc := tls.Server(conn, s.tlsConf)
				if err := tc.HandshakeContext(context.Background()); err != nil {
					return nil, nil, fmt.Errorf("nbd: TLS handshake: %w", err)
				}
				s.rw, s.br, s.secured = tc, bufio.NewReader(tc), true
			}
		case opt == nbdOptExportName:
			exp, release, err := s.open(string(data))
			if err != nil {
				return nil, nil, err
			}
			var ans [134]byte
			binary.BigEndian.PutUint64(ans[0:], uint64(exp.Size()))
			binary.BigEndian.PutUint16(ans[8:], nbdTransHasFlags|nbdTransReadOnly)
			if _, err := s.rw.Write(ans[:]); err != nil {
				release()
				return nil, nil, err
			}
			return exp, release, nil
		case opt == nbdOptList:
			if err := s.reply(opt, nbdRepErrPolicy, nil); err != nil {
				return nil, nil, err
			}
		default:
			if err := s.reply(opt, nbdRepErrUnsup, nil); err != nil {
				return nil, nil, err
			}
		}
	}
}

// reply writes an option reply.
func (s *nbdSession) reply(opt, typ uint32, data []byte) error {
	b := make([]byte, 20+len(data))
	binary.BigEndian.PutUint64(b[0:], nbdRepMagic)
	binary.BigEndian.PutUint32(b[8:], opt)
	binary.BigEndian.PutUint32(b[12:], typ)
	binary.BigEndian.PutUint32(b[16:], uint32(len(data)))
	copy(b[20:], data)
	_, err := s.rw.Write(b)
	return err
}

// transmit serves requests until DISC or an error.
func (s *nbdSession) transmit(exp nbdExport) error {
	bw := bufio.NewWriterSize(s.rw, 256<<10)
	buf := make([]byte, 0, 1<<20)
	var req [28]byte
	for {
		if s.br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		if _, err := io.ReadFull(s.br, req[:]); err != nil {
			return err
		}
		if binary.BigEndian.Uint32(req[0:]) != nbdRequestMagic {
			return errors.New("nbd: bad request magic")
		}
		typ := binary.BigEndian.Uint16(req[6:])
		handle := req[8:16]
		off := binary.BigEndian.Uint64(req[16:])
		n := binary.BigEndian.Uint32(req[24:])
		var errno uint32
		var data []byte
		switch typ {
		case nbdCmdDisc:
			return bw.Flush()
		case nbdCmdWrite:
			if n > nbdMaxRequest {
				return fmt.Errorf("nbd: WRITE of %d bytes is too long", n)
			}
			if _, err := io.CopyN(io.Discard, s.br, int64(n)); err != nil {
				return err
			}
			errno = nbdEPERM
		case nbdCmdRead:
			switch {
			case off%512 != 0 || n%512 != 0 || n > nbdMaxRequest:
				errno = nbdEINVAL
			case off > uint64(exp.Size()) || uint64(n) > uint64(exp.Size())-off:
				errno = nbdEINVAL
			default:
				if cap(buf) < int(n) {
					buf = make([]byte, n)
				}
				data = buf[:n]
				if _, err := exp.ReadAt(data, int64(off)); err != nil {
					errno, data = nbdEIO, nil
				}
			}
		default:
			errno = nbdEINVAL
		}
		var rep [16]byte
		binary.BigEndian.PutUint32(rep[0:], nbdReplyMagic)
		binary.BigEndian.PutUint32(rep[4:], errno)
		copy(rep[8:], handle)
		if _, err := bw.Write(rep[:]); err != nil {
			return err
		}
		if _, err := bw.Write(data); err != nil {
			return err
		}
	}
}

// getNBDInfo implements VDI.get_nbd_info(self) (xapi.md §9.1): one record
// per host that has a plugged PBD for the VDI's SR and an attached PIF on
// a network whose purpose holds nbd or insecure_nbd, while the NBD server
// runs; the export name embeds the caller's session.
func (dp *dataPlane) getNBDInfo(c *Call) (any, error) {
	ref, err := c.String(0)
	if err != nil {
		return nil, err
	}
	dp.mu.Lock()
	srv := dp.nbd
	dp.mu.Unlock()
	var out []any
	var fault *Fault
	dp.sim.DB.Read(func(tx *Tx) {
		rec, ok := tx.GetClass("VDI", ref)
		if !ok {
			fault = HandleInvalid("VDI", ref)
			return
		}
		if str(rec, "type") == "cbt_metadata" {
			fault = NewFault("VDI_INCOMPATIBLE_TYPE", ref, "cbt_metadata")
			return
		}
		if srv == nil {
			return
		}
		host, portStr, _ := net.SplitHostPort(srv.ln.Addr().String())
		port, perr := strconv.ParseInt(portStr, 10, 64)
		if perr != nil {
			port = nbdPort
		}
		srRec, _ := tx.GetClass("SR", str(rec, "SR"))
		for _, pbd := range strSet(srRec, "PBDs") {
			pr, _ := tx.GetClass("PBD", pbd)
			if attached, _ := pr["currently_attached"].(bool); !attached {
				continue
			}
			h := str(pr, "host")
			if !hostHasNBDPIF(tx, h) {
				continue
			}
			out = append(out, Record{
				"exportname": "/" + str(rec, "uuid") + "?session_id=" + c.Session,
				"address":    host,
				"port":       port,
				"cert":       srv.certPEM,
				"subject":    srv.subject,
			})
		}
	})
	if fault != nil {
		return nil, fault
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

// hostHasNBDPIF reports whether host has an attached PIF on a network whose
// purpose allows NBD.
func hostHasNBDPIF(tx *Tx, host string) bool {
	hr, _ := tx.GetClass("host", host)
	for _, pif := range strSet(hr, "PIFs") {
		pr, _ := tx.GetClass("PIF", pif)
		if attached, _ := pr["currently_attached"].(bool); !attached {
			continue
		}
		nr, _ := tx.GetClass("network", str(pr, "network"))
		p := strSet(nr, "purpose")
		if slices.Contains(p, "nbd") || slices.Contains(p, "insecure_nbd") {
			return true
		}
	}
	return false
}

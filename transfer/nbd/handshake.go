package nbd

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"time"
)

// export is what the handshake learnt about the export.
type export struct {
	size  int64
	flags uint16
	// align is the alignment of READ offsets and lengths (at least
	// SectorSize); maxReq the largest READ length.
	align, maxReq int64
	// tls says whether the connection is encrypted.
	tls bool
	// metaID is the id of the base:allocation context, when negotiated.
	metaID uint32
}

// maxOptReplies bounds the number of replies the client reads for one option.
const maxOptReplies = 64

// handshake runs the fixed newstyle negotiation on nc and returns the
// connection to use for the transmission phase (a *tls.Conn after
// STARTTLS). ctx interrupts it.
//
// With meta, the handshake also negotiates structured replies and the
// base:allocation metadata context, which need NBD_OPT_GO; a server that
// lacks any of them gives an error matching ErrNoBlockStatus.
func handshake(ctx context.Context, nc net.Conn, opts *Options, meta bool) (net.Conn, export, error) {
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	h := &handshaker{conn: nc}
	ex, err := h.run(ctx, opts, meta)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return nil, export{}, fmt.Errorf("nbd: handshake with %s: %w", opts.Address, err)
	}
	if !stop() {
		return nil, export{}, fmt.Errorf("nbd: handshake with %s: %w", opts.Address, ctx.Err())
	}
	return h.conn, ex, nil
}

type handshaker struct {
	conn     net.Conn
	noZeroes bool
	buf      [maxOptPayload]byte
	discard  int64
}

func (h *handshaker) read(n int) ([]byte, error) {
	if _, err := io.ReadFull(h.conn, h.buf[:n]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return h.buf[:n], nil
}

func (h *handshaker) run(ctx context.Context, opts *Options, meta bool) (export, error) {
	be := binary.BigEndian
	b, err := h.read(16)
	if err != nil {
		return export{}, fmt.Errorf("reading the greeting: %w", err)
	}
	if be.Uint64(b) != magicInit {
		return export{}, protoErr("greeting magic %#x is not NBDMAGIC", be.Uint64(b))
	}
	switch m := be.Uint64(b[8:]); m {
	case magicOpt:
	case magicOldstyle:
		return export{}, protoErr("oldstyle negotiation is not supported")
	default:
		return export{}, protoErr("greeting magic %#x is not IHAVEOPT", m)
	}
	if b, err = h.read(2); err != nil {
		return export{}, fmt.Errorf("reading the handshake flags: %w", err)
	}
	sflags := be.Uint16(b)
	if sflags&flagFixedNewstyle == 0 {
		return export{}, protoErr("server does not offer fixed newstyle (flags %#x)", sflags)
	}
	cflags := uint32(flagFixedNewstyle)
	if sflags&flagNoZeroes != 0 {
		cflags |= flagNoZeroes
		h.noZeroes = true
	}
	var out [4]byte
	be.PutUint32(out[:], cflags)
	if _, err := h.conn.Write(out[:]); err != nil {
		return export{}, fmt.Errorf("sending the client flags: %w", err)
	}

	ex := export{align: SectorSize, maxReq: maxRequest}
	if opts.TLS != nil {
		if err := h.startTLS(ctx, opts); err != nil {
			return export{}, err
		}
		ex.tls = true
	}
	if meta {
		var err error
		if ex.metaID, err = h.metaContext(opts.ExportName); err != nil {
			return export{}, err
		}
		ok, err := h.optGo(opts.ExportName, &ex)
		if err == nil && !ok {
			err = fmt.Errorf("%w: NBD_OPT_GO is not supported", ErrNoBlockStatus)
		}
		return ex, err
	}
	if !opts.ExportNameOnly {
		ok, err := h.optGo(opts.ExportName, &ex)
		if err != nil || ok {
			return ex, err
		}
	}
	return ex, h.exportName(opts.ExportName, &ex)
}

func (h *handshaker) sendOption(opt uint32, payload []byte) error {
	b := make([]byte, 16+len(payload))
	binary.BigEndian.PutUint64(b, magicOpt)
	binary.BigEndian.PutUint32(b[8:], opt)
	binary.BigEndian.PutUint32(b[12:], uint32(len(payload)))
	copy(b[16:], payload)
	if _, err := h.conn.Write(b); err != nil {
		return fmt.Errorf("sending %s: %w", optName(opt), err)
	}
	return nil
}

// optReply reads one option reply header and returns its type and a payload
// of at most maxOptPayload bytes (the rest is discarded, within a budget).
func (h *handshaker) optReply(opt uint32) (typ uint32, payload []byte, err error) {
	be := binary.BigEndian
	b, err := h.read(20)
	if err != nil {
		return 0, nil, fmt.Errorf("reading the reply to %s: %w", optName(opt), err)
	}
	if m := be.Uint64(b); m != magicOptReply {
		return 0, nil, protoErr("option reply magic %#x", m)
	}
	if o := be.Uint32(b[8:]); o != opt {
		return 0, nil, protoErr("reply to option %d while %s was sent", o, optName(opt))
	}
	typ = be.Uint32(b[12:])
	n := int64(be.Uint32(b[16:]))
	keep := min(n, maxOptPayload)
	h.discard += n - keep
	if h.discard > maxOptDiscard {
		return 0, nil, protoErr("option replies longer than %d bytes", maxOptDiscard)
	}
	if payload, err = h.read(int(keep)); err != nil {
		return 0, nil, fmt.Errorf("reading the reply to %s: %w", optName(opt), err)
	}
	if n > keep {
		if _, err := io.CopyN(io.Discard, h.conn, n-keep); err != nil {
			return 0, nil, fmt.Errorf("reading the reply to %s: %w", optName(opt), err)
		}
	}
	return typ, payload, nil
}

func optError(opt, typ uint32, payload []byte) error {
	if typ&repFlagError == 0 {
		return protoErr("unexpected reply type %#x to %s", typ, optName(opt))
	}
	return &OptionError{Option: opt, Reply: typ, Message: string(payload)}
}

func (h *handshaker) startTLS(ctx context.Context, opts *Options) error {
	if err := h.sendOption(optStartTLS, nil); err != nil {
		return err
	}
	typ, payload, err := h.optReply(optStartTLS)
	if err != nil {
		return err
	}
	if typ != repAck {
		return optError(optStartTLS, typ, payload)
	}
	if len(payload) != 0 {
		return protoErr("STARTTLS acknowledged with a %d-byte payload", len(payload))
	}
	cfg := opts.TLS
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		cfg = cfg.Clone()
		cfg.ServerName = opts.Address
		if host, _, err := net.SplitHostPort(opts.Address); err == nil {
			cfg.ServerName = host
		}
	}
	tc := tls.Client(h.conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	h.conn = tc
	return nil
}

// optGo selects the export with NBD_OPT_GO. ok is false when the server
// does not support the option (xapi-nbd), so NBD_OPT_EXPORT_NAME must be used.
func (h *handshaker) optGo(name string, ex *export) (ok bool, err error) {
	be := binary.BigEndian
	if len(name) > maxOptPayload {
		return false, fmt.Errorf("export name of %d bytes is too long", len(name))
	}
	payload := make([]byte, 0, 4+len(name)+4)
	payload = be.AppendUint32(payload, uint32(len(name)))
	payload = append(payload, name...)
	payload = be.AppendUint16(payload, 1)
	payload = be.AppendUint16(payload, infoBlockSize)
	if err := h.sendOption(optGo, payload); err != nil {
		return false, err
	}
	haveExport := false
	for range maxOptReplies {
		typ, p, err := h.optReply(optGo)
		if err != nil {
			return false, err
		}
		switch {
		case typ == repAck:
			if !haveExport {
				return false, protoErr("NBD_OPT_GO acknowledged without NBD_INFO_EXPORT")
			}
			return true, nil
		case typ == repInfo:
			if len(p) < 2 {
				return false, protoErr("NBD_REP_INFO of %d bytes", len(p))
			}
			switch be.Uint16(p) {
			case infoExport:
				if len(p) != 12 {
					return false, protoErr("NBD_INFO_EXPORT of %d bytes", len(p))
				}
				if ex.size, err = exportSize(be.Uint64(p[2:])); err != nil {
					return false, err
				}
				ex.flags = be.Uint16(p[10:])
				haveExport = true
			case infoBlockSize:
				if len(p) != 14 {
					return false, protoErr("NBD_INFO_BLOCK_SIZE of %d bytes", len(p))
				}
				minB, maxB := int64(be.Uint32(p[2:])), int64(be.Uint32(p[10:]))
				if minB > SectorSize && minB <= 64<<10 && minB&(minB-1) == 0 {
					ex.align = minB
				}
				if maxB >= ex.align && maxB < ex.maxReq {
					ex.maxReq = maxB / ex.align * ex.align
				}
			}
		case typ == repErrUnsup:
			return false, nil
		default:
			return false, optError(optGo, typ, p)
		}
	}
	return false, protoErr("more than %d replies to NBD_OPT_GO", maxOptReplies)
}

func exportSize(v uint64) (int64, error) {
	if v > math.MaxInt64 {
		return 0, protoErr("export size %d is out of range", v)
	}
	return int64(v), nil
}

// exportName selects the export with NBD_OPT_EXPORT_NAME, the only way
// xapi-nbd knows. The server answers with the size and flags, then 124 zero
// bytes unless NO_ZEROES was negotiated, or closes the connection.
func (h *handshaker) exportName(name string, ex *export) error {
	if err := h.sendOption(optExportName, []byte(name)); err != nil {
		return err
	}
	n := 134
	if h.noZeroes {
		n = 10
	}
	b, err := h.read(n)
	if err != nil {
		return fmt.Errorf("reading the reply to NBD_OPT_EXPORT_NAME (the server closes the connection for an unknown export or when it requires TLS): %w", err)
	}
	if ex.size, err = exportSize(binary.BigEndian.Uint64(b)); err != nil {
		return err
	}
	ex.flags = binary.BigEndian.Uint16(b[8:])
	return nil
}

// metaContext negotiates structured replies and the base:allocation
// metadata context, and returns the context's id.
func (h *handshaker) metaContext(name string) (uint32, error) {
	be := binary.BigEndian
	if err := h.sendOption(optStructuredReply, nil); err != nil {
		return 0, err
	}
	typ, p, err := h.optReply(optStructuredReply)
	if err != nil {
		return 0, err
	}
	if typ != repAck {
		return 0, fmt.Errorf("%w: %w", ErrNoBlockStatus, optError(optStructuredReply, typ, p))
	}
	payload := be.AppendUint32(nil, uint32(len(name)))
	payload = append(payload, name...)
	payload = be.AppendUint32(payload, 1)
	payload = be.AppendUint32(payload, uint32(len(contextAllocation)))
	payload = append(payload, contextAllocation...)
	if err := h.sendOption(optSetMetaContext, payload); err != nil {
		return 0, err
	}
	var id uint32
	found := false
	for range maxOptReplies {
		typ, p, err := h.optReply(optSetMetaContext)
		if err != nil {
			return 0, err
		}
		switch {
		case typ == repMetaContext:
			if len(p) < 4 {
				return 0, protoErr("NBD_REP_META_CONTEXT of %d bytes", len(p))
			}
			if string(p[4:]) == contextAllocation {
				id, found = be.Uint32(p), true
			}
		case typ == repAck:
			if !found {
				return 0, fmt.Errorf("%w: no %s context", ErrNoBlockStatus, contextAllocation)
			}
			return id, nil
		default:
			return 0, fmt.Errorf("%w: %w", ErrNoBlockStatus, optError(optSetMetaContext, typ, p))
		}
	}
	return 0, protoErr("more than %d replies to NBD_OPT_SET_META_CONTEXT", maxOptReplies)
}

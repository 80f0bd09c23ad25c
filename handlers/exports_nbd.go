package handlers

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/xorest/xorest/transfer/nbd"
	"github.com/xorest/xorest/transfer/vhd"
	"github.com/xorest/xorest/xo/xapi"
)

// nbdConcurrency parses ?nbdConcurrency=N (default 1).
func nbdConcurrency(q url.Values) (int, error) {
	v := q.Get("nbdConcurrency")
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 32 {
		return 0, paramError("nbdConcurrency", "must be an integer from 1 to 32", v)
	}
	return n, nil
}

// nbdEndpoints returns the NBD endpoints of VDI.get_nbd_info for vdi
// (xapi.md §9.1), with TLS pinned to each record's certificate; none when
// the VDI's SR is on no NBD network.
func nbdEndpoints(ctx context.Context, xc *xapi.Client, vdi xapi.Ref) ([]nbd.Options, error) {
	v, err := xc.Call(ctx, "VDI.get_nbd_info", vdi)
	if err != nil {
		return nil, fmt.Errorf("VDI.get_nbd_info: %w", err)
	}
	infos, _ := v.([]any)
	var out []nbd.Options
	for _, it := range infos {
		rec, _ := it.(map[string]any)
		address, _ := rec["address"].(string)
		export, _ := rec["exportname"].(string)
		if address == "" || export == "" {
			continue
		}
		o := nbd.Options{
			Address:        net.JoinHostPort(address, portString(rec["port"])),
			ExportName:     export,
			ExportNameOnly: true, // xapi-nbd knows no NBD_OPT_GO
		}
		if cert, _ := rec["cert"].(string); cert != "" {
			subject, _ := rec["subject"].(string)
			cfg, err := nbd.PinnedTLSConfig([]byte(cert), subject)
			if err != nil {
				return nil, fmt.Errorf("NBD certificate of %s: %w", address, err)
			}
			o.TLS = cfg
		}
		out = append(out, o)
	}
	return out, nil
}

// portString formats a port decoded from XAPI (a string over XML-RPC, a
// number over JSON-RPC).
func portString(v any) string {
	switch p := v.(type) {
	case string:
		return p
	case float64:
		return strconv.FormatInt(int64(p), 10)
	case int64:
		return strconv.FormatInt(p, 10)
	case int:
		return strconv.Itoa(p)
	}
	return "10809"
}

// vhdBlocks reads the allocated block indices from the BAT of the VDI's
// VHD export, then closes that export (its task is cancelled), as XO's
// createNbdVhdStream does: the data then comes from NBD.
func vhdBlocks(ctx context.Context, xc *xapi.Client, vdi xapi.Ref) ([]int64, error) {
	d, err := xc.GetExport(ctx, "/export_raw_vdi", url.Values{"vdi": {string(vdi)}, "format": {"vhd"}}, "xorest: VHD block map")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	head := make([]byte, vhd.FooterSize+vhd.HeaderSize)
	if _, err := io.ReadFull(d, head); err != nil {
		return nil, fmt.Errorf("VHD head: %w", err)
	}
	if _, err := vhd.ParseFooter(head[:vhd.FooterSize], 0); err != nil {
		return nil, err
	}
	h, err := vhd.ParseHeader(head[vhd.FooterSize:], vhd.FooterSize)
	if err != nil {
		return nil, err
	}
	if h.BlockSize != nbd.BlockSize {
		return nil, fmt.Errorf("VHD block size %d, not %d", h.BlockSize, nbd.BlockSize)
	}
	if skip := int64(h.TableOffset) - int64(len(head)); skip > 0 {
		if _, err := io.CopyN(io.Discard, d, skip); err != nil {
			return nil, fmt.Errorf("VHD up to the BAT: %w", err)
		}
	}
	bat := make([]byte, 4*int64(h.MaxTableEntries))
	if _, err := io.ReadFull(d, bat); err != nil {
		return nil, fmt.Errorf("VHD BAT: %w", err)
	}
	var blocks []int64
	for i := range int64(h.MaxTableEntries) {
		if binary.BigEndian.Uint32(bat[4*i:]) != 0xFFFFFFFF {
			blocks = append(blocks, i)
		}
	}
	return blocks, nil
}

// exportDiskNBD serves a disk export from NBD (?preferNbd): raw as the
// whole disk, VHD built with transfer/vhd from the blocks the XAPI VHD
// export's BAT lists, both with an exact Content-Length. It reports false,
// with nothing written, when NBD is not available (no NBD network, no
// connection), to fall back on the HTTP export as XO does.
func (s *server) exportDiskNBD(w http.ResponseWriter, r *http.Request, xc *xapi.Client, ref xapi.Ref, size int64, format, name string, conns int) (bool, error) {
	st, err := s.openDiskNBD(r.Context(), xc, ref, size, format, name, conns)
	if err != nil || st == nil {
		return false, err
	}
	outcome := errAborted
	defer func() { st.end(outcome) }()
	h := w.Header()
	h.Set("Content-Type", st.contentType)
	h.Set("Content-Disposition", attachment(name, "."+format))
	outcome = s.stream(w, r, st, st.size)
	return true, outcome
}

// openDiskNBD opens a disk export read from NBD, raw or as a VHD, with its
// exact length; nil (and no error) when NBD is not available, to fall back
// on the HTTP export as XO does. The reads show their progress on a task
// of their own, which the stream's end closes.
func (s *server) openDiskNBD(ctx context.Context, xc *xapi.Client, ref xapi.Ref, size int64, format, name string, conns int) (*exportStream, error) {
	endpoints, err := nbdEndpoints(ctx, xc, ref)
	if err != nil || len(endpoints) == 0 {
		s.log.DebugContext(ctx, "no NBD, HTTP export", "vdi", string(ref), "error", fmt.Sprint(err))
		return nil, nil
	}
	var blocks []int64
	if format == "vhd" {
		if blocks, err = vhdBlocks(ctx, xc, ref); err != nil {
			return nil, fmt.Errorf("VHD block map: %w", err)
		}
	}
	rd, err := nbd.NewReader(ctx, nbd.ReaderOptions{Endpoints: endpoints, Connections: conns, Blocks: blocks})
	if err != nil {
		s.log.InfoContext(ctx, "NBD connection failed, HTTP export", "vdi", string(ref), "error", err.Error())
		return nil, nil
	}
	var body io.Reader = rd.Raw()
	length := rd.Size()
	contentType := "application/octet-stream"
	if format == "vhd" {
		st, err := vhd.NewStream(vhd.Options{Size: size}, blocks, rd)
		if err != nil {
			_ = rd.Close()
			return nil, fmt.Errorf("VHD stream: %w", err)
		}
		body, length = st, st.Size()
		contentType = "application/vhd"
	}
	// The reads are the client's: a task of its own shows their progress.
	p, err := xc.StartProgress(ctx, "Exporting content of VDI "+name+" using NBD", "xorest: "+format+" export over NBD", length)
	if err != nil {
		_ = rd.Close()
		return nil, err
	}
	return &exportStream{Reader: p.Reader(body), size: length, contentType: contentType, end: func(outcome error) {
		_ = rd.Close()
		p.Done(outcome)
	}}, nil
}

// errAborted is the outcome of an NBD export whose response was aborted.
var errAborted = errors.New("export aborted")

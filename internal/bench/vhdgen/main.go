// Command vhdgen benchmarks xorest's raw -> dynamic VHD generation
// (transfer/vhd ScanBlocks + NewStream) on a raw file, the side-by-side peer
// of internal/bench/vhd_node.mjs (npm vhd-lib).
//
//	vhdgen -make IN.raw          write the deterministic 1 GiB sparse input
//	vhdgen -in IN.raw -out OUT -n N   (OUT defaults to /dev/null)
//
// The second form prints one JSON line per run:
// {"client":..., "bytes_in":..., "ns":...}.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/xorest/xorest/transfer/vhd"
)

const (
	inputSize = 1 << 30
	// Every fourth 2 MiB block holds data: 256 MiB in 128 extents.
	dataEvery = 4
)

func main() {
	mk := flag.Bool("make", false, "write the benchmark input to -in and exit")
	in := flag.String("in", "", "raw input file")
	out := flag.String("out", os.DevNull, "VHD output file")
	n := flag.Int("n", 3, "runs")
	flag.Parse()
	if *in == "" {
		fmt.Fprintln(os.Stderr, "vhdgen: -in is required")
		os.Exit(2)
	}
	var err error
	if *mk {
		err = makeInput(*in)
	} else {
		err = run(context.Background(), *in, *out, *n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vhdgen:", err)
		os.Exit(1)
	}
}

// makeInput writes a sparse 1 GiB raw file whose every fourth 2 MiB block
// holds deterministic pseudo-random bytes; the other blocks are holes.
func makeInput(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating input: %w", err)
	}
	buf := make([]byte, vhd.BlockSize)
	for blk := int64(0); blk*vhd.BlockSize < inputSize; blk += dataEvery {
		x := uint64(blk)*0x9e3779b97f4a7c15 | 1
		for i := 0; i+8 <= len(buf); i += 8 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			for j := range 8 {
				buf[i+j] = byte(x >> (8 * j))
			}
		}
		if _, err := f.WriteAt(buf, blk*vhd.BlockSize); err != nil {
			f.Close()
			return fmt.Errorf("writing input block %d: %w", blk, err)
		}
	}
	if err := f.Truncate(inputSize); err != nil {
		f.Close()
		return fmt.Errorf("sizing input: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing input: %w", err)
	}
	return nil
}

type result struct {
	Client  string `json:"client"`
	BytesIn int64  `json:"bytes_in"`
	NS      int64  `json:"ns"`
}

func run(ctx context.Context, in, out string, n int) error {
	enc := json.NewEncoder(os.Stdout)
	for range n {
		start := time.Now()
		size, err := convert(ctx, in, out)
		if err != nil {
			return err
		}
		if err := enc.Encode(result{Client: "xorest transfer/vhd", BytesIn: size, NS: time.Since(start).Nanoseconds()}); err != nil {
			return fmt.Errorf("writing result: %w", err)
		}
	}
	return nil
}

// convert turns the raw file in into a dynamic VHD written to out, the way
// an xorest export of a raw disk does, and returns the raw size.
func convert(ctx context.Context, in, out string) (int64, error) {
	src, err := os.Open(in)
	if err != nil {
		return 0, fmt.Errorf("opening input: %w", err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat input: %w", err)
	}
	size := st.Size()
	blocks, err := vhd.ScanBlocks(ctx, src, size)
	if err != nil {
		return 0, fmt.Errorf("scanning input: %w", err)
	}
	s, err := vhd.NewStream(vhd.Options{Size: size}, blocks, vhd.ReaderAtSource(src, size, blocks))
	if err != nil {
		return 0, fmt.Errorf("building VHD stream: %w", err)
	}
	// /dev/null is opened as a file too, so that both peers pay the same
	// write syscalls.
	f, err := os.Create(out)
	if err != nil {
		return 0, fmt.Errorf("creating output: %w", err)
	}
	if _, err := s.WriteTo(f); err != nil {
		f.Close()
		return 0, fmt.Errorf("writing VHD: %w", err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("closing output: %w", err)
	}
	return size, nil
}

// Command getall measures VM.get_all_records through the xorest XAPI client
// (xo/xapi): the same call getall_node.mjs makes through npm xen-api.
//
// Usage: getall -url URL -user U -password P -n CALLS [-typed] [-transport auto|json-rpc|xml-rpc]
//
// It prints one JSON line: client, calls, records, ns_per_call and
// peak_rss_bytes (VmHWM of this process, which includes the Go runtime).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/xorest/xorest/xo/xapi"
)

func main() {
	url := flag.String("url", "", "XAPI URL")
	user := flag.String("user", "root", "XAPI user")
	password := flag.String("password", "", "XAPI password")
	n := flag.Int("n", 5, "timed calls after one warm-up call")
	typed := flag.Bool("typed", false, "decode into xapi.VM structs instead of generic maps")
	cold := flag.Bool("cold", false, "time only the first call, login included, as a fresh process makes it")
	transport := flag.String("transport", xapi.TransportAuto, "XAPI protocol: auto (JSON-RPC, XML-RPC fallback), json-rpc or xml-rpc")
	flag.Parse()
	if *cold {
		*n = 0
	}
	if err := run(*url, *user, *password, *n, *typed, *transport); err != nil {
		fmt.Fprintln(os.Stderr, "getall:", err)
		os.Exit(1)
	}
}

func run(url, user, password string, n int, typed bool, transport string) error {
	ctx := context.Background()
	coldStart := time.Now()
	c, err := xapi.New(xapi.Options{URL: url, Username: user, Password: password, Transport: transport})
	if err != nil {
		return err
	}
	if err := c.Login(ctx); err != nil {
		return err
	}
	defer c.Logout(ctx)

	call := func() (int, error) {
		if typed {
			vms, err := c.VMs(ctx)
			return len(vms), err
		}
		vms, err := c.GetAllRecords(ctx, "VM")
		return len(vms), err
	}
	records, err := call() // warm-up
	if err != nil {
		return err
	}
	elapsed, calls := time.Since(coldStart), 1
	if n > 0 {
		start := time.Now()
		for range n {
			if records, err = call(); err != nil {
				return err
			}
		}
		elapsed, calls = time.Since(start), n
	}

	kind := "generic"
	if typed {
		kind = "typed"
	}
	// the protocol the client settled on (auto reports what it chose)
	name := "xorest xo/xapi " + kind + " " + c.Transport()
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"client":         name,
		"calls":          calls,
		"records":        records,
		"ns_per_call":    elapsed.Nanoseconds() / int64(calls),
		"peak_rss_bytes": peakRSS(),
	})
}

// peakRSS returns VmHWM from /proc/self/status, or 0 where there is none.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb * 1024
}

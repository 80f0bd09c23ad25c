// Command restload drives a running xorest for `make bench`.
//
//	restload -mode get   -url URL -token T -n 50 -c 4   # latency and throughput of one GET
//	restload -mode cold  -url URL -token T              # time of the first GET (cold cache)
//	restload -mode watch -url URL -token T -watchers 1000 -changes 20 \
//	         -xapi XAPIURL -xapi-user U -xapi-password P -vm UUID
//
// In watch mode it opens the watchers (GET ...?ndjson&watch on the vms
// collection), renames a VM through XAPI every 200 ms, and measures when
// each watcher sees each new name. Every mode prints one JSON line.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xorest/xorest/xo/xapi"
)

func main() {
	mode := flag.String("mode", "get", "get, cold or watch")
	url := flag.String("url", "", "xorest URL to GET (with its query)")
	token := flag.String("token", "", "xorest token")
	n := flag.Int("n", 50, "requests (get mode)")
	c := flag.Int("c", 1, "concurrent clients (get mode)")
	watchers := flag.Int("watchers", 1000, "watch streams (watch mode)")
	changes := flag.Int("changes", 20, "renames (watch mode)")
	xapiURL := flag.String("xapi", "", "XAPI URL (watch mode)")
	xapiUser := flag.String("xapi-user", "root", "XAPI user (watch mode)")
	xapiPassword := flag.String("xapi-password", "", "XAPI password (watch mode)")
	vm := flag.String("vm", "", "uuid of the VM to rename (watch mode)")
	flag.Parse()

	var err error
	switch *mode {
	case "get":
		err = runGet(*url, *token, *n, *c)
	case "cold":
		err = runGet(*url, *token, 1, 1)
	case "watch":
		err = runWatch(*url, *token, *watchers, *changes, *xapiURL, *xapiUser, *xapiPassword, *vm)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "restload:", err)
		os.Exit(1)
	}
}

func client(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
}

func get(hc *http.Client, url, token string) (int64, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, err
	}
	req.AddCookie(&http.Cookie{Name: "authenticationToken", Value: token})
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return n, err
}

func runGet(url, token string, n, c int) error {
	hc := client(c)
	var (
		mu    sync.Mutex
		lat   []time.Duration
		bytes int64
		first error
	)
	jobs := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				t := time.Now()
				b, err := get(hc, url, token)
				d := time.Since(t)
				mu.Lock()
				lat, bytes = append(lat, d), b
				if err != nil && first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil {
		return first
	}
	slices.Sort(lat)
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"requests":       n,
		"concurrency":    c,
		"response_bytes": bytes,
		"p50_ns":         lat[len(lat)/2].Nanoseconds(),
		"p99_ns":         lat[(len(lat)*99)/100].Nanoseconds(),
		"req_per_s":      float64(n) / elapsed.Seconds(),
	})
}

func runWatch(url, token string, watchers, changes int, xapiURL, user, password, vm string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	hc := client(watchers + 1)

	type seen struct {
		change int
		at     time.Time
	}
	results := make(chan seen, watchers*changes)
	ready := make(chan error, watchers)
	for range watchers {
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
			req.AddCookie(&http.Cookie{Name: "authenticationToken", Value: token})
			resp, err := hc.Do(req)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("watch: %s", resp.Status)
			}
			ready <- err
			if err != nil {
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 1<<24)
			for sc.Scan() {
				line := sc.Text()
				if i := strings.Index(line, "bench-change-"); i >= 0 {
					rest := line[i+len("bench-change-"):]
					if j := strings.IndexByte(rest, '"'); j > 0 {
						if k, err := strconv.Atoi(rest[:j]); err == nil {
							results <- seen{k, time.Now()}
						}
					}
				}
			}
		}()
	}
	for range watchers {
		if err := <-ready; err != nil {
			return err
		}
	}

	x, err := xapi.New(xapi.Options{URL: xapiURL, Username: user, Password: password})
	if err != nil {
		return err
	}
	if err := x.Login(ctx); err != nil {
		return err
	}
	defer x.Logout(context.Background())
	var ref string
	if err := x.CallInto(ctx, &ref, "VM.get_by_uuid", vm); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond) // let every stream reach the server's watch loop
	sent := make([]time.Time, changes)
	for i := range changes {
		sent[i] = time.Now()
		if _, err := x.Call(ctx, "VM.set_name_label", ref, fmt.Sprintf("bench-change-%d", i)); err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}

	var lat []time.Duration
	deadline := time.After(30 * time.Second)
collect:
	for len(lat) < watchers*changes {
		select {
		case s := <-results:
			if s.change >= 0 && s.change < changes {
				lat = append(lat, s.at.Sub(sent[s.change]))
			}
		case <-deadline:
			break collect
		}
	}
	cancel()
	if len(lat) == 0 {
		return fmt.Errorf("no watcher saw any change")
	}
	slices.Sort(lat)
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"watchers":  watchers,
		"changes":   changes,
		"delivered": len(lat),
		"expected":  watchers * changes,
		"p50_ns":    lat[len(lat)/2].Nanoseconds(),
		"p99_ns":    lat[(len(lat)*99)/100].Nanoseconds(),
	})
}

// Command coldstart measures Lambda cold starts under the AWS Lambda
// runtime interface emulator (aws-lambda-rie), for `make bench`: each run
// starts a fresh emulator with the bootstrap, sends one event and times
// the first answer, then kills the emulator and its bootstrap.
//
// Usage:
//
//	coldstart -rie PATH -bootstrap PATH -event FILE [-n 5] [-status 200] [-case NAME] [-timeout 30s]
//
// The emulator, and so the bootstrap, get this process's environment. The
// emulator starts the bootstrap on the first invoke (as Lambda does on an
// on-demand cold start), so each run's first answer includes the process
// start, the function's initialisation and its first request.
//
// It prints one JSON line: case, runs, start_ns (emulator start to first
// answer, per run), invoke_ns (invoke sent to answer), init_ns (the
// emulator's INIT REPORT duration: bootstrap exec to its first request for
// work) and answer (the first run's answer, truncated). A run whose answer
// is not a 200 invoke with statusCode -status fails the command.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	rie, bootstrap, event, name string
	runs, status                int
	timeout                     time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.rie, "rie", "", "path of aws-lambda-rie")
	flag.StringVar(&o.bootstrap, "bootstrap", "", "path of the function's bootstrap")
	flag.StringVar(&o.event, "event", "", "file holding the JSON event to send")
	flag.StringVar(&o.name, "case", "", "the case name printed (default: the bootstrap path)")
	flag.IntVar(&o.runs, "n", 5, "cold starts to measure (1 to 50)")
	flag.IntVar(&o.status, "status", 200, "statusCode the answer must carry")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "bound of each run")
	flag.Parse()
	if err := run(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}

// sample is one cold start.
type sample struct {
	start, invoke, init time.Duration
	answer              []byte
}

func run(ctx context.Context, o options, stdout io.Writer) error {
	if o.rie == "" || o.bootstrap == "" || o.event == "" {
		return errors.New("-rie, -bootstrap and -event are required")
	}
	if o.runs < 1 || o.runs > 50 {
		return fmt.Errorf("-n %d not in [1, 50]", o.runs)
	}
	event, err := os.ReadFile(o.event)
	if err != nil {
		return err
	}
	if o.name == "" {
		o.name = o.bootstrap
	}
	out := map[string]any{"case": o.name, "runs": o.runs}
	var starts, invokes, inits []int64
	for i := range o.runs {
		s, err := coldStart(ctx, o, event)
		if err != nil {
			return fmt.Errorf("%s, run %d: %w", o.name, i+1, err)
		}
		starts = append(starts, s.start.Nanoseconds())
		invokes = append(invokes, s.invoke.Nanoseconds())
		inits = append(inits, s.init.Nanoseconds())
		if i == 0 {
			out["answer"] = string(s.answer[:min(len(s.answer), 200)])
		}
	}
	out["start_ns"], out["invoke_ns"], out["init_ns"] = starts, invokes, inits
	return json.NewEncoder(stdout).Encode(out)
}

// initReport is the emulator's log line of the init phase's duration.
var initReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// coldStart runs the emulator once and times its first answer.
func coldStart(ctx context.Context, o options, event []byte) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	port, err := freePort()
	if err != nil {
		return sample{}, err
	}
	apiPort, err := freePort()
	if err != nil {
		return sample{}, err
	}
	cmd := exec.Command(o.rie,
		"--runtime-interface-emulator-address", "127.0.0.1:"+strconv.Itoa(port),
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(apiPort),
		o.bootstrap)
	log := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{}, fmt.Errorf("start %s: %w", o.rie, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the emulator and its bootstrap
		<-exited
	}()

	addr := "127.0.0.1:" + strconv.Itoa(port)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			return sample{}, fmt.Errorf("the emulator exited: %s", log.String())
		case <-ctx.Done():
			return sample{}, fmt.Errorf("the emulator does not listen on %s: %w\n%s", addr, err, log.String())
		case <-time.After(2 * time.Millisecond):
		}
	}
	url := "http://" + addr + "/2015-03-31/functions/function/invocations"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(event))
	if err != nil {
		return sample{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	sent := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return sample{}, fmt.Errorf("invoke: %w\n%s", err, log.String())
	}
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	done := time.Now()
	if err != nil {
		return sample{}, fmt.Errorf("invoke: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return sample{}, fmt.Errorf("invoke: status %d: %s\n%s", resp.StatusCode, answer, log.String())
	}
	var got struct {
		StatusCode int `json:"statusCode"`
	}
	if err := json.Unmarshal(answer, &got); err != nil || got.StatusCode != o.status {
		return sample{}, fmt.Errorf("answer %q has statusCode %d, want %d (%v)\n%s", answer, got.StatusCode, o.status, err, log.String())
	}
	s := sample{start: done.Sub(started), invoke: done.Sub(sent), answer: answer}
	// The emulator logs the init report before it forwards the invoke.
	if m := initReport.FindStringSubmatch(log.String()); m != nil {
		ms, _ := strconv.ParseFloat(m[1], 64)
		s.init = time.Duration(ms * float64(time.Millisecond))
	}
	return s, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer collects the emulator's output, written by exec's copying
// goroutines while run reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

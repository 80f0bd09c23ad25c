package peertest

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// RIEInstall is the command that installs the Lambda runtime interface
// emulator the tests run functions under.
const RIEInstall = "GOBIN=<repo>/.peers/bin go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// RIE returns the path of aws-lambda-rie (see Binary), failing tb with
// the install command when it is missing.
func RIE(tb testing.TB) string {
	tb.Helper()
	p, err := Binary("aws-lambda-rie", RIEInstall)
	if err != nil {
		tb.Fatalf("aws-lambda-rie (the Lambda runtime interface emulator): %v", err)
	}
	return p
}

// RIEFunction is a Lambda bootstrap running under the emulator.
type RIEFunction struct {
	// URL is the emulator's invocation URL (POST an event there).
	URL string
	// Started is when the emulator was started (cold start measurements).
	Started time.Time
	// Log receives the output of the emulator and the bootstrap; read it
	// once the test has ended.
	Log *bytes.Buffer
}

// StartRIE runs bootstrap under aws-lambda-rie on free loopback ports, with
// env added to this process's environment, and waits until the emulator
// listens. At the end of the test both are killed, and their output is
// logged if the test failed.
func StartRIE(tb testing.TB, bootstrap string, env ...string) *RIEFunction {
	tb.Helper()
	bin := RIE(tb)
	port, apiPort := FreePort(tb), FreePort(tb)
	f := &RIEFunction{
		URL: "http://127.0.0.1:" + strconv.Itoa(port) + "/2015-03-31/functions/function/invocations",
		Log: &bytes.Buffer{},
	}
	cmd := exec.Command(bin,
		"--runtime-interface-emulator-address", "127.0.0.1:"+strconv.Itoa(port),
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(apiPort),
		bootstrap)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f.Log, f.Log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	f.Started = time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting %s: %v", bin, err)
	}
	tb.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the emulator and its bootstrap
		cmd.Wait()
		if tb.Failed() {
			tb.Logf("emulator output:\n%s", f.Log)
		}
	})
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			return f
		}
		if i == 500 {
			tb.Fatalf("the emulator does not listen on port %d: %v", port, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// FreePort returns a loopback TCP port that nothing listens on now.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

package peertest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"time"
)

// VersityGWInstall is how versitygw, the S3 test peer, is installed
// (scripts/install-peers.sh).
const VersityGWInstall = "GOBIN=<repo>/.peers/bin go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// VersityGW is one running versitygw with a posix backend in a temporary
// directory.
type VersityGW struct {
	// Endpoint is the server's base URL, http://127.0.0.1:<port>.
	Endpoint string

	cmd    *exec.Cmd
	dir    string
	log    bytes.Buffer
	exited chan struct{}
}

// StartVersityGW runs versitygw on a free loopback port with the given root
// credentials and returns once it answers HTTP. The caller must Stop it.
func StartVersityGW(accessKey, secretKey string) (*VersityGW, error) {
	bin, err := Binary("versitygw", VersityGWInstall)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "xorest-versitygw-")
	if err != nil {
		return nil, fmt.Errorf("versitygw data directory: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("versitygw port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()

	g := &VersityGW{Endpoint: "http://" + addr, dir: dir, exited: make(chan struct{})}
	g.cmd = exec.Command(bin, "--port", addr, "--quiet", "posix", dir)
	g.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+accessKey, "ROOT_SECRET_ACCESS_KEY="+secretKey)
	g.cmd.Stdout = &g.log
	g.cmd.Stderr = &g.log
	if err := g.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { g.cmd.Wait(); close(g.exited) }()

	// Any HTTP answer (403 without credentials) means it is serving.
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(g.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return g, nil
		}
		select {
		case <-g.exited:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("%s exited before answering: %s", bin, g.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			g.Stop()
			return nil, fmt.Errorf("%s did not answer on %s: %w", bin, addr, err)
		}
	}
}

// Stop kills the server, waits for it to exit and removes its data.
func (g *VersityGW) Stop() {
	g.cmd.Process.Kill()
	<-g.exited
	os.RemoveAll(g.dir)
}

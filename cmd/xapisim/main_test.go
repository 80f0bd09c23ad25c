package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr string
	}{
		{"defaults", nil, nil, config{listen: "127.0.0.1:8080", user: "root", password: "password", vms: 6, diskSize: 10 << 30}, ""},
		{"flags", []string{"--listen", "127.0.0.1:0", "--user", "u", "--password", "p", "--vms", "3", "--disk-size", "1048576"}, nil,
			config{listen: "127.0.0.1:0", user: "u", password: "p", vms: 3, diskSize: 1 << 20}, ""},
		{"env", nil, map[string]string{"XOREST_USER": "eu", "XOREST_VMS": "9", "XOREST_DISK_SIZE": "512", "XOREST_POOL_MEMBER_OF": "10.0.0.1"},
			config{listen: "127.0.0.1:8080", user: "eu", password: "password", vms: 9, diskSize: 512, poolMember: "10.0.0.1"}, ""},
		{"flag beats env", []string{"--vms", "1"}, map[string]string{"XOREST_VMS": "9"},
			config{listen: "127.0.0.1:8080", user: "root", password: "password", vms: 1, diskSize: 10 << 30}, ""},
		{"nbd", []string{"--nbd", "127.0.0.1:10809", "--nbd-tls"}, nil,
			config{listen: "127.0.0.1:8080", user: "root", password: "password", vms: 6, diskSize: 10 << 30, nbd: "127.0.0.1:10809", nbdTLS: true}, ""},
		{"nbd from env", nil, map[string]string{"XOREST_NBD": "127.0.0.1:0"},
			config{listen: "127.0.0.1:8080", user: "root", password: "password", vms: 6, diskSize: 10 << 30, nbd: "127.0.0.1:0"}, ""},
		{"nbd-tls without nbd", nil, map[string]string{"XOREST_NBD_TLS": "true"}, config{}, "--nbd-tls needs --nbd"},
		{"bad env", nil, map[string]string{"XOREST_VMS": "many"}, config{}, "XOREST_VMS"},
		{"bad disk size", []string{"--disk-size", "1000"}, nil, config{}, "multiple of 512"},
		{"members", []string{"--member-listen", "host1=127.0.0.1:8082", "--member-listen", "host2=127.0.0.1:8083", "--member-tls", "--local-storage"}, nil,
			config{listen: "127.0.0.1:8080", user: "root", password: "password", vms: 6, diskSize: 10 << 30,
				members: "host1=127.0.0.1:8082,host2=127.0.0.1:8083", memberTLS: true, localStorage: true}, ""},
		{"members from env", nil, map[string]string{"XOREST_MEMBER_LISTEN": "host1=127.0.0.1:0, host2=127.0.0.1:0"},
			config{listen: "127.0.0.1:8080", user: "root", password: "password", vms: 6, diskSize: 10 << 30, members: "host1=127.0.0.1:0, host2=127.0.0.1:0"}, ""},
		{"member flag replaces env", []string{"--member-listen", "host1=127.0.0.1:9"}, map[string]string{"XOREST_MEMBER_LISTEN": "host2=127.0.0.1:0"},
			config{listen: "127.0.0.1:8080", user: "root", password: "password", vms: 6, diskSize: 10 << 30, members: "host1=127.0.0.1:9"}, ""},
		{"member without address", []string{"--member-listen", "host1"}, nil, config{}, "want HOST=ADDR"},
		{"member twice", []string{"--member-listen", "host1=127.0.0.1:0,host1=127.0.0.1:1"}, nil, config{}, "given twice"},
		{"member-tls without members", []string{"--member-tls"}, nil, config{}, "--member-tls needs --member-listen"},
		{"unknown flag", []string{"--frob"}, nil, config{}, "frob"},
		{"stray argument", []string{"serve"}, nil, config{}, "unexpected argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseConfig(tc.args, func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestRunServesAndStops(t *testing.T) {
	m, _, stop := startRun(t, []string{"--listen", "127.0.0.1:0", "--vms", "2"}, regexp.MustCompile(`http://127\.0\.0\.1:\d+/`))
	url := string(m[0])
	body := []byte(`<?xml version="1.0"?><methodCall><methodName>session.login_with_password</methodName><params><param><value>root</value></param><param><value>password</value></param></params></methodCall>`)
	resp, err := http.Post(url, "text/xml", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(b, []byte("<value>Success</value>")) {
		t.Fatalf("login: %s", b)
	}
	stop()
}

// TestRunServesMember starts host1's own TLS listener: the printed
// fingerprint is its certificate's, and it answers XAPI calls.
func TestRunServesMember(t *testing.T) {
	m, out, stop := startRun(t, []string{"--listen", "127.0.0.1:0", "--vms", "2", "--local-storage", "--member-listen", "host1=127.0.0.1:0", "--member-tls"},
		regexp.MustCompile(`member host1 \(host uuid ([0-9a-f-]{36})\) at (https://127\.0\.0\.1:\d+/) \(certificate sha256 ([0-9a-f]{64})\)`))
	pin := string(m[3])
	var got string
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // the pin below is the check
		VerifyConnection: func(cs tls.ConnectionState) error {
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			got = hex.EncodeToString(sum[:])
			if got != pin {
				return errors.New("certificate does not match the printed fingerprint")
			}
			return nil
		},
	}}}
	body := []byte(`<?xml version="1.0"?><methodCall><methodName>session.login_with_password</methodName><params><param><value>root</value></param><param><value>password</value></param></params></methodCall>`)
	resp, err := client.Post(string(m[2]), "text/xml", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("member listener: %v (certificate %s, printed %s)", err, got, pin)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// A member refuses logins as XAPI's do, naming the master's listener.
	master := regexp.MustCompile(`serving a pool of \d+ VMs at http://([^/]+)/`).FindSubmatch(out)
	if master == nil || !bytes.Contains(b, []byte("<value>HOST_IS_SLAVE</value><value>"+string(master[1])+"</value>")) {
		t.Fatalf("login on the member: %s (master %q)", b, master)
	}
	stop()
}

func TestRunServesNBD(t *testing.T) {
	m, _, stop := startRun(t, []string{"--listen", "127.0.0.1:0", "--vms", "1", "--nbd", "127.0.0.1:0", "--nbd-tls"},
		regexp.MustCompile(`NBD server at (127\.0\.0\.1:\d+) \(TLS required`))
	addr := string(m[1])
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	greet := make([]byte, 18)
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(conn, greet); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if string(greet[:16]) != "NBDMAGICIHAVEOPT" {
		t.Errorf("NBD greeting %q", greet)
	}
	stop()
}

// startRun runs the command with args until its output matches re, and
// returns the match, the output so far and stop, which cancels the command
// and fails the test unless it returns cleanly.
func startRun(t *testing.T, args []string, re *regexp.Regexp) (match [][]byte, out []byte, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, func(string) string { return "" }, pw)
		pw.Close()
	}()
	buf := make([]byte, 512)
	for match == nil {
		n, err := pr.Read(buf)
		if err != nil {
			cancel()
			t.Fatalf("output %q: %v", out, err)
		}
		out = append(out, buf[:n]...)
		match = re.FindSubmatch(out)
	}
	go io.Copy(io.Discard, pr)
	return match, out, func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("run did not return after cancel")
		}
	}
}

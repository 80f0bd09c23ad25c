package peertest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "peertest", "doc.go")); err != nil {
		t.Errorf("RepoRoot() = %s, which does not hold internal/peertest: %v", root, err)
	}
}

func TestBinary(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "xorest-peertest-exe")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "xorest-peertest-plain"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "xorest-peertest-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XOREST_PEERS_BIN", dir)
	t.Setenv("PATH", t.TempDir())

	tests := []struct {
		name    string
		bin     string
		want    string
		wantErr []string
	}{
		{name: "executable in XOREST_PEERS_BIN", bin: "xorest-peertest-exe", want: exe},
		{name: "not executable", bin: "xorest-peertest-plain", wantErr: []string{"xorest-peertest-plain not found", dir, "install it with:\n\tinstall-hint\n"}},
		{name: "directory", bin: "xorest-peertest-dir", wantErr: []string{"xorest-peertest-dir not found", dir}},
		{name: "missing", bin: "xorest-peertest-missing", wantErr: []string{"not found in " + dir, filepath.Join(".peers", "bin"), "install-hint", "make peers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Binary(tt.bin, "install-hint")
			if tt.wantErr == nil {
				if err != nil || got != tt.want {
					t.Fatalf("Binary(%q) = %q, %v; want %q", tt.bin, got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Binary(%q) = %q, want an error", tt.bin, got)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

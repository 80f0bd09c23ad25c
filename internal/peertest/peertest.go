package peertest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// RepoRoot returns the module root: the nearest directory at or above the
// working directory that holds go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// MustRepoRoot is RepoRoot that fails tb when the root is not found.
func MustRepoRoot(tb testing.TB) string {
	tb.Helper()
	root, err := RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	return root
}

// Binary finds the executable name in $XOREST_PEERS_BIN, then
// <repo>/.peers/bin, then PATH. When it is missing, the error lists where it
// looked and carries installHint, the command that installs it.
func Binary(name, installHint string) (string, error) {
	var tried []string
	if dir := os.Getenv("XOREST_PEERS_BIN"); dir != "" {
		tried = append(tried, dir)
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, nil
		}
	}
	if root, err := RepoRoot(); err == nil {
		dir := filepath.Join(root, ".peers", "bin")
		tried = append(tried, dir)
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found in %s or PATH; install it with:\n\t%s\n(or run `make peers`)", name, strings.Join(tried, ", "), installHint)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

package auth_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xorest/xorest/auth"
	"github.com/xorest/xorest/auth/storetest"
)

func newFileStore(t *testing.T) auth.Store {
	t.Helper()
	s, err := auth.NewFileStore(filepath.Join(t.TempDir(), "state", "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFileStoreConformance(t *testing.T) {
	storetest.Run(t, newFileStore, func(t *testing.T, s auth.Store) auth.Store {
		other, err := auth.NewFileStore(s.(*auth.FileStore).Path())
		if err != nil {
			t.Fatal(err)
		}
		return other
	})
}

func TestFileStoreFile(t *testing.T) {
	ctx := context.Background()
	s := newFileStore(t).(*auth.FileStore)
	secret, tok, err := auth.New(auth.NewParams{User: "root", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, tok); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("token file mode = %v, want 0600", mode)
	}
	data, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), secret) {
		t.Error("token file holds the plaintext secret")
	}
	entries, err := os.ReadDir(filepath.Dir(s.Path()))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".tmp" {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestFileStorePrunesOnWrite(t *testing.T) {
	ctx := context.Background()
	s := newFileStore(t).(*auth.FileStore)
	now := time.UnixMilli(1_700_000_000_000)
	s.SetClock(func() time.Time { return now })
	_, short, err := auth.New(auth.NewParams{User: "a", Validity: time.Minute, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	_, long, err := auth.New(auth.NewParams{User: "b", Validity: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []auth.Token{short, long} {
		if err := s.Create(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(2 * time.Minute)
	if _, err := s.Lookup(ctx, short.Hash); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("Lookup(expired) = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, long.ID); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), short.ID) {
		t.Errorf("expired token still in the file after a write:\n%s", data)
	}
}

func TestFileStoreBadFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
	}{
		{"not json", "{"},
		{"wrong version", `{"version": 2, "tokens": []}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := auth.NewFileStore(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Lookup(context.Background(), auth.Hash("x")); err == nil || errors.Is(err, auth.ErrNotFound) {
				t.Errorf("Lookup on a bad file: %v, want a decoding error", err)
			}
			if _, err := s.List(context.Background()); err == nil {
				t.Error("List on a bad file succeeded")
			}
		})
	}
}

// TestFileStoreAcrossProcesses runs writers in child processes (this test
// binary, re-executed) while this process writes too, and checks that no
// token is lost: the flock serialises read-modify-write cycles, and the
// rename keeps readers from seeing a partial file.
func TestFileStoreAcrossProcesses(t *testing.T) {
	if path := os.Getenv("XOREST_AUTH_CHILD_STORE"); path != "" {
		childWriter(t, path)
		return
	}
	path := filepath.Join(t.TempDir(), "tokens.json")
	const children, perProcess = 3, 15
	var cmds []*exec.Cmd
	for i := range children {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFileStoreAcrossProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(), "XOREST_AUTH_CHILD_STORE="+path, fmt.Sprintf("XOREST_AUTH_CHILD_USER=child%d", i))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	s, err := auth.NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range perProcess {
		_, tok, err := auth.New(auth.NewParams{User: "parent", Validity: time.Hour, Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if _, err := s.List(ctx); err != nil { // reads while others rename
			t.Fatalf("List during writes: %v", err)
		}
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child writer: %v", err)
		}
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (children + 1) * perProcess; len(list) != want {
		t.Errorf("%d tokens after concurrent writers, want %d", len(list), want)
	}
}

// childWriter is the body of a child process of TestFileStoreAcrossProcesses.
func childWriter(t *testing.T, path string) {
	s, err := auth.NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	for range 15 {
		_, tok, err := auth.New(auth.NewParams{User: os.Getenv("XOREST_AUTH_CHILD_USER"), Validity: time.Hour, Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Create(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
}

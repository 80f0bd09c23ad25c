package auth

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

var _ Store = (*FileStore)(nil)

// fileFormat is the version of the token file layout.
const fileFormat = 1

// tokenFile is the JSON document a FileStore keeps.
type tokenFile struct {
	Version int     `json:"version"`
	Tokens  []Token `json:"tokens"`
}

// FileStore is a Store in one local JSON file, readable only by its owner
// (mode 0600). Every call reads the file, so tokens created by another
// process (xorest token create) are seen at once. Writes go to a temporary
// file in the same directory that is then renamed over the file, so readers
// never see a partial file; on Unix, writers of all processes also take an
// exclusive flock on PATH.lock around their read-modify-write so that no
// update is lost. Expired tokens are dropped on every write.
type FileStore struct {
	path string
	now  func() time.Time
	mu   sync.Mutex // serialises writers of this process
}

// NewFileStore returns a store kept in the file at path, creating its
// directory (mode 0700) when missing. The file itself is created by the
// first write; a missing file is an empty store.
func NewFileStore(path string) (*FileStore, error) {
	if path == "" {
		return nil, errors.New("auth: token file path is empty")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("auth: token store directory: %w", err)
	}
	return &FileStore{path: path, now: time.Now}, nil
}

// SetClock replaces the store's clock (time.Now) for tests of expiry.
func (s *FileStore) SetClock(now func() time.Time) { s.now = now }

// Path returns the file the store keeps its tokens in.
func (s *FileStore) Path() string { return s.path }

// Create implements Store.
func (s *FileStore) Create(ctx context.Context, t Token) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("auth: create token: %w", err)
	}
	if t.ID == "" || t.Hash == "" {
		return errors.New("auth: create token: ID and Hash are required")
	}
	return s.update(func(tokens []Token) ([]Token, error) {
		for _, o := range tokens {
			if o.ID == t.ID || HashEqual(o.Hash, t.Hash) {
				return nil, fmt.Errorf("auth: create token %s: %w", t.ID, ErrExists)
			}
		}
		return append(tokens, t), nil
	})
}

// Lookup implements Store. It compares the hash with every stored token in
// constant time.
func (s *FileStore) Lookup(ctx context.Context, hash string) (Token, error) {
	if err := ctx.Err(); err != nil {
		return Token{}, fmt.Errorf("auth: lookup token: %w", err)
	}
	f, err := s.read()
	if err != nil {
		return Token{}, err
	}
	now := s.now()
	var found Token
	ok := false
	for _, t := range f.Tokens {
		if HashEqual(t.Hash, hash) && !t.Expired(now) {
			found, ok = t, true
		}
	}
	if !ok {
		return Token{}, fmt.Errorf("auth: lookup token: %w", ErrNotFound)
	}
	return found, nil
}

// List implements Store.
func (s *FileStore) List(ctx context.Context) ([]Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("auth: list tokens: %w", err)
	}
	f, err := s.read()
	if err != nil {
		return nil, err
	}
	out := pruned(f.Tokens, s.now())
	slices.SortFunc(out, func(a, b Token) int {
		return cmp.Or(cmp.Compare(a.Created, b.Created), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// Delete implements Store.
func (s *FileStore) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("auth: delete token: %w", err)
	}
	return s.update(func(tokens []Token) ([]Token, error) {
		i := slices.IndexFunc(tokens, func(t Token) bool { return t.ID == id })
		if i < 0 {
			return nil, fmt.Errorf("auth: delete token %s: %w", id, ErrNotFound)
		}
		return slices.Delete(tokens, i, i+1), nil
	})
}

// pruned returns the tokens of ts that have not expired at now, in a new slice.
func pruned(ts []Token, now time.Time) []Token {
	out := make([]Token, 0, len(ts))
	for _, t := range ts {
		if !t.Expired(now) {
			out = append(out, t)
		}
	}
	return out
}

// read loads the token file; a missing file is an empty store.
func (s *FileStore) read() (tokenFile, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return tokenFile{Version: fileFormat}, nil
	}
	if err != nil {
		return tokenFile{}, fmt.Errorf("auth: reading token file: %w", err)
	}
	var f tokenFile
	if err := json.Unmarshal(data, &f); err != nil {
		return tokenFile{}, fmt.Errorf("auth: token file %s: %w", s.path, err)
	}
	if f.Version != fileFormat {
		return tokenFile{}, fmt.Errorf("auth: token file %s: unsupported version %d", s.path, f.Version)
	}
	return f, nil
}

// update runs change on the unexpired tokens under both locks and writes the
// result atomically.
func (s *FileStore) update(change func([]Token) ([]Token, error)) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := lockFile(s.path + ".lock")
	if err != nil {
		return fmt.Errorf("auth: locking token file: %w", err)
	}
	defer func() {
		if uerr := unlock(); uerr != nil && err == nil {
			err = fmt.Errorf("auth: unlocking token file: %w", uerr)
		}
	}()
	f, err := s.read()
	if err != nil {
		return err
	}
	tokens, err := change(pruned(f.Tokens, s.now()))
	if err != nil {
		return err
	}
	return s.write(tokenFile{Version: fileFormat, Tokens: tokens})
}

// write replaces the token file atomically: temporary file, fsync, rename,
// fsync of the directory.
func (s *FileStore) write(f tokenFile) (err error) {
	if f.Tokens == nil {
		f.Tokens = []Token{}
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("auth: encoding tokens: %w", err)
	}
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(s.path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("auth: writing token file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	// CreateTemp already uses 0600; Chmod makes it explicit whatever the umask.
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("auth: writing token file: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("auth: writing token file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("auth: writing token file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("auth: writing token file: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("auth: replacing token file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: not every filesystem syncs directories
		_ = d.Close()
	}
	return nil
}

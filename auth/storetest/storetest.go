package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xorest/xorest/auth"
)

// Run checks the auth.Store contract on stores made by newStore. Each
// subtest calls newStore for a fresh, empty store; a store opened twice on
// the same backing storage must be returned when open is non-nil (it checks
// that changes are visible across Store values, e.g. processes).
//
// open, when not nil, returns a second Store value on the same storage as
// the store s previously returned by newStore.
func Run(t *testing.T, newStore func(t *testing.T) auth.Store, open func(t *testing.T, s auth.Store) auth.Store) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()

	mint := func(t *testing.T, user string, validity time.Duration) (string, auth.Token) {
		t.Helper()
		secret, tok, err := auth.New(auth.NewParams{User: user, Description: "d " + user, ClientID: "c " + user, Validity: validity, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return secret, tok
	}
	expired := func(t *testing.T, user string) auth.Token {
		t.Helper()
		_, tok := mint(t, user, time.Hour)
		tok.Created = now.Add(-2 * time.Hour).UnixMilli()
		tok.Expires = now.Add(-time.Hour).UnixMilli()
		return tok
	}

	t.Run("CreateThenLookup", func(t *testing.T) {
		s := newStore(t)
		secret, tok := mint(t, "root", time.Hour)
		if err := s.Create(ctx, tok); err != nil {
			t.Fatalf("Create: %v", err)
		}
		got, err := s.Lookup(ctx, auth.Hash(secret))
		if err != nil {
			t.Fatalf("Lookup: %v", err)
		}
		if got != tok {
			t.Errorf("Lookup = %+v, want %+v", got, tok)
		}
	})
	t.Run("LookupUnknown", func(t *testing.T) {
		s := newStore(t)
		_, tok := mint(t, "root", time.Hour)
		if err := s.Create(ctx, tok); err != nil {
			t.Fatal(err)
		}
		for name, hash := range map[string]string{
			"other hash": auth.Hash("not a token"),
			"empty":      "",
			"id as hash": tok.ID,
			"prefix":     tok.Hash[:len(tok.Hash)-1],
		} {
			if _, err := s.Lookup(ctx, hash); !errors.Is(err, auth.ErrNotFound) {
				t.Errorf("Lookup(%s) error = %v, want ErrNotFound", name, err)
			}
		}
	})
	t.Run("CreateDuplicate", func(t *testing.T) {
		s := newStore(t)
		_, tok := mint(t, "root", time.Hour)
		if err := s.Create(ctx, tok); err != nil {
			t.Fatal(err)
		}
		sameID := tok
		sameID.Hash = auth.Hash("other")
		sameHash := tok
		sameHash.ID = "other-id"
		for name, dup := range map[string]auth.Token{"same ID": sameID, "same hash": sameHash} {
			if err := s.Create(ctx, dup); !errors.Is(err, auth.ErrExists) {
				t.Errorf("Create(%s) error = %v, want ErrExists", name, err)
			}
		}
		if list, err := s.List(ctx); err != nil || len(list) != 1 {
			t.Errorf("List after duplicates = %d tokens, %v; want 1", len(list), err)
		}
	})
	t.Run("ListOrderAndExpiry", func(t *testing.T) {
		s := newStore(t)
		var want []auth.Token
		for i := range 3 {
			_, tok := mint(t, fmt.Sprintf("user%d", i), time.Hour)
			tok.Created = now.Add(time.Duration(-i) * time.Minute).UnixMilli()
			want = append(want, tok)
			if err := s.Create(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Create(ctx, expired(t, "old")); err != nil {
			t.Fatal(err)
		}
		slices.Reverse(want) // oldest first
		got, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("List =\n%+v\nwant\n%+v", got, want)
		}
	})
	t.Run("ExpiredIsNotFound", func(t *testing.T) {
		s := newStore(t)
		tok := expired(t, "root")
		if err := s.Create(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Lookup(ctx, tok.Hash); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("Lookup(expired) error = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, tok.ID); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("Delete(expired) error = %v, want ErrNotFound", err)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		s := newStore(t)
		secretA, a := mint(t, "a", time.Hour)
		secretB, b := mint(t, "b", time.Hour)
		for _, tok := range []auth.Token{a, b} {
			if err := s.Create(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Delete(ctx, a.ID); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := s.Lookup(ctx, auth.Hash(secretA)); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("Lookup(deleted) error = %v, want ErrNotFound", err)
		}
		if _, err := s.Lookup(ctx, auth.Hash(secretB)); err != nil {
			t.Errorf("Lookup(kept) error = %v", err)
		}
		if err := s.Delete(ctx, a.ID); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("second Delete error = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, "no-such-id"); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("Delete(unknown) error = %v, want ErrNotFound", err)
		}
	})
	t.Run("ConcurrentCreates", func(t *testing.T) {
		s := newStore(t)
		stores := []auth.Store{s}
		if open != nil {
			stores = append(stores, open(t, s))
		}
		const n = 20
		var wg sync.WaitGroup
		errs := make(chan error, n)
		secrets := make([]string, n)
		for i := range n {
			secret, tok := mint(t, fmt.Sprintf("u%d", i), time.Hour)
			secrets[i] = secret
			wg.Go(func() { errs <- stores[i%len(stores)].Create(ctx, tok) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("Create: %v", err)
			}
		}
		for i, secret := range secrets {
			if _, err := s.Lookup(ctx, auth.Hash(secret)); err != nil {
				t.Errorf("token %d lost: %v", i, err)
			}
		}
	})
	if open != nil {
		t.Run("VisibleAcrossValues", func(t *testing.T) {
			s := newStore(t)
			other := open(t, s)
			secret, tok := mint(t, "root", time.Hour)
			if err := s.Create(ctx, tok); err != nil {
				t.Fatal(err)
			}
			if _, err := other.Lookup(ctx, auth.Hash(secret)); err != nil {
				t.Errorf("other store does not see the new token: %v", err)
			}
			if err := other.Delete(ctx, tok.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Lookup(ctx, auth.Hash(secret)); !errors.Is(err, auth.ErrNotFound) {
				t.Errorf("deleted token still found: %v", err)
			}
		})
	}
	t.Run("DoneContext", func(t *testing.T) {
		s := newStore(t)
		_, tok := mint(t, "root", time.Hour)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		checks := map[string]error{
			"Create": s.Create(cctx, tok),
			"Delete": s.Delete(cctx, tok.ID),
		}
		_, checks["Lookup"] = s.Lookup(cctx, tok.Hash)
		_, checks["List"] = s.List(cctx)
		for name, err := range checks {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: error = %v, want context.Canceled", name, err)
			}
		}
		if list, err := s.List(ctx); err != nil || len(list) != 0 {
			t.Errorf("a cancelled Create stored something: %d tokens, %v", len(list), err)
		}
	})
}

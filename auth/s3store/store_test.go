package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xorest/xorest/auth"
	"github.com/xorest/xorest/auth/storetest"
)

func TestConformance(t *testing.T) {
	for name, prefix := range map[string]string{
		"bucket root":     "",
		"nested prefix":   "xorest/prod",
		"one-part prefix": "tok",
	} {
		t.Run(name, func(t *testing.T) {
			storetest.Run(t,
				func(t *testing.T) auth.Store { return newPeerStore(t, newBucket(t), prefix, nil) },
				func(t *testing.T, s auth.Store) auth.Store {
					return newPeerStore(t, s.(*Store).bucket, prefix, nil)
				})
		})
	}
}

// mint makes a token valid for an hour from now.
func mint(t *testing.T, user string, now time.Time) (string, auth.Token) {
	t.Helper()
	secret, tok, err := auth.New(auth.NewParams{User: user, Validity: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return secret, tok
}

func TestInstancesShareTokens(t *testing.T) {
	ctx := context.Background()
	bucket := newBucket(t)
	a := newPeerStore(t, bucket, "shared", nil)
	// b is built from a ready SDK client, as a caller sharing one would.
	b, err := New(ctx, Config{Bucket: bucket, Prefix: "shared", Client: adminClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	other := newPeerStore(t, bucket, "other", nil)

	secretA, tokA := mint(t, "alice", time.Now())
	secretB, tokB := mint(t, "bob", time.Now().Add(time.Second))
	if err := a.Create(ctx, tokA); err != nil {
		t.Fatal(err)
	}
	if err := b.Create(ctx, tokB); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Store{"a": a, "b": b} {
		for secret, want := range map[string]auth.Token{secretA: tokA, secretB: tokB} {
			if got, err := s.Lookup(ctx, auth.Hash(secret)); err != nil || got != want {
				t.Errorf("%s.Lookup(%s) = %+v, %v; want %+v", name, want.User, got, err, want)
			}
		}
		if list, err := s.List(ctx); err != nil || !slices.Equal(list, []auth.Token{tokA, tokB}) {
			t.Errorf("%s.List = %+v, %v; want both tokens", name, list, err)
		}
	}
	if list, err := other.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("a store on another prefix lists %d tokens (%v), want 0", len(list), err)
	}
	if _, err := other.Lookup(ctx, auth.Hash(secretA)); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("a store on another prefix finds the token: %v", err)
	}

	if err := b.Delete(ctx, tokA.ID); err != nil {
		t.Fatalf("b.Delete(a's token): %v", err)
	}
	if _, err := a.Lookup(ctx, auth.Hash(secretA)); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("a.Lookup after b deleted it: %v, want ErrNotFound", err)
	}
	if err := a.Delete(ctx, tokA.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("a.Delete after b deleted it: %v, want ErrNotFound", err)
	}
}

// TestCreateRace races Creates of one ID (or one hash) from two instances:
// the conditional writes must let exactly one win and leave no claim of the
// losers behind.
func TestCreateRace(t *testing.T) {
	const n = 12
	now := time.Now()
	for name, vary := range map[string]func(i int, tok auth.Token) auth.Token{
		"same ID": func(i int, tok auth.Token) auth.Token {
			tok.ID = "contested"
			return tok
		},
		"same hash": func(i int, tok auth.Token) auth.Token {
			tok.ID = fmt.Sprintf("id%d", i)
			tok.Hash = auth.Hash("contested")
			return tok
		},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			bucket := newBucket(t)
			stores := []*Store{newPeerStore(t, bucket, "p", nil), newPeerStore(t, bucket, "p", nil)}
			toks := make([]auth.Token, n)
			for i := range toks {
				_, tok := mint(t, fmt.Sprintf("u%d", i), now)
				toks[i] = vary(i, tok)
			}
			errs := make([]error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, tok := range toks {
				wg.Go(func() {
					<-start
					errs[i] = stores[i%2].Create(ctx, tok)
				})
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Errorf("Creates %d and %d both succeeded", winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, auth.ErrExists):
					t.Errorf("Create %d: %v, want ErrExists", i, err)
				}
			}
			if winner < 0 {
				t.Fatal("no Create succeeded")
			}
			list, err := stores[0].List(ctx)
			if err != nil || !slices.Equal(list, []auth.Token{toks[winner]}) {
				t.Errorf("List = %+v, %v; want only the winner %+v", list, err, toks[winner])
			}
			want := []string{"p/ids/" + toks[winner].ID, "p/tokens/" + toks[winner].Hash + ".json"}
			if keys := objectKeys(t, bucket); !slices.Equal(keys, want) {
				t.Errorf("bucket holds %q, want %q", keys, want)
			}
		})
	}
}

func objectKeys(t *testing.T, bucket string) []string {
	var keys []string
	for _, o := range allObjects(t, bucket) {
		keys = append(keys, o.key)
	}
	slices.Sort(keys)
	return keys
}

// TestBucketHoldsNoSecret scans every object (keys and bodies) after a
// store's whole life cycle for the plaintext secrets.
func TestBucketHoldsNoSecret(t *testing.T) {
	ctx := context.Background()
	bucket := newBucket(t)
	s := newPeerStore(t, bucket, "xorest", nil)
	var secrets []string
	var toks []auth.Token
	for i := range 5 {
		secret, tok := mint(t, fmt.Sprintf("user%d", i), time.Now())
		if err := s.Create(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Lookup(ctx, auth.Hash(secret)); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, secret)
		toks = append(toks, tok)
	}
	if _, err := s.List(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, toks[0].ID); err != nil {
		t.Fatal(err)
	}

	objs := allObjects(t, bucket)
	if len(objs) != 2*(len(toks)-1) {
		t.Errorf("bucket holds %d objects, want %d (a token and an ID per live token)", len(objs), 2*(len(toks)-1))
	}
	for _, o := range objs {
		for i, secret := range secrets {
			if strings.Contains(o.key, secret) || bytes.Contains(o.body, []byte(secret)) {
				t.Errorf("object %q holds the plaintext of token %d", o.key, i)
			}
		}
	}
	// The layout the package documents: one token object per hash and one
	// ID object naming that hash.
	byKey := map[string][]byte{}
	for _, o := range objs {
		byKey[o.key] = o.body
	}
	for _, tok := range toks[1:] {
		if body := byKey["xorest/ids/"+tok.ID]; string(body) != tok.Hash {
			t.Errorf("xorest/ids/%s = %q, want the hash %s", tok.ID, body, tok.Hash)
		}
		if _, ok := byKey["xorest/tokens/"+tok.Hash+".json"]; !ok {
			t.Errorf("no object xorest/tokens/%s.json", tok.Hash)
		}
	}
}

func TestAccessErrors(t *testing.T) {
	ctx := context.Background()
	bucket := newBucket(t)
	_, tok := mint(t, "root", time.Now())
	for _, tc := range []struct {
		name    string
		edit    func(*Config)
		want    error
		mention string
	}{
		{"wrong secret", func(c *Config) { c.SecretAccessKey = "not-the-secret" }, ErrAccessDenied, bucket},
		{"unknown access key", func(c *Config) { c.AccessKeyID = "nobody" }, ErrAccessDenied, bucket},
		{"missing bucket", func(c *Config) { c.Bucket = "no-such-bucket" }, ErrNoBucket, "no-such-bucket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newPeerStore(t, bucket, "p", tc.edit)
			errs := map[string]error{
				"Check":  s.Check(ctx),
				"Create": s.Create(ctx, tok),
				"Delete": s.Delete(ctx, tok.ID),
			}
			_, errs["Lookup"] = s.Lookup(ctx, tok.Hash)
			_, errs["List"] = s.List(ctx)
			for op, err := range errs {
				if !errors.Is(err, tc.want) {
					t.Errorf("%s error = %v, want %v", op, err, tc.want)
					continue
				}
				if errors.Is(err, auth.ErrNotFound) || errors.Is(err, auth.ErrExists) {
					t.Errorf("%s error %v also matches a token error", op, err)
				}
				if !strings.Contains(err.Error(), tc.mention) {
					t.Errorf("%s error %q does not name %q", op, err, tc.mention)
				}
			}
		})
	}
	if err := newPeerStore(t, bucket, "p", nil).Check(ctx); err != nil {
		t.Errorf("Check with the right configuration: %v", err)
	}
}

// clock is a settable time source.
type clock struct{ ms atomic.Int64 }

func (c *clock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) set(t time.Time)         { c.ms.Store(t.UnixMilli()) }
func (c *clock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

func TestExpiredTokensAreDeleted(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	for _, tc := range []struct {
		name  string
		reach func(s *Store, secret string, tok auth.Token) error
	}{
		{"Lookup", func(s *Store, secret string, _ auth.Token) error {
			_, err := s.Lookup(ctx, auth.Hash(secret))
			if !errors.Is(err, auth.ErrNotFound) {
				return fmt.Errorf("Lookup = %v, want ErrNotFound", err)
			}
			return nil
		}},
		{"List", func(s *Store, _ string, _ auth.Token) error {
			if list, err := s.List(ctx); err != nil || len(list) != 0 {
				return fmt.Errorf("List = %d tokens, %v; want none", len(list), err)
			}
			return nil
		}},
		{"Delete", func(s *Store, _ string, tok auth.Token) error {
			if err := s.Delete(ctx, tok.ID); !errors.Is(err, auth.ErrNotFound) {
				return fmt.Errorf("Delete = %v, want ErrNotFound", err)
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bucket := newBucket(t)
			var c clock
			c.set(start)
			s := newPeerStore(t, bucket, "", func(cfg *Config) { cfg.Now = c.now })
			secret, tok := mint(t, "root", start)
			if err := s.Create(ctx, tok); err != nil {
				t.Fatal(err)
			}
			c.advance(time.Hour - time.Millisecond)
			if _, err := s.Lookup(ctx, auth.Hash(secret)); err != nil {
				t.Fatalf("Lookup a millisecond before expiry: %v", err)
			}
			c.advance(time.Millisecond)
			if err := tc.reach(s, secret, tok); err != nil {
				t.Error(err)
			}
			if keys := objectKeys(t, bucket); len(keys) != 0 {
				t.Errorf("objects left after %s met the expired token: %q", tc.name, keys)
			}
		})
	}
}

// TestForeignObjects checks what the store does with objects it did not
// write as they are: stale ID claims are cleaned, corrupt tokens reported.
func TestForeignObjects(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	t.Run("claim without token", func(t *testing.T) {
		bucket := newBucket(t)
		s := newPeerStore(t, bucket, "", nil)
		putObject(t, bucket, "ids/lost", auth.Hash("gone"))
		if err := s.Delete(ctx, "lost"); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("Delete = %v, want ErrNotFound", err)
		}
		if keys := objectKeys(t, bucket); len(keys) != 0 {
			t.Errorf("stale claim not removed: %q", keys)
		}
	})
	t.Run("claim naming another token", func(t *testing.T) {
		bucket := newBucket(t)
		s := newPeerStore(t, bucket, "", nil)
		secret, tok := mint(t, "root", now)
		if err := s.Create(ctx, tok); err != nil {
			t.Fatal(err)
		}
		putObject(t, bucket, "ids/impostor", tok.Hash)
		if err := s.Delete(ctx, "impostor"); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("Delete = %v, want ErrNotFound", err)
		}
		if _, err := s.Lookup(ctx, auth.Hash(secret)); err != nil {
			t.Errorf("the other token was hurt: %v", err)
		}
	})
	t.Run("claim that is not a hash", func(t *testing.T) {
		bucket := newBucket(t)
		s := newPeerStore(t, bucket, "", nil)
		putObject(t, bucket, "ids/junk", "../../etc/passwd")
		if err := s.Delete(ctx, "junk"); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("Delete = %v, want ErrNotFound", err)
		}
	})
	for name, body := range map[string]string{
		"token not JSON":      "{",
		"token of other hash": `{"id":"x","hash":"` + auth.Hash("b") + `","user_id":"u","created_at":1,"expiration":99999999999999}`,
		"token too large":     strings.Repeat(" ", maxObject+1) + "{}",
	} {
		t.Run(name, func(t *testing.T) {
			bucket := newBucket(t)
			s := newPeerStore(t, bucket, "", nil)
			hash := auth.Hash("a")
			putObject(t, bucket, "tokens/"+hash+".json", body)
			if _, err := s.Lookup(ctx, hash); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Lookup = %v, want ErrCorrupt", err)
			}
			if _, err := s.List(ctx); !errors.Is(err, ErrCorrupt) {
				t.Errorf("List = %v, want ErrCorrupt", err)
			}
		})
	}
	t.Run("unrelated keys are ignored", func(t *testing.T) {
		bucket := newBucket(t)
		s := newPeerStore(t, bucket, "", nil)
		putObject(t, bucket, "tokens/README", "hello")
		putObject(t, bucket, "tokens/x.json", "{")
		if list, err := s.List(ctx); err != nil || len(list) != 0 {
			t.Errorf("List = %+v, %v; want none", list, err)
		}
	})
}

func TestCreateRefusesBadTokens(t *testing.T) {
	ctx := context.Background()
	// No request is sent for these, but a store needs a bucket name.
	s, err := New(ctx, Config{Bucket: "unused", Endpoint: "http://127.0.0.1:1", AccessKeyID: "k", SecretAccessKey: "s"})
	if err != nil {
		t.Fatal(err)
	}
	_, good := mint(t, "root", time.Now())
	for _, tc := range []struct {
		name string
		edit func(*auth.Token)
	}{
		{"empty ID", func(t *auth.Token) { t.ID = "" }},
		{"ID with slash", func(t *auth.Token) { t.ID = "../tokens/x" }},
		{"ID with dot", func(t *auth.Token) { t.ID = "a.b" }},
		{"empty hash", func(t *auth.Token) { t.Hash = "" }},
		{"uppercase hash", func(t *auth.Token) { t.Hash = strings.ToUpper(t.Hash) }},
		{"short hash", func(t *auth.Token) { t.Hash = t.Hash[1:] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := good
			tc.edit(&tok)
			err := s.Create(ctx, tok)
			if err == nil || errors.Is(err, auth.ErrExists) || strings.Contains(err.Error(), "127.0.0.1") {
				t.Errorf("Create = %v, want a validation error before any request", err)
			}
		})
	}
	for name, id := range map[string]string{"empty": "", "slash": "a/b", "dots": "..", "long": strings.Repeat("a", 129)} {
		if err := s.Delete(ctx, id); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("Delete(%s) = %v, want ErrNotFound without a request", name, err)
		}
	}
}

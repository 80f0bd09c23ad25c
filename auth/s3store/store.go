package s3store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/xorest/xorest/auth"
	"github.com/xorest/xorest/transfer/s3"
)

var _ auth.Store = (*Store)(nil)

// ErrAccessDenied is returned (wrapped) when S3 refuses the store's
// credentials or forbids the operation: unknown access key, wrong secret,
// expired session, or a bucket policy or IAM role without the permission.
var ErrAccessDenied = errors.New("s3store: access denied by S3 (check the credentials and the bucket's permissions)")

// ErrNoBucket is returned (wrapped) when the configured bucket does not
// exist.
var ErrNoBucket = errors.New("s3store: no such bucket")

// ErrCorrupt is returned (wrapped) when an object under the prefix is not
// what the store wrote: a token that does not decode, or whose hash does not
// match its key.
var ErrCorrupt = errors.New("s3store: corrupt token object")

// maxObject bounds what the store reads from one object; a token is a few
// hundred bytes.
const maxObject = 64 << 10

// rollbackTimeout bounds the clean-up a failed Create does after its
// context is done.
const rollbackTimeout = 10 * time.Second

// hashRE is the form of auth.Hash: 64 lowercase hex digits.
var hashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// idRE is what the store accepts as a token ID: auth.New makes 24 hex
// digits; anything that could change the meaning of a key is refused.
var idRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// Store is an auth.Store in an S3 bucket. Several Store values (processes,
// Lambda instances) on the same bucket and prefix share their tokens
// through S3 alone; see the package documentation for the layout and the
// consistency model. A Store is safe for concurrent use.
type Store struct {
	api         *awss3.Client
	bucket      string
	tokens, ids string // key prefixes, ending in "/"
	location    string // s3://bucket[/prefix]
	concurrency int
	now         func() time.Time
}

// New returns a Store for cfg. It checks cfg before any network call and
// sends no request; call Check to verify the bucket and the credentials.
// Without static credentials or a Client it resolves the SDK's default
// configuration, which may read the environment and shared config files.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	api := cfg.Client
	if api == nil {
		var err error
		if api, err = newClient(ctx, cfg); err != nil {
			return nil, err
		}
	}
	base := ""
	if cfg.Prefix != "" {
		base = cfg.Prefix + "/"
	}
	s := &Store{
		api:         api,
		bucket:      cfg.Bucket,
		tokens:      base + "tokens/",
		ids:         base + "ids/",
		location:    cfg.String(),
		concurrency: cmp.Or(cfg.ListConcurrency, DefaultListConcurrency),
		now:         cfg.Now,
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// newClient builds an SDK client from cfg's connection settings, as
// transfer/s3 builds the exports' client (one place reads the AWS
// configuration).
func newClient(ctx context.Context, cfg Config) (*awss3.Client, error) {
	c, err := s3.New(ctx, s3.Config{
		Endpoint: cfg.Endpoint, Region: cfg.Region, UsePathStyle: cfg.UsePathStyle,
		AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey, SessionToken: cfg.SessionToken,
		HTTPClient: cfg.HTTPClient,
	})
	if err != nil {
		return nil, fmt.Errorf("s3store: %w", err)
	}
	return c.API(), nil
}

// Location returns the store's bucket and prefix as s3://bucket[/prefix].
func (s *Store) Location() string { return s.location }

// Check verifies that the bucket exists and that the credentials may list
// the store's tokens, with one ListObjectsV2 request. Call it at start-up to
// fail fast on a wrong configuration.
func (s *Store) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3store: check %s: %w", s.location, err)
	}
	_, err := s.api.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(s.tokens), MaxKeys: aws.Int32(1)})
	if err != nil {
		return s.wrap("check", "", err)
	}
	return nil
}

func (s *Store) tokenKey(hash string) string { return s.tokens + hash + ".json" }
func (s *Store) idKey(id string) string      { return s.ids + id }

// Create implements auth.Store. It claims ids/<id> and then writes
// tokens/<hash>.json, both with If-None-Match: *, so that of two Creates of
// the same ID or hash, on any instances, exactly one wins; the loser removes
// its ID claim and returns auth.ErrExists. When the SDK retries a write
// whose answer was lost, the retry finds the object and Create reports
// auth.ErrExists although it wrote it; minting a new token is the remedy.
func (s *Store) Create(ctx context.Context, t auth.Token) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3store: create token: %w", err)
	}
	if !idRE.MatchString(t.ID) {
		return fmt.Errorf("s3store: create token: invalid ID %q (want 1-128 characters of A-Z a-z 0-9 _ -)", t.ID)
	}
	if !hashRE.MatchString(t.Hash) {
		return fmt.Errorf("s3store: create token %s: hash is not a lowercase hex SHA-256", t.ID)
	}
	body, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("s3store: create token %s: %w", t.ID, err)
	}
	if err := s.putNew(ctx, s.idKey(t.ID), []byte(t.Hash), "text/plain"); err != nil {
		return s.wrap("create token", t.ID, err)
	}
	if err := s.putNew(ctx, s.tokenKey(t.Hash), body, "application/json"); err != nil {
		// Give the ID back, even when ctx is done: it is ours alone.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		if derr := s.deleteKey(rctx, s.idKey(t.ID)); derr != nil {
			return errors.Join(s.wrap("create token", t.ID, err), s.wrap("release ID", t.ID, derr))
		}
		return s.wrap("create token", t.ID, err)
	}
	return nil
}

// putNew writes key only if it does not exist yet.
func (s *Store) putNew(ctx context.Context, key string, body []byte, contentType string) error {
	_, err := s.api.PutObject(ctx, &awss3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String(contentType),
		IfNoneMatch:   aws.String("*"),
	})
	return err
}

// Lookup implements auth.Store with one GET of tokens/<hash>.json. An
// expired token is reported as auth.ErrNotFound and deleted.
func (s *Store) Lookup(ctx context.Context, hash string) (auth.Token, error) {
	if err := ctx.Err(); err != nil {
		return auth.Token{}, fmt.Errorf("s3store: look up token: %w", err)
	}
	if !hashRE.MatchString(hash) {
		return auth.Token{}, fmt.Errorf("s3store: look up token: %w", auth.ErrNotFound)
	}
	t, err := s.getToken(ctx, hash)
	if err != nil {
		return auth.Token{}, s.wrap("look up token", "", err)
	}
	if t.Expired(s.now()) {
		s.dropExpired(ctx, t)
		return auth.Token{}, fmt.Errorf("s3store: look up token: %w", auth.ErrNotFound)
	}
	return t, nil
}

// getToken reads tokens/<hash>.json and checks that it holds that hash.
func (s *Store) getToken(ctx context.Context, hash string) (auth.Token, error) {
	key := s.tokenKey(hash)
	body, err := s.get(ctx, key)
	if err != nil {
		return auth.Token{}, err
	}
	var t auth.Token
	if err := json.Unmarshal(body, &t); err != nil {
		return auth.Token{}, fmt.Errorf("%w %s: %v", ErrCorrupt, key, err)
	}
	if !auth.HashEqual(t.Hash, hash) {
		return auth.Token{}, fmt.Errorf("%w %s: holds another hash", ErrCorrupt, key)
	}
	return t, nil
}

// get returns the content of key, at most maxObject bytes.
func (s *Store) get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.api.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, maxObject+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if len(body) > maxObject {
		return nil, fmt.Errorf("%w %s: larger than %d bytes", ErrCorrupt, key, maxObject)
	}
	return body, nil
}

// dropExpired deletes an expired token and its ID, best effort: a failure
// leaves objects that the next Lookup, List or Delete removes again.
func (s *Store) dropExpired(ctx context.Context, t auth.Token) {
	if s.deleteKey(ctx, s.tokenKey(t.Hash)) == nil {
		s.deleteKey(ctx, s.idKey(t.ID))
	}
}

// deleteKey removes key; a missing key is not an error (S3 semantics).
func (s *Store) deleteKey(ctx context.Context, key string) error {
	_, err := s.api.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	return err
}

// List implements auth.Store: it lists tokens/ and GETs every token, a few
// at a time (Config.ListConcurrency). Expired tokens are left out and
// deleted; tokens deleted while List runs are left out.
func (s *Store) List(ctx context.Context) ([]auth.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3store: list tokens: %w", err)
	}
	var hashes []string
	pages := awss3.NewListObjectsV2Paginator(s.api, &awss3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(s.tokens)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, s.wrap("list tokens", "", err)
		}
		for _, o := range page.Contents {
			hash, ok := strings.CutSuffix(strings.TrimPrefix(aws.ToString(o.Key), s.tokens), ".json")
			if ok && hashRE.MatchString(hash) {
				hashes = append(hashes, hash)
			}
		}
	}

	tokens := make([]auth.Token, len(hashes))
	found := make([]bool, len(hashes))
	errs := make([]error, len(hashes))
	sem := make(chan struct{}, s.concurrency)
	var wg sync.WaitGroup
	for i, hash := range hashes {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			t, err := s.getToken(ctx, hash)
			switch {
			case isNotFound(err): // deleted since the listing
			case err != nil:
				errs[i] = s.wrap("list tokens", "", err)
			case t.Expired(s.now()):
				s.dropExpired(ctx, t)
			default:
				tokens[i], found[i] = t, true
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	list := make([]auth.Token, 0, len(hashes))
	for i, t := range tokens {
		if found[i] {
			list = append(list, t)
		}
	}
	slices.SortFunc(list, func(a, b auth.Token) int {
		return cmp.Or(cmp.Compare(a.Created, b.Created), strings.Compare(a.ID, b.ID))
	})
	return list, nil
}

// Delete implements auth.Store: it reads ids/<id>, then the token it names,
// and deletes the token, then the ID. An ID whose token is gone, expired or
// belongs to another ID (left by an interrupted Create) is removed and
// reported as auth.ErrNotFound.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3store: delete token %s: %w", id, err)
	}
	if !idRE.MatchString(id) {
		return fmt.Errorf("s3store: delete token %q: %w", id, auth.ErrNotFound)
	}
	hash, err := s.get(ctx, s.idKey(id))
	if err != nil {
		return s.wrap("delete token", id, err)
	}
	var t auth.Token
	if hashRE.Match(hash) {
		t, err = s.getToken(ctx, string(hash))
		if err != nil && !isNotFound(err) {
			return s.wrap("delete token", id, err)
		}
	}
	switch {
	case err != nil || t.ID != id: // a stale claim: no token, or another's
		s.deleteKey(ctx, s.idKey(id))
		return fmt.Errorf("s3store: delete token %s: %w", id, auth.ErrNotFound)
	case t.Expired(s.now()):
		s.dropExpired(ctx, t)
		return fmt.Errorf("s3store: delete token %s: %w", id, auth.ErrNotFound)
	}
	if err := s.deleteKey(ctx, s.tokenKey(t.Hash)); err != nil {
		return s.wrap("delete token", id, err)
	}
	if err := s.deleteKey(ctx, s.idKey(id)); err != nil {
		return s.wrap("delete token", id, fmt.Errorf("token deleted, its ID stays claimed: %w", err))
	}
	return nil
}

// isNotFound reports whether err is S3's answer for a missing key.
func isNotFound(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	return false
}

// wrap turns an S3 error into the store's: missing keys become
// auth.ErrNotFound, failed preconditions auth.ErrExists, refused credentials
// ErrAccessDenied and a missing bucket ErrNoBucket. The original error stays
// in the chain.
func (s *Store) wrap(op, what string, err error) error {
	if what != "" {
		op += " " + what
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("s3store: %s: %w", op, auth.ErrNotFound)
		case "PreconditionFailed", "ConditionalRequestConflict":
			return fmt.Errorf("s3store: %s: %w", op, auth.ErrExists)
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "Forbidden",
			"XAdminUserNotFound": // versitygw's answer (404) for an unknown access key
			return fmt.Errorf("s3store: %s in %s: %w: %w", op, s.Location(), ErrAccessDenied, err)
		case "NoSuchBucket":
			return fmt.Errorf("s3store: %s: %w %q: %w", op, ErrNoBucket, s.bucket, err)
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden { // a 403 without an error code (HEAD)
		return fmt.Errorf("s3store: %s in %s: %w: %w", op, s.Location(), ErrAccessDenied, err)
	}
	return fmt.Errorf("s3store: %s in %s: %w", op, s.Location(), err)
}

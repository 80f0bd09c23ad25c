package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/xorest/xorest/auth"
	"github.com/xorest/xorest/auth/s3store"
)

// openTokenStore opens the store named by XOREST_TOKEN_STORE (or the
// --token-store flag): "file:PATH", a bare path, or "s3://bucket/prefix"
// (for Lambda; XOREST_S3_ENDPOINT and XOREST_S3_PATH_STYLE=true point it at
// an S3-compatible server, credentials and region come from the AWS SDK's
// default chain).
func openTokenStore(spec string) (auth.Store, error) {
	if strings.HasPrefix(spec, "s3://") {
		cfg, err := s3store.ParseURL(spec)
		if err != nil {
			return nil, fmt.Errorf("%w: token store: %v", errUsage, err)
		}
		cfg.Endpoint = os.Getenv("XOREST_S3_ENDPOINT")
		cfg.UsePathStyle = os.Getenv("XOREST_S3_PATH_STYLE") == "true"
		return s3store.New(context.Background(), cfg) // sends no request
	}
	path, ok := strings.CutPrefix(spec, "file:")
	if !ok {
		if strings.Contains(spec, "://") {
			return nil, fmt.Errorf("%w: token store %q: want file:PATH or s3://bucket/prefix", errUsage, spec)
		}
		path = spec
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("token store: %w", err)
	}
	return auth.NewFileStore(path)
}

// mintToken creates a token for user in store and returns its secret.
func mintToken(ctx context.Context, store auth.Store, p auth.NewParams) (string, auth.Token, error) {
	secret, t, err := auth.New(p)
	if err != nil {
		return "", auth.Token{}, err
	}
	if err := store.Create(ctx, t); err != nil {
		return "", auth.Token{}, fmt.Errorf("storing the token: %w", err)
	}
	return secret, t, nil
}

func token(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: xorest token create|list|revoke", errUsage)
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("xorest token "+sub, flag.ContinueOnError)
	storeSpec := fs.String("token-store", defaultTokenStore(getenv), "where tokens are stored: file:PATH or s3://bucket/prefix")
	user := fs.String("user", "root", "user the token authenticates (create)")
	description := fs.String("description", "", "what the token is for (create)")
	expiresIn := fs.String("expires-in", "30 days", `validity, e.g. "1 hour", "30 days", or milliseconds (create)`)
	clientID := fs.String("client-id", "", "client id; a new token for the same user and client replaces the old one (create)")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	store, err := openTokenStore(*storeSpec)
	if err != nil {
		return err
	}
	switch sub {
	case "create":
		if fs.NArg() != 0 {
			return fmt.Errorf("%w: token create takes no arguments", errUsage)
		}
		validity, err := auth.ParseExpiresIn(*expiresIn)
		if err == nil {
			err = auth.CheckValidity(validity)
		}
		if err != nil {
			return fmt.Errorf("%w: --expires-in: %v", errUsage, err)
		}
		secret, t, err := mintToken(ctx, store, auth.NewParams{
			User: *user, Description: *description, ClientID: *clientID, Validity: validity, Now: time.Now(),
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", secret)
		fmt.Fprintf(stderr, "token %s for %s, expires %s; the secret above is shown only once\n",
			t.ID, t.User, time.UnixMilli(t.Expires).UTC().Format(time.RFC3339))
		return nil
	case "list":
		tokens, err := store.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSER\tCLIENT\tCREATED\tEXPIRES\tDESCRIPTION")
		for _, t := range tokens {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.User, t.ClientID,
				time.UnixMilli(t.Created).UTC().Format(time.RFC3339),
				time.UnixMilli(t.Expires).UTC().Format(time.RFC3339), t.Description)
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: xorest token revoke ID", errUsage)
		}
		if err := store.Delete(ctx, fs.Arg(0)); err != nil {
			return fmt.Errorf("revoking %s: %w", fs.Arg(0), err)
		}
		fmt.Fprintf(stdout, "revoked %s\n", fs.Arg(0))
		return nil
	}
	return fmt.Errorf("%w: unknown token command %q (create, list, revoke)", errUsage, sub)
}

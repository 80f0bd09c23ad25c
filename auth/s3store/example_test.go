package s3store_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/xorest/xorest/auth"
	"github.com/xorest/xorest/auth/s3store"
)

// Example opens the store the way cmd/xorest does from its environment
// (XOREST_TOKEN_STORE=s3://xorest-state/tokens, XOREST_S3_ENDPOINT,
// XOREST_S3_PATH_STYLE), mints a token and authenticates with it.
func Example() {
	ctx := context.Background()
	cfg, err := s3store.ParseURL("s3://xorest-state/tokens")
	if err != nil {
		log.Fatal(err)
	}
	cfg.Endpoint = "http://127.0.0.1:7070" // empty for AWS S3
	cfg.UsePathStyle = true
	store, err := s3store.New(ctx, cfg) // credentials from the SDK's chain (the Lambda role)
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Check(ctx); err != nil {
		log.Fatal(err)
	}

	secret, tok, err := auth.New(auth.NewParams{User: "root", Now: time.Now()})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Create(ctx, tok); err != nil {
		log.Fatal(err)
	}
	// Later, on any instance: the bearer presents secret.
	found, err := store.Lookup(ctx, auth.Hash(secret))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(found.User)
}

// ExampleParseURL shows what a token store location names.
func ExampleParseURL() {
	cfg, err := s3store.ParseURL("s3://xorest-state/prod/tokens/")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.Bucket, cfg.Prefix, cfg)
	// Output: xorest-state prod/tokens s3://xorest-state/prod/tokens
}

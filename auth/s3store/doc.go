// Package s3store is an auth.Store in an S3 bucket, for xorest on Lambda:
// instances share nothing but the bucket, and every change one makes is
// seen at once by the others.
//
// # Layout
//
// Under the configured prefix (s3://bucket/prefix, see ParseURL):
//
//	<prefix>/tokens/<hash>.json   the token as JSON (auth.Token), keyed by auth.Hash(secret)
//	<prefix>/ids/<id>             the token's hash, so that Delete by ID needs no listing
//
// The plaintext secret is never sent to S3: the store only ever sees
// auth.Token, which holds the hash. Lookup is one GET by hash; List is a
// ListObjectsV2 of tokens/ and a bounded number of parallel GETs; Delete
// reads the ID's object, then the token, and deletes both.
//
// # Consistency
//
// S3 (and versitygw) are strongly consistent for PUT, GET, DELETE and LIST:
// a token created by one instance is found by the next Lookup or List of
// any instance, and a deleted token is not. Create writes ids/<id> and then
// tokens/<hash>.json, both with If-None-Match: * (conditional writes,
// supported by AWS S3 since 2024 and atomically by versitygw v1.8.0), so
// of two Creates of the same ID or the same hash exactly one succeeds and
// the other gets auth.ErrExists and gives its ID claim back. A token is
// therefore never visible before its ID is claimed. On a server that
// ignores If-None-Match, a Create racing another Create of the same ID or
// hash could overwrite it; IDs and hashes are random, so only a replayed
// Create could do that.
//
// A Create interrupted between its two writes leaves an ID claim without a
// token: it holds nothing secret, is invisible to Lookup and List, and
// Delete of that ID removes it. Two Deletes of one token racing on two
// instances may both report success (S3 deletes are idempotent); the token
// is gone either way.
//
// # Expiry
//
// Lookup reports an expired token as auth.ErrNotFound and deletes it; List
// leaves expired tokens out and deletes them; Delete treats them as absent.
// Tokens that are never looked up again are deleted by the next List. A
// bucket lifecycle rule that expires objects under the prefix after
// auth.MaxValidity (183 days) is a safe extra: no token outlives it.
//
// # Permissions
//
// The credentials need s3:GetObject, s3:PutObject and s3:DeleteObject on
// <prefix>/* and s3:ListBucket on the bucket (with the prefix as
// condition). Refused credentials give errors matching ErrAccessDenied; a
// missing bucket ErrNoBucket. Store.Check verifies both at start-up.
package s3store

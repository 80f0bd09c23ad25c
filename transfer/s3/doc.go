// Package s3 streams data into S3 (or an S3-compatible server) and presigns
// downloads. It is the sink of xorest's exports: XAPI → (compression) → S3.
//
// [Client.Upload] reads an io.Reader once, with bounded memory, and stores it
// as one object: a single PutObject when the stream is shorter than one part,
// otherwise a multipart upload whose parts are sized so the stream fits in
// S3's 10,000 parts (see [UploadOptions.ExpectedSize]), uploaded
// concurrently from at most [UploadOptions.Concurrency] pooled buffers, each
// retried on transient errors with a backoff bound to the context. Any failure
// aborts the multipart upload, so nothing is left behind.
//
// Integrity: by default the SDK's CRC32 checksums protect every part
// ([ChecksumCRC32]); for S3-compatible servers that reject them,
// [ChecksumMD5] sends Content-MD5 instead and [ChecksumNone] sends nothing
// beyond the SigV4 payload hash.
//
// [Client.Presign] returns a GET URL with an expiry, for the task result of
// an export. [Client.API] exposes the configured SDK client for the rest.
//
// The package reads no environment itself: [Config] carries the endpoint,
// region, path style and static credentials; without static credentials the
// AWS SDK's default chain applies. It imports neither xo nor handlers.
//
// Tests run against a real S3 server, versitygw, on loopback:
//
//	GOBIN=$PWD/.peers/bin go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
package s3

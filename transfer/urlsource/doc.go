// Package urlsource reads an object to import from an http or https URL,
// typically an S3 presigned GET URL (the caller turns "s3://bucket/key"
// into one): it learns the size, streams the bytes, resumes with Range
// when the connection breaks, verifies the byte count, and refuses to
// reach addresses it should not (SSRF guard).
//
// # Size and streaming
//
// Open validates the URL (ParseURL: http or https, a host, no userinfo, a
// sane port) and asks for the size with HEAD. A presigned URL signed for
// GET refuses HEAD (403), so when HEAD fails or tells no length Open asks
// for "Range: bytes=0-0" and reads the total of the Content-Range; a
// server that ignores Range answers 200 with a Content-Length, and that
// body becomes the start of the stream. Transfers need the size up front
// (XAPI takes no chunked uploads), so an object whose size no answer tells
// fails with ErrUnknownSize.
//
// The Reader is an io.ReadCloser. When the body breaks (a read error, a
// connection that stays silent for Options.IdleTimeout) it asks again for
// "Range: bytes=<offset>-" with If-Match and If-Range on a strong ETag, or
// If-Unmodified-Since and If-Range on Last-Modified, and also compares the
// ETag and Last-Modified of every answer: an object that changed fails
// with ErrChanged, it is never spliced. An object with neither validator
// is not resumed once bytes were delivered (ErrNotResumable). A server
// that ignores Range and answers 200 is read again from the start and the
// bytes already delivered are discarded. Retries are bounded
// (Options.Retries failures in a row, with exponential backoff bound to
// the context); 5xx and 429 are retried, other statuses are a
// *StatusError. The Reader returns io.EOF after exactly Size bytes; a body
// that ends early or runs long fails with ErrSizeMismatch. Progress is the
// BytesRead counter and the Options.Progress callback.
//
// # Address policy
//
// Only public unicast addresses are reachable by default. Loopback
// (127/8, ::1), link-local (169.254/16 with the cloud metadata address
// 169.254.169.254, fe80::/10), private (10/8, 172.16/12, 192.168/16,
// fc00::/7), shared 100.64/10, documentation, benchmarking and reserved
// ranges, IPv4-compatible ::/96, and the IPv4-mapped, NAT64 and 6to4 forms
// of those are refused (Classify) unless Options.Allow names the host
// ("minio.internal", "*.s3.internal") or a prefix containing the address
// ("10.0.0.0/8"). Unspecified and multicast addresses are never reachable.
//
// The check runs when connecting, on the address actually dialled: the
// transport resolves the host itself, drops refused addresses, dials the
// remaining ones by address, and checks the socket address again in the
// dialer's Control hook, so a DNS answer that changes between check and
// use (rebinding) cannot slip through. Every connection is checked,
// including those of redirects and resumes. Redirects are limited
// (Options.MaxRedirects), must be http(s) without userinfo, may not go
// from https to http (ErrRedirect), and a literal address target is
// checked before any connection. Environment proxies are not used: a proxy
// would connect on our behalf, past the check.
//
// # Errors and logs
//
// A presigned URL's query string is its credential. Every error of this
// package names the URL through Redact, which drops the query, the
// fragment and the userinfo; the *url.Error of net/http, which quotes the
// full URL, never escapes. The sentinels (ErrInvalidURL,
// ErrForbiddenAddress, ErrRedirect, ErrSizeMismatch, ErrChanged, ...) are
// for errors.Is, so that the API can answer 4xx without echoing details.
package urlsource

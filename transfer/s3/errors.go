package s3

import "errors"

// Errors returned before any request is sent, or when a stream outgrows the
// multipart limits. Match them with errors.Is. Errors from S3 itself wrap the
// SDK's errors: match them with errors.As and smithy.APIError (ErrorCode()
// "AccessDenied", "SignatureDoesNotMatch", "NoSuchBucket", ...).
var (
	// ErrInvalidConfig reports a Config that cannot work.
	ErrInvalidConfig = errors.New("s3: invalid config")
	// ErrInvalidOptions reports UploadOptions or Presign arguments that cannot work.
	ErrInvalidOptions = errors.New("s3: invalid options")
	// ErrTooLarge reports a stream that needs more than MaxParts parts of the
	// largest allowed size, or that grew past what its part plan allows.
	ErrTooLarge = errors.New("s3: stream too large for a multipart upload")
)

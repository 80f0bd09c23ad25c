package s3

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// withoutSDKRetries turns the SDK's own retries off for one call that
// Client.retry repeats itself, so that attempts do not multiply.
func withoutSDKRetries(o *awss3.Options) { o.Retryer = aws.NopRetryer{} }

// retryable reports whether err is worth another attempt of an idempotent
// request: the SDK's default classification (connection errors, 500/502/503/
// 504, throttling such as SlowDown, RequestTimeout), never a cancelled context.
func retryable(err error) bool {
	return retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary
}

// retry calls fn until it succeeds, fails for good, runs out of attempts or
// ctx ends. The delay before attempt k+1 is uniform in [0, RetryDelay·2^(k-1)],
// capped at MaxRetryDelay ("full jitter").
func (c *Client) retry(ctx context.Context, fn func(context.Context) error) error {
	ceiling := c.cfg.RetryDelay
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || attempt >= c.cfg.MaxAttempts || !retryable(err) {
			return err
		}
		if ctx.Err() != nil {
			return stopped(ctx, err, attempt)
		}
		t := time.NewTimer(rand.N(ceiling + 1))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return stopped(ctx, err, attempt)
		}
		ceiling = min(2*ceiling, c.cfg.MaxRetryDelay)
	}
}

// stopped reports err from the last attempt together with why ctx ended.
func stopped(ctx context.Context, err error, attempt int) error {
	cause := context.Cause(ctx)
	if errors.Is(err, cause) {
		return err
	}
	return fmt.Errorf("%w (retry after attempt %d stopped: %w)", err, attempt, cause)
}

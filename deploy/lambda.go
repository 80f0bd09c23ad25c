package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdaurl"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// Mode says which kind of event the function receives and how it answers.
type Mode string

const (
	// ModeAuto recognises each event: API Gateway REST (v1) events by their
	// httpMethod, Function URL events by their domain name
	// (<url-id>.lambda-url.<region>.on.aws, answered as a stream), and any
	// other payload 2.0 event as an HTTP API (v2) event. It lets one function
	// sit behind an HTTP API and a streaming Function URL at once.
	ModeAuto Mode = "auto"
	// ModeV1 serves API Gateway REST API proxy events (payload 1.0),
	// buffered.
	ModeV1 Mode = "v1"
	// ModeV2 serves API Gateway HTTP API events (payload 2.0), buffered. A
	// Function URL in BUFFERED mode sends the same shape.
	ModeV2 Mode = "v2"
	// ModeStream serves Function URL events for a URL configured with
	// InvokeMode RESPONSE_STREAM: the body is streamed as the handler
	// writes it (watch streams, NDJSON collections).
	ModeStream Mode = "stream"
)

// ParseMode reads a Mode from configuration; the empty string is ModeAuto.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return ModeAuto, nil
	case ModeAuto, ModeV1, ModeV2, ModeStream:
		return m, nil
	}
	return "", fmt.Errorf("deploy: unknown Lambda mode %q (auto, v1, v2 or stream)", s)
}

// MaxBufferedResponse is the largest body a buffered (v1 or v2) answer
// carries. Lambda refuses synchronous responses over 6 MB (the JSON
// envelope included), and binary bodies grow by a third once base64
// encoded, so a little room is kept.
const MaxBufferedResponse = 6_000_000 - 64<<10

// Start runs the Lambda runtime loop, serving h for events of the given
// mode, and jobs dispatched by async (nil when there are none). It needs
// AWS_LAMBDA_RUNTIME_API, which the Lambda service (or the runtime
// interface emulator) sets, and the binary must be built with
// -tags lambda.norpc for provided.al2023.
//
// Start only returns an error for a bad argument; once the loop runs it
// never returns: the runtime ends the process when the Runtime API fails,
// which makes Lambda start a fresh one. ctx is the base context of every
// invocation.
func Start(ctx context.Context, h http.Handler, mode Mode, async *Async) error {
	fn, err := NewHandler(h, mode, async)
	if err != nil {
		return err
	}
	lambda.StartWithOptions(fn, lambda.WithContext(ctx))
	return errors.New("deploy: the Lambda runtime loop returned")
}

// HandlerFunc is a Lambda handler: it takes the raw event and returns a
// value that the runtime encodes as JSON, or a stream
// (*events.LambdaFunctionURLStreamingResponse) that it sends as it is
// read.
type HandlerFunc func(ctx context.Context, event json.RawMessage) (any, error)

// NewHandler returns the Lambda handler that Start runs: it serves h for
// events of the given mode, and runs the jobs that async dispatched to
// this function (events that no HTTP source can send, see Async).
//
// About the HTTP side, whatever the mode:
//   - r.Host is the Host header of the original request (the REST adapter
//     leaves it empty).
//   - Request bodies arrive whole inside the event (at most 6 MB), so large
//     uploads must be pulled from a URL instead.
//   - Buffered answers (v1, v2) over MaxBufferedResponse become a 502
//     JSON error instead of Lambda's opaque failure.
//   - Streamed answers (stream) fix their status and headers at the first
//     Write, WriteHeader or Flush: a handler must validate everything it
//     can before writing, because a later error can only end the stream.
func NewHandler(h http.Handler, mode Mode, async *Async) (HandlerFunc, error) {
	if h == nil {
		return nil, errors.New("deploy: nil http.Handler")
	}
	if _, err := ParseMode(string(mode)); err != nil {
		return nil, err
	}
	h = fixRequest(h)
	v1 := httpadapter.New(capBuffered(h))
	v2 := httpadapter.NewV2(capBuffered(h))
	stream := lambdaurl.Wrap(flushable(h))

	serveV1 := func(ctx context.Context, raw json.RawMessage) (any, error) {
		var ev events.APIGatewayProxyRequest
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("deploy: decoding an API Gateway REST event: %w", err)
		}
		over := new(bool)
		resp, err := v1.ProxyWithContext(context.WithValue(ctx, overKey{}, over), ev)
		if err != nil {
			return nil, err
		}
		if *over {
			return events.APIGatewayProxyResponse{
				StatusCode:        http.StatusBadGateway,
				MultiValueHeaders: map[string][]string{"Content-Type": {"application/json"}},
				Body:              tooLargeBody(),
			}, nil
		}
		return resp, nil
	}
	serveV2 := func(ctx context.Context, raw json.RawMessage) (any, error) {
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("deploy: decoding an HTTP API event: %w", err)
		}
		over := new(bool)
		resp, err := v2.ProxyWithContext(context.WithValue(ctx, overKey{}, over), ev)
		if err != nil {
			return nil, err
		}
		if *over {
			return events.APIGatewayV2HTTPResponse{
				StatusCode: http.StatusBadGateway,
				Headers:    map[string]string{"Content-Type": "application/json"},
				Body:       tooLargeBody(),
			}, nil
		}
		return resp, nil
	}
	serveStream := func(ctx context.Context, raw json.RawMessage) (any, error) {
		var ev events.LambdaFunctionURLRequest
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("deploy: decoding a Function URL event: %w", err)
		}
		return stream(ctx, &ev)
	}

	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		if job, ok := jobFromEvent(raw); ok {
			if async == nil {
				return nil, errors.New("deploy: received an async job but no Async was given to run it")
			}
			return async.runEvent(ctx, job)
		}
		switch m := mode; m {
		case ModeV1:
			return serveV1(ctx, raw)
		case ModeV2:
			return serveV2(ctx, raw)
		case ModeStream:
			return serveStream(ctx, raw)
		}
		switch detect(raw) {
		case ModeV1:
			return serveV1(ctx, raw)
		case ModeStream:
			return serveStream(ctx, raw)
		}
		return serveV2(ctx, raw)
	}, nil
}

// detect tells the event kinds apart for ModeAuto.
func detect(raw json.RawMessage) Mode {
	var probe struct {
		HTTPMethod     string `json:"httpMethod"`
		RequestContext struct {
			DomainName string `json:"domainName"`
		} `json:"requestContext"`
	}
	if json.Unmarshal(raw, &probe) != nil {
		return ModeV2
	}
	if probe.HTTPMethod != "" {
		return ModeV1
	}
	if strings.Contains(probe.RequestContext.DomainName, ".lambda-url.") {
		return ModeStream
	}
	return ModeV2
}

// fixRequest repairs what the adapters leave out: r.Host under the REST
// adapter, and the Cookie header of Function URL events (which carry
// cookies in their own array, and lambdaurl drops them).
func fixRequest(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host == "" {
			r.Host = r.Header.Get("Host")
		}
		if ev, ok := lambdaurl.RequestFromContext(r.Context()); ok && len(ev.Cookies) > 0 && r.Header.Get("Cookie") == "" {
			r.Header.Set("Cookie", strings.Join(ev.Cookies, "; "))
		}
		h.ServeHTTP(w, r)
	})
}

// flushable gives lambdaurl's writer the http.Flusher that watch streams
// use. Its writes already go straight to the runtime (an unbuffered
// pipe), so Flush only sends the status and headers if nothing was
// written yet.
func flushable(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(flushWriter{w}, r)
	})
}

type flushWriter struct{ http.ResponseWriter }

// Flush sends the status and headers (200 unless WriteHeader said
// otherwise); lambdaurl ignores every status after the first.
func (f flushWriter) Flush() { f.ResponseWriter.WriteHeader(http.StatusOK) }

// Unwrap lets http.ResponseController reach the adapter's writer.
func (f flushWriter) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// errTooLarge is what a handler's Write returns once a buffered answer
// passed MaxBufferedResponse.
var errTooLarge = errors.New("deploy: response too large for a buffered Lambda answer")

// overKey carries, in a request's context, the flag that capBuffered sets
// when the answer went over MaxBufferedResponse.
type overKey struct{}

// capBuffered stops buffering past MaxBufferedResponse, so that an
// oversized answer costs no more memory than the limit; the caller then
// replaces it by an error.
func capBuffered(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		over, _ := r.Context().Value(overKey{}).(*bool)
		if over == nil {
			over = new(bool)
		}
		h.ServeHTTP(&cappedWriter{ResponseWriter: w, over: over}, r)
	})
}

type cappedWriter struct {
	http.ResponseWriter
	n    int
	over *bool
}

func (c *cappedWriter) Write(p []byte) (int, error) {
	if *c.over || c.n+len(p) > MaxBufferedResponse {
		*c.over = true
		return 0, errTooLarge
	}
	c.n += len(p)
	return c.ResponseWriter.Write(p)
}

func tooLargeBody() string {
	b, _ := json.Marshal(map[string]any{
		"error": "the response is too large for a buffered Lambda answer (6 MB); use the streaming Function URL, an NDJSON page or an export to S3",
		"data":  map[string]any{"limit": MaxBufferedResponse},
	})
	return string(b)
}

// jobFromEvent recognises an async job event (see Async).
func jobFromEvent(raw json.RawMessage) ([]byte, bool) {
	if !bytes.Contains(raw, []byte(jobKey)) {
		return nil, false
	}
	var ev jobEvent
	if json.Unmarshal(raw, &ev) != nil || ev.Job == nil {
		return nil, false
	}
	return ev.Job, true
}

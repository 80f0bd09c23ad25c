package deploy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/xorest/xorest/deploy"
	"github.com/xorest/xorest/deploy/internal/testhandler"
)

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     deploy.Mode
		wantErr  bool
	}{
		{"empty is auto", "", deploy.ModeAuto, false},
		{"v1", "v1", deploy.ModeV1, false},
		{"v2 upper case", "V2", deploy.ModeV2, false},
		{"stream with spaces", " stream ", deploy.ModeStream, false},
		{"unknown", "buffered", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := deploy.ParseMode(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("ParseMode(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestNewHandlerRefuses(t *testing.T) {
	if _, err := deploy.NewHandler(nil, deploy.ModeV2, nil); err == nil {
		t.Error("nil handler accepted")
	}
	if _, err := deploy.NewHandler(testhandler.New(), "v3", nil); err == nil {
		t.Error("mode v3 accepted")
	}
}

// TestEvents feeds every fixture through the handler in each mode that
// accepts it, in process.
func TestEvents(t *testing.T) {
	for _, tc := range eventCases {
		for _, mode := range tc.modes {
			t.Run(string(mode)+"/"+tc.name, func(t *testing.T) {
				fn, err := deploy.NewHandler(testhandler.New(), mode, nil)
				if err != nil {
					t.Fatal(err)
				}
				v, err := fn(context.Background(), fixture(t, tc.fixture))
				if err != nil {
					t.Fatal(err)
				}
				tc.want.verify(t, decodeAnswer(t, encodeAnswer(t, v)))
			})
		}
	}
}

// TestStreamHeadersFirst checks that a Function URL answer really
// streams: the status and headers are handed to Lambda, then the first
// chunk, while the handler has not finished.
func TestStreamHeadersFirst(t *testing.T) {
	for _, mode := range []deploy.Mode{deploy.ModeStream, deploy.ModeAuto} {
		t.Run(string(mode), func(t *testing.T) {
			release := make(chan struct{})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-ndjson")
				w.Header().Set("X-Stage", "headers")
				w.WriteHeader(http.StatusCreated)
				io.WriteString(w, "first\n")
				if err := http.NewResponseController(w).Flush(); err != nil {
					t.Errorf("Flush: %v", err)
				}
				<-release
				io.WriteString(w, "second\n")
				io.WriteString(w, "third\n")
			})
			fn, err := deploy.NewHandler(h, mode, nil)
			if err != nil {
				t.Fatal(err)
			}
			type result struct {
				v   any
				err error
			}
			done := make(chan result, 1)
			go func() {
				v, err := fn(context.Background(), fixture(t, "function-url-stream.json"))
				done <- result{v, err}
			}()
			var res result
			select {
			case res = <-done:
			case <-time.After(30 * time.Second):
				close(release)
				t.Fatal("the handler did not return before the HTTP handler finished: the answer is buffered")
			}
			if res.err != nil {
				t.Fatal(res.err)
			}
			resp, ok := res.v.(*events.LambdaFunctionURLStreamingResponse)
			if !ok {
				t.Fatalf("answer is a %T, want *events.LambdaFunctionURLStreamingResponse", res.v)
			}
			if resp.StatusCode != http.StatusCreated || resp.Headers["X-Stage"] != "headers" || resp.Headers["Content-Type"] != "application/x-ndjson" {
				t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Headers)
			}
			first := make([]byte, len("first\n"))
			if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first\n" {
				t.Fatalf("first chunk %q, %v", first, err)
			}
			close(release)
			rest, err := io.ReadAll(resp.Body)
			if err != nil || string(rest) != "second\nthird\n" {
				t.Fatalf("rest %q, %v", rest, err)
			}
		})
	}
}

// TestBufferedLimit checks that an answer over the buffered limit turns
// into a JSON 502 in v1 and v2, and that one under it goes through.
func TestBufferedLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fixture string
		mode    deploy.Mode
		bytes   int
		want    int
	}{
		{"v1 under", "apigw-v1-collection.json", deploy.ModeV1, deploy.MaxBufferedResponse, 200},
		{"v1 over", "apigw-v1-collection.json", deploy.ModeV1, deploy.MaxBufferedResponse + 1, 502},
		{"v2 under", "apigw-v2-collection.json", deploy.ModeV2, deploy.MaxBufferedResponse, 200},
		{"v2 over", "apigw-v2-collection.json", deploy.ModeV2, 8 << 20, 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev map[string]any
			if err := json.Unmarshal(fixture(t, tc.fixture), &ev); err != nil {
				t.Fatal(err)
			}
			n := json.Number(itoa(tc.bytes))
			if tc.mode == deploy.ModeV1 {
				ev["path"] = "/rest/v0/big"
				ev["multiValueQueryStringParameters"] = map[string][]string{"bytes": {string(n)}}
			} else {
				ev["rawPath"] = "/rest/v0/big"
				ev["rawQueryString"] = "bytes=" + string(n)
			}
			raw, _ := json.Marshal(ev)
			fn, err := deploy.NewHandler(testhandler.New(), tc.mode, nil)
			if err != nil {
				t.Fatal(err)
			}
			v, err := fn(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			a := decodeAnswer(t, encodeAnswer(t, v))
			if a.status != tc.want {
				t.Fatalf("status %d, want %d", a.status, tc.want)
			}
			if tc.want == 200 && len(a.body) != tc.bytes {
				t.Fatalf("body of %d bytes, want %d", len(a.body), tc.bytes)
			}
			if tc.want == 502 && !strings.Contains(a.body, "too large") {
				t.Fatalf("body %q", a.body)
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// FuzzHandler feeds arbitrary events to the auto handler: it may refuse
// them, never panic.
func FuzzHandler(f *testing.F) {
	for _, tc := range eventCases {
		f.Add(fixture(f, tc.fixture))
	}
	f.Add([]byte(`{"xorestAsyncJob":"am9i"}`))
	f.Add([]byte(`{"httpMethod":1}`))
	fn, err := deploy.NewHandler(testhandler.New(), deploy.ModeAuto, deploy.NewLocalAsync(func(context.Context, []byte) error { return nil }, nil))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := fn(context.Background(), raw)
		if err != nil {
			return
		}
		if r, ok := v.(io.ReadCloser); ok {
			io.Copy(io.Discard, r)
			r.Close()
		}
	})
}

package deploy_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// answer is an HTTP answer decoded from what a Lambda handler returns,
// whichever the format: API Gateway v1 or v2 JSON, or a Function URL
// stream (JSON prelude, 8 NUL bytes, body).
type answer struct {
	status  int
	header  http.Header
	cookies []string
	body    string
	stream  bool
}

type wireAnswer struct {
	StatusCode        int                 `json:"statusCode"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	Cookies           []string            `json:"cookies"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
}

var streamDelimiter = make([]byte, 8)

func decodeAnswer(t *testing.T, raw []byte) answer {
	t.Helper()
	var w wireAnswer
	a := answer{header: http.Header{}}
	if i := bytes.Index(raw, streamDelimiter); i >= 0 && json.Valid(raw[:i]) {
		if err := json.Unmarshal(raw[:i], &w); err != nil {
			t.Fatalf("stream prelude %q: %v", raw[:i], err)
		}
		w.Body, a.stream = string(raw[i+len(streamDelimiter):]), true
	} else if err := json.Unmarshal(raw, &w); err != nil {
		t.Fatalf("answer %q: %v", raw, err)
	}
	a.status, a.cookies, a.body = w.StatusCode, w.Cookies, w.Body
	for k, v := range w.Headers {
		for _, s := range strings.Split(v, ",") {
			a.header.Add(k, s)
		}
	}
	for k, vs := range w.MultiValueHeaders {
		a.header[http.CanonicalHeaderKey(k)] = vs
	}
	a.cookies = append(a.cookies, a.header.Values("Set-Cookie")...)
	if w.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(w.Body)
		if err != nil {
			t.Fatalf("base64 body: %v", err)
		}
		a.body = string(b)
	}
	return a
}

// encodeAnswer turns a handler's return value into the bytes the runtime
// would send, as aws-lambda-go does: a stream is read out, anything else
// is JSON.
func encodeAnswer(t *testing.T, v any) []byte {
	t.Helper()
	if r, ok := v.(io.Reader); ok {
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		return b
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encoding the answer: %v", err)
	}
	return b
}

// check is what a test expects of an answer.
type check struct {
	status  int
	stream  bool
	body    string            // exact body, when set
	json    map[string]any    // fields of a JSON object body, when set
	header  map[string]string // header values that must be present
	cookies []string          // Set-Cookie values that must be present
}

func (c check) verify(t *testing.T, a answer) {
	t.Helper()
	if a.status != c.status {
		t.Errorf("status %d, want %d (body %q)", a.status, c.status, a.body)
	}
	if a.stream != c.stream {
		t.Errorf("streamed %v, want %v", a.stream, c.stream)
	}
	if c.body != "" && a.body != c.body {
		t.Errorf("body %q, want %q", a.body, c.body)
	}
	if c.json != nil {
		var got map[string]any
		if err := json.Unmarshal([]byte(a.body), &got); err != nil {
			t.Fatalf("body %q: %v", a.body, err)
		}
		for k, want := range c.json {
			wb, _ := json.Marshal(want)
			gb, _ := json.Marshal(got[k])
			if !bytes.Equal(wb, gb) {
				t.Errorf("body field %q = %s, want %s", k, gb, wb)
			}
		}
	}
	for k, want := range c.header {
		if !contains(a.header.Values(k), want) {
			t.Errorf("header %s = %q, want %q among them", k, a.header.Values(k), want)
		}
	}
	for _, want := range c.cookies {
		if !contains(a.cookies, want) {
			t.Errorf("cookies %q, want %q among them", a.cookies, want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if strings.TrimSpace(v) == s {
			return true
		}
	}
	return false
}

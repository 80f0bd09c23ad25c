package handlers

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// testVMs are VM-shaped objects as the xo layer produces them.
func testVMs() []map[string]any {
	return []map[string]any{
		{
			"id": "0b6e8b5c-0001", "type": "VM", "name_label": "web 1", "name_description": "front | end\nserver",
			"power_state": "Running", "CPUs": map[string]any{"max": 4.0, "number": 2.0},
			"memory": map[string]any{"dynamic": []any{1073741824.0, 2147483648.0}, "size": 2147483648.0},
			"tags":   []any{"prod", "web"}, "$pool": "pool-1", "$poolId": "pool-1", "os_version": nil,
			"addresses": map[string]any{"0/ipv4/0": "10.0.0.2"}, "startTime": 1.7e9,
		},
		{
			"id": "0b6e8b5c-0002", "type": "VM", "name_label": "db", "name_description": "",
			"power_state": "Halted", "CPUs": map[string]any{"max": 2.0, "number": 1.0},
			"memory": map[string]any{"dynamic": []any{536870912.0, 536870912.0}, "size": 536870912.0},
			"tags":   []any{}, "$pool": "pool-1", "$poolId": "pool-1", "os_version": map[string]any{"name": "Debian"},
			"addresses": map[string]any{}, "startTime": nil,
		},
		{
			"id": "0b6e8b5c-0003", "type": "VM", "name_label": "web 2 \"quoted\" <b>", "name_description": "é ü 日本",
			"power_state": "Running", "CPUs": map[string]any{"max": 4.0, "number": 4.0},
			"memory": map[string]any{"dynamic": []any{1.0, 2.5}, "size": 1e-7},
			"tags":   []any{"web"}, "$pool": "pool-2", "$poolId": "pool-2", "os_version": nil,
			"addresses": map[string]any{}, "startTime": 0.0,
		},
	}
}

func seq(objs []map[string]any) iter.Seq[map[string]any] { return slices.Values(objs) }

func TestWriteCollection(t *testing.T) {
	tests := []struct {
		name  string
		query string
		objs  []map[string]any
		ctype string
	}{
		{"urls", "", testVMs(), contentJSON},
		{"empty", "", nil, contentJSON},
		{"empty ndjson", "ndjson", nil, contentNDJSON},
		{"fields", "fields=name_label,power_state", testVMs(), contentJSON},
		{"nested fields", "fields=CPUs.number,tags[0],memory.dynamic.1,addresses.0/ipv4/0", testVMs(), contentJSON},
		{"empty fields", "fields=", testVMs(), contentJSON},
		{"unknown field", "fields=name_label,nonexistent", testVMs(), contentJSON},
		{"no trimming", "fields=name_label,%20power_state", testVMs(), contentJSON},
		{"star", "fields=*", testVMs(), contentJSON},
		{"ndjson urls", "ndjson", testVMs(), contentNDJSON},
		{"ndjson fields", "ndjson=true&fields=name_label,CPUs", testVMs(), contentNDJSON},
		{"ndjson star", "ndjson&fields=*", testVMs(), contentNDJSON},
		{"markdown urls", "markdown=true", testVMs(), contentMarkdown},
		{"markdown fields", "markdown=true&fields=name_label,name_description,CPUs,os_version,tags", testVMs(), contentMarkdown},
		{"markdown star", "markdown=true&fields=*", testVMs()[:1], contentMarkdown},
		{"markdown empty", "markdown=true&fields=id", nil, contentMarkdown},
		{"filter", "filter=" + url.QueryEscape("power_state:Running tags:web") + "&fields=name_label", testVMs(), contentJSON},
		{"filter and limit", "filter=power_state:Running&limit=1&fields=name_label", testVMs(), contentJSON},
		{"limit zero", "limit=0", testVMs(), contentJSON},
		{"negative limit", "limit=-3", testVMs(), contentJSON},
		{"href field replaced", "fields=href,url,id", testVMs()[:1], contentJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			q, err := ParseQuery(values, allParams)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/rest/v0/vms?"+tt.query, nil)
			if err := WriteCollection(rec, req, q, seq(tt.objs), HrefIn("/rest/v0/vms")); err != nil {
				t.Fatal(err)
			}
			if got := rec.Header().Get("Content-Type"); got != tt.ctype {
				t.Errorf("Content-Type %q, want %q", got, tt.ctype)
			}
			body := rec.Body.Bytes()
			switch tt.ctype {
			case contentJSON:
				if !json.Valid(body) {
					t.Errorf("invalid JSON: %s", body)
				}
			case contentNDJSON:
				for _, line := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
					if line != "" && !json.Valid([]byte(line)) {
						t.Errorf("invalid NDJSON line %q", line)
					}
				}
			}
			golden(t, goldenName("render", tt.name, "txt"), body)
		})
	}
}

// TestObjectWrapperVectors checks the vectors of XO's object-wrapper
// helper (reference §A.2), with the url member xorest adds.
func TestObjectWrapperVectors(t *testing.T) {
	obj := map[string]any{"id": "abc-123", "name": "test-vm", "type": "VM", "power_state": "Running"}
	tests := []struct {
		name   string
		fields string
		path   string
		obj    map[string]any
		want   string
	}{
		{"url", "", "/rest/v0/vms", obj, `"/rest/v0/vms/abc-123"`},
		{"other path", "", "/rest/v0/hosts", obj, `"/rest/v0/hosts/abc-123"`},
		{"trailing slash", "", "/rest/v0/vms/", obj, `"/rest/v0/vms/abc-123"`},
		{"numeric id", "", "/rest/v0/vms", map[string]any{"id": 42.0}, `"/rest/v0/vms/42"`},
		{"star", "*", "/rest/v0/vms", obj, `{"id":"abc-123","name":"test-vm","power_state":"Running","type":"VM","href":"/rest/v0/vms/abc-123","url":"/rest/v0/vms/abc-123"}`},
		{"fields", "name,type", "/rest/v0/vms", obj, `{"name":"test-vm","type":"VM","href":"/rest/v0/vms/abc-123","url":"/rest/v0/vms/abc-123"}`},
		{"nonexistent", "name,nonexistent", "/rest/v0/vms", obj, `{"name":"test-vm","href":"/rest/v0/vms/abc-123","url":"/rest/v0/vms/abc-123"}`},
		{"empty", "=", "/rest/v0/vms", obj, `{"href":"/rest/v0/vms/abc-123","url":"/rest/v0/vms/abc-123"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fields *Fields
			switch tt.fields {
			case "":
			case "=":
				fields = ParseFields("")
			default:
				fields = ParseFields(tt.fields)
			}
			m := mapper{fields: fields, href: HrefIn(tt.path)}
			if got := string(m.appendItem(nil, tt.obj, false, 0)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestMarkdownVectors checks the vectors of XO's markdown helper (§A.2).
func TestMarkdownVectors(t *testing.T) {
	tests := []struct {
		name   string
		fields string
		objs   []map[string]any
		want   string
	}{
		{"two rows", "id,name", []map[string]any{{"id": "vm1", "name": "Web"}, {"id": "vm2", "name": "DB"}}, "| id | name |\n| --- | --- |\n| vm1 | Web |\n| vm2 | DB |"},
		{"nulls", "a,b", []map[string]any{{"a": nil}}, "| a |\n| --- |\n|  |"},
		{"one", "id", []map[string]any{{"id": "x"}}, "| id |\n| --- |\n| x |"},
		{"later rows follow the first header", "id,name", []map[string]any{{"id": "1"}, {"id": "2", "name": "n"}}, "| id |\n| --- |\n| 1 |\n| 2 |"},
		{"escaping", "v", []map[string]any{{"v": "a|b\nc"}}, "| v |\n| --- |\n| a\\|b c |"},
		{"objects as json", "o", []map[string]any{{"o": map[string]any{"k": []any{1.0, "x|y"}}}}, "| o |\n| --- |\n| {\"k\":[1,\"x\\|y\"]} |"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := Query{Fields: ParseFields(tt.fields), Markdown: true, Limit: -1}
			rec := httptest.NewRecorder()
			if err := WriteCollection(rec, httptest.NewRequest("GET", "/", nil), q, seq(tt.objs), HrefIn("/rest/v0/vms")); err != nil {
				t.Fatal(err)
			}
			if got := rec.Body.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAppendJSON(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"integers", []any{0.0, math.Copysign(0, -1), 1.0, -5.0, 1e20, 123456789012.0}, `[0,0,1,-5,100000000000000000000,123456789012]`},
		{"exponents", []any{1e21, 1.5e-7, 1e-6, 0.1, 2.5}, `[1e+21,1.5e-7,0.000001,0.1,2.5]`},
		{"strings", []any{"a\"b\\c", "\n\t\r\b\f", "\x01\x1f", "<&>", "é\u2028", "bad\xffutf8"}, `["a\"b\\c","\n\t\r\b\f","\u0001\u001f","<&>","é` + "\u2028" + `","bad\ufffdutf8"]`},
		{"other types", map[string]any{"i": 3, "i64": int64(-4), "u": uint64(5), "b": true, "n": nil, "ss": []string{"x"}, "ms": map[string]string{"k": "v"}, "num": json.Number("1.50")}, `{"b":true,"i":3,"i64":-4,"ms":{"k":"v"},"n":null,"num":1.50,"ss":["x"],"u":5}`},
		{"index keys first", map[string]any{"b": 1.0, "10": 2.0, "2": 3.0, "a": 4.0}, `{"2":3,"10":2,"a":4,"b":1}`},
		{"fallback", struct {
			A int `json:"a"`
		}{7}, `{"a":7}`},
		{"empty containers", []any{map[string]any{}, []any{}}, `[{},[]]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendJSON(nil, tt.in, false, 0)); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	pretty := string(appendJSON(nil, map[string]any{"a": []any{1.0, map[string]any{}}, "b": map[string]any{"c": "d"}}, true, 0))
	want := "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": {\n    \"c\": \"d\"\n  }\n}"
	if pretty != want {
		t.Errorf("pretty:\n%s\nwant\n%s", pretty, want)
	}
}

// countingWriter records the size of every Write and every Flush.
type countingWriter struct {
	*httptest.ResponseRecorder
	writes  []int
	flushes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, len(p))
	return w.ResponseRecorder.Write(p)
}

func (w *countingWriter) Flush() { w.flushes++ }

func manyVMs(n int) []map[string]any {
	vms := make([]map[string]any, n)
	states := []string{"Running", "Halted", "Suspended", "Paused"}
	for i := range vms {
		vms[i] = map[string]any{
			"id": fmt.Sprintf("00000000-0000-4000-8000-%012d", i), "type": "VM", "name_label": fmt.Sprintf("vm-%05d", i),
			"name_description": "a benchmark VM", "power_state": states[i%len(states)],
			"CPUs": map[string]any{"max": 4.0, "number": 2.0}, "tags": []any{"bench", fmt.Sprintf("group-%d", i%10)},
			"memory": map[string]any{"dynamic": []any{1 << 30, 1 << 31}, "size": 1 << 31}, "$pool": "p", "$poolId": "p",
			"other": map[string]any{"auto_poweron": "true", "base_template_name": "Debian"},
		}
	}
	return vms
}

func TestWriteCollectionStreams(t *testing.T) {
	vms := manyVMs(10000)
	for _, query := range []string{"fields=*", "ndjson&fields=*", "markdown=true&fields=*"} {
		t.Run(query, func(t *testing.T) {
			values, _ := url.ParseQuery(query)
			q, err := ParseQuery(values, allParams)
			if err != nil {
				t.Fatal(err)
			}
			w := &countingWriter{ResponseRecorder: httptest.NewRecorder()}
			if err := WriteCollection(w, httptest.NewRequest("GET", "/", nil), q, seq(vms), HrefIn("/rest/v0/vms")); err != nil {
				t.Fatal(err)
			}
			total := w.Body.Len()
			if len(w.writes) < total/(2*flushBytes) || slices.Max(w.writes) > flushBytes+16<<10 {
				t.Errorf("%d bytes in %d writes, largest %d: want chunks of about %d", total, len(w.writes), slices.Max(w.writes), flushBytes)
			}
			if w.flushes < len(w.writes)-1 {
				t.Errorf("%d flushes for %d writes", w.flushes, len(w.writes))
			}
			if query == "fields=*" {
				var items []map[string]any
				if err := json.Unmarshal(w.Body.Bytes(), &items); err != nil || len(items) != len(vms) {
					t.Fatalf("%d items, %v", len(items), err)
				}
			}
		})
	}
}

func TestWriteCollectionStopsWhenClientLeaves(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	produced := 0
	items := func(yield func(map[string]any) bool) {
		for i := 0; ; i++ {
			produced++
			if i == 100 {
				cancel()
			}
			if !yield(map[string]any{"id": i}) {
				return
			}
		}
	}
	req := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	err := WriteCollection(httptest.NewRecorder(), req, Query{Limit: -1}, items, HrefIn("/x"))
	if err == nil || ctx.Err() == nil {
		t.Fatalf("err = %v", err)
	}
	if produced > 2048 {
		t.Errorf("kept producing %d items after the client left", produced)
	}
}

// watchClient starts a watch on a real server and returns its line reader.
func startWatch(t *testing.T, query string, keepAlive time.Duration) (events chan Event, lines *bufio.Reader, cancel func(), done chan error) {
	t.Helper()
	values, _ := url.ParseQuery(query)
	q, err := ParseQuery(values, allParams)
	if err != nil {
		t.Fatal(err)
	}
	events = make(chan Event)
	done = make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		done <- WriteWatch(w, r, q, events, HrefIn("/rest/v0/vms"), keepAlive)
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.Header.Get("Content-Type") != contentNDJSON {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	return events, bufio.NewReader(resp.Body), cancel, done
}

func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading a watch line: %v", err)
	}
	return strings.TrimSuffix(line, "\n")
}

func TestWriteWatch(t *testing.T) {
	vms := testVMs()
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"urls", "ndjson&watch", []string{
			`["update","/rest/v0/vms/0b6e8b5c-0001"]`,
			`["update","/rest/v0/vms/0b6e8b5c-0002"]`,
			`["remove",{"href":"/rest/v0/vms/0b6e8b5c-0002"}]`,
		}},
		{"fields and filter", "ndjson=true&watch=true&fields=name_label,power_state&filter=power_state:Running", []string{
			`["update",{"name_label":"web 1","power_state":"Running","href":"/rest/v0/vms/0b6e8b5c-0001","url":"/rest/v0/vms/0b6e8b5c-0001"}]`,
			`["remove",{"href":"/rest/v0/vms/0b6e8b5c-0002"}]`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, lines, _, done := startWatch(t, tt.query, time.Hour)
			go func() {
				events <- Event{Kind: EventUpdate, Object: vms[0]}
				events <- Event{Kind: EventUpdate, Object: vms[1]}
				events <- Event{Kind: EventRemove, Object: map[string]any{"id": "0b6e8b5c-0002"}}
				close(events)
			}()
			for _, want := range tt.want {
				if got := readLine(t, lines); got != want {
					t.Errorf("line %s, want %s", got, want)
				}
			}
			if err := <-done; err != nil {
				t.Errorf("WriteWatch after close: %v", err)
			}
		})
	}
}

func TestWriteWatchKeepAliveAndClientLeaving(t *testing.T) {
	events, lines, cancel, done := startWatch(t, "ndjson&watch", time.Millisecond)
	for range 3 {
		if got := readLine(t, lines); got != "" {
			t.Fatalf("keep-alive line %q, want an empty line", got)
		}
	}
	events <- Event{Kind: EventUpdate, Object: map[string]any{"id": "a"}}
	for {
		if got := readLine(t, lines); got != "" {
			if got != `["update","/rest/v0/vms/a"]` {
				t.Fatalf("line %q", got)
			}
			break
		}
	}
	cancel()
	if err := <-done; err == nil {
		t.Error("WriteWatch returned nil after the client left")
	}
}

func BenchmarkWriteCollection(b *testing.B) {
	vms := manyVMs(10000)
	for _, query := range []string{
		"fields=name_label,power_state&filter=" + url.QueryEscape("power_state:Running name_label:/^vm-0/ tags:bench"),
		"fields=*",
		"ndjson&fields=name_label,CPUs.number,tags[0]",
	} {
		b.Run(query, func(b *testing.B) {
			values, _ := url.ParseQuery(query)
			q, err := ParseQuery(values, allParams)
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest("GET", "/", nil)
			b.ReportAllocs()
			for b.Loop() {
				w := &discardWriter{header: http.Header{}}
				if err := WriteCollection(w, req, q, seq(vms), HrefIn("/rest/v0/vms")); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(w.n)
			}
		})
	}
}

// discardWriter is a ResponseWriter that counts bytes.
type discardWriter struct {
	header http.Header
	n      int64
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

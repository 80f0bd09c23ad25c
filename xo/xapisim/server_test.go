package xapisim

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testClient is a minimal XML-RPC client for the simulator's tests, built on
// the simulator's own value encoder (params) and parser (responses).
type testClient struct {
	t   testing.TB
	url string
}

func encodeCall(method string, params ...any) []byte {
	var e encoder
	e.b = append(e.b, `<?xml version="1.0"?><methodCall><methodName>`...)
	e.xmlString(method)
	e.b = append(e.b, `</methodName><params>`...)
	for _, p := range params {
		e.b = append(e.b, "<param>"...)
		e.xmlValue(p)
		e.b = append(e.b, "</param>"...)
	}
	e.b = append(e.b, `</params></methodCall>`...)
	if e.err != nil {
		panic(e.err)
	}
	return e.b
}

// decodeResponse parses an XML-RPC methodResponse into its single value.
func decodeResponse(body []byte) (any, error) {
	p := &xmlParser{d: xml.NewDecoder(bytes.NewReader(body))}
	for _, tag := range []string{"methodResponse", "params", "param", "value"} {
		if err := p.open(tag); err != nil {
			return nil, err
		}
	}
	return p.value(0)
}

// post sends a raw body and returns the response.
func (c *testClient) post(path, contentType string, body []byte) (*http.Response, []byte) {
	c.t.Helper()
	resp, err := http.Post(strings.TrimSuffix(c.url, "/")+path, contentType, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, b
}

// call returns the Value of a successful call or the ErrorDescription as a
// *Fault.
func (c *testClient) call(method string, params ...any) (any, error) {
	c.t.Helper()
	resp, body := c.post("/", "text/xml", encodeCall(method, params...))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/xml" {
		c.t.Fatalf("%s: status %d, content-type %q: %s", method, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	v, err := decodeResponse(body)
	if err != nil {
		c.t.Fatalf("%s: %v: %s", method, err, body)
	}
	m, ok := v.(map[string]any)
	if !ok || m["Status"] == nil {
		return v, nil // bare value (system.listMethods)
	}
	if m["Status"] == "Success" {
		return m["Value"], nil
	}
	desc, _ := m["ErrorDescription"].([]any)
	f := &Fault{}
	for i, d := range desc {
		if i == 0 {
			f.Code = fmt.Sprint(d)
		} else {
			f.Params = append(f.Params, fmt.Sprint(d))
		}
	}
	return nil, f
}

func (c *testClient) must(method string, params ...any) any {
	c.t.Helper()
	v, err := c.call(method, params...)
	if err != nil {
		c.t.Fatalf("%s: %v", method, err)
	}
	return v
}

func (c *testClient) login() string {
	c.t.Helper()
	return c.must("session.login_with_password", "root", "password").(string)
}

func newTestServer(t *testing.T) (*Server, *testClient) {
	t.Helper()
	m := Default()
	m.User, m.Password = "root", "password"
	srv := NewServer(t, m)
	return srv, &testClient{t: t, url: srv.URL}
}

// wantFault checks that err is the fault code with params.
func wantFault(t *testing.T, err error, code string, params ...string) {
	t.Helper()
	f, ok := err.(*Fault)
	if !ok {
		t.Fatalf("error %v, want fault %s%v", err, code, params)
	}
	if f.Code != code || (params != nil && !reflect.DeepEqual(f.Params, params)) {
		t.Fatalf("fault %s%q, want %s%q", f.Code, f.Params, code, params)
	}
}

func TestHTTPFraming(t *testing.T) {
	srv, c := newTestServer(t)
	body := encodeCall("system.listMethods")
	for _, path := range []string{"/", "/RPC2", "/xmlrpc", "/anything/else"} {
		resp, b := c.post(path, "text/xml", body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/xml" || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("POST %s: %d %v", path, resp.StatusCode, resp.Header)
		}
		if !bytes.HasPrefix(b, []byte(`<?xml version="1.0"?><methodResponse><params><param><value><array><data><value>`)) {
			t.Fatalf("POST %s: %s", path, b[:100])
		}
	}

	t.Run("chunked body refused", func(t *testing.T) {
		req, _ := http.NewRequest("POST", srv.URL, io.MultiReader(bytes.NewReader(body)))
		req.ContentLength = -1
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 500 || !strings.Contains(string(b), "We require a content-length") || resp.Header.Get("Content-Type") != "text/html" {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
	t.Run("too large", func(t *testing.T) {
		resp, _ := c.post("/", "text/xml", bytes.Repeat([]byte(" "), MaxRPCSize+1))
		if resp.StatusCode != 500 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		for _, tc := range []struct{ path, body string }{{"/", "<methodCall>"}, {"/jsonrpc", "{"}} {
			resp, _ := c.post(tc.path, "text/xml", []byte(tc.body))
			if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "text/html" {
				t.Fatalf("%s: status %d %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		}
	})
	t.Run("options", func(t *testing.T) {
		req, _ := http.NewRequest("OPTIONS", srv.URL+"jsonrpc", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("%d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("data plane hook", func(t *testing.T) {
		srv.HandleHTTP("GET /export/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "xva")
		}))
		resp, err := http.Get(srv.URL + "export/?ref=x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "xva" {
			t.Fatalf("got %q", b)
		}
		resp, err = http.Get(srv.URL + "nothing")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Fatalf("unmatched GET: %d", resp.StatusCode)
		}
		// POST stays XML-RPC.
		if _, err := c.call("system.listMethods"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDispatchErrors(t *testing.T) {
	srv, c := newTestServer(t)
	s := c.login()
	var vm string
	srv.DB.Write(func(tx *Tx) error {
		rec := NewRecord("VM")
		rec["name_label"] = "dispatch-vm"
		vm = tx.Create("VM", rec)
		return nil
	})
	srv.Register("test.slow", Method{Params: 1, Async: true, Handler: func(c *Call) (any, error) { return "done", nil }})
	srv.Register("test.defaults", Method{Params: 3, Defaults: 2, Handler: func(c *Call) (any, error) {
		return int64(len(c.Args)), nil
	}})
	tests := []struct {
		name   string
		method string
		params []any
		code   string
		fparam []string
	}{
		{"unknown with bad session", "VM.frobnicate", []any{"OpaqueRef:bad"}, "SESSION_INVALID", []string{"OpaqueRef:bad"}},
		{"unknown with session", "VM.frobnicate", []any{s}, "MESSAGE_METHOD_UNKNOWN", []string{"VM.frobnicate"}},
		{"unknown without params", "nothing", nil, "MESSAGE_METHOD_UNKNOWN", []string{"nothing"}},
		{"count mismatch", "VM.get_record", []any{s}, "MESSAGE_PARAMETER_COUNT_MISMATCH", []string{"VM.get_record", "1", "0"}},
		{"count mismatch too many", "VM.get_record", []any{s, vm, "x"}, "MESSAGE_PARAMETER_COUNT_MISMATCH", []string{"VM.get_record", "1", "2"}},
		{"count before session", "VM.get_record", []any{"OpaqueRef:bad"}, "MESSAGE_PARAMETER_COUNT_MISMATCH", []string{"VM.get_record", "1", "0"}},
		{"no params at all", "VM.get_all", nil, "MESSAGE_PARAMETER_COUNT_MISMATCH", []string{"VM.get_all", "0", "-1"}},
		{"defaults too few", "test.defaults", []any{s}, "MESSAGE_PARAMETER_COUNT_MISMATCH", []string{"test.defaults", "1", "0"}},
		{"bad session", "VM.get_all", []any{"OpaqueRef:bad"}, "SESSION_INVALID", []string{"OpaqueRef:bad"}},
		{"handle invalid", "VM.get_record", []any{s, "OpaqueRef:nope"}, "HANDLE_INVALID", []string{"VM", "OpaqueRef:nope"}},
		{"handle of another class", "VDI.get_record", []any{s, vm}, "HANDLE_INVALID", []string{"VDI", vm}},
		{"async without async mode", "Async.VM.get_record", []any{s, vm}, "Fault", []string{"No async mode for this operation (rpc: VM.get_record)"}},
		{"underscore with Async", "Async.VM_get_record", []any{s, vm}, "MESSAGE_METHOD_UNKNOWN", []string{"VM_get_record"}},
		{"invalid utf8", "VM.get_by_name_label", []any{s, "a\xffb"}, "INVALID_VALUE", []string{"Invalid UTF-8 string in parameter", "a\xffb"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "invalid utf8" {
				// XML cannot carry invalid UTF-8; JSON-RPC can (as \ufffd is
				// not what we want) — call the dispatcher directly.
				_, f, _ := srv.dispatch(t.Context(), tc.method, tc.params)
				if f == nil || f.Code != tc.code {
					t.Fatalf("fault %v", f)
				}
				return
			}
			_, err := c.call(tc.method, tc.params...)
			wantFault(t, err, tc.code, tc.fparam...)
		})
	}
	t.Run("underscore spelling", func(t *testing.T) {
		rec := c.must("VM_get_record", s, vm).(map[string]any)
		if rec["name_label"] != "dispatch-vm" {
			t.Fatalf("record %v", rec)
		}
		if got := c.must("VM_metrics_get_all", s); got == nil {
			t.Fatal("VM_metrics_get_all")
		}
	})
	t.Run("extra defaulted params ignored", func(t *testing.T) {
		if got := c.must("test.defaults", s, "a", "b", "c", "d", "e"); got != "3" {
			t.Fatalf("got %v", got)
		}
		if got := c.must("test.defaults", s, "a"); got != "1" {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("handler errors", func(t *testing.T) {
		srv.Register("test.fail", Method{Handler: func(c *Call) (any, error) { return nil, fmt.Errorf("boom") }})
		srv.Register("test.panic", Method{Handler: func(c *Call) (any, error) { panic("oops") }})
		_, err := c.call("test.fail", s)
		wantFault(t, err, "INTERNAL_ERROR", "boom")
		_, err = c.call("test.panic", s)
		wantFault(t, err, "INTERNAL_ERROR")
	})
}

func TestListMethods(t *testing.T) {
	_, c := newTestServer(t)
	v := c.must("system.listMethods").([]any)
	names := map[string]bool{}
	for _, n := range v {
		names[n.(string)] = true
	}
	for _, want := range []string{"VM.get_all_records", "task.get_all_records", "pool.get_all_records", "VM.add_tags",
		"VM.add_to_other_config", "VM.remove_from_other_config", "VM.set_name_label", "session.login_with_password",
		"event.from", "event.inject", "task.create", "host.get_API_version_major", "VM_metrics.get_record"} {
		if !names[want] {
			t.Errorf("%s missing", want)
		}
	}
	for n := range names {
		if strings.HasPrefix(n, "Async.") || strings.HasPrefix(n, "system.") {
			t.Errorf("listed %s", n)
		}
	}
	for _, absent := range []string{"session.get_all_records", "VM.set_power_state", "VM.set_uuid", "event.get_record"} {
		if names[absent] {
			t.Errorf("%s listed", absent)
		}
	}
}

func TestSessions(t *testing.T) {
	srv, c := newTestServer(t)
	tests := []struct {
		name   string
		params []any
		code   string
		fparam []string
	}{
		{"wrong password", []any{"root", "nope"}, "SESSION_AUTHENTICATION_FAILED", []string{"root", "Authentication failure"}},
		{"wrong user", []any{"admin", "password"}, "SESSION_AUTHENTICATION_FAILED", []string{"admin", "Authentication failure"}},
		{"one param", []any{"root"}, "MESSAGE_PARAMETER_COUNT_MISMATCH", []string{"session.login_with_password", "2", "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.call("session.login_with_password", tc.params...)
			wantFault(t, err, tc.code, tc.fparam...)
		})
	}
	for _, n := range []int{2, 3, 4, 5} {
		params := []any{"root", "password", "1.1", "test-originator", "extra"}[:n]
		s, err := c.call("session.login_with_password", params...)
		if err != nil {
			t.Fatalf("%d params: %v", n, err)
		}
		ref := s.(string)
		if !strings.HasPrefix(ref, "OpaqueRef:") {
			t.Fatalf("session %q", ref)
		}
		rec := c.must("session.get_record", ref, ref).(map[string]any)
		if rec["this_host"] != srv.MasterHost() || rec["auth_user_name"] != "root" {
			t.Fatalf("record %v", rec)
		}
		if n >= 4 && rec["originator"] != "test-originator" {
			t.Fatalf("originator %v", rec["originator"])
		}
		if got := c.must("session.get_this_host", ref, ref); got != srv.MasterHost() {
			t.Fatalf("this_host %v", got)
		}
		if _, err := c.call("session.get_uuid", ref, ref); err != nil {
			t.Fatal(err)
		}
		c.must("session.logout", ref)
		_, err = c.call("session.get_record", ref, ref)
		wantFault(t, err, "SESSION_INVALID", ref)
	}
	t.Run("pool member", func(t *testing.T) {
		srv.SetPoolMember("192.0.2.1")
		defer srv.SetPoolMember("")
		_, err := c.call("session.login_with_password", "root", "password")
		wantFault(t, err, "HOST_IS_SLAVE", "192.0.2.1")
	})
	t.Run("credentials", func(t *testing.T) {
		srv.SetCredentials("u", "p")
		defer srv.SetCredentials("root", "password")
		if _, err := c.call("session.login_with_password", "u", "p"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestJSONRPC(t *testing.T) {
	srv, c := newTestServer(t)
	jcall := func(body string) map[string]any {
		t.Helper()
		resp, b := c.post("/jsonrpc", "application/json", []byte(body))
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("status %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		return m
	}
	r := jcall(`{"jsonrpc":"2.0","method":"session.login_with_password","params":["root","password"],"id":0}`)
	s, _ := r["result"].(string)
	if !strings.HasPrefix(s, "OpaqueRef:") || r["jsonrpc"] != "2.0" || r["id"] != float64(0) {
		t.Fatalf("login: %v", r)
	}
	// A JSON session works over XML-RPC.
	c.must("pool.get_all", s)

	var vm string
	srv.DB.Write(func(tx *Tx) error {
		rec := NewRecord("VM")
		rec["memory_static_max"] = int64(1 << 30)
		vm = tx.Create("VM", rec)
		return nil
	})
	r = jcall(fmt.Sprintf(`{"jsonrpc":"2.0","method":"VM.get_record","params":[%q,%q],"id":"x"}`, s, vm))
	rec := r["result"].(map[string]any)
	if rec["memory_static_max"] != float64(1<<30) || rec["is_a_template"] != false || rec["power_state"] != "Halted" {
		t.Fatalf("record %v", rec)
	}
	if _, ok := rec["tags"].([]any); !ok {
		t.Fatalf("tags %T", rec["tags"])
	}
	r = jcall(`{"jsonrpc":"2.0","method":"VM.get_all","params":["OpaqueRef:bad"],"id":1}`)
	errObj := r["error"].(map[string]any)
	if errObj["message"] != "SESSION_INVALID" || errObj["code"] != float64(1) || !reflect.DeepEqual(errObj["data"], []any{"OpaqueRef:bad"}) {
		t.Fatalf("error %v", r)
	}
	r = jcall(`{"method":"VM.get_all","params":["OpaqueRef:bad"],"id":2}`)
	if !reflect.DeepEqual(r["error"], []any{"SESSION_INVALID", "OpaqueRef:bad"}) || r["result"] != nil {
		t.Fatalf("v1 error %v", r)
	}
	r = jcall(`{"jsonrpc":"2.0","method":"system.listMethods","params":[],"id":3}`)
	if _, ok := r["result"].([]any); !ok {
		t.Fatalf("listMethods %v", r)
	}
	r = jcall(fmt.Sprintf(`{"jsonrpc":"2.0","method":"event.from","params":[%q,["vm"],"",0.1],"id":4}`, s))
	batch := r["result"].(map[string]any)
	if batch["valid_ref_counts"].(map[string]any)["task"] == nil {
		t.Fatalf("event batch %v", batch)
	}
}

// TestTimeParsing covers ParseTime's formats.
func TestTimeParsing(t *testing.T) {
	want := time.Date(2025, 3, 19, 4, 16, 24, 0, time.UTC)
	for _, s := range []string{"20250319T04:16:24Z", "20250319T04:16:24", "2025-03-19T04:16:24Z", "20250319T06:16:24+02:00", "2025-03-19T04:16:24"} {
		got, ok := ParseTime(s)
		if !ok || !got.Equal(want) {
			t.Errorf("%s: %v %v", s, got, ok)
		}
	}
}

func TestDataPlaneHelpers(t *testing.T) {
	srv, c := newTestServer(t)
	s := c.login()
	task := c.must("task.create", s, "upload", "").(string)
	srv.HandleHTTP("PUT /import_raw_vdi/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session, logout, err := srv.HTTPSession(r)
		if err != nil {
			Unauthorized(w)
			return
		}
		defer logout()
		ref, created, err := srv.RequestTask(r, "import")
		if err != nil {
			HTTPError(w, http.StatusNotFound, err.Error())
			return
		}
		n, _ := io.Copy(io.Discard, r.Body)
		srv.CompleteTask(ref, "OpaqueRef:vdi", nil)
		fmt.Fprintf(w, "%v %v %d", session == s, created, n)
	}))
	do := func(url string, mod func(*http.Request)) (int, string) {
		req, _ := http.NewRequest("PUT", url, strings.NewReader("data"))
		if mod != nil {
			mod(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	base := srv.URL + "import_raw_vdi/"
	tests := []struct {
		name string
		url  string
		mod  func(*http.Request)
		code int
		body string
	}{
		{"query session and task", base + "?session_id=" + s + "&task_id=" + task, nil, 200, "true false 4"},
		{"cookie session", base, func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "session_id", Value: s}) }, 200, "true true 4"},
		{"basic auth", base, func(r *http.Request) { r.SetBasicAuth("root", "password") }, 200, "false true 4"},
		{"bad basic auth", base, func(r *http.Request) { r.SetBasicAuth("root", "x") }, 401, ""},
		{"bad session", base + "?session_id=OpaqueRef:bad", nil, 401, ""},
		{"no credentials", base, nil, 401, ""},
		{"unknown task", base + "?session_id=" + s + "&task_id=OpaqueRef:nope", nil, 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(tc.url, tc.mod)
			if code != tc.code || (tc.body != "" && body != tc.body) {
				t.Fatalf("%d %q", code, body)
			}
		})
	}
	if rec := c.must("task.get_record", s, task).(map[string]any); rec["status"] != "success" || rec["result"] != "<value>OpaqueRef:vdi</value>" {
		t.Fatalf("task %v", rec)
	}
}

func TestRestart(t *testing.T) {
	srv, c := newTestServer(t)
	s := c.login()
	task := c.must("task.create", s, "t", "").(string)
	srv.Restart()
	_, err := c.call("pool.get_all", s)
	wantFault(t, err, "SESSION_INVALID", s)
	s = c.login()
	_, err = c.call("task.get_record", s, task)
	wantFault(t, err, "HANDLE_INVALID", "task", task)
}

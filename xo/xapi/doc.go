// Package xapi is a client for XAPI, the management API of XenServer and
// XCP-ng pools: JSON-RPC or XML-RPC over HTTP(S), sessions, typed errors,
// typed records, tasks and events. The wire details it follows are in
// reference/xapi.md (§1 protocol, §2 sessions, §4 events, §5 tasks).
//
// # Transports
//
// Options.Transport picks the protocol. The default, "auto", does what XO
// does (xapi.md §1.7): it posts JSON-RPC 2.0 to /jsonrpc and switches to
// XML-RPC, for the life of the Client, only when /jsonrpc answers 2xx with
// a content type other than application/json; a 404 or 500 there is an
// error (Client.Transport tells what was chosen). "json-rpc" and
// "xml-rpc" force one. Everything below works the same over both; JSON
// answers are about 2.6 times smaller and decode faster.
//
// # Client
//
// New validates Options (no network I/O) and returns a Client that is safe
// for concurrent use. Calls run in parallel on a bounded pool of HTTP
// connections (Options.MaxConns); long polls (event.from for watchers and
// task waits) use separate connections. The Client logs in lazily with
// session.login_with_password(user, password, version, originator), logs
// in again and retries once when a call fails with SESSION_INVALID, and
// follows HOST_IS_SLAVE to the pool master, at login and on calls. Every
// call takes a context for cancellation and deadlines. TLS trusts the
// system roots, a CA (Options.CAFile/CAPEM), or pinned SHA-256
// fingerprints of the host's leaf certificate (XAPI's certificates are
// self-signed); skipping verification needs an explicit Options.Insecure.
//
// # Errors
//
// An XAPI failure is an *Error{Code, Params}; match it with errors.Is and
// the sentinels (ErrHandleInvalid, ErrVMBadPowerState, …) or any
// &Error{Code: "..."}. A failure to reach the host or to get a well-formed
// answer matches ErrUnreachable (a *TransportError), which the REST layer
// maps to 503. A context's end is reported as the context's error.
//
// # Encoding
//
// Requests are encoded by kolo/xmlrpc (EncodeCall): always with <params>,
// integers as decimal strings as XO sends them, times as
// "YYYYMMDDTHH:MM:SSZ". Responses are decoded by a streaming decoder of
// this package (DecodeResponse), differentially fuzzed against kolo's and
// several times faster; kolo's reflection decoder also loses the members
// that follow an empty value, which XAPI sends for every empty string.
//
// JSON-RPC responses are decoded by DecodeJSONResponse, a streaming
// decoder sharing the XML decoder's interning and arena, differentially
// fuzzed against encoding/json. Requests are EncodeJSONCall (ints as JSON
// numbers).
//
// Generic values are the same Go values over both transports. Decoded
// into `any`, values are: string for untyped values, <string> and
// <base64> (not base64-decoded) — XAPI's ints, refs, enums and strings are
// all untyped strings; int64 for <int>/<i4>/<i8>; float64; bool; time.Time
// (UTC when the value has "Z" or no zone); nil for <nil/>;
// map[string]any; []any. Untyped strings keep their whitespace (kolo trims
// it) and empty values are "" (kolo gives nil). Over JSON-RPC, integer
// numbers become their decimal text (string), other numbers float64, and
// the Client converts the fields the typed records declare as datetimes
// or floats to time.Time and float64 in record, field and event results,
// so that they match XML-RPC's <dateTime.iso8601> and <double>; outside
// those results a JSON datetime stays a string and an integral float a
// decimal string. Typed decoding (CallInto,
// GetAllRecords[T], the record types) converts as the target asks: ints and
// floats parse from strings, "" and <nil/> give zero values, refs are Ref.
// A Ref that IsNull ("", "OpaqueRef:NULL", "Ref:…") names no object.
//
// # Records
//
// The typed records (Pool, Host, VM, VDI, Task, …; records_gen.go) carry
// every public field of their class, generated from the datamodel field
// tables. GetAllRecords[T] and GetRecord[T] fetch them, as do shortcuts
// such as Client.VMs. Client.GetAllRecords returns the generic
// map[Ref]map[string]any form.
//
// # Tasks and events
//
// CallAsync starts "Async.<method>" and returns the task; WaitTask waits
// with event.from on the task (polling task.get_record on hosts without
// event.from) and returns the decoded task result or the task's error;
// CallAsyncWait does both and destroys the task. EventFrom is one
// event.from call; a Watcher runs the event.from loop for many
// subscribers, with full reloads (Reset batches) after EVENTS_LOST, a
// session change, or a subscriber falling behind.
//
// # HTTP transfers
//
// GetExport and PutImport use XAPI's HTTP handlers (/export, /import,
// /export_raw_vdi, /import_raw_vdi; xapi.md §7) inside a task created with
// task.create, whose outcome is the transfer's: XAPI answers 200 before it
// reads an upload and reports errors only in the task. PutImport sends a
// body of known size with its Content-Length (XAPI refuses chunked
// bodies). For a body of unknown length (UnknownSize) it does what XO's
// putResource does: a 1 PiB Content-Length on a connection of its own
// (same dialer and TLS settings, pins included), the body sent once XAPI
// has answered, then the connection half-closed; that works only where
// XAPI finds the end of the format itself, an XVA on /import and
// format=tar on /import_raw_vdi. raw and vhd need the size (ErrSizeRequired):
// XAPI's vhd-tool would wait for Content-Length bytes of a raw image, and
// looks for a VHD's footer at the Content-Length.
package xapi

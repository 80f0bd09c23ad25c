package xo

import (
	"bytes"
	"fmt"

	"github.com/xorest/xorest/xo/xapi"
)

// EncodeValue returns v as an XML-RPC value fragment, "<value>…</value>",
// the form of an XAPI task's result (task.set_result), which the task
// objects of this package decode back. It is encoded by the client's codec
// (xapi.EncodeCall), so refs and strings stay strings, maps become structs
// and slices arrays.
func EncodeValue(v any) (string, error) {
	call, err := xapi.EncodeCall("x", v)
	if err != nil {
		return "", fmt.Errorf("encoding task result: %w", err)
	}
	start := bytes.Index(call, []byte("<param>"))
	end := bytes.LastIndex(call, []byte("</param>"))
	if start < 0 || end < start {
		return "", fmt.Errorf("encoding task result: unexpected XML-RPC call %q", call)
	}
	return string(bytes.TrimSpace(call[start+len("<param>") : end])), nil
}

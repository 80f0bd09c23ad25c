package deploy_test

import (
	"embed"
	"testing"

	"github.com/xorest/xorest/deploy"
)

//go:embed testdata/*.json
var fixtures embed.FS

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := fixtures.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eventCase is one event fixture and what the test handler must answer.
type eventCase struct {
	name    string
	fixture string
	modes   []deploy.Mode // the modes that accept this event
	want    check
}

var echoQuery = map[string]any{"fields": []string{"name_label", "power_state"}, "filter": []string{"power_state:Running"}}

// eventCases run both in process and under the runtime interface emulator.
var eventCases = []eventCase{
	{"v1 collection", "apigw-v1-collection.json", []deploy.Mode{deploy.ModeV1, deploy.ModeAuto},
		check{status: 200, body: "[\"/rest/v0/vms/vm0\",\"/rest/v0/vms/vm1\"]\n", header: map[string]string{"Content-Type": "application/json"}}},
	{"v1 action with a body", "apigw-v1-action.json", []deploy.Mode{deploy.ModeV1, deploy.ModeAuto},
		check{status: 202, json: map[string]any{"task": "/rest/v0/tasks/start-vm1", "body": map[string]any{"force": true}},
			header: map[string]string{"Location": "/rest/v0/tasks/start-vm1"}}},
	{"v1 bad body", "apigw-v1-bad-body.json", []deploy.Mode{deploy.ModeV1, deploy.ModeAuto},
		check{status: 400, json: map[string]any{"error": "invalid JSON body"}}},
	{"v1 missing route", "apigw-v1-missing.json", []deploy.Mode{deploy.ModeV1, deploy.ModeAuto},
		check{status: 404, json: map[string]any{"error": "no such route", "data": map[string]any{"path": "/rest/v0/nowhere"}}}},
	{"v1 headers, cookies and query", "apigw-v1-echo.json", []deploy.Mode{deploy.ModeV1, deploy.ModeAuto},
		check{status: 200, json: map[string]any{"method": "GET", "host": "abc123.execute-api.eu-west-1.amazonaws.com",
			"path": "/rest/v0/echo", "query": echoQuery, "token": "tok1", "trace": "t-1"},
			header: map[string]string{"X-Multi": "two"}, cookies: []string{"a=1", "b=2"}}},

	{"v2 collection", "apigw-v2-collection.json", []deploy.Mode{deploy.ModeV2, deploy.ModeAuto},
		check{status: 200, body: "[\"/rest/v0/vms/vm0\",\"/rest/v0/vms/vm1\"]\n", header: map[string]string{"Content-Type": "application/json"}}},
	{"v2 action with a base64 body", "apigw-v2-action.json", []deploy.Mode{deploy.ModeV2, deploy.ModeAuto},
		check{status: 202, json: map[string]any{"task": "/rest/v0/tasks/start-vm1", "body": map[string]any{"force": true}},
			header: map[string]string{"Location": "/rest/v0/tasks/start-vm1"}}},
	{"v2 bad body", "apigw-v2-bad-body.json", []deploy.Mode{deploy.ModeV2, deploy.ModeAuto},
		check{status: 400, json: map[string]any{"error": "invalid JSON body"}}},
	{"v2 missing route", "apigw-v2-missing.json", []deploy.Mode{deploy.ModeV2, deploy.ModeAuto},
		check{status: 404, json: map[string]any{"error": "no such route", "data": map[string]any{"path": "/rest/v0/nowhere"}}}},
	{"v2 headers, cookies and query", "apigw-v2-echo.json", []deploy.Mode{deploy.ModeV2, deploy.ModeAuto},
		check{status: 200, json: map[string]any{"method": "GET", "host": "abc123.execute-api.eu-west-1.amazonaws.com",
			"path": "/rest/v0/echo", "query": echoQuery, "token": "tok1", "trace": "t-1"},
			header: map[string]string{"X-Multi": "two"}, cookies: []string{"a=1", "b=2"}}},

	{"function URL stream", "function-url-stream.json", []deploy.Mode{deploy.ModeStream, deploy.ModeAuto},
		check{status: 200, stream: true, body: "{\"line\":0}\n{\"line\":1}\n{\"line\":2}\n{\"line\":3}\n{\"line\":4}\n",
			header: map[string]string{"Content-Type": "application/x-ndjson"}}},
	{"function URL headers, cookies and query", "function-url-echo.json", []deploy.Mode{deploy.ModeStream, deploy.ModeAuto},
		check{status: 200, stream: true, json: map[string]any{"method": "GET", "host": "xyz789.lambda-url.eu-west-1.on.aws",
			"path": "/rest/v0/echo", "query": echoQuery, "token": "tok1", "trace": "t-1"},
			header: map[string]string{"X-Multi": "two"}, cookies: []string{"a=1", "b=2"}}},
	{"function URL error before the first write", "function-url-bad.json", []deploy.Mode{deploy.ModeStream, deploy.ModeAuto},
		check{status: 400, stream: true, json: map[string]any{"error": "invalid n"}}},
}

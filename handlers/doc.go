// Package handlers serves the Xen Orchestra REST API (/rest/v0) as one
// net/http handler, built by New from one route table: the ServeMux and
// the OpenAPI document (GET /rest/v0/docs/swagger.json, browsable at
// /rest/v0/docs) are both generated from it, so they cannot drift.
//
// Every route requires authentication (withAuthentication): a token in the
// authenticationToken cookie (or the legacy token cookie) or in
// Authorization: Bearer, or HTTP Basic with XAPI credentials checked by
// Config.VerifyBasic. Tokens are minted by POST
// /rest/v0/users/authentication_tokens and kept as hashes in an auth.Store.
//
// Handlers are HandlerFuncs: they return an error instead of writing it.
// One adapter renders errors as XO does, JSON {"error": …, "data": …}
// pretty-printed with two spaces, with one status table:
//
//	ErrBadRequest (filter parse error, two auth methods)  400
//	ErrUnauthorized (+ WWW-Authenticate: Basic realm="xo") 401
//	ErrForbidden                                          403
//	ErrNotFound (NotFound: "no such VM <id>", {id, type})  404
//	xo.ErrNotFound (*xo.NotFoundError, same body)         404
//	ErrMethodNotAllowed                                   405
//	ErrIncorrectState                                     409
//	ErrLengthRequired (a raw upload without Content-Length) 411
//	ErrTooLarge                                           413
//	ErrInvalidParameters                                  422
//	ErrNotImplemented                                     501
//	ErrBadGateway (an import URL's server failed)         502
//	ErrUnavailable, xapi.ErrUnreachable                   503
//	XAPI faults (*xapi.Error), with data {code, params}:
//	  HANDLE_INVALID, UUID_INVALID                        404
//	  VM_BAD_POWER_STATE, OTHER_OPERATION_IN_PROGRESS     409
//	  OPERATION_BLOCKED, RBAC_PERMISSION_DENIED           403
//	  SESSION_AUTHENTICATION_FAILED                       401
//	  MESSAGE_METHOD_UNKNOWN                              501
//	  any other code                                      500
//	anything else: 500 "internal server error"
//
// Each request gets an id (X-Request-Id, echoed or generated) and one slog
// access log line, which carries the error if there was one: errors are
// logged exactly once. Credentials never reach logs or error bodies, and
// the parameters of XAPI session faults are dropped.
//
// Collections are answered by WriteCollection (URLs, picked fields, or
// whole objects, as JSON, NDJSON or markdown, streamed) after ParseQuery
// has parsed the common query parameters; watch streams by WriteWatch.
//
// # Collections and objects
//
// Config.Pools (an *xo.Pools) holds the XO objects of every configured
// XAPI pool. The collections are one table (collections.go): vms,
// vm-templates, vm-snapshots, vm-controllers, hosts, pools, srs, vdis,
// vdi-snapshots, vbds, vifs, pifs, networks, pbds, pcis, pgpus, sms,
// messages, alarms and tasks. Each has
//
//	GET /rest/v0/<collection>            fields, filter, limit, ndjson, markdown, watch
//	GET /rest/v0/<collection>/<id>       fields; id is the uuid or the XAPI ref
//
// and the XAPI objects have the sub-collections of §A.9: <id>/messages
// (alarms excepted), <id>/alarms and <id>/tasks (tasks whose applies_to
// is the object), and the VM kinds <id>/vdis (the disks behind $VBDs).
// Every read catches up with XAPI first (xo.Pools.Objects and Object
// call Fresh), so a read sees every write acknowledged before it. Several
// pools merge, pool by pool; an id finds its pool. An unknown id, or an id
// of another type, is a 404 "no such VM <id>" with data {id, type}. A
// single object is answered whole (or with its picked fields) plus href;
// collection items carry href and url.
//
// Watch (?ndjson&watch, on every collection; see watch.go for the exact
// semantics) streams ["update", item] and ["remove", {"href"}] lines from
// the moment the request has caught up: an object leaving the filter is a
// remove. Tasks (tasks.go) are XAPI tasks in XO's shape, with
// ?wait=result|true, DELETE and POST .../actions/abort.
//
// # Jobs
//
// Actions and imports from a URL are jobs (jobs.go): the request creates
// the XAPI task, hands the job to Config.Dispatch (nil: a goroutine of
// this process; on Lambda, deploy.Async's asynchronous self-invocation,
// which runs it through Server.RunJob) and answers 202 with the task's
// URL. The task is the job's only state, so any instance reports on it;
// ?sync waits for the task, at most Config.WaitTimeout and never past the
// request context's deadline, then falls back to the 202. Server.Shutdown
// stops the jobs of this process, whose tasks then fail.
//
// # Examples
//
// make run (xorest serve without --xapi) serves an embedded simulated pool
// and prints its URL and an admin token. With that token (TOKEN below),
// these were run against it (outputs abbreviated):
//
//	$ curl -b authenticationToken=TOKEN 'http://127.0.0.1:8080/rest/v0/vms?fields=name_label,power_state&filter=power_state:Running'
//	[
//	  {
//	    "name_label": "vm2",
//	    "power_state": "Running",
//	    "href": "/rest/v0/vms/cf908d39-d2d0-5676-bb3b-f6d82f662c59",
//	    "url": "/rest/v0/vms/cf908d39-d2d0-5676-bb3b-f6d82f662c59"
//	  },
//	  …
//	]
//
//	$ curl -H 'Authorization: Bearer TOKEN' 'http://127.0.0.1:8080/rest/v0/vms?fields=name_label,power_state,CPUs.number&ndjson'
//	{"name_label":"vm1","power_state":"Halted","CPUs":{"number":2},"href":"/rest/v0/vms/16876514-…","url":"/rest/v0/vms/16876514-…"}
//	…
//
//	$ curl -b authenticationToken=TOKEN 'http://127.0.0.1:8080/rest/v0/vms?filter=name_label:vm0'
//	[
//	  "/rest/v0/vms/d26ab41d-88bb-50e7-8342-795d884a5b80"
//	]
//
//	$ curl -b authenticationToken=TOKEN 'http://127.0.0.1:8080/rest/v0/vms/d26ab41d-88bb-50e7-8342-795d884a5b80?fields=name_label,power_state,mainIpAddress'
//	{
//	  "name_label": "vm0",
//	  "power_state": "Running",
//	  "mainIpAddress": "10.0.0.1",
//	  "href": "/rest/v0/vms/d26ab41d-88bb-50e7-8342-795d884a5b80"
//	}
//
//	$ curl -b authenticationToken=TOKEN 'http://127.0.0.1:8080/rest/v0/vms/d26ab41d-88bb-50e7-8342-795d884a5b80/vdis?fields=name_label,size'
//	[{"name_label": "vm0 disk 0", "size": 10737418240, "href": "/rest/v0/vdis/131bb0c0-…", …}]
//
//	$ curl -b authenticationToken=TOKEN 'http://127.0.0.1:8080/rest/v0/hosts?fields=name_label,address&markdown=true'
//	| name_label | address |
//	| --- | --- |
//	| host0 | 192.168.0.10 |
//	| host1 | 192.168.0.11 |
//
//	$ curl -b authenticationToken=TOKEN 'http://127.0.0.1:8080/rest/v0/alarms?fields=name,body,object.type'
//	[{"name": "ALARM", "body": {"name": "cpu_usage", "value": "95.0"}, "object": {"type": "host"}, …}]
//
//	$ curl -b authenticationToken=TOKEN 'http://127.0.0.1:8080/rest/v0/vms?filter=power_state:Runnin)'
//	{
//	  "error": "parse error: expected end of input at position 18",
//	  "data": {
//	    "stringToParse": "power_state:Runnin)"
//	  }
//	}
//
// Watching: leave this running, and change VMs (from XAPI, or with the
// write side of this API, e.g. PATCH /rest/v0/vms/<id> {"name_label": …} or
// POST /rest/v0/vms/<id>/actions/clean_shutdown):
//
//	$ curl -N -b authenticationToken=TOKEN 'http://127.0.0.1:8080/rest/v0/vms?fields=name_label,power_state&filter=power_state:Running&ndjson&watch'
//	["update",{"name_label":"web server","power_state":"Running","href":"/rest/v0/vms/cf908d39-…","url":"/rest/v0/vms/cf908d39-…"}]
//	["remove",{"href":"/rest/v0/vms/cf908d39-…"}]
//
//	$ curl -N -b authenticationToken=TOKEN 'http://127.0.0.1:8080/rest/v0/tasks?fields=status,properties.name&ndjson&watch'
//	["update",{"status":"pending","properties":{"name":"REST API: clean_shutdown VM"},"href":"/rest/v0/tasks/74623453-…","url":"/rest/v0/tasks/74623453-…"}]
//	["update",{"status":"success","properties":{"name":"REST API: clean_shutdown VM"},"href":"/rest/v0/tasks/74623453-…","url":"/rest/v0/tasks/74623453-…"}]
//
// Tasks (the task id is in the Location of an action's 202 answer, or in
// /rest/v0/tasks):
//
//	$ curl -b authenticationToken=TOKEN 'http://127.0.0.1:8080/rest/v0/tasks?fields=status,properties.name&filter=status:pending'
//	$ curl -b authenticationToken=TOKEN 'http://127.0.0.1:8080/rest/v0/tasks/1a346863-aca6-505a-b1db-89deca902fa4?wait=result'
//	{
//	  "end": 1795771623000,
//	  "id": "1a346863-aca6-505a-b1db-89deca902fa4",
//	  "properties": {"name": "Async.VM.clean_shutdown", "progress": 100, "xapiRef": "OpaqueRef:…"},
//	  "start": 1795771620000,
//	  "status": "success",
//	  "updatedAt": 1795771623000,
//	  "href": "/rest/v0/tasks/1a346863-aca6-505a-b1db-89deca902fa4"
//	}
//	$ curl -i -X POST -b authenticationToken=TOKEN 'http://127.0.0.1:8080/rest/v0/tasks/456594a7-…/actions/abort'
//	HTTP/1.1 202 Accepted
//	Location: /rest/v0/tasks/1c3f494f-5015-5540-8851-3e35bcaf9910
//	{"taskId": "1c3f494f-5015-5540-8851-3e35bcaf9910"}
//	$ curl -b authenticationToken=TOKEN 'http://127.0.0.1:8080/rest/v0/tasks/456594a7-…?wait=result&fields=status,result.code'
//	{"status": "failure", "result": {"code": "TASK_CANCELLED"}, "href": "/rest/v0/tasks/456594a7-…"}
//	$ curl -X DELETE -b authenticationToken=TOKEN 'http://127.0.0.1:8080/rest/v0/tasks/1a346863-aca6-505a-b1db-89deca902fa4'   # 204
//
// curl treats [] and {} in URLs as globs: pass -g when a filter holds
// them (filter=name_label:/^vm[0-2]$/).
package handlers

package xo

import (
	"math"
	"strings"

	"github.com/xorest/xorest/xo/xapi"
)

// transformTask shows an XAPI task in XO's task shape (reference §C.1):
//
//	{"id": <task uuid>, "status": "pending"|"success"|"failure",
//	 "start": <ms>, "end": <ms, once finished>, "updatedAt": <ms>,
//	 "properties": {"name": name_label, "description"?: name_description,
//	                "progress": 0..100, "objectId"?: uuid, "xapiRef": ref},
//	 "result"?: <decoded result> | {"code", "params", "message"}}
//
// Status: pending and cancelling are "pending"; success is "success";
// failure is "failure"; cancelled is "failure" too, with the task's
// error_info (TASK_CANCELLED) as result: an aborted XO task also ends as a
// failure carrying the abort reason, and "interrupted" means something
// else in XO (a task left pending by a restart, with no outcome).
//
// start is the task's created time; end its finished time. XAPI keeps no
// modification time, so updatedAt is end for finished tasks and start for
// pending ones: the same answer from every instance. The result of a
// successful task is its XML-RPC result fragment decoded (refs stay refs,
// an empty result is omitted); the result of a failed one is its
// error_info as {code, params, message} where message is XO's XapiError
// message "CODE(param1, param2)". properties.objectId is the uuid of the
// object named by other_config.applies_to, when known.
func transformTask(c *tctx, r map[string]any) Object {
	status := str(r["status"])
	xoStatus := "pending"
	done := false
	switch status {
	case "success":
		xoStatus, done = "success", true
	case "failure", "cancelled":
		xoStatus, done = "failure", true
	}
	progress, _ := numF(r["progress"])
	props := map[string]any{
		"name":     r["name_label"],
		"progress": math.Round(progress*10000) / 100,
		"xapiRef":  string(c.self),
	}
	if d := str(r["name_description"]); d != "" {
		props["description"] = d
	}
	if applies := str(strMap(r["other_config"])["applies_to"]); applies != "" {
		if target := c.get(xapi.Ref(applies)); target != nil {
			optional(props, "objectId", target["uuid"])
		} else if t := c.byUUID(applies); t != "" {
			props["objectId"] = applies
		}
	}
	start := timeMillis(r["created"])
	o := Object{
		"id":         r["uuid"],
		"properties": props,
		"start":      start,
		"status":     xoStatus,
		"updatedAt":  start,
	}
	if done {
		if end := timeMillis(r["finished"]); end != nil {
			o["end"] = end
			o["updatedAt"] = end
		}
		if xoStatus == "success" {
			if res := str(r["result"]); strings.TrimSpace(res) != "" {
				if v, err := xapi.DecodeValue(res, nil); err == nil {
					if s, ok := v.(string); !ok || s != "" {
						o["result"] = jsonValue(v)
					}
				} else {
					o["result"] = res
				}
			}
		} else {
			o["result"] = taskError(list(r["error_info"]))
		}
	}
	return o
}

// taskError renders a task's error_info as XO serialises XAPI errors.
func taskError(info []any) map[string]any {
	if len(info) == 0 {
		info = []any{"INTERNAL_ERROR", "task failed without error_info"}
	}
	code := str(info[0])
	params := make([]any, 0, len(info)-1)
	ps := make([]string, 0, len(info)-1)
	for _, p := range info[1:] {
		params = append(params, str(p))
		ps = append(ps, str(p))
	}
	return map[string]any{
		"code":    code,
		"params":  params,
		"message": code + "(" + strings.Join(ps, ", ") + ")",
	}
}

// jsonValue converts a decoded XML-RPC value into JSON-ready values:
// datetimes become Unix seconds, int64 become float64.
func jsonValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case int64:
		return float64(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return x
	case string, bool, nil:
		return x
	default:
		return timestamp(x)
	}
}

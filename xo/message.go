package xo

import (
	"regexp"
	"strconv"
	"strings"
)

// isAlarm is the [NEW] REST API's alarm predicate, the complex-matcher
// filter `name:|(ALARM BOND_STATUS_CHANGED MULTIPATH_PERIODIC_ALERT)`:
// a case-insensitive substring test on the message name.
func isAlarm(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "alarm") || strings.Contains(n, "bond_status_changed") ||
		strings.Contains(n, "multipath_periodic_alert")
}

// alarmBody is ALARM_BODY_REGEX of the [NEW] alarm service.
var alarmBody = regexp.MustCompile(`^value:\s*(Infinity|NaN|-Infinity|\d+(?:\.\d+)?)\s*config:\s*<variable>\s*<name value="(.*?)"`)

// transformMessage is TRANSFORMS.message (reference §B.11), and for
// alarm messages the [NEW] AlarmService.parseAlarm (§B.12). An alarm keeps
// type "message" as XO's does; the cache files it under the collection
// type "alarm" (see Kind).
func transformMessage(c *tctx, r map[string]any) Object {
	name := str(r["name"])
	if !isAlarm(name) {
		return Object{
			"body":    r["body"],
			"name":    r["name"],
			"time":    timestamp(r["timestamp"]),
			"$object": r["obj_uuid"],
		}
	}
	body := str(r["body"])
	parsed := map[string]any{"name": body}
	if m := alarmBody.FindStringSubmatch(body); m != nil {
		parsed["name"] = m[2]
		if v, err := strconv.ParseFloat(m[1], 64); err == nil && m[1] != "NaN" && !strings.HasSuffix(m[1], "Infinity") {
			parsed["value"] = strconv.FormatFloat(v*100, 'f', 1, 64)
		} else {
			parsed["value"] = m[1]
		}
	}
	objUUID := str(r["obj_uuid"])
	object := map[string]any{"type": "unknown", "uuid": r["obj_uuid"]}
	if target := c.byUUID(objUUID); target != "" {
		if t := c.objectType(target); t != "" {
			object["type"] = t
			object["href"] = "/rest/v0/" + collectionOfType(t) + "/" + objUUID
		}
	}
	var ms any = 0.0
	if t, ok := timestamp(r["timestamp"]).(float64); ok {
		ms = t * 1000
	}
	return Object{
		"name":   r["name"],
		"body":   parsed,
		"object": object,
		"time":   ms,
	}
}

package xapisim

import (
	"encoding/xml"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// host.call_plugin(session, host, plugin, fn, args) runs a dom0 plugin
// (/etc/xapi.d/plugins/<plugin>) on host and returns the string it prints.
// XAPI's own faults come first: HANDLE_INVALID for the host, HOST_OFFLINE
// for a host that is down, XENAPI_MISSING_PLUGIN [plugin] for a plugin that
// is not installed. The rest is what the plugin itself reports through
// XenAPIPlugin.dispatch, which XAPI relays as the fault:
// UNKNOWN_XENAPI_PLUGIN_FUNCTION [fn] for a function the plugin lacks, and
// XENAPI_PLUGIN_FAILURE [fn, exception class, message] for an exception in
// the function.
//
// The simulated plugins are those XO calls whose behaviour follows from
// the simulated records:
//
//   - trim / do_trim {sr_uuid}: sm's trim_util.do_trim. An SR whose SM
//     driver has the SR_TRIM capability (the LVM-based ones) is trimmed:
//     "True", and SR.other_config:trim_last_triggered set to the time.
//     Other SRs get the plugin's XML error string (errcode
//     UnsupportedSRForTrim), not a fault, as the real plugin answers.
//   - hyperthreading.py / get_hyperthreading: "true" or "false" from the
//     host's cpu_info threads_per_core.

// pluginFunc is one function of a simulated plugin: it runs inside the
// write transaction of the call with the host's ref and the string
// arguments, and returns the plugin's output or a fault.
type pluginFunc func(c *Call, tx *Tx, host string, args map[string]string) (string, error)

// plugins are the simulated dom0 plugins by name, then by function. The
// table is never modified.
var plugins = map[string]map[string]pluginFunc{
	"trim":              {"do_trim": trimDoTrim},
	"hyperthreading.py": {"get_hyperthreading": getHyperthreading},
	"updater.py":        {"check_update": updaterCheckUpdate}, // hostmisc.go
}

// registerPlugin registers host.call_plugin.
func registerPlugin(s *Simulator) {
	s.Register("host.call_plugin", Method{Handler: hostCallPlugin, Params: 4, Async: true})
}

func hostCallPlugin(c *Call) (any, error) {
	plugin, err := c.String(1)
	if err != nil {
		return nil, err
	}
	fn, err := c.String(2)
	if err != nil {
		return nil, err
	}
	raw, err := c.Struct(3)
	if err != nil {
		return nil, err
	}
	args := make(map[string]string, len(raw))
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		s, ok := raw[k].(string)
		if !ok {
			return nil, c.typeError(3, "(string -> string) map")
		}
		args[k] = s
	}
	var out string
	err = c.Sim.DB.Write(func(tx *Tx) error {
		host, rec, err := refArg(tx, c, 0, "host")
		if err != nil {
			return err
		}
		if mr, ok := tx.GetClass("host_metrics", str(rec, "metrics")); ok && !mr["live"].(bool) {
			return NewFault("HOST_OFFLINE", host)
		}
		fns, ok := plugins[plugin]
		if !ok {
			return NewFault("XENAPI_MISSING_PLUGIN", plugin)
		}
		f, ok := fns[fn]
		if !ok {
			return NewFault("UNKNOWN_XENAPI_PLUGIN_FUNCTION", fn)
		}
		out, err = f(c, tx, host, args)
		return err
	})
	return out, err
}

// pluginFailure is the fault XenAPIPlugin.dispatch reports for an
// exception raised by fn: [fn, class name, str(exception)].
func pluginFailure(fn, class, msg string) *Fault {
	return NewFault("XENAPI_PLUGIN_FAILURE", fn, class, msg)
}

// trimCapability is the SM capability of the SR types trim supports.
const trimCapability = "SR_TRIM"

// trimDoTrim is trim_util.do_trim.
func trimDoTrim(c *Call, tx *Tx, _ string, args map[string]string) (string, error) {
	uuid, ok := args["sr_uuid"]
	if !ok {
		return "", pluginFailure("do_trim", "KeyError", "'sr_uuid'")
	}
	class, sr, ok := tx.ByUUID(uuid)
	if !ok || class != "SR" {
		// util.sr_get_capability: SR.get_by_uuid raises XenAPI.Failure.
		return "", pluginFailure("do_trim", "Failure", fmt.Sprintf("['UUID_INVALID', 'SR', '%s']", uuid))
	}
	rec, _ := tx.GetClass("SR", sr)
	if !smHasCapability(tx, str(rec, "type"), trimCapability) {
		return trimResponse("UnsupportedSRForTrim", "Trim on ["+uuid+"] not supported"), nil
	}
	oc := cloneStrMap(strMap(rec, "other_config"))
	now := c.Sim.Now()
	oc["trim_last_triggered"] = strconv.FormatFloat(float64(now.UnixNano())/1e9, 'f', -1, 64)
	tx.Modify(sr)["other_config"] = oc
	return "True", nil
}

// smHasCapability reports whether the SM driver of SR type typ has
// capability.
func smHasCapability(tx *Tx, typ, capability string) bool {
	for _, sm := range tx.All("SM") {
		rec, _ := tx.GetClass("SM", sm)
		if str(rec, "type") == typ && slices.Contains(strSet(rec, "capabilities"), capability) {
			return true
		}
	}
	return false
}

// trimResponse is trim_util.to_xml of {errcode, errmsg}, as minidom's
// toxml() prints it.
func trimResponse(code, msg string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" ?><trim_response>`)
	for _, kv := range [][2]string{{"errcode", code}, {"errmsg", msg}} {
		b.WriteString("<key_value_pair><key>")
		_ = xml.EscapeText(&b, []byte(kv[0]))
		b.WriteString("</key><value>")
		_ = xml.EscapeText(&b, []byte(kv[1]))
		b.WriteString("</value></key_value_pair>")
	}
	b.WriteString("</trim_response>")
	return b.String()
}

// getHyperthreading is hyperthreading.py's get_hyperthreading: whether the
// host runs more than one thread per core.
func getHyperthreading(_ *Call, tx *Tx, host string, _ map[string]string) (string, error) {
	rec, _ := tx.GetClass("host", host)
	n, err := strconv.Atoi(strMap(rec, "cpu_info")["threads_per_core"])
	if err != nil {
		return "", pluginFailure("get_hyperthreading", "ValueError", "threads_per_core: "+err.Error())
	}
	return strconv.FormatBool(n > 1), nil
}

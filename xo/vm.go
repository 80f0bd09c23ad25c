package xo

import (
	"encoding/json"
	"encoding/xml"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/xorest/xorest/xo/xapi"
)

// vmType is the XO type of a VM record: VM-controller for dom0, then
// VM-snapshot (is_a_snapshot, or snapshot_of resolves), VM-template, VM.
func vmType(c *tctx, r map[string]any) string {
	switch {
	case boolean(r["is_control_domain"]):
		return "VM-controller"
	case boolean(r["is_a_snapshot"]) || c.get(ref(r["snapshot_of"])) != nil:
		return "VM-snapshot"
	case boolean(r["is_a_template"]):
		return "VM-template"
	}
	return "VM"
}

// vmRunning is XO's isVmRunning: Running or Paused.
func vmRunning(r map[string]any) bool {
	s := str(r["power_state"])
	return s == "Running" || s == "Paused"
}

// Fields of other records a VM object reads.
var (
	vmMetricsFields      = []string{"VCPUs_number", "memory_actual", "install_time", "start_time"}
	vmGuestMetricsFields = []string{"networks", "os_version", "memory", "PV_drivers_version", "PV_drivers_detected", "PV_drivers_up_to_date", "other"}
)

// transformVM is TRANSFORMS.vm (reference §B.1).
func transformVM(c *tctx, r map[string]any) Object {
	var metrics, gm map[string]any
	if m := c.get(ref(r["metrics"]), vmMetricsFields...); m != nil {
		metrics = m
	}
	if g := c.get(ref(r["guest_metrics"]), vmGuestMetricsFields...); g != nil {
		gm = g
	}
	otherConfig := strMap(r["other_config"])
	platform := strMap(r["platform"])
	running := vmRunning(r)
	domainType := vmDomainType(r)
	isHVM := domainType == "hvm"
	typ := vmType(c, r)

	var xenTools any
	if running && metrics != nil {
		xenTools = false
		if gm != nil {
			v := strMap(gm["PV_drivers_version"])
			major, okMa := v["major"]
			minor, okMi := v["minor"]
			if okMa && okMi {
				xenTools = map[string]any{
					"major":   num(major),
					"minor":   num(minor),
					"version": num(str(major) + "." + str(minor)),
				}
			}
		}
	}

	o := Object{
		"type":              typ,
		"addresses":         normalizeVMNetworks(strMap(gm["networks"])),
		"auto_poweron":      otherConfig["auto_poweron"] == "true",
		"bios_strings":      strMap(r["bios_strings"]),
		"blockedOperations": strMap(r["blocked_operations"]),
		"boot":              strMap(r["HVM_boot_params"]),
		"current_operations": func() map[string]any {
			ops := map[string]any{}
			for taskRef, op := range strMap(r["current_operations"]) {
				if t := c.get(xapi.Ref(taskRef)); t != nil {
					ops[str(t["uuid"])] = op
				}
			}
			return ops
		}(),
		"expNestedHvm":        platform["exp-nested-hvm"] == "true",
		"viridian":            platform["viridian"] == "true",
		"high_availability":   r["ha_restart_priority"],
		"isFirmwareSupported": c.firmwareSupported(str(r["recommendations"]), str(strMap(r["HVM_boot_params"])["firmware"])),
		"memory":              vmMemory(r, metrics, gm, running),
		"name_description":    r["name_description"],
		"name_label":          r["name_label"],
		"needsVtpm":           platform["vtpm"] == "true",
		"other":               otherConfig,
		"os_version":          nil,
		"power_state":         r["power_state"],
		"hasVendorDevice":     r["has_vendor_device"],
		"snapshots":           c.links(r["snapshots"]),
		"startDelay":          num(r["start_delay"]),
		"secureBoot":          platform["secureboot"] == "true",
		"tags":                orEmptyList(r["tags"]),
		"VIFs":                c.links(r["VIFs"]),
		"VTPMs":               c.links(r["VTPMs"]),
		"virtualizationMode":  domainType,
		"$VBDs":               c.links(r["VBDs"]),
		"VGPUs":               c.links(r["VGPUs"]),
		"$VGPUs":              c.links(r["VGPUs"]),
		"xenStoreData":        strMap(r["xenstore_data"]),
	}
	if gm != nil {
		if v := gm["os_version"]; truthy(v) {
			o["os_version"] = v
		}
		optional(o, "mainIpAddress", extractIPFromVMNetworks(strMap(gm["networks"])))
	}
	optional(o, "affinityHost", c.link(r["affinity"]))
	if pcis := str(otherConfig["pci"]); pcis != "" {
		var ids []any
		for _, p := range strings.Split(pcis, ",") {
			if _, after, ok := strings.Cut(p, "/"); ok {
				ids = append(ids, after)
			} else {
				ids = append(ids, nil)
			}
		}
		o["attachedPcis"] = ids
	}
	o["CPUs"] = map[string]any{
		"max": num(r["VCPUs_max"]),
		"number": func() any {
			if running && metrics != nil && truthy(xenTools) && typ != "VM-template" {
				return num(metrics["VCPUs_number"])
			}
			return num(r["VCPUs_at_startup"])
		}(),
	}
	uuid := str(r["uuid"])
	if len(uuid) >= 8 {
		if data := str(otherConfig["xo:"+uuid[:8]]); data != "" {
			var xoData map[string]any
			if json.Unmarshal([]byte(data), &xoData) == nil {
				optional(o, "creation", xoData["creation"])
			}
		}
	}
	if d := vmDocker(otherConfig); d != nil {
		o["docker"] = d
	}
	if master := c.s.masterRecord(); master != nil &&
		compareVersions(str(strMap(master["software_version"])["platform_version"]), "3.4") >= 0 {
		o["isNestedVirtEnabled"] = platform["nested-virt"] == "true"
	} else {
		o["isNestedVirtEnabled"] = platform["exp-nested-hvm"] == "true"
	}
	if typ == "VM" && platform["device_id"] != "0002" {
		// The PV-driver check of Windows guests (device_id 0002) is not
		// reproduced: their vulnerabilities stay unset.
		o["vulnerabilities"] = map[string]any{"xsa468": false}
	}
	optional(o, "notes", otherConfig["xo:notes"])
	optional(o, "parent", c.link(r["parent"]))
	if rs, ok := otherConfig["xo:resource_set"].(string); ok && rs != "" {
		var v any
		if json.Unmarshal([]byte(rs), &v) == nil {
			optional(o, "resourceSet", v)
		}
	}
	if metrics != nil {
		o["installTime"] = timestamp(metrics["install_time"])
		o["startTime"] = timestamp(metrics["start_time"])
	}
	optional(o, "suspendSr", c.link(r["suspend_SR"]))
	optional(o, "xenTools", xenTools)
	if running && metrics != nil && gm != nil {
		v := strMap(gm["PV_drivers_version"])
		_, okMa := v["major"]
		_, okMi := v["minor"]
		hasPV := okMa && okMi
		detected, ok := gm["PV_drivers_detected"].(bool)
		if !ok {
			detected = hasPV
		}
		o["managementAgentDetected"] = hasPV || strMap(gm["other"])["feature-static-ip-setting"] == "1"
		o["pvDriversDetected"] = detected
		if hasPV {
			o["pvDriversVersion"] = str(v["major"]) + "." + str(v["minor"]) + "." + jsString(v["micro"]) + "-" + jsString(v["build"])
		}
		if detected {
			optional(o, "pvDriversUpToDate", gm["PV_drivers_up_to_date"])
		}
	}
	optional(o, "$container", vmContainer(c, r))
	optional(o, "nicType", platform["nic_type"])
	if isHVM {
		o["vga"] = "cirrus"
		if v, ok := platform["vga"]; ok {
			o["vga"] = v
		}
		o["videoram"] = float64(4)
		if v, ok := platform["videoram"]; ok {
			o["videoram"] = num(v)
		}
	}
	if v, ok := platform["cores-per-socket"]; ok {
		o["coresPerSocket"] = num(v)
	}

	switch typ {
	case "VM-snapshot":
		o["snapshot_time"] = timestamp(r["snapshot_time"])
		optional(o, "$snapshot_of", c.link(r["snapshot_of"]))
		optional(o, "suspendVdi", c.link(r["suspend_VDI"]))
	case "VM-template":
		def := boolean(r["is_default_template"]) || otherConfig["default_template"] == "true"
		if def {
			// default templates have the same uuid in every pool
			o["id"] = c.s.poolUUID + "-" + uuid
		}
		o["isDefaultTemplate"] = def
		info := map[string]any{
			"disks":           templateDisks(str(otherConfig["disks"])),
			"install_methods": []any{},
		}
		optional(info, "arch", otherConfig["install-arch"])
		optional(info, "install_repository", otherConfig["install-repository"])
		if m := str(otherConfig["install-methods"]); m != "" {
			var methods []any
			for _, s := range strings.Split(m, ",") {
				methods = append(methods, s)
			}
			info["install_methods"] = methods
		}
		o["template_info"] = info
	}

	params := strMap(r["VCPUs_params"])
	if v := params["cap"]; truthy(v) {
		o["cpuCap"] = num(v)
	}
	if v := str(params["mask"]); v != "" {
		var mask []any
		for _, s := range strings.Split(v, ",") {
			mask = append(mask, num(s))
		}
		o["cpuMask"] = mask
	}
	if v := params["weight"]; truthy(v) {
		o["cpuWeight"] = num(v)
	}
	if !isHVM {
		o["PV_args"] = r["PV_args"]
	}
	return o
}

// jsString is JavaScript's template-literal conversion of a value that
// may be missing ("undefined").
func jsString(v any) string {
	if v == nil {
		return "undefined"
	}
	return str(v)
}

// vmDomainType is XO's getVmDomainType: domain_type unless missing or
// "unspecified", else pv or hvm from HVM_boot_policy.
func vmDomainType(r map[string]any) string {
	if d := str(r["domain_type"]); d != "" && d != "unspecified" {
		return d
	}
	if str(r["HVM_boot_policy"]) == "" {
		return "pv"
	}
	return "hvm"
}

// vmMemory builds the memory object of a VM.
func vmMemory(r, metrics, gm map[string]any, running bool) map[string]any {
	dynMax := num(r["memory_dynamic_max"])
	m := map[string]any{
		"dynamic": []any{num(r["memory_dynamic_min"]), dynMax},
		"static":  []any{num(r["memory_static_min"]), num(r["memory_static_max"])},
	}
	gmMemory := strMap(gm["memory"])
	switch {
	case !running:
		m["size"] = dynMax
	case truthy(gmMemory["used"]):
		m["usage"] = num(gmMemory["used"])
		m["size"] = num(gmMemory["total"])
	case metrics != nil:
		m["size"] = num(metrics["memory_actual"])
	default:
		m["size"] = dynMax
	}
	return m
}

// vmContainer is the VM's $container: the host it resides on; for a VM
// on no host, the pool, unless one of its disks lives on a non-shared SR
// (then the host of that SR's first PBD).
func vmContainer(c *tctx, r map[string]any) any {
	if resident := ref(r["resident_on"]); !resident.IsNull() {
		return c.link(resident)
	}
	for _, vbd := range list(r["VBDs"]) {
		v := c.get(ref(vbd), "VDI")
		if v == nil {
			continue
		}
		vdi := c.get(ref(v["VDI"]), "SR")
		if vdi == nil {
			continue
		}
		sr := c.get(ref(vdi["SR"]), "shared", "PBDs")
		if sr == nil || boolean(sr["shared"]) {
			continue
		}
		pbds := list(sr["PBDs"])
		if len(pbds) == 0 {
			continue
		}
		pbd := c.get(ref(pbds[0]), "host")
		if pbd == nil {
			continue
		}
		if host := c.link(pbd["host"]); host != nil {
			return host
		}
	}
	return c.s.poolUUID
}

var (
	vmNetworkKey = regexp.MustCompile(`^(\d+)/(?:ip|(ipv[46])/.+)$`)
	ipv4Key      = regexp.MustCompile(`^\d+/ip(?:v4/\d+)?$`)
	ipv6Key      = regexp.MustCompile(`^\d+/ipv6/\d+$`)
)

// normalizeVMNetworks is XO's normalizeVmNetworks: guest-reported
// addresses keyed "<device>/<ipv4|ipv6>/<index>".
func normalizeVMNetworks(networks map[string]any) map[string]any {
	keys := make([]string, 0, len(networks))
	for k := range networks {
		keys = append(keys, k)
	}
	slices.Sort(keys) // JavaScript sorts by UTF-16 units; keys are ASCII
	type group struct {
		device, protocol string
		addrs            []string
	}
	var groups []*group
	find := func(device, protocol string) *group {
		for _, g := range groups {
			if g.device == device && g.protocol == protocol {
				return g
			}
		}
		g := &group{device: device, protocol: protocol}
		// Map insertion order: a device's protocols follow the device's
		// first appearance.
		at := len(groups)
		for i, h := range groups {
			if h.device == device {
				at = i + 1
			}
		}
		groups = slices.Insert(groups, at, g)
		return g
	}
	for _, k := range keys {
		addr := strings.TrimSpace(str(networks[k]))
		if addr == "" {
			continue
		}
		m := vmNetworkKey.FindStringSubmatch(k)
		if m == nil {
			continue
		}
		device, protocol := m[1], m[2]
		addrs := []string{addr}
		if protocol == "" {
			protocol = "ipv4"
			addrs = strings.Fields(addr)
		}
		g := find(device, protocol)
		for _, a := range addrs {
			if !slices.Contains(g.addrs, a) {
				g.addrs = append(g.addrs, a)
			}
		}
	}
	out := map[string]any{}
	for _, g := range groups {
		for i, a := range g.addrs {
			out[g.device+"/"+g.protocol+"/"+strconv.Itoa(i)] = a
		}
	}
	return out
}

// extractIPFromVMNetworks is XO's extractIpFromVmNetworks: the first IPv4
// key in sorted order, else the first IPv6 one; nil if none.
func extractIPFromVMNetworks(networks map[string]any) any {
	keys := make([]string, 0, len(networks))
	for k := range networks {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var ipv6 any
	for _, k := range keys {
		if ipv4Key.MatchString(k) {
			return networks[k]
		}
		if ipv6 == nil && ipv6Key.MatchString(k) {
			ipv6 = networks[k]
		}
	}
	return ipv6
}

// isFirmwareSupported reads the VM's recommendations XML: false only when
// a restriction "supports-<firmware>" says "no".
func isFirmwareSupported(recommendations, firmware string) bool {
	if recommendations == "" {
		return true
	}
	var doc struct {
		Restrictions []struct {
			Field string `xml:"field,attr"`
			Value string `xml:"value,attr"`
		} `xml:"restriction"`
	}
	if xml.Unmarshal([]byte(recommendations), &doc) != nil {
		return true
	}
	for _, r := range doc.Restrictions {
		if r.Field == "supports-"+firmware {
			return r.Value != "no"
		}
	}
	return true
}

// templateDisks parses a template's other_config.disks XML
// (<provision><disk device="0" size="…" sr="" bootable="true"
// type="system"/></provision>) into XO's template_info.disks: every
// attribute, with bootable a boolean, size a number and sr renamed SR.
func templateDisks(s string) []any {
	out := []any{}
	if s == "" {
		return out
	}
	var doc struct {
		XMLName xml.Name
		Disks   []struct {
			Attrs []xml.Attr `xml:",any,attr"`
		} `xml:"disk"`
	}
	if xml.Unmarshal([]byte(s), &doc) != nil || doc.XMLName.Local != "provision" {
		return out
	}
	for _, d := range doc.Disks {
		disk := map[string]any{"bootable": false}
		for _, a := range d.Attrs {
			switch a.Name.Local {
			case "bootable":
				disk["bootable"] = a.Value == "true"
			case "size":
				disk["size"] = num(a.Value)
			case "sr":
				disk["SR"] = a.Value
			default:
				disk[a.Name.Local] = a.Value
			}
		}
		out = append(out, disk)
	}
	return out
}

// vmDocker is the docker object of VMs monitored by xscontainer: nil
// without monitor, {enabled:false} when disabled. The docker_ps,
// docker_info and docker_version XML documents are passed through as
// strings under process, info and version (XO parses them).
func vmDocker(oc map[string]any) map[string]any {
	monitor := str(oc["xscontainer-monitor"])
	if monitor == "" {
		return nil
	}
	if monitor == "False" {
		return map[string]any{"enabled": false}
	}
	d := map[string]any{"enabled": true}
	optional(d, "process", oc["docker_ps"])
	optional(d, "info", oc["docker_info"])
	optional(d, "version", oc["docker_version"])
	return d
}

package xo

import (
	"maps"
	"math"
	"slices"
	"strings"
)

// hostMetricsFields are the host_metrics fields a host object reads.
var hostMetricsFields = []string{"live", "memory_total", "memory_free"}

// transformHost is TRANSFORMS.host (reference §B.2).
func transformHost(c *tctx, r map[string]any) Object {
	metrics := c.get(ref(r["metrics"]), hostMetricsFields...)
	otherConfig := strMap(r["other_config"])
	sv := strMap(r["software_version"])
	licenseParams := strMap(r["license_params"])
	cpuInfo, hasCPUInfo := r["cpu_info"].(map[string]any)

	o := Object{
		"CPUs":               r["cpu_info"],
		"address":            r["address"],
		"bios_strings":       strMap(r["bios_strings"]),
		"enabled":            truthy(r["enabled"]),
		"current_operations": strMap(r["current_operations"]),
		"hostname":           r["hostname"],
		"zstdSupported":      licenseParams["restrict_zstd_export"] == "false",
		"license_params":     licenseParams,
		"license_server":     strMap(r["license_server"]),
		"license_expiry":     timestamp(licenseParams["expiry"]),
		"logging":            strMap(r["logging"]),
		"name_description":   r["name_description"],
		"name_label":         r["name_label"],
		"multipathing":       otherConfig["multipathing"] == "true",
		"otherConfig":        otherConfig,
		"patches":            c.links(r["patches"]),
		"powerOnMode":        r["power_on_mode"],
		"residentVms":        c.links(r["resident_VMs"]),
		"startTime":          timestamp(otherConfig["boot_time"]),
		"agentStartTime":     timestamp(otherConfig["agent_start_time"]),
		"tags":               orEmptyList(r["tags"]),
		"PIFs":               c.links(r["PIFs"]),
		"$PIFs":              c.links(r["PIFs"]),
		"PCIs":               c.links(r["PCIs"]),
		"$PCIs":              c.links(r["PCIs"]),
		"PGPUs":              c.links(r["PGPUs"]),
		"$PGPUs":             c.links(r["PGPUs"]),
		"$PBDs":              c.links(r["PBDs"]),
	}
	optional(o, "build", sv["build_number"])
	optional(o, "version", sv["product_version"])
	optional(o, "productBrand", sv["product_brand"])
	chipset := map[string]any{}
	if v, ok := strMap(r["chipset_info"])["iommu"]; ok {
		chipset["iommu"] = v == "true"
	}
	o["chipset_info"] = chipset
	optional(o, "controlDomain", c.link(r["control_domain"]))
	cpus := map[string]any{}
	if hasCPUInfo {
		cpus["cores"] = num(cpuInfo["cpu_count"])
		cpus["sockets"] = num(cpuInfo["socket_count"])
	}
	o["cpus"] = cpus
	switch iqn := r["iscsi_iqn"].(type) {
	case string:
		o["iscsiIqn"] = iqn
	default:
		if v, ok := otherConfig["iscsi_iqn"]; ok {
			o["iscsiIqn"] = v
		} else {
			o["iscsiIqn"] = ""
		}
	}
	if metrics != nil {
		const gib = 1 << 30
		total, _ := numF(metrics["memory_total"])
		total = math.Ceil(total/gib) * gib
		usage := 0.0
		if truthy(metrics["live"]) {
			free, _ := numF(metrics["memory_free"])
			usage = total - free
		}
		o["memory"] = map[string]any{"usage": usage, "size": total}
		if truthy(metrics["live"]) {
			o["power_state"] = "Running"
		} else {
			o["power_state"] = "Halted"
		}
	} else {
		o["memory"] = map[string]any{"usage": 0.0, "size": 0.0, "total": 0.0}
		o["power_state"] = "Unknown"
	}

	if compareVersions(str(sv["platform_version"]), "2.1.1") >= 0 {
		packs := []any{}
		for _, u := range list(r["updates"]) {
			upd := c.get(ref(u), "name_label", "name_description", "key", "version", "after_apply_guidance", "hosts", "vdi", "installation_size")
			if upd == nil || strings.HasPrefix(str(upd["name_label"]), "XS") {
				continue
			}
			p := map[string]any{
				"name":        upd["name_label"],
				"description": upd["name_description"],
				"version":     upd["version"],
				"guidance":    upd["after_apply_guidance"],
				"hosts":       c.links(upd["hosts"]),
				"size":        upd["installation_size"],
			}
			if parts := strings.Split(str(upd["key"]), "-"); len(parts) > 3 {
				p["author"] = parts[3]
			}
			optional(p, "vdi", c.link(upd["vdi"]))
			packs = append(packs, p)
		}
		o["supplementalPacks"] = packs
	} else {
		packs := []any{}
		for _, k := range slices.Sorted(maps.Keys(sv)) {
			v := sv[k]
			author, name, ok := strings.Cut(k, ":")
			if !ok || strings.Contains(name, ":") {
				continue
			}
			desc, ver, _ := strings.Cut(str(v), ", ")
			p := map[string]any{"name": name, "description": desc, "author": author}
			if _, after, ok := strings.Cut(ver, " "); ok {
				p["version"] = strings.SplitN(after, " ", 2)[0]
			}
			packs = append(packs, p)
		}
		o["supplementalPacks"] = packs
	}

	if sv["product_brand"] == "XCP-ng" {
		boot, _ := timestamp(otherConfig["boot_time"]).(float64) // null < x is 0 < x
		installed, ok := numF(otherConfig["rpm_patch_installation_time"])
		if _, present := otherConfig["rpm_patch_installation_time"]; !present {
			ok = false // +undefined is NaN: every comparison is false
		}
		o["rebootRequired"] = ok && boot < installed
	} else {
		o["rebootRequired"] = len(list(r["updates_requiring_reboot"])) > 0
	}

	hvm := false
	for _, cap := range list(r["capabilities"]) {
		if strings.HasPrefix(str(cap), "hvm") {
			hvm = true
			break
		}
	}
	o["hvmCapable"] = hvm

	if certs, ok := r["certificates"].([]any); ok {
		out := []any{}
		for _, cr := range certs {
			cert := c.get(ref(cr), "fingerprint", "not_after")
			if cert == nil {
				continue
			}
			out = append(out, map[string]any{"fingerprint": cert["fingerprint"], "notAfter": timestamp(cert["not_after"])})
		}
		o["certificates"] = out
	}
	return o
}

// transformPool is TRANSFORMS.pool (reference §B.3).
func transformPool(c *tctx, r map[string]any) Object {
	otherConfig := strMap(r["other_config"])
	restrictions := strMap(r["restrictions"])
	master := c.get(ref(r["master"]), "name_label", "software_version")
	haSrs := []any{}
	for _, v := range list(r["ha_statefiles"]) {
		vdi := c.get(ref(v), "SR")
		if vdi == nil {
			continue
		}
		haSrs = append(haSrs, c.link(vdi["SR"]))
	}
	o := Object{
		"auto_poweron":                 otherConfig["auto_poweron"] == "true",
		"current_operations":           strMap(r["current_operations"]),
		"HA_enabled":                   truthy(r["ha_enabled"]),
		"haSrs":                        haSrs,
		"tags":                         orEmptyList(r["tags"]),
		"name_description":             r["name_description"],
		"name_label":                   r["name_label"],
		"otherConfig":                  otherConfig,
		"zstdSupported":                restrictions["restrict_zstd_export"] == "false",
		"vtpmSupported":                restrictions["restrict_vtpm"] == "false",
		"haRebootVmOnInternalShutdown": true,
	}
	if v, ok := r["ha_reboot_vm_on_internal_shutdown"].(bool); ok {
		o["haRebootVmOnInternalShutdown"] = v
	}
	optional(o, "migrationCompression", r["migration_compression"])
	if str(r["name_label"]) == "" && master != nil {
		o["name_label"] = master["name_label"]
	}
	optional(o, "crashDumpSr", c.link(r["crash_dump_SR"]))
	optional(o, "default_SR", c.link(r["default_SR"]))
	optional(o, "master", c.link(r["master"]))
	optional(o, "suspendSr", c.link(r["suspend_image_SR"]))
	cpus := map[string]any{}
	if cpuInfo, ok := r["cpu_info"].(map[string]any); ok {
		cpus["cores"] = num(cpuInfo["cpu_count"])
		cpus["sockets"] = num(cpuInfo["socket_count"])
	}
	o["cpus"] = cpus
	if master != nil {
		optional(o, "platform_version", strMap(master["software_version"])["platform_version"])
	}
	return o
}

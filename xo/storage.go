package xo

import (
	"regexp"
)

// allocationByType is XO's ALLOCATION_BY_TYPE: SR type → allocation
// strategy.
func allocationByType(t string) any {
	switch t {
	case "ext", "file", "nfs", "shm", "smb", "xosan", "zfs":
		return "thin"
	case "hba", "iscsi", "lvhd", "lvhdofcoe", "lvhdohba", "lvhdoiscsi", "lvm", "lvmofcoe", "lvmohba",
		"lvmoiscsi", "ocfs", "ocfsohba", "ocfsoiscsi", "rawhba", "rawiscsi", "udev":
		return "thick"
	}
	return nil
}

// transformSR is TRANSFORMS.sr (reference §B.4).
func transformSR(c *tctx, r map[string]any) Object {
	srType := str(r["type"])
	otherConfig := strMap(r["other_config"])
	_, maintenance := otherConfig["xo:maintenanceState"]
	o := Object{
		"type":               "SR",
		"content_type":       r["content_type"],
		"physical_usage":     num(r["physical_utilisation"]),
		"current_operations": strMap(r["current_operations"]),
		"inMaintenanceMode":  maintenance,
		"name_description":   r["name_description"],
		"name_label":         r["name_label"],
		"size":               num(r["physical_size"]),
		"shared":             truthy(r["shared"]),
		"SR_type":            r["type"],
		"tags":               orEmptyList(r["tags"]),
		"usage":              num(r["virtual_allocation"]),
		"VDIs":               c.links(r["VDIs"]),
		"other_config":       otherConfig,
		"sm_config":          strMap(r["sm_config"]),
		"$PBDs":              c.links(r["PBDs"]),
	}
	var firstPBD map[string]any
	if pbds := list(r["PBDs"]); len(pbds) > 0 {
		firstPBD = c.get(ref(pbds[0]), "device_config", "host")
	}
	if srType == "linstor" {
		o["allocationStrategy"] = "unknown"
		if firstPBD != nil {
			if v, ok := strMap(firstPBD["device_config"])["provisioning"]; ok && v != nil {
				o["allocationStrategy"] = v
			}
		}
	} else {
		optional(o, "allocationStrategy", allocationByType(srType))
	}
	if truthy(r["shared"]) || firstPBD == nil {
		o["$container"] = c.s.poolUUID
	} else {
		optional(o, "$container", c.link(firstPBD["host"]))
	}
	return o
}

// vdiType is the XO type of a VDI record: VDI-snapshot (is_a_snapshot
// or snapshot_of resolves), VDI-unmanaged (not managed), or VDI.
func vdiType(c *tctx, r map[string]any) string {
	switch {
	case boolean(r["is_a_snapshot"]) || c.get(ref(r["snapshot_of"])) != nil:
		return "VDI-snapshot"
	case !boolean(r["managed"]):
		return "VDI-unmanaged"
	}
	return "VDI"
}

// transformVDI is TRANSFORMS.vdi (reference §B.5).
func transformVDI(c *tctx, r map[string]any) Object {
	smConfig := strMap(r["sm_config"])
	typ := vdiType(c, r)
	o := Object{
		"type":               typ,
		"cbt_enabled":        r["cbt_enabled"],
		"missing":            r["missing"],
		"name_description":   r["name_description"],
		"name_label":         r["name_label"],
		"size":               num(r["virtual_size"]),
		"snapshots":          c.links(r["snapshots"]),
		"tags":               orEmptyList(r["tags"]),
		"usage":              num(r["physical_utilisation"]),
		"VDI_type":           r["type"],
		"current_operations": strMap(r["current_operations"]),
		"other_config":       strMap(r["other_config"]),
		"$VBDs":              c.links(r["VBDs"]),
	}
	optional(o, "parent", smConfig["vhd-parent"])
	optional(o, "image_format", smConfig["image-format"])
	optional(o, "$SR", c.link(r["SR"]))
	switch typ {
	case "VDI-snapshot":
		o["snapshot_time"] = timestamp(r["snapshot_time"])
		optional(o, "$snapshot_of", c.link(r["snapshot_of"]))
	case "VDI":
		o["chainPhysicalUsage"] = chainPhysicalUsage(c, r)
	}
	return o
}

// chainPhysicalUsage adds the physical usage of the VDI and of every
// ancestor reached through sm_config["vhd-parent"] uuids.
func chainPhysicalUsage(c *tctx, r map[string]any) any {
	total, _ := numF(r["physical_utilisation"])
	seen := map[string]bool{str(r["uuid"]): true}
	parent := str(strMap(r["sm_config"])["vhd-parent"])
	for parent != "" && !seen[parent] {
		seen[parent] = true
		p := c.get(c.byUUID(parent), "physical_utilisation", "sm_config")
		if p == nil {
			break
		}
		u, _ := numF(p["physical_utilisation"])
		total += u
		parent = str(strMap(p["sm_config"])["vhd-parent"])
	}
	return total
}

// transformVBD is TRANSFORMS.vbd (reference §B.6).
func transformVBD(c *tctx, r map[string]any) Object {
	o := Object{
		"type":        "VBD",
		"attached":    truthy(r["currently_attached"]),
		"bootable":    truthy(r["bootable"]),
		"device":      nil,
		"is_cd_drive": r["type"] == "CD",
		"position":    r["userdevice"],
		"read_only":   r["mode"] == "RO",
	}
	if d := str(r["device"]); d != "" {
		o["device"] = d
	}
	optional(o, "VDI", c.link(r["VDI"]))
	optional(o, "VM", c.link(r["VM"]))
	return o
}

// sensitiveKey is @vates/obfuscate's isSensitiveParam.
var sensitiveKey = regexp.MustCompile(`(?i)password`)

// obfuscate replaces the string values of sensitive keys.
func obfuscate(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if _, isString := v.(string); isString &&
			(k == "token" || k == "passphrase" || k == "encryptionKey" || sensitiveKey.MatchString(k)) {
			v = "* obfuscated *"
		}
		out[k] = v
	}
	return out
}

// transformPBD is TRANSFORMS.pbd (reference §B.10).
func transformPBD(c *tctx, r map[string]any) Object {
	o := Object{
		"type":          "PBD",
		"attached":      truthy(r["currently_attached"]),
		"device_config": obfuscate(strMap(r["device_config"])),
		"otherConfig":   strMap(r["other_config"]),
	}
	optional(o, "host", c.link(r["host"]))
	optional(o, "SR", c.link(r["SR"]))
	return o
}

// transformSM is TRANSFORMS.sm (reference §B.10).
func transformSM(c *tctx, r map[string]any) Object {
	o := Object{
		"type":                    "SM",
		"uuid":                    r["uuid"],
		"name_description":        r["name_description"],
		"name_label":              r["name_label"],
		"SM_type":                 r["type"],
		"configuration":           strMap(r["configuration"]),
		"vendor":                  r["vendor"],
		"features":                strMap(r["features"]),
		"driver_filename":         r["driver_filename"],
		"required_cluster_stack":  orEmptyList(r["required_cluster_stack"]),
		"supported_image_formats": []any{},
	}
	if l, ok := r["supported_image_formats"].([]any); ok {
		o["supported_image_formats"] = l
	}
	return o
}

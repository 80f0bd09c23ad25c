package xo

import "slices"

// transformVIF is TRANSFORMS.vif (reference §B.7).
func transformVIF(c *tctx, r map[string]any) Object {
	otherConfig := strMap(r["other_config"])
	tx := otherConfig["ethtool-tx"]
	o := Object{
		"type":                 "VIF",
		"allowedIpv4Addresses": orEmptyList(r["ipv4_allowed"]),
		"allowedIpv6Addresses": orEmptyList(r["ipv6_allowed"]),
		"attached":             truthy(r["currently_attached"]),
		"device":               r["device"],
		"lockingMode":          r["locking_mode"],
		"MAC":                  r["MAC"],
		"MTU":                  num(r["MTU"]),
		"other_config":         otherConfig,
		"txChecksumming":       !(tx == "false" || tx == "off"),
	}
	if r["qos_algorithm_type"] == "ratelimit" {
		if kbps, ok := strMap(r["qos_algorithm_params"])["kbps"]; ok {
			o["rateLimit"] = num(kbps)
		}
	}
	optional(o, "$network", c.link(r["network"]))
	optional(o, "$VM", c.link(r["VM"]))
	return o
}

// pifMetricsFields are the PIF_metrics fields a PIF object reads.
var pifMetricsFields = []string{"device_name", "carrier", "speed"}

// transformPIF is TRANSFORMS.pif (reference §B.8).
func transformPIF(c *tctx, r map[string]any) Object {
	metrics := c.get(ref(r["metrics"]), pifMetricsFields...)
	masterOf := list(r["bond_master_of"])
	slaveOf := ref(r["bond_slave_of"])
	o := Object{
		"type":               "PIF",
		"attached":           truthy(r["currently_attached"]),
		"isBondMaster":       len(masterOf) > 0,
		"isBondSlave":        slaveOf != "OpaqueRef:NULL",
		"device":             r["device"],
		"dns":                r["DNS"],
		"disallowUnplug":     truthy(r["disallow_unplug"]),
		"gateway":            r["gateway"],
		"ip":                 r["IP"],
		"ipv6":               orEmptyList(r["IPv6"]),
		"mac":                r["MAC"],
		"management":         truthy(r["management"]),
		"carrier":            false,
		"mode":               r["ip_configuration_mode"],
		"ipv6Mode":           r["ipv6_configuration_mode"],
		"mtu":                num(r["MTU"]),
		"netmask":            r["netmask"],
		"physical":           truthy(r["physical"]),
		"primaryAddressType": r["primary_address_type"],
		"vlan":               num(r["VLAN"]),
	}
	if metrics != nil {
		o["deviceName"] = metrics["device_name"]
		o["carrier"] = truthy(metrics["carrier"])
		o["speed"] = num(metrics["speed"])
	}
	if !slaveOf.IsNull() {
		if bond := c.get(slaveOf, "master"); bond != nil {
			optional(o, "bondMaster", c.link(bond["master"]))
		}
	}
	if len(masterOf) > 0 {
		if bond := c.get(ref(masterOf[0]), "slaves"); bond != nil {
			o["bondSlaves"] = c.links(bond["slaves"])
		}
	}
	optional(o, "$host", c.link(r["host"]))
	optional(o, "$network", c.link(r["network"]))
	return o
}

// transformNetwork is TRANSFORMS.network (reference §B.9).
func transformNetwork(c *tctx, r map[string]any) Object {
	otherConfig := strMap(r["other_config"])
	purpose := list(r["purpose"])
	o := Object{
		"automatic":          otherConfig["automatic"] == "true",
		"bridge":             r["bridge"],
		"current_operations": strMap(r["current_operations"]),
		"defaultIsLocked":    r["default_locking_mode"] == "disabled",
		"MTU":                num(r["MTU"]),
		"name_description":   r["name_description"],
		"name_label":         r["name_label"],
		"other_config":       otherConfig,
		"tags":               orEmptyList(r["tags"]),
		"PIFs":               c.links(r["PIFs"]),
		"VIFs":               c.links(r["VIFs"]),
		"nbd":                slices.Contains(purpose, any("nbd")),
		"insecureNbd":        slices.Contains(purpose, any("insecure_nbd")),
	}
	bonded := false
	for _, p := range list(r["PIFs"]) {
		pif := c.get(ref(p), "bond_master_of", "bond_slave_of")
		if pif != nil && (len(list(pif["bond_master_of"])) > 0 || !ref(pif["bond_slave_of"]).IsNull()) {
			bonded = true
			break
		}
	}
	o["isBonded"] = bonded
	return o
}

// transformPCI is TRANSFORMS.pci (reference §B.10).
func transformPCI(c *tctx, r map[string]any) Object {
	o := Object{
		"type":        "PCI",
		"class_name":  r["class_name"],
		"device_name": r["device_name"],
		"pci_id":      r["pci_id"],
	}
	optional(o, "$host", c.link(r["host"]))
	return o
}

// transformPGPU is TRANSFORMS.pgpu (reference §B.10).
func transformPGPU(c *tctx, r map[string]any) Object {
	o := Object{
		"type":                  "PGPU",
		"dom0Access":            r["dom0_access"],
		"enabledVgpuTypes":      c.links(r["enabled_VGPU_types"]),
		"isSystemDisplayDevice": truthy(r["is_system_display_device"]),
		"supportedVgpuTypes":    c.links(r["supported_VGPU_types"]),
		"vgpus":                 c.links(r["resident_VGPUs"]),
		"$vgpus":                c.links(r["resident_VGPUs"]),
	}
	if l, ok := r["supported_VGPU_max_capacities"].([]any); ok {
		o["supportedVgpuMaxCapcities"] = c.links(l) // sic, XO's spelling
	}
	optional(o, "gpuGroup", c.link(r["GPU_group"]))
	optional(o, "pci", c.link(r["PCI"]))
	optional(o, "host", c.link(r["host"]))
	optional(o, "$host", c.link(r["host"]))
	return o
}

package xapisim

import "strconv"

// finishPool fills in the pool fields that refer to hosts and SRs.
func (p *poolState) finishPool(tx *Tx) {
	cpus := int64(hostCPUs * len(p.hosts))
	rec := tx.Modify(p.pool)
	rec["master"] = p.hosts[0]
	rec["default_SR"] = p.defaultSR
	rec["suspend_image_SR"] = p.defaultSR
	rec["crash_dump_SR"] = p.defaultSR
	rec["name_description"] = "Simulated XCP-ng pool"
	rec["cpu_info"] = map[string]string{
		"cpu_count":    strconv.FormatInt(cpus, 10),
		"socket_count": strconv.Itoa(len(p.hosts)),
		"vendor":       "GenuineIntel",
		"features_pv":  "1fc9cbf5-f6f83203-2991cbf5-00000123-00000007-209c01ab-00000000-00000000-00001000-ac000400-00000000-00000000-00000000-00000000-00000000-00000000-00000000-00000000",
		"features_hvm": "17cbfbff-f7fa3223-2d93fbff-00000123-0000000f-219c07ab-0040010c-00000000-311ed005-00000010-00000000-18000064-00000000-00000000-00000000-00000000-00000000-00000000",
	}
	rec["restrictions"] = map[string]string{
		"restrict_vtpm":                       "false",
		"restrict_zstd_export":                "false",
		"restrict_vss":                        "true",
		"restrict_pooling":                    "false",
		"restrict_pool_size":                  "false",
		"restrict_lab":                        "false",
		"restrict_marathon":                   "false",
		"restrict_dmc":                        "false",
		"restrict_vswitch_controller":         "false",
		"enable_xha":                          "true",
		"restrict_pci_device_for_auto_update": "false",
	}
	rec["other_config"] = map[string]string{
		"memory-ratio-hvm": "0.25",
		"memory-ratio-pv":  "0.25",
	}
	rec["gui_config"] = map[string]string{}
	rec["tls_verification_enabled"] = true
	rec["migration_compression"] = false
}

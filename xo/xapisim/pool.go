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

// registerPool registers the pool messages.
func registerPool(s *Simulator) {
	s.Register("pool.disable_ha", Method{Handler: poolDisableHA, Params: 0, Async: true})
	s.Register("pool.create_VLAN_from_PIF", Method{Handler: poolCreateVLANFromPIF, Params: 3, Async: true})
}

// poolDisableHA implements pool.disable_ha; HA is never enabled in the
// simulator, so it answers HA_NOT_ENABLED as XAPI does then.
func poolDisableHA(c *Call) (any, error) {
	enabled := false
	c.Sim.DB.Read(func(tx *Tx) {
		for _, p := range tx.All("pool") {
			rec, _ := tx.GetClass("pool", p)
			enabled = enabled || rec["ha_enabled"].(bool)
		}
	})
	if !enabled {
		return nil, NewFault("HA_NOT_ENABLED")
	}
	return nil, c.Sim.DB.Write(func(tx *Tx) error {
		for _, p := range tx.All("pool") {
			setField(tx, p, "ha_enabled", false)
		}
		return nil
	})
}

// poolCreateVLANFromPIF implements pool.create_VLAN_from_PIF(pif, network,
// VLAN): on every host with a PIF of the same device, a VLAN PIF on
// network tagged VLAN and its VLAN object. It returns the new PIFs.
func poolCreateVLANFromPIF(c *Call) (any, error) {
	tag, err := c.Int(2)
	if err != nil {
		return nil, err
	}
	if tag < 0 || tag > 4094 {
		return nil, NewFault("VLAN_TAG_INVALID", strconv.FormatInt(tag, 10))
	}
	out := []string{}
	err = c.Sim.DB.Write(func(tx *Tx) error {
		_, pifRec, err := refArg(tx, c, 0, "PIF")
		if err != nil {
			return err
		}
		network, _, err := refArg(tx, c, 1, "network")
		if err != nil {
			return err
		}
		device := str(pifRec, "device")
		for _, pif := range tx.All("PIF") {
			pr, _ := tx.GetClass("PIF", pif)
			if str(pr, "device") != device || pr["VLAN"].(int64) != -1 {
				continue
			}
			metrics := newObject(tx, "PIF_metrics", Record{"carrier": true, "speed": int64(1000), "duplex": true,
				"device_name": "", "last_updated": c.Sim.Now()})
			vpif := newObject(tx, "PIF", Record{
				"device": device, "network": network, "host": str(pr, "host"), "MAC": str(pr, "MAC"),
				"MTU": pr["MTU"], "VLAN": tag, "metrics": metrics, "currently_attached": true,
				"ip_configuration_mode": "None", "managed": true,
			})
			vlan := newObject(tx, "VLAN", Record{"tagged_PIF": pif, "untagged_PIF": vpif, "tag": tag})
			tx.Modify(vpif)["VLAN_master_of"] = vlan
			out = append(out, vpif)
		}
		return nil
	})
	return out, err
}

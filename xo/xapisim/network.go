package xapisim

import "fmt"

// createNetworks creates network i for each Model.Networks with a physical
// PIF eth<i> (and its metrics and NIC PCI device) on every host; network0
// carries the management interfaces.
func (p *poolState) createNetworks(tx *Tx) {
	for i := range p.m.Networks {
		n := newObject(tx, "network", Record{
			"name_label":         fmt.Sprintf("network%d", i),
			"name_description":   fmt.Sprintf("Pool-wide network associated with eth%d", i),
			"bridge":             fmt.Sprintf("xenbr%d", i),
			"MTU":                int64(1500),
			"other_config":       map[string]string{"automatic": "true"},
			"managed":            true,
			"allowed_operations": []string{"attaching"},
		})
		p.networks = append(p.networks, n)
		for h, host := range p.hosts {
			dev := fmt.Sprintf("eth%d", i)
			pciID := fmt.Sprintf("0000:%02x:00.0", 4+i)
			pci := newObject(tx, "PCI", Record{
				"class_id": "0200", "class_name": "Ethernet controller",
				"vendor_id": "8086", "vendor_name": "Intel Corporation",
				"device_id": "1521", "device_name": "I350 Gigabit Network Connection",
				"host": host, "pci_id": pciID, "driver_name": "igb",
				"subsystem_vendor_id": "15d9", "subsystem_vendor_name": "Super Micro Computer Inc",
			})
			metrics := newObject(tx, "PIF_metrics", Record{
				"carrier": true, "vendor_id": "8086", "vendor_name": "Intel Corporation",
				"device_id": "1521", "device_name": "I350 Gigabit Network Connection",
				"speed": int64(1000), "duplex": true, "pci_bus_path": pciID, "last_updated": baseTime,
			})
			rec := Record{
				"device": dev, "network": n, "host": host, "MAC": mac(0xa0+byte(i), h), "MTU": int64(1500),
				"VLAN": int64(-1), "metrics": metrics, "physical": true, "currently_attached": true,
				"ip_configuration_mode": "None", "managed": true, "PCI": pci,
				"properties":   map[string]string{"gro": "on"},
				"capabilities": []string{"fcoe"},
			}
			if i == 0 {
				rec["management"] = true
				rec["disallow_unplug"] = true
				rec["ip_configuration_mode"] = "Static"
				rec["IP"] = fmt.Sprintf("192.168.0.%d", 10+h)
				rec["netmask"] = "255.255.255.0"
				rec["gateway"] = "192.168.0.1"
				rec["DNS"] = "192.168.0.1"
			}
			newObject(tx, "PIF", rec)
		}
	}
}

// registerNetwork registers the network messages.
func registerNetwork(s *Simulator) {
	s.Register("network.create", Method{Handler: networkCreate, Params: 1, Async: true})
	s.Register("network.destroy", Method{Handler: networkDestroy, Params: 1, Async: true})
}

// networkCreate implements network.create(record): other_config is
// required; a bridge name is chosen when none is given.
func networkCreate(c *Call) (any, error) {
	args, err := c.Struct(0)
	if err != nil {
		return nil, err
	}
	fields, err := constructorFields(c, "network", args)
	if err != nil {
		return nil, err
	}
	var ref string
	err = c.Sim.DB.Write(func(tx *Tx) error {
		if str(fields, "bridge") == "" {
			fields["bridge"] = fmt.Sprintf("xapi%d", tx.Count("network"))
		}
		fields["allowed_operations"] = []string{"attaching"}
		ref = newObject(tx, "network", fields)
		return nil
	})
	return ref, err
}

// networkDestroy implements network.destroy: NETWORK_CONTAINS_VIF or
// NETWORK_CONTAINS_PIF while anything is connected.
func networkDestroy(c *Call) (any, error) {
	return nil, c.Sim.DB.Write(func(tx *Tx) error {
		ref, err := c.String(0)
		if err != nil {
			return err
		}
		rec, ok := tx.GetClass("network", ref)
		if !ok {
			return NewFault("HANDLE_INVALID", "network", ref)
		}
		if vifs := strSet(rec, "VIFs"); len(vifs) > 0 {
			return NewFault("NETWORK_CONTAINS_VIF", vifs...)
		}
		if pifs := strSet(rec, "PIFs"); len(pifs) > 0 {
			return NewFault("NETWORK_CONTAINS_PIF", pifs...)
		}
		deleteObject(tx, ref)
		return nil
	})
}

package xapisim

import (
	"fmt"
	"slices"
	"strings"
)

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

// registerBond registers Bond.create and Bond.destroy.
func registerBond(s *Simulator) {
	s.Register("Bond.create", Method{Handler: bondCreate, Params: 5, Defaults: 2, Async: true})
	s.Register("Bond.destroy", Method{Handler: bondDestroy, Params: 1, Async: true})
}

// bondModes is the bond_mode enum.
var bondModes = []string{"balance-slb", "active-backup", "lacp"}

// bondCreate implements Bond.create(network, members, MAC[, mode,
// properties]): the members (at least two physical PIFs of one host, not
// already bonded) become slaves of a new bond whose master PIF "bond<n>"
// is on network; the management role moves to the master.
func bondCreate(c *Call) (any, error) {
	members, err := c.Strings(1)
	if err != nil {
		return nil, err
	}
	macArg, err := c.String(2)
	if err != nil {
		return nil, err
	}
	mode, err := c.String(3)
	if err != nil {
		return nil, err
	}
	if mode == "" {
		mode = "balance-slb"
	}
	if !slices.Contains(bondModes, mode) {
		return nil, NewFault("INVALID_VALUE", "mode", mode)
	}
	props, err := c.Struct(4)
	if err != nil {
		return nil, err
	}
	properties, ok := wireToKind(KindStringMap, props)
	if !ok {
		return nil, NewFault("INVALID_VALUE", "properties", fmt.Sprint(props))
	}
	var ref string
	err = c.Sim.DB.Write(func(tx *Tx) error {
		network, _, err := refArg(tx, c, 0, "network")
		if err != nil {
			return err
		}
		if len(members) < 2 {
			return NewFault("PIF_BOND_NEEDS_MORE_MEMBERS")
		}
		host, management := "", false
		var first Record
		for _, pif := range members {
			pr, ok := tx.GetClass("PIF", pif)
			if !ok {
				return NewFault("HANDLE_INVALID", "PIF", pif)
			}
			if isRef(str(pr, "bond_slave_of")) {
				return NewFault("PIF_ALREADY_BONDED", pif)
			}
			if pr["VLAN"].(int64) != -1 || !pr["physical"].(bool) {
				return NewFault("PIF_IS_VLAN", pif)
			}
			if host == "" {
				host, first = str(pr, "host"), pr
			} else if str(pr, "host") != host {
				return NewFault("PIFS_MUST_ALL_BE_ON_THE_SAME_HOST", pif)
			}
			management = management || pr["management"].(bool)
		}
		if macArg == "" {
			macArg = str(first, "MAC")
		}
		n := 0
		for _, pif := range tx.All("PIF") {
			pr, _ := tx.GetClass("PIF", pif)
			if str(pr, "host") == host && strings.HasPrefix(str(pr, "device"), "bond") {
				n++
			}
		}
		metrics := newObject(tx, "PIF_metrics", Record{"carrier": true, "speed": int64(2000), "duplex": true, "last_updated": c.Sim.Now()})
		master := newObject(tx, "PIF", Record{
			"device": fmt.Sprintf("bond%d", n), "network": network, "host": host, "MAC": macArg, "MTU": first["MTU"],
			"VLAN": int64(-1), "metrics": metrics, "currently_attached": true, "managed": true,
			"ip_configuration_mode": str(first, "ip_configuration_mode"), "IP": str(first, "IP"),
			"netmask": str(first, "netmask"), "gateway": str(first, "gateway"), "DNS": str(first, "DNS"),
			"management": management, "disallow_unplug": management,
		})
		ref = newObject(tx, "Bond", Record{
			"master": master, "mode": mode, "properties": properties, "primary_slave": members[0],
			"links_up": int64(len(members)),
		})
		for _, pif := range members {
			setRef(tx, pif, "bond_slave_of", ref)
			m := tx.Modify(pif)
			m["currently_attached"] = false
			m["management"] = false
			m["disallow_unplug"] = false
			m["ip_configuration_mode"] = "None"
			m["IP"], m["netmask"], m["gateway"], m["DNS"] = "", "", "", ""
		}
		return nil
	})
	return ref, err
}

// bondDestroy implements Bond.destroy: the master PIF goes, the slaves are
// freed and the first one takes back the master's IP configuration.
func bondDestroy(c *Call) (any, error) {
	return nil, c.Sim.DB.Write(func(tx *Tx) error {
		ref, rec, err := refArg(tx, c, 0, "Bond")
		if err != nil {
			return err
		}
		master, _ := tx.GetClass("PIF", str(rec, "master"))
		slaves := slices.Clone(strSet(rec, "slaves"))
		for i, pif := range slaves {
			setRef(tx, pif, "bond_slave_of", NullRef)
			m := tx.Modify(pif)
			m["currently_attached"] = true
			if i == 0 && master != nil {
				for _, f := range []string{"management", "disallow_unplug", "ip_configuration_mode", "IP", "netmask", "gateway", "DNS"} {
					m[f] = master[f]
				}
			}
		}
		if master != nil {
			deleteObject(tx, str(master, "metrics"))
			deleteObject(tx, str(rec, "master"))
		}
		deleteObject(tx, ref)
		return nil
	})
}

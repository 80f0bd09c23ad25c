package xapisim

import (
	"fmt"
	"slices"
)

// srSize is the physical size of every simulated disk SR.
const srSize = int64(2 << 40)

// smDriver describes the SM plugin record of one SR type.
type smDriver struct {
	typ, label, description, driver string
	capabilities                    []string
}

// smDrivers lists the SM plugins of the SR types the model creates. It is
// never modified.
var smDrivers = []smDriver{
	{"nfs", "NFS VHD", "SR plugin which stores disks as VHD files on a remote NFS filesystem", "NFSSR",
		[]string{"SR_PROBE", "SR_UPDATE", "SR_CACHING", "VDI_CREATE", "VDI_DELETE", "VDI_ATTACH", "VDI_DETACH", "VDI_UPDATE", "VDI_CLONE", "VDI_SNAPSHOT", "VDI_RESIZE", "VDI_MIRROR", "VDI_GENERATE_CONFIG", "VDI_RESET_ON_BOOT/2", "ATOMIC_PAUSE", "VDI_CONFIG_CBT", "VDI_ACTIVATE", "VDI_DEACTIVATE", "THIN_PROVISIONING"}},
	{"ext", "Local EXT3 VHD", "SR plugin which represents disks as VHD files stored on a local EXT3 filesystem, created inside an LVM volume", "EXTSR",
		[]string{"SR_PROBE", "SR_SUPPORTS_LOCAL_CACHING", "SR_UPDATE", "SR_CACHING", "VDI_CREATE", "VDI_DELETE", "VDI_ATTACH", "VDI_DETACH", "VDI_UPDATE", "VDI_CLONE", "VDI_SNAPSHOT", "VDI_RESIZE", "VDI_MIRROR", "VDI_GENERATE_CONFIG", "VDI_RESET_ON_BOOT/2", "ATOMIC_PAUSE", "VDI_CONFIG_CBT", "VDI_ACTIVATE", "VDI_DEACTIVATE", "THIN_PROVISIONING"}},
	{"iso", "ISO", "Handles CD images stored as files in iso format", "ISOSR",
		[]string{"VDI_CREATE", "VDI_DELETE", "VDI_ATTACH", "VDI_DETACH", "SR_SCAN", "SR_ATTACH", "SR_DETACH"}},
	{"udev", "Local Device", "SR plugin which represents removable media as VDIs", "udevSR",
		[]string{"VDI_ATTACH", "VDI_DETACH", "VDI_INTRODUCE", "SR_SCAN"}},
}

// createStorage creates the SM plugins, the SRs with one PBD per host that
// sees them, and the ISO and tools VDIs.
func (p *poolState) createStorage(tx *Tx) {
	for _, d := range smDrivers {
		features := map[string]int64{}
		for _, c := range d.capabilities {
			features[c] = 1
		}
		newObject(tx, "SM", Record{
			"name_label":              d.label,
			"name_description":        d.description,
			"type":                    d.typ,
			"vendor":                  "Citrix Systems Inc",
			"copyright":               "(C) 2008 Citrix Systems Inc",
			"version":                 "1.0",
			"required_api_version":    "1.0",
			"capabilities":            slices.Clone(d.capabilities),
			"features":                features,
			"configuration":           map[string]string{},
			"driver_filename":         "/opt/xensource/sm/" + d.driver,
			"supported_image_formats": []string{"vhd", "raw"},
		})
	}
	for i := range p.m.SharedSRs {
		sr := p.createSR(tx, fmt.Sprintf("sr%d", i), "NFS SR on 192.168.0.2:/srv/sr"+fmt.Sprint(i), "nfs", "user", true, p.hosts,
			map[string]string{"server": "192.168.0.2", "serverpath": fmt.Sprintf("/srv/sr%d", i), "nfsversion": "4.1"})
		if p.defaultSR == "" {
			p.defaultSR, p.sharedSR = sr, sr
		}
	}
	if p.m.LocalSRs {
		for i, h := range p.hosts {
			sr := p.createSR(tx, fmt.Sprintf("host%d local storage", i), "Local storage of host"+fmt.Sprint(i), "ext", "user", false, []string{h},
				map[string]string{"device": "/dev/sda3"})
			p.localSRs = append(p.localSRs, sr)
			if p.defaultSR == "" {
				p.defaultSR = sr
			}
		}
	}
	if p.m.ISOSR {
		iso := p.createSR(tx, "iso0", "ISO library", "iso", "iso", true, p.hosts,
			map[string]string{"location": "192.168.0.2:/srv/iso", "type": "nfs_iso"})
		p.isoVDI = newObject(tx, "VDI", Record{
			"name_label": "debian-12.5.0-amd64-netinst.iso", "SR": iso, "virtual_size": int64(659554304),
			"physical_utilisation": int64(659554304), "type": "user", "read_only": true, "managed": true,
			"location": "debian-12.5.0-amd64-netinst.iso", "sm_config": map[string]string{}, "other_config": map[string]string{},
		})
		tools := p.createSR(tx, "XCP-ng Tools", "XCP-ng Windows guest tools", "iso", "iso", true, p.hosts,
			map[string]string{"location": "/opt/xensource/packages/iso", "legacy_mode": "true"})
		setField(tx, tools, "is_tools_sr", true)
		newObject(tx, "VDI", Record{
			"name_label": "guest-tools.iso", "name_description": "XCP-ng Windows guest tools", "SR": tools,
			"virtual_size": int64(61014016), "physical_utilisation": int64(61014016), "type": "user",
			"read_only": true, "managed": true, "is_tools_iso": true, "location": "guest-tools.iso",
		})
	}
}

// createSR creates an SR plugged into hosts through one PBD each.
func (p *poolState) createSR(tx *Tx, name, desc, typ, content string, shared bool, hosts []string, deviceConfig map[string]string) string {
	sr := newObject(tx, "SR", Record{
		"name_label":       name,
		"name_description": desc,
		"type":             typ,
		"content_type":     content,
		"shared":           shared,
		"physical_size":    srSize,
		"other_config":     map[string]string{"auto-scan": fmt.Sprint(content == "iso")},
		"sm_config":        map[string]string{"devserial": "", "allocation": "thin"},
	})
	if content == "iso" {
		tx.Modify(sr)["physical_size"] = int64(0)
		tx.Modify(sr)["sm_config"] = map[string]string{}
	}
	for _, h := range hosts {
		newObject(tx, "PBD", Record{
			"host": h, "SR": sr, "device_config": cloneStrMap(deviceConfig), "currently_attached": true,
			"other_config": map[string]string{},
		})
	}
	return sr
}

// registerSR registers the SR messages.
func registerSR(s *Simulator) {
	s.Register("SR.scan", Method{Handler: srScan, Params: 1, Async: true})
	s.Register("SR.get_supported_types", Method{Handler: srSupportedTypes, Params: 0})
	s.Register("SR.forget", Method{Handler: srForget, Params: 1, Async: true})
	s.Register("SR.destroy", Method{Handler: srForget, Params: 1, Async: true})
	s.Register("PBD.plug", Method{Handler: pbdPlug(true), Params: 1, Async: true})
	s.Register("PBD.unplug", Method{Handler: pbdPlug(false), Params: 1, Async: true})
}

// srForget implements SR.forget and SR.destroy: every PBD must be
// unplugged (SR_HAS_PBD); the SR, its PBDs, VDIs and their VBDs go.
func srForget(c *Call) (any, error) {
	return nil, c.Sim.DB.Write(func(tx *Tx) error {
		sr, rec, err := refArg(tx, c, 0, "SR")
		if err != nil {
			return err
		}
		for _, pbd := range strSet(rec, "PBDs") {
			if pr, ok := tx.GetClass("PBD", pbd); ok && pr["currently_attached"].(bool) {
				return NewFault("SR_HAS_PBD", sr)
			}
		}
		for _, vdi := range slices.Clone(strSet(rec, "VDIs")) {
			destroyVDIRecord(tx, vdi)
		}
		for _, pbd := range slices.Clone(strSet(rec, "PBDs")) {
			deleteObject(tx, pbd)
		}
		for _, p := range tx.All("pool") {
			pr, _ := tx.GetClass("pool", p)
			for _, f := range []string{"default_SR", "suspend_image_SR", "crash_dump_SR"} {
				if str(pr, f) == sr {
					tx.Modify(p)[f] = NullRef
				}
			}
		}
		deleteObject(tx, sr)
		return nil
	})
}

// pbdPlug implements PBD.plug and PBD.unplug. Unplugging fails with
// VDI_IN_USE [vdi...] while VDIs of the SR are attached to VMs running on
// the PBD's host.
func pbdPlug(plug bool) Handler {
	return func(c *Call) (any, error) {
		return nil, c.Sim.DB.Write(func(tx *Tx) error {
			pbd, rec, err := refArg(tx, c, 0, "PBD")
			if err != nil {
				return err
			}
			if !plug && rec["currently_attached"].(bool) {
				host := str(rec, "host")
				srRec, _ := tx.GetClass("SR", str(rec, "SR"))
				var active []string
				for _, vdi := range strSet(srRec, "VDIs") {
					vr, _ := tx.GetClass("VDI", vdi)
					for _, vbd := range strSet(vr, "VBDs") {
						br, _ := tx.GetClass("VBD", vbd)
						vm, _ := tx.GetClass("VM", str(br, "VM"))
						if br["currently_attached"].(bool) && str(vm, "resident_on") == host && !slices.Contains(active, vdi) {
							active = append(active, vdi)
						}
					}
				}
				if len(active) > 0 {
					return NewFault("VDI_IN_USE", active...)
				}
			}
			setField(tx, pbd, "currently_attached", plug)
			updateSRAllowedOperations(tx, str(rec, "SR"))
			return nil
		})
	}
}

// srScan recomputes the SR's space accounting from its VDIs (the simulator
// has no backing storage to discover new VDIs on).
func srScan(c *Call) (any, error) {
	return nil, c.Sim.DB.Write(func(tx *Tx) error {
		ref, err := c.String(0)
		if err != nil {
			return err
		}
		if _, ok := tx.GetClass("SR", ref); !ok {
			return NewFault("HANDLE_INVALID", "SR", ref)
		}
		updateSRUsage(tx, ref)
		return nil
	})
}

func srSupportedTypes(c *Call) (any, error) {
	out := make([]string, 0, len(smDrivers))
	for _, d := range smDrivers {
		out = append(out, d.typ)
	}
	return out, nil
}

// updateSRUsage recomputes virtual_allocation and physical_utilisation.
func updateSRUsage(tx *Tx, sr string) {
	rec, ok := tx.GetClass("SR", sr)
	if !ok {
		return
	}
	var virt, phys int64
	for _, vdi := range strSet(rec, "VDIs") {
		vr, _ := tx.GetClass("VDI", vdi)
		virt += vr["virtual_size"].(int64)
		phys += vr["physical_utilisation"].(int64)
	}
	setField(tx, sr, "virtual_allocation", virt)
	setField(tx, sr, "physical_utilisation", phys)
}

// addSRUsage adds a new VDI's sizes to the usage of sr, which
// updateSRUsage keeps equal to the sums over the SR's VDIs.
func addSRUsage(tx *Tx, sr string, virt, phys int64) {
	rec, ok := tx.GetClass("SR", sr)
	if !ok {
		return
	}
	setField(tx, sr, "virtual_allocation", rec["virtual_allocation"].(int64)+virt)
	setField(tx, sr, "physical_utilisation", rec["physical_utilisation"].(int64)+phys)
}

// srPlugged reports whether some host has the SR plugged.
func srPlugged(tx *Tx, rec Record) bool {
	for _, pbd := range strSet(rec, "PBDs") {
		if pr, ok := tx.GetClass("PBD", pbd); ok && pr["currently_attached"].(bool) {
			return true
		}
	}
	return false
}

// updateSRAllowedOperations recomputes SR.allowed_operations from the SM
// capabilities of its type.
func updateSRAllowedOperations(tx *Tx, sr string) {
	rec, ok := tx.GetClass("SR", sr)
	if !ok {
		return
	}
	ops := []string{"scan", "forget", "plug", "unplug", "update", "vdi_introduce", "pbd_create", "pbd_destroy"}
	if str(rec, "content_type") != "iso" {
		ops = append(ops, "vdi_create", "vdi_destroy", "vdi_resize", "vdi_clone", "vdi_snapshot", "vdi_mirror",
			"vdi_enable_cbt", "vdi_disable_cbt", "vdi_data_destroy", "vdi_list_changed_blocks", "vdi_set_on_boot")
	} else {
		ops = append(ops, "vdi_create", "vdi_destroy")
	}
	if len(strSet(rec, "VDIs")) == 0 {
		ops = append(ops, "destroy")
	}
	if !srPlugged(tx, rec) {
		// An SR no host sees only accepts plug, forget and PBD changes.
		ops = []string{"forget", "plug", "pbd_create", "pbd_destroy", "destroy"}
	}
	setAllowedOperations(tx, sr, rec, ops)
}

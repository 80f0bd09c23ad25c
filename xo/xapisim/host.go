package xapisim

import (
	"fmt"
	"strconv"
	"time"
)

// hostCPUs is the number of physical CPUs of each simulated host.
const hostCPUs = 8

// hostMemory is the physical memory of each simulated host.
const hostMemory = int64(64 << 30)

// dom0Memory is the memory of each control domain.
const dom0Memory = int64(4 << 30)

// createHost creates host i with its metrics and its control domain.
func (p *poolState) createHost(tx *Tx, i int) string {
	name := fmt.Sprintf("host%d", i)
	addr := fmt.Sprintf("192.168.0.%d", 10+i)
	boot := baseTime.Add(-time.Duration(24*(i+1)) * time.Hour)
	metrics := newObject(tx, "host_metrics", Record{
		"memory_total": hostMemory,
		"memory_free":  hostMemory - dom0Memory,
		"live":         true,
		"last_updated": baseTime,
	})
	h := newObject(tx, "host", Record{
		"name_label":         name,
		"name_description":   "Default install",
		"hostname":           name,
		"address":            addr,
		"enabled":            true,
		"metrics":            metrics,
		"API_version_major":  int64(2),
		"API_version_minor":  int64(21),
		"API_version_vendor": "XenSource",
		"software_version": map[string]string{
			"product_version":            "8.3.0",
			"product_version_text":       "8.3",
			"product_version_text_short": "8.3",
			"platform_name":              "XCP",
			"platform_version":           "3.4.0",
			"product_brand":              "XCP-ng",
			"build_number":               "cloud",
			"git_id":                     "0",
			"hostname":                   name,
			"date":                       "2024-06-05",
			"dbv":                        "2024.0605",
			"is_preview_release":         "false",
			"xapi":                       "24.19",
			"xapi_build":                 "24.19.2",
			"xen":                        "4.17.4-3",
			"linux":                      "4.19.0+1",
			"xencenter_min":              "2.21",
			"xencenter_max":              "2.21",
			"network_backend":            "openvswitch",
			"db_schema":                  "5.780",
			"xs:main":                    "Base Pack, version 8.3.0, build cloud",
		},
		"capabilities": []string{
			"xen-3.0-x86_64", "hvm-3.0-x86_32", "hvm-3.0-x86_32p", "hvm-3.0-x86_64",
		},
		"cpu_configuration":     map[string]string{},
		"sched_policy":          "credit",
		"supported_bootloaders": []string{"pygrub", "eliloader"},
		"cpu_info": map[string]string{
			"cpu_count":        strconv.Itoa(hostCPUs),
			"socket_count":     "1",
			"threads_per_core": "2",
			"vendor":           "GenuineIntel",
			"speed":            "2593.906",
			"modelname":        "Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz",
			"family":           "6",
			"model":            "85",
			"stepping":         "7",
			"flags":            "fpu de tsc msr pae mce cx8 apic sep mca cmov pat clflush acpi mmx fxsr sse sse2 ht syscall nx lm constant_tsc rep_good nopl nonstop_tsc cpuid pni pclmulqdq monitor est ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch",
			"features_pv":      "1fc9cbf5-f6f83203-2991cbf5-00000123-00000007-209c01ab-00000000-00000000-00001000-ac000400-00000000-00000000-00000000-00000000-00000000-00000000-00000000-00000000",
			"features_hvm":     "17cbfbff-f7fa3223-2d93fbff-00000123-0000000f-219c07ab-0040010c-00000000-311ed005-00000010-00000000-18000064-00000000-00000000-00000000-00000000-00000000-00000000",
		},
		"bios_strings": map[string]string{
			"bios-vendor":            "American Megatrends Inc.",
			"bios-version":           "3.4",
			"system-manufacturer":    "Supermicro",
			"system-product-name":    "SYS-1029P-WTR",
			"system-version":         "0123456789",
			"system-serial-number":   fmt.Sprintf("S%07d", i),
			"baseboard-manufacturer": "Supermicro",
			"oem-1":                  "Xen",
			"oem-2":                  "MS_VM_CERT/SHA1/bdbeb6e0a816d43fa6d3fe8aaef04c2bad9d3e3d",
		},
		"chipset_info": map[string]string{"iommu": "true"},
		"license_params": map[string]string{
			"expiry":               "20300101T00:00:00Z",
			"sku_type":             "free",
			"sku_marketing_name":   "XCP-ng",
			"restrict_zstd_export": "false",
			"restrict_vtpm":        "false",
		},
		"license_server": map[string]string{"address": "localhost", "port": "27000"},
		"edition":        "xcp-ng",
		"editions":       []string{"xcp-ng"},
		"logging":        map[string]string{},
		"other_config": map[string]string{
			"boot_time":        epochString(boot),
			"agent_start_time": epochString(boot.Add(90 * time.Second)),
			"iscsi_iqn":        fmt.Sprintf("iqn.2024-01.com.example:%s", name),
			"multipathing":     "false",
		},
		"iscsi_iqn":                          fmt.Sprintf("iqn.2024-01.com.example:%s", name),
		"power_on_mode":                      "",
		"memory_overhead":                    int64(512 << 20),
		"virtual_hardware_platform_versions": []int64{0, 1, 2},
		"display":                            "enabled",
		"ssl_legacy":                         false,
		"tls_verification_enabled":           true,
		"https_only":                         false,
		"timezone":                           "UTC",
	})
	p.createControlDomain(tx, h, name, i)
	return h
}

// createControlDomain creates dom0 of host h.
func (p *poolState) createControlDomain(tx *Tx, h, hostName string, i int) {
	metrics := newObject(tx, "VM_metrics", Record{
		"memory_actual":       dom0Memory,
		"VCPUs_number":        int64(hostCPUs),
		"state":               []string{},
		"start_time":          baseTime.Add(-time.Duration(24*(i+1)) * time.Hour),
		"install_time":        baseTime.Add(-30 * 24 * time.Hour),
		"last_updated":        baseTime,
		"current_domain_type": "pv",
	})
	dom0 := newObject(tx, "VM", Record{
		"name_label":             "Control domain on host: " + hostName,
		"name_description":       "The domain which manages physical devices and manages other domains",
		"power_state":            "Running",
		"is_control_domain":      true,
		"resident_on":            h,
		"affinity":               h,
		"domid":                  int64(0),
		"domarch":                "x64",
		"user_version":           int64(1),
		"memory_static_max":      dom0Memory,
		"memory_static_min":      dom0Memory,
		"memory_dynamic_max":     dom0Memory,
		"memory_dynamic_min":     dom0Memory,
		"memory_target":          dom0Memory,
		"VCPUs_max":              int64(hostCPUs),
		"VCPUs_at_startup":       int64(hostCPUs),
		"actions_after_shutdown": "destroy",
		"actions_after_reboot":   "restart",
		"actions_after_crash":    "restart",
		"domain_type":            "pv",
		"metrics":                metrics,
		"other_config":           map[string]string{"storage_driver_domain": "", "is_system_domain": "true", "perfmon": ""},
		"has_vendor_device":      false,
		"generation_id":          "",
		"HVM_shadow_multiplier":  float64(1),
	})
	setField(tx, dom0, "other_config", map[string]string{"storage_driver_domain": dom0, "is_system_domain": "true"})
	newObject(tx, "console", Record{"protocol": "rfb", "location": fmt.Sprintf("https://192.168.0.%d/console?uuid=%s", 10+i, uuidOf(tx, dom0)), "VM": dom0, "other_config": map[string]string{}})
	tx.Modify(h)["control_domain"] = dom0
}

// uuidOf returns the uuid of an object.
func uuidOf(tx *Tx, ref string) string {
	_, rec, _ := tx.Get(ref)
	return str(rec, "uuid")
}

// createGPUs creates a GPU PCI device and its PGPU on every host, in one
// pool-wide GPU group.
func (p *poolState) createGPUs(tx *Tx) {
	p.gpuGroup = newObject(tx, "GPU_group", Record{
		"name_label":           "Group of Matrox Electronics Systems Ltd. MGA G200eW WPCM450 GPUs",
		"name_description":     "",
		"GPU_types":            []string{"102b:0532"},
		"allocation_algorithm": "depth_first",
	})
	for i, h := range p.hosts {
		pci := newObject(tx, "PCI", Record{
			"class_id":              "0300",
			"class_name":            "VGA compatible controller",
			"vendor_id":             "102b",
			"vendor_name":           "Matrox Electronics Systems Ltd.",
			"device_id":             "0532",
			"device_name":           "MGA G200eW WPCM450",
			"host":                  h,
			"pci_id":                "0000:03:00.0",
			"subsystem_vendor_id":   "15d9",
			"subsystem_vendor_name": "Super Micro Computer Inc",
			"driver_name":           "mgag200",
		})
		newObject(tx, "PGPU", Record{
			"PCI":                      pci,
			"GPU_group":                p.gpuGroup,
			"host":                     h,
			"dom0_access":              "enabled",
			"is_system_display_device": i == 0,
		})
	}
}

// registerHost registers the host messages.
func registerHost(s *Simulator) {
	s.Register("host.enable", Method{Handler: hostEnable, Params: 1, Async: true})
	s.Register("host.disable", Method{Handler: hostDisable, Params: 2, Defaults: 1, Async: true})
	s.Register("host.reboot", Method{Handler: hostPower("reboot"), Params: 1, Async: true})
	s.Register("host.shutdown", Method{Handler: hostPower("shutdown"), Params: 1, Async: true})
	s.Register("host.restart_agent", Method{Handler: hostRestartAgent, Params: 1, Async: true})
	s.Register("host.evacuate", Method{Handler: hostEvacuate, Params: 3, Defaults: 2, Async: true})
	s.Register("host.get_management_interface", Method{Handler: hostManagementInterface, Params: 1, Async: true})
	s.Register("host.compute_free_memory", Method{Handler: hostFreeMemory, Params: 1, Async: true})
	s.Register("host.get_servertime", Method{Handler: hostServerTime, Params: 1, Async: true})
	s.Register("host.get_server_localtime", Method{Handler: hostServerTime, Params: 1, Async: true})
	s.Register("host.power_on", Method{Handler: hostPowerOn, Params: 1, Async: true})
	s.Register("host.get_vms_which_prevent_evacuation", Method{Handler: hostVMsPreventingEvacuation, Params: 1, Async: true})
}

// getHost returns the record of the host passed as argument i.
func getHost(tx *Tx, c *Call, i int) (string, Record, error) {
	ref, err := c.String(i)
	if err != nil {
		return "", nil, err
	}
	rec, ok := tx.GetClass("host", ref)
	if !ok {
		return "", nil, NewFault("HANDLE_INVALID", "host", ref)
	}
	return ref, rec, nil
}

func hostEnable(c *Call) (any, error) {
	return nil, c.Sim.DB.Write(func(tx *Tx) error {
		ref, _, err := getHost(tx, c, 0)
		if err != nil {
			return err
		}
		setField(tx, ref, "enabled", true)
		updateHostAllowedOperations(tx, ref)
		return nil
	})
}

func hostDisable(c *Call) (any, error) {
	return nil, c.Sim.DB.Write(func(tx *Tx) error {
		ref, _, err := getHost(tx, c, 0)
		if err != nil {
			return err
		}
		setField(tx, ref, "enabled", false)
		updateHostAllowedOperations(tx, ref)
		return nil
	})
}

// residentGuests returns the VMs other than dom0 running on host.
func residentGuests(tx *Tx, rec Record) []string {
	var out []string
	for _, vm := range strSet(rec, "resident_VMs") {
		if vr, ok := tx.GetClass("VM", vm); ok && !vr["is_control_domain"].(bool) {
			out = append(out, vm)
		}
	}
	return out
}

// hostPower implements host.reboot and host.shutdown: the host must be
// disabled and have no running guests (HOST_IN_USE otherwise, as XAPI's
// assert_can_shutdown). A rebooted host comes back at once, disabled as
// XAPI leaves it until the toolstack enables it again; its boot_time and
// agent_start_time move forward.
func hostPower(op string) Handler {
	return func(c *Call) (any, error) {
		return nil, c.Sim.DB.Write(func(tx *Tx) error {
			ref, rec, err := getHost(tx, c, 0)
			if err != nil {
				return err
			}
			if rec["enabled"].(bool) {
				return NewFault("HOST_NOT_DISABLED")
			}
			if vms := residentGuests(tx, rec); len(vms) > 0 {
				return NewFault("HOST_IN_USE", ref, "vm", vms[0])
			}
			now := c.Sim.Now()
			oc := cloneStrMap(strMap(rec, "other_config"))
			metrics := str(rec, "metrics")
			if op == "shutdown" {
				setField(tx, metrics, "live", false)
			} else {
				oc["boot_time"] = epochString(now)
				oc["agent_start_time"] = epochString(now)
				setField(tx, ref, "enabled", true)
			}
			setField(tx, ref, "other_config", oc)
			updateHostAllowedOperations(tx, ref)
			return nil
		})
	}
}

// hostPowerOn implements host.power_on for a host that was shut down: it
// comes back live and enabled with a new boot time.
func hostPowerOn(c *Call) (any, error) {
	return nil, c.Sim.DB.Write(func(tx *Tx) error {
		ref, rec, err := getHost(tx, c, 0)
		if err != nil {
			return err
		}
		metrics := str(rec, "metrics")
		if mr, ok := tx.GetClass("host_metrics", metrics); ok && mr["live"].(bool) {
			return NewFault("HOST_POWER_ON_MODE_DISABLED")
		}
		now := c.Sim.Now()
		oc := cloneStrMap(strMap(rec, "other_config"))
		oc["boot_time"] = epochString(now)
		oc["agent_start_time"] = epochString(now)
		setField(tx, ref, "other_config", oc)
		setField(tx, metrics, "live", true)
		setField(tx, ref, "enabled", true)
		updateHostAllowedOperations(tx, ref)
		return nil
	})
}

// hostRestartAgent bumps other_config.agent_start_time, which XO waits for.
func hostRestartAgent(c *Call) (any, error) {
	return nil, c.Sim.DB.Write(func(tx *Tx) error {
		ref, rec, err := getHost(tx, c, 0)
		if err != nil {
			return err
		}
		oc := cloneStrMap(strMap(rec, "other_config"))
		next := c.Sim.Now().Unix()
		var prev int64
		_, _ = fmt.Sscanf(oc["agent_start_time"], "%d", &prev)
		if next <= prev {
			next = prev + 1
		}
		oc["agent_start_time"] = fmt.Sprintf("%d.", next)
		setField(tx, ref, "other_config", oc)
		setField(tx, ref, "enabled", true)
		return nil
	})
}

// hostEvacuate live-migrates every running guest of a host to the other
// enabled hosts, round robin (NO_HOSTS_AVAILABLE if there is none).
func hostEvacuate(c *Call) (any, error) {
	return nil, c.Sim.DB.Write(func(tx *Tx) error {
		ref, rec, err := getHost(tx, c, 0)
		if err != nil {
			return err
		}
		vms := residentGuests(tx, rec)
		if len(vms) == 0 {
			return nil
		}
		var targets []string
		for _, h := range tx.All("host") {
			hr, _ := tx.GetClass("host", h)
			if h != ref && hr["enabled"].(bool) {
				targets = append(targets, h)
			}
		}
		if len(targets) == 0 {
			return NewFault("NO_HOSTS_AVAILABLE")
		}
		for i, vm := range vms {
			target := ""
			for k := range targets {
				if h := targets[(i+k)%len(targets)]; canBootOn(tx, vm, h) == nil {
					target = h
					break
				}
			}
			if target == "" {
				return NewFault("NO_HOSTS_AVAILABLE")
			}
			setField(tx, vm, "domid", nextDomid(tx, target))
			setRef(tx, vm, "resident_on", target)
			updateVMAllowedOperations(tx, vm)
		}
		return nil
	})
}

func hostVMsPreventingEvacuation(c *Call) (any, error) {
	out := map[string]any{}
	var err error
	c.Sim.DB.Read(func(tx *Tx) {
		var ref string
		ref, _, err = getHost(tx, c, 0)
		if err != nil {
			return
		}
		others := 0
		for _, h := range tx.All("host") {
			hr, _ := tx.GetClass("host", h)
			if h != ref && hr["enabled"].(bool) {
				others++
			}
		}
		if others > 0 {
			return
		}
		hr, _ := tx.GetClass("host", ref)
		for _, vm := range residentGuests(tx, hr) {
			out[vm] = []any{"NO_HOSTS_AVAILABLE"}
		}
	})
	return out, err
}

func hostManagementInterface(c *Call) (any, error) {
	var out string
	var err error
	c.Sim.DB.Read(func(tx *Tx) {
		var rec Record
		_, rec, err = getHost(tx, c, 0)
		if err != nil {
			return
		}
		for _, pif := range strSet(rec, "PIFs") {
			if pr, ok := tx.GetClass("PIF", pif); ok && pr["management"].(bool) {
				out = pif
				return
			}
		}
		err = NewFault("PIF_NOT_PRESENT")
	})
	return out, err
}

func hostFreeMemory(c *Call) (any, error) {
	var out int64
	var err error
	c.Sim.DB.Read(func(tx *Tx) {
		var rec Record
		_, rec, err = getHost(tx, c, 0)
		if err != nil {
			return
		}
		out = hostMemory
		for _, vm := range strSet(rec, "resident_VMs") {
			vr, _ := tx.GetClass("VM", vm)
			out -= vr["memory_dynamic_max"].(int64)
		}
	})
	return out, err
}

func hostServerTime(c *Call) (any, error) {
	var err error
	c.Sim.DB.Read(func(tx *Tx) { _, _, err = getHost(tx, c, 0) })
	if err != nil {
		return nil, err
	}
	return c.Sim.Now(), nil
}

// updateHostAllowedOperations recomputes host.allowed_operations.
func updateHostAllowedOperations(tx *Tx, ref string) {
	rec, ok := tx.GetClass("host", ref)
	if !ok {
		return
	}
	var ops []string
	if rec["enabled"].(bool) {
		ops = append(ops, "provision", "vm_start", "vm_resume", "vm_migrate", "evacuate")
	} else {
		ops = append(ops, "enable")
		if len(residentGuests(tx, rec)) == 0 {
			ops = append(ops, "shutdown", "reboot")
		}
	}
	if mr, ok := tx.GetClass("host_metrics", str(rec, "metrics")); ok && !mr["live"].(bool) {
		ops = []string{"power_on"}
	}
	setAllowedOperations(tx, ref, rec, ops)
}

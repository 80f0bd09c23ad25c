package xo

// Kinds returns the object kinds the cache serves, one per REST
// collection: an object's kind is its type, except alarms, which are
// messages (type "message") filed under "alarm".
func Kinds() []string {
	return []string{
		"VM", "VM-template", "VM-snapshot", "VM-controller",
		"host", "pool", "SR", "VDI", "VDI-snapshot", "VDI-unmanaged",
		"VBD", "VIF", "PIF", "network", "PBD", "PCI", "PGPU", "SM",
		"message", "alarm", "task",
	}
}

// CollectionKind maps a REST collection name ("vms", "vm-templates",
// "srs", "alarms", "tasks", …) to the kind of its objects. VDI-unmanaged
// objects have no collection in XO's REST API.
func CollectionKind(collection string) (kind string, ok bool) {
	switch collection {
	case "vms":
		return "VM", true
	case "vm-templates":
		return "VM-template", true
	case "vm-snapshots":
		return "VM-snapshot", true
	case "vm-controllers":
		return "VM-controller", true
	case "hosts":
		return "host", true
	case "pools":
		return "pool", true
	case "srs":
		return "SR", true
	case "vdis":
		return "VDI", true
	case "vdi-snapshots":
		return "VDI-snapshot", true
	case "vbds":
		return "VBD", true
	case "vifs":
		return "VIF", true
	case "pifs":
		return "PIF", true
	case "networks":
		return "network", true
	case "pbds":
		return "PBD", true
	case "pcis":
		return "PCI", true
	case "pgpus":
		return "PGPU", true
	case "sms":
		return "SM", true
	case "messages":
		return "message", true
	case "alarms":
		return "alarm", true
	case "tasks":
		return "task", true
	}
	return "", false
}

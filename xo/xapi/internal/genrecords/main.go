// Command genrecords generates records_gen.go, the typed XAPI records of
// package xapi, from xapi-fields.md (the field tables generated from the
// XAPI datamodel, xapi-project.github.io _data/xenapi.json).
//
// Usage (from xo/xapi): go run ./internal/genrecords -in internal/genrecords/xapi-fields.md -out records_gen.go
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"regexp"
	"strings"
)

type field struct {
	wire, goName, goType, xapiType, qual, since, def string
}

type class struct {
	wire, doc string
	fields    []field
}

// classes lists the generated classes, with their Go names.
var classes = []struct{ wire, goName, plural string }{
	{"session", "Session", "Sessions"},
	{"pool", "Pool", "Pools"},
	{"host", "Host", "Hosts"},
	{"host_metrics", "HostMetrics", "HostMetricsRecords"},
	{"host_cpu", "HostCPU", "HostCPUs"},
	{"VM", "VM", "VMs"},
	{"VM_metrics", "VMMetrics", "VMMetricsRecords"},
	{"VM_guest_metrics", "VMGuestMetrics", "VMGuestMetricsRecords"},
	{"SR", "SR", "SRs"},
	{"VDI", "VDI", "VDIs"},
	{"VBD", "VBD", "VBDs"},
	{"VBD_metrics", "VBDMetrics", "VBDMetricsRecords"},
	{"VIF", "VIF", "VIFs"},
	{"VIF_metrics", "VIFMetrics", "VIFMetricsRecords"},
	{"PIF", "PIF", "PIFs"},
	{"PIF_metrics", "PIFMetrics", "PIFMetricsRecords"},
	{"network", "Network", "Networks"},
	{"PBD", "PBD", "PBDs"},
	{"SM", "SM", "SMs"},
	{"PCI", "PCI", "PCIs"},
	{"PGPU", "PGPU", "PGPUs"},
	{"GPU_group", "GPUGroup", "GPUGroups"},
	{"VGPU", "VGPU", "VGPUs"},
	{"VTPM", "VTPM", "VTPMs"},
	{"VUSB", "VUSB", "VUSBs"},
	{"console", "Console", "Consoles"},
	{"task", "Task", "Tasks"},
	{"message", "Message", "Messages"},
	{"Bond", "Bond", "Bonds"},
	{"VLAN", "VLAN", "VLANs"},
	{"vdi_nbd_server_info", "VDINBDServerInfo", ""},
}

var initialisms = map[string]string{
	"uuid": "UUID", "id": "ID", "ip": "IP", "mtu": "MTU", "mac": "MAC", "url": "URL", "sr": "SR", "vm": "VM",
	"vms": "VMs", "ha": "HA", "cpu": "CPU", "cpus": "CPUs", "api": "API", "pci": "PCI", "ssl": "SSL", "tls": "TLS",
	"wlb": "WLB", "dns": "DNS", "ssh": "SSH", "uefi": "UEFI", "nbd": "NBD", "iscsi": "ISCSI", "iqn": "IQN",
	"numa": "NUMA", "ntp": "NTP", "os": "OS", "pv": "PV", "gpu": "GPU", "vgpu": "VGPU", "http": "HTTP",
	"xml": "XML", "pvs": "PVS", "sm": "SM", "vdi": "VDI", "vdis": "VDIs", "vbd": "VBD", "vif": "VIF", "pif": "PIF",
	"pbd": "PBD", "rbac": "RBAC", "sid": "SID", "vcpus": "VCPUs", "ipv4": "IPv4", "ipv6": "IPv6", "psr": "PSR",
	"igmp": "IGMP", "sriov": "SRIOV", "ca": "CA", "cbt": "CBT", "io": "IO", "pusb": "PUSB", "usb": "USB",
	"vtpm": "VTPM", "vusb": "VUSB", "vlan": "VLAN", "tpm": "TPM", "hvm": "HVM", "bios": "BIOS", "xenstore": "Xenstore",
}

func goFieldName(wire string) string {
	var b strings.Builder
	for _, part := range strings.Split(wire, "_") {
		if part == "" {
			continue
		}
		if up, ok := initialisms[strings.ToLower(part)]; ok && strings.ToLower(part) == part {
			b.WriteString(up)
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// goType maps a datamodel wire type to a Go type.
func goType(t string) (string, error) {
	t = strings.TrimSpace(t)
	switch {
	case t == "string":
		return "string", nil
	case t == "int":
		return "int64", nil
	case t == "float":
		return "float64", nil
	case t == "bool":
		return "bool", nil
	case t == "datetime":
		return "time.Time", nil
	case strings.HasPrefix(t, "("):
		m := regexp.MustCompile(`^\((.+) -> (.+)\) map$`).FindStringSubmatch(t)
		if m == nil {
			return "", fmt.Errorf("bad map type %q", t)
		}
		k, err := goType(m[1])
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(k, "[]") || strings.HasPrefix(k, "map") || k == "bool" || k == "float64" || k == "time.Time" {
			return "", fmt.Errorf("bad map key in %q", t)
		}
		v, err := goType(m[2])
		if err != nil {
			return "", err
		}
		return "map[" + k + "]" + v, nil
	case strings.HasSuffix(t, " set"):
		e, err := goType(strings.TrimSuffix(t, " set"))
		if err != nil {
			return "", err
		}
		return "[]" + e, nil
	case strings.HasSuffix(t, " ref"):
		return "Ref", nil
	case strings.HasPrefix(t, "enum "):
		return "string", nil
	case strings.HasSuffix(t, " record"):
		return "map[string]any", nil
	}
	return "", fmt.Errorf("unknown type %q", t)
}

func parse(path string) (map[string]*class, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]*class{}
	var cur *class
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			name := strings.TrimPrefix(line, "## ")
			cur = &class{wire: name}
			out[name] = cur
		case cur == nil:
		case cur.doc == "" && line != "" && !strings.HasPrefix(line, "|"):
			cur.doc = line
		case strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| field") && !strings.HasPrefix(line, "|---"):
			cols := strings.Split(line, "|")
			if len(cols) < 8 {
				continue
			}
			for i := range cols {
				cols[i] = strings.TrimSpace(cols[i])
			}
			gt, err := goType(cols[2])
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", cur.wire, cols[1], err)
			}
			cur.fields = append(cur.fields, field{wire: cols[1], goName: goFieldName(cols[1]), goType: gt,
				xapiType: cols[2], qual: cols[3], since: cols[5], def: cols[6]})
		}
	}
	return out, sc.Err()
}

func main() {
	in := flag.String("in", "xapi-fields.md", "field tables")
	outPath := flag.String("out", "records_gen.go", "output file")
	flag.Parse()
	parsed, err := parse(*in)
	if err != nil {
		log.Fatal(err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by genrecords from xapi-fields.md; DO NOT EDIT.\n\npackage xapi\n\nimport (\n\"context\"\n\"time\"\n)\n\n")
	for _, c := range classes {
		pc := parsed[c.wire]
		if pc == nil {
			log.Fatalf("class %s not in %s", c.wire, *in)
		}
		doc := strings.TrimSuffix(pc.doc, ".")
		fmt.Fprintf(&b, "// %s is a record of the XAPI class %s: %s.\n//\n// Fields carry the wire name in their `xapi` tag; the comments give the\n// datamodel type, qualifier and first release.\ntype %s struct {\n", c.goName, c.wire, doc, c.goName)
		seen := map[string]bool{}
		for _, f := range pc.fields {
			name := f.goName
			for seen[name] {
				name += "_"
			}
			seen[name] = true
			extra := ""
			if f.def != "" {
				extra = ", default " + f.def
			}
			fmt.Fprintf(&b, "// %s is %s (%s, %s, since %s%s).\n%s %s `xapi:\"%s\"`\n", name, f.wire, f.xapiType, f.qual, f.since, extra, name, f.goType, f.wire)
		}
		fmt.Fprintf(&b, "}\n\n// Class returns %q, the XAPI class name.\nfunc (%s) Class() string { return %q }\n\n", c.wire, c.goName, c.wire)
		if c.plural != "" {
			fmt.Fprintf(&b, "// %s returns every %s record by ref (%s.get_all_records).\nfunc (c *Client) %s(ctx context.Context) (map[Ref]*%s, error) {\nreturn GetAllRecords[%s](ctx, c)\n}\n\n", c.plural, c.wire, c.wire, c.plural, c.goName, c.goName)
		}
	}
	src, err := format.Source(b.Bytes())
	if err != nil {
		os.WriteFile(*outPath, b.Bytes(), 0o644)
		log.Fatal(err)
	}
	if err := os.WriteFile(*outPath, src, 0o644); err != nil {
		log.Fatal(err)
	}
}

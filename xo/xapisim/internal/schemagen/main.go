// Command schemagen generates xo/xapisim/schema.go, the simulator's table of
// XAPI classes, fields, messages and enums, from XAPI's datamodel JSON
// (xapi-project/xapi-project.github.io, file _data/xenapi.json; the field
// appendix xapi-fields.md is generated from the same file).
//
// The JSON is read rather than the appendix because only the JSON lists
// every message of every class, including the generated accessors: the
// appendix's qualifier alone does not say which setters exist (VM.other_config
// is "RO/constructor" there, yet VM.set_other_config and add_to_other_config
// exist), and it covers 33 of the 72 classes.
//
// Usage (from xo/xapisim, see the go:generate line in record.go):
//
//	go run ./internal/schemagen -in xenapi.json -out schema.go
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"sort"
	"strconv"
	"strings"
)

type jsonClass struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Fields      []struct {
		Name      string    `json:"name"`
		Type      string    `json:"type"`
		Qualifier string    `json:"qualifier"`
		Default   *string   `json:"default"`
		Lifecycle lifecycle `json:"lifecycle"`
	} `json:"fields"`
	Messages []struct {
		Name   string   `json:"name"`
		Result []string `json:"result"`
		Params []struct {
			Name     string `json:"name"`
			Type     string `json:"type"`
			Required bool   `json:"required"`
		} `json:"params"`
		Lifecycle lifecycle `json:"lifecycle"`
		Implicit  bool      `json:"implicit"`
	} `json:"messages"`
	Enums []struct {
		Name   string `json:"name"`
		Values []struct {
			Name string `json:"name"`
		} `json:"values"`
	} `json:"enums"`
}

type lifecycle struct {
	State string `json:"state"`
}

func main() {
	in := flag.String("in", "", "xenapi.json to read")
	out := flag.String("out", "schema.go", "Go file to write")
	flag.Parse()
	b, err := os.ReadFile(*in)
	if err != nil {
		log.Fatal(err)
	}
	var classes []jsonClass
	if err := json.Unmarshal(b, &classes); err != nil {
		log.Fatal(err)
	}
	src, err := generate(classes)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
}

// kind maps a datamodel type to the schema's Kind constant.
func kind(typ string) (string, error) {
	switch {
	case typ == "string" || typ == "string option":
		return "KindString", nil
	case typ == "int":
		return "KindInt", nil
	case typ == "float":
		return "KindFloat", nil
	case typ == "bool":
		return "KindBool", nil
	case typ == "datetime":
		return "KindDateTime", nil
	case strings.HasPrefix(typ, "enum ") && !strings.Contains(typ, " set"):
		return "KindEnum", nil
	case strings.HasSuffix(typ, " ref") && !strings.Contains(typ, "->"):
		return "KindRef", nil
	case typ == "int set":
		return "KindIntSet", nil
	case strings.HasSuffix(typ, " set") && !strings.Contains(typ, "->"):
		return "KindStringSet", nil
	case strings.HasSuffix(typ, " map"):
		kv := strings.TrimSuffix(strings.TrimPrefix(typ, "("), ") map")
		_, v, ok := strings.Cut(kv, " -> ")
		if !ok {
			return "", fmt.Errorf("bad map type %q", typ)
		}
		switch {
		case v == "int":
			return "KindIntMap", nil
		case v == "string set":
			return "KindStringSetMap", nil
		case v == "string" || strings.HasSuffix(v, " ref") || strings.HasPrefix(v, "enum "):
			return "KindStringMap", nil
		}
		return "", fmt.Errorf("bad map value type %q", typ)
	case strings.HasSuffix(typ, " record") || strings.HasSuffix(typ, " record option"):
		return "KindRecord", nil
	}
	return "", fmt.Errorf("unknown type %q", typ)
}

// enumOf returns the enum type named in a field type, if any.
func enumOf(typ string) string {
	i := strings.Index(typ, "enum ")
	if i < 0 {
		return ""
	}
	name := typ[i+5:]
	if j := strings.IndexAny(name, " )"); j >= 0 {
		name = name[:j]
	}
	return name
}

// defaultExpr returns the Go expression of a field's default value.
func defaultExpr(k, def string) (string, error) {
	switch def {
	case "Null", "OpaqueRef:NULL":
		if k == "KindRef" || k == "KindString" {
			return strconv.Quote("OpaqueRef:NULL"), nil
		}
	}
	switch k {
	case "KindString", "KindEnum", "KindRef":
		if def == "" {
			if k == "KindRef" {
				return strconv.Quote("OpaqueRef:NULL"), nil
			}
			return `""`, nil
		}
		if strings.HasPrefix(def, `"`) {
			s, err := strconv.Unquote(def)
			return strconv.Quote(s), err
		}
		return strconv.Quote(def), nil
	case "KindInt":
		if def == "" {
			return "int64(0)", nil
		}
		n, err := strconv.ParseInt(def, 10, 64)
		return fmt.Sprintf("int64(%d)", n), err
	case "KindFloat":
		if def == "" {
			return "float64(0)", nil
		}
		f, err := strconv.ParseFloat(strings.TrimSuffix(def, "."), 64)
		return fmt.Sprintf("float64(%v)", f), err
	case "KindBool":
		if def == "" {
			return "false", nil
		}
		b, err := strconv.ParseBool(def)
		return strconv.FormatBool(b), err
	case "KindDateTime":
		if def != "" && def != "19700101T00:00:00Z" {
			return "", fmt.Errorf("datetime default %q", def)
		}
		return "epoch", nil
	case "KindStringSet":
		if def == "" || def == "{}" {
			return "[]string{}", nil
		}
		var b strings.Builder
		b.WriteString("[]string{")
		for _, s := range strings.Split(strings.Trim(def, "{}"), ", ") {
			b.WriteString(strconv.Quote(strings.Trim(s, `"`)) + ", ")
		}
		b.WriteString("}")
		return b.String(), nil
	case "KindIntSet":
		if def == "" || def == "{}" {
			return "[]int64{}", nil
		}
		var ns []string
		for _, s := range strings.Split(strings.Trim(def, "{}"), ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil {
				return "", err
			}
			ns = append(ns, strconv.FormatInt(n, 10))
		}
		return "[]int64{" + strings.Join(ns, ", ") + "}", nil
	case "KindIntMap":
		if def != "" && def != "{}" {
			return "", fmt.Errorf("int map default %q", def)
		}
		return "map[string]int64{}", nil
	case "KindStringSetMap":
		if def != "" && def != "{}" {
			return "", fmt.Errorf("set map default %q", def)
		}
		return "map[string][]string{}", nil
	case "KindStringMap":
		if def == "" || def == "{}" {
			return "map[string]string{}", nil
		}
		var b strings.Builder
		b.WriteString("map[string]string{")
		for _, kv := range strings.Split(strings.Trim(def, "{}"), ", ") {
			k, v, ok := strings.Cut(kv, " -> ")
			if !ok {
				return "", fmt.Errorf("map default %q", def)
			}
			ks, err1 := strconv.Unquote(k)
			vs, err2 := strconv.Unquote(v)
			if err1 != nil || err2 != nil {
				return "", fmt.Errorf("map default %q", def)
			}
			fmt.Fprintf(&b, "%q: %q, ", ks, vs)
		}
		b.WriteString("}")
		return b.String(), nil
	case "KindRecord":
		return "nil", nil
	}
	return "", fmt.Errorf("no default for %s %q", k, def)
}

func generate(classes []jsonClass) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Code generated by internal/schemagen from XAPI's xenapi.json; DO NOT EDIT.\n\npackage xapisim\n\n")
	b.WriteString("// schemaTable lists every class of XAPI's datamodel. It is never modified.\n")
	b.WriteString("var schemaTable = []*ClassSchema{\n")
	enums := map[string][]string{}
	for _, c := range classes {
		for _, e := range c.Enums {
			var vs []string
			for _, v := range e.Values {
				vs = append(vs, v.Name)
			}
			enums[e.Name] = vs
		}
		doc := strings.TrimSpace(strings.SplitN(c.Description, "\n", 2)[0])
		fmt.Fprintf(&b, "\t{\n\t\tName: %q,\n\t\tDoc: %q,\n", c.Name, doc)
		hasCreate := false
		for _, m := range c.Messages {
			if m.Name == "create" && m.Implicit {
				hasCreate = true
			}
		}
		b.WriteString("\t\tFields: []FieldSchema{\n")
		var ctor []string
		for _, f := range c.Fields {
			if f.Lifecycle.State == "Removed_s" {
				continue
			}
			k, err := kind(f.Type)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", c.Name, f.Name, err)
			}
			def := ""
			if f.Default != nil {
				def = *f.Default
			}
			d, err := defaultExpr(k, def)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", c.Name, f.Name, err)
			}
			fmt.Fprintf(&b, "\t\t\t{Name: %q, Type: %q, Kind: %s, Qualifier: %q, Enum: %q, HasDefault: %v, Default: %s},\n",
				f.Name, f.Type, k, f.Qualifier, enumOf(f.Type), f.Default != nil, d)
			if hasCreate && (f.Qualifier == "RW" || f.Qualifier == "RO/constructor") {
				ctor = append(ctor, fmt.Sprintf("{%q, %v}", f.Name, f.Default == nil))
			}
		}
		b.WriteString("\t\t},\n")
		if hasCreate {
			b.WriteString("\t\tConstructor: []CtorArg{" + strings.Join(ctor, ", ") + "},\n")
		}
		b.WriteString("\t\tMessages: []MessageSchema{\n")
		for _, m := range c.Messages {
			params, defaults, session := 0, 0, false
			for i, p := range m.Params {
				if i == 0 && p.Name == "session_id" && p.Type == "session ref" {
					session = true
					continue
				}
				params++
				if !p.Required {
					defaults++
				}
			}
			result := "void"
			if len(m.Result) > 0 {
				result = m.Result[0]
			}
			fmt.Fprintf(&b, "\t\t\t{%q, %d, %d, %v, %v, %v, %q},\n", m.Name, params, defaults, session,
				m.Implicit, m.Lifecycle.State == "Removed_s", result)
		}
		b.WriteString("\t\t},\n\t},\n")
	}
	b.WriteString("}\n\n// enumTable lists the values of every enum type. It is never modified.\n")
	b.WriteString("var enumTable = map[string][]string{\n")
	names := make([]string, 0, len(enums))
	for n := range enums {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "\t%q: {", n)
		for _, v := range enums[n] {
			fmt.Fprintf(&b, "%q, ", v)
		}
		b.WriteString("},\n")
	}
	b.WriteString("}\n")
	return format.Source(b.Bytes())
}

// Command schemagen generates xo/xapisim/schema.go, the simulator's table of
// XAPI classes and fields, from the field appendix (xapi-fields.md, itself
// generated from XAPI's datamodel JSON).
//
// Usage (from xo/xapisim, see the go:generate line in schema_gen.go):
//
//	go run ./internal/schemagen -in ../../../shared/reference/xapi-fields.md -out schema.go
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"io"
	"log"
	"os"
	"regexp"
	"strconv"
	"strings"
)

type field struct {
	name, typ, qualifier, def string
}

type class struct {
	name, doc string
	fields    []field
	ctor      []string // constructor args; "*" suffix = required
	hasCtor   bool
}

func main() {
	in := flag.String("in", "", "xapi-fields.md to read")
	out := flag.String("out", "schema.go", "Go file to write")
	flag.Parse()
	f, err := os.Open(*in)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	classes, err := parse(f)
	if err != nil {
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

var ctorRE = regexp.MustCompile("^Constructor: `([A-Za-z_]+)\\.create\\(session, record\\)`.*The constructor args are: (.*) \\(\\* = non-optional\\)\\.$")

func parse(r io.Reader) ([]*class, error) {
	var classes []*class
	var cur *class
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			name := strings.TrimPrefix(line, "## ")
			cur = nil
			if strings.Contains(name, " ") { // "Enums referenced above"
				continue
			}
			cur = &class{name: name}
			classes = append(classes, cur)
		case cur == nil:
		case strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| field ") && !strings.HasPrefix(line, "|---"):
			cols := strings.Split(strings.Trim(line, "|"), " | ")
			if len(cols) != 6 {
				return nil, fmt.Errorf("class %s: bad row %q", cur.name, line)
			}
			for i := range cols {
				cols[i] = strings.TrimSpace(cols[i])
			}
			cur.fields = append(cur.fields, field{name: cols[0], typ: cols[1], qualifier: cols[2], def: cols[5]})
		case strings.HasPrefix(line, "Constructor: "):
			m := ctorRE.FindStringSubmatch(line)
			if m == nil || m[1] != cur.name {
				return nil, fmt.Errorf("class %s: bad constructor line", cur.name)
			}
			cur.hasCtor = true
			cur.ctor = strings.Split(m[2], ", ")
		case cur.doc == "" && line != "" && !strings.HasPrefix(line, "|") && !strings.HasPrefix(line, "Explicit") && !strings.HasPrefix(line, "- "):
			cur.doc = line
		}
	}
	return classes, sc.Err()
}

// kind maps a datamodel type to the schema's Kind constant and Go value type.
func kind(typ string) (string, error) {
	switch {
	case typ == "string":
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
	case strings.HasSuffix(typ, " ref") && !strings.Contains(typ, " "+"->"):
		return "KindRef", nil
	case typ == "int set":
		return "KindIntSet", nil
	case strings.HasSuffix(typ, " set"):
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
	case strings.HasSuffix(typ, " record"):
		return "KindRecord", nil
	}
	return "", fmt.Errorf("unknown type %q", typ)
}

// defaultExpr returns the Go expression of a field's default value.
func defaultExpr(k, def string) (string, error) {
	switch def {
	case "Null", "OpaqueRef:NULL":
		return strconv.Quote("OpaqueRef:NULL"), nil
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
		if def != "" && def != "{}" {
			return "", fmt.Errorf("set default %q", def)
		}
		return "[]string{}", nil
	case "KindIntSet":
		switch def {
		case "", "{}":
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
		// {"address" -> "localhost", "port" -> "27000"}
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

func generate(classes []*class) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Code generated by internal/schemagen from xapi-fields.md; DO NOT EDIT.\n\npackage xapisim\n\n")
	b.WriteString("// schemaTable lists every class of the field appendix. It is never modified.\n")
	b.WriteString("var schemaTable = []*ClassSchema{\n")
	for _, c := range classes {
		fmt.Fprintf(&b, "\t{\n\t\tName: %q,\n\t\tDoc: %q,\n", c.name, c.doc)
		if c.hasCtor {
			b.WriteString("\t\tConstructor: []CtorArg{")
			for _, a := range c.ctor {
				fmt.Fprintf(&b, "{%q, %v}, ", strings.TrimSuffix(a, "*"), strings.HasSuffix(a, "*"))
			}
			b.WriteString("},\n")
		}
		b.WriteString("\t\tFields: []FieldSchema{\n")
		for _, f := range c.fields {
			k, err := kind(f.typ)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", c.name, f.name, err)
			}
			d, err := defaultExpr(k, f.def)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", c.name, f.name, err)
			}
			fmt.Fprintf(&b, "\t\t\t{Name: %q, Type: %q, Kind: %s, Qualifier: %q, HasDefault: %v, Default: %s},\n",
				f.name, f.typ, k, f.qualifier, f.def != "", d)
		}
		b.WriteString("\t\t},\n\t},\n")
	}
	b.WriteString("}\n")
	return format.Source(b.Bytes())
}

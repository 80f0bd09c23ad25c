package xapisim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Int32 is an int that XML-RPC encodes as <i4>, as XAPI does for the
// valid_ref_counts of event.from. Every other int is an int64 and goes out
// as an untyped decimal string.
type Int32 int32

// request is one decoded RPC call.
type request struct {
	method string
	params []any
	json   bool            // JSON-RPC (else XML-RPC)
	v2     bool            // JSON-RPC 2.0 ("jsonrpc":"2.0")
	id     json.RawMessage // JSON-RPC id, echoed back verbatim
}

// errMalformed wraps every request parse error; the server answers those with
// HTTP 500, as XAPI does.
var errMalformed = errors.New("malformed RPC request")

// maxDepth bounds the nesting of arrays and structs in a request.
const maxDepth = 64

// decodeXMLRequest parses an XML-RPC methodCall. It accepts typed and
// untyped values, <value/>, <nil/>, and whitespace between elements (as
// Python's xmlrpc.client sends). Params are decoded to string, int64,
// float64, bool, time.Time, []any, map[string]any or nil.
func decodeXMLRequest(body []byte) (*request, error) {
	p := &xmlParser{d: xml.NewDecoder(bytes.NewReader(body))}
	p.d.Strict = true
	req := &request{}
	if err := p.open("methodCall"); err != nil {
		return nil, err
	}
	if err := p.open("methodName"); err != nil {
		return nil, err
	}
	name, err := p.text("methodName")
	if err != nil {
		return nil, err
	}
	req.method = strings.TrimSpace(name)
	// RPCLIB requires <params> (a methodCall without it is a parse error).
	if err := p.open("params"); err != nil {
		return nil, err
	}
	for {
		tok, err := p.skipSpace()
		if err != nil {
			return nil, err
		}
		if e, ok := tok.(xml.EndElement); ok && e.Name.Local == "params" {
			break
		}
		s, ok := tok.(xml.StartElement)
		if !ok || s.Name.Local != "param" {
			return nil, p.errorf("want <param>, got %v", describe(tok))
		}
		if err := p.open("value"); err != nil {
			return nil, err
		}
		v, err := p.value(0)
		if err != nil {
			return nil, err
		}
		req.params = append(req.params, v)
		if err := p.close("param"); err != nil {
			return nil, err
		}
	}
	if err := p.close("methodCall"); err != nil {
		return nil, err
	}
	return req, nil
}

type xmlParser struct {
	d *xml.Decoder
}

func (p *xmlParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: XML-RPC at offset %d: %s", errMalformed, p.d.InputOffset(), fmt.Sprintf(format, args...))
}

// next returns the next token, skipping processing instructions, comments
// and directives.
func (p *xmlParser) next() (xml.Token, error) {
	for {
		tok, err := p.d.Token()
		if err != nil {
			if err == io.EOF {
				return nil, p.errorf("unexpected end of document")
			}
			return nil, fmt.Errorf("%w: %w", errMalformed, err)
		}
		switch tok.(type) {
		case xml.ProcInst, xml.Comment, xml.Directive:
			continue
		}
		return tok, nil
	}
}

// skipSpace returns the next token that is not whitespace character data.
func (p *xmlParser) skipSpace() (xml.Token, error) {
	for {
		tok, err := p.next()
		if err != nil {
			return nil, err
		}
		if cd, ok := tok.(xml.CharData); ok {
			if len(bytes.TrimSpace(cd)) != 0 {
				return nil, p.errorf("unexpected text %.20q", cd)
			}
			continue
		}
		return tok, nil
	}
}

func (p *xmlParser) open(name string) error {
	tok, err := p.skipSpace()
	if err != nil {
		return err
	}
	if s, ok := tok.(xml.StartElement); !ok || s.Name.Local != name {
		return p.errorf("want <%s>, got %v", name, describe(tok))
	}
	return nil
}

func (p *xmlParser) close(name string) error {
	tok, err := p.skipSpace()
	if err != nil {
		return err
	}
	if e, ok := tok.(xml.EndElement); !ok || e.Name.Local != name {
		return p.errorf("want </%s>, got %v", name, describe(tok))
	}
	return nil
}

// text reads character data up to </name>.
func (p *xmlParser) text(name string) (string, error) {
	var b strings.Builder
	for {
		tok, err := p.next()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.CharData:
			b.Write(t)
		case xml.EndElement:
			if t.Name.Local != name {
				return "", p.errorf("want </%s>, got </%s>", name, t.Name.Local)
			}
			return b.String(), nil
		default:
			return "", p.errorf("unexpected %v in <%s>", describe(tok), name)
		}
	}
}

// value parses the content of a <value> whose start tag was read, and its
// end tag.
func (p *xmlParser) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, p.errorf("values nested deeper than %d", maxDepth)
	}
	var text strings.Builder
	var typed xml.StartElement
	for typed.Name.Local == "" {
		tok, err := p.next()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			// Untyped value: a string, kept verbatim (no trimming).
			return text.String(), nil
		case xml.StartElement:
			if strings.TrimSpace(text.String()) != "" {
				return nil, p.errorf("text mixed with <%s>", t.Name.Local)
			}
			typed = t
		}
	}
	v, err := p.typed(typed.Name.Local, depth)
	if err != nil {
		return nil, err
	}
	if err := p.close("value"); err != nil {
		return nil, err
	}
	return v, nil
}

// typed parses a typed value whose start tag <kind> was read, and its end tag.
func (p *xmlParser) typed(kind string, depth int) (any, error) {
	switch kind {
	case "string":
		return p.text(kind)
	case "int", "i4", "i8":
		s, err := p.text(kind)
		if err != nil {
			return nil, err
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, p.errorf("bad <%s> %.30q", kind, s)
		}
		return n, nil
	case "double":
		s, err := p.text(kind)
		if err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, p.errorf("bad <double> %.30q", s)
		}
		return f, nil
	case "boolean":
		s, err := p.text(kind)
		if err != nil {
			return nil, err
		}
		switch strings.TrimSpace(s) {
		case "1", "true":
			return true, nil
		case "0", "false":
			return false, nil
		}
		return nil, p.errorf("bad <boolean> %.30q", s)
	case "dateTime.iso8601":
		s, err := p.text(kind)
		if err != nil {
			return nil, err
		}
		t, ok := ParseTime(strings.TrimSpace(s))
		if !ok {
			return nil, p.errorf("bad <dateTime.iso8601> %.30q", s)
		}
		return t, nil
	case "base64":
		s, err := p.text(kind)
		if err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return nil, p.errorf("bad <base64>")
		}
		return string(b), nil
	case "nil":
		if err := p.close(kind); err != nil {
			return nil, err
		}
		return nil, nil
	case "array":
		out := []any{}
		tok, err := p.skipSpace()
		if err != nil {
			return nil, err
		}
		if e, ok := tok.(xml.EndElement); ok && e.Name.Local == "array" { // <array/>
			return out, nil
		}
		if s, ok := tok.(xml.StartElement); !ok || s.Name.Local != "data" {
			return nil, p.errorf("want <data>, got %v", describe(tok))
		}
		for {
			tok, err := p.skipSpace()
			if err != nil {
				return nil, err
			}
			if e, ok := tok.(xml.EndElement); ok && e.Name.Local == "data" {
				break
			}
			if s, ok := tok.(xml.StartElement); !ok || s.Name.Local != "value" {
				return nil, p.errorf("want <value>, got %v", describe(tok))
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, p.close("array")
	case "struct":
		out := map[string]any{}
		for {
			tok, err := p.skipSpace()
			if err != nil {
				return nil, err
			}
			if e, ok := tok.(xml.EndElement); ok && e.Name.Local == "struct" {
				return out, nil
			}
			if s, ok := tok.(xml.StartElement); !ok || s.Name.Local != "member" {
				return nil, p.errorf("want <member>, got %v", describe(tok))
			}
			if err := p.open("name"); err != nil {
				return nil, err
			}
			name, err := p.text("name")
			if err != nil {
				return nil, err
			}
			if err := p.open("value"); err != nil {
				return nil, err
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			out[name] = v
			if err := p.close("member"); err != nil {
				return nil, err
			}
		}
	}
	return nil, p.errorf("unknown value type <%s>", kind)
}

func describe(tok xml.Token) string {
	switch t := tok.(type) {
	case xml.StartElement:
		return "<" + t.Name.Local + ">"
	case xml.EndElement:
		return "</" + t.Name.Local + ">"
	case xml.CharData:
		return fmt.Sprintf("text %.20q", string(t))
	}
	return fmt.Sprintf("%T", tok)
}

// decodeJSONRequest parses a JSON-RPC v1 or v2 request. Integer literals
// become int64, other numbers float64.
func decodeJSONRequest(body []byte) (*request, error) {
	var raw struct {
		JSONRPC *string           `json:"jsonrpc"`
		Method  *string           `json:"method"`
		Params  []json.RawMessage `json:"params"`
		ID      json.RawMessage   `json:"id"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("%w: JSON-RPC: %w", errMalformed, err)
	}
	if raw.Method == nil {
		return nil, fmt.Errorf("%w: JSON-RPC: no method", errMalformed)
	}
	req := &request{method: *raw.Method, json: true, id: raw.ID}
	if raw.JSONRPC != nil {
		if *raw.JSONRPC != "2.0" {
			return nil, fmt.Errorf("%w: JSON-RPC: version %q", errMalformed, *raw.JSONRPC)
		}
		req.v2 = true
		if len(raw.ID) == 0 || string(raw.ID) == "null" {
			return nil, fmt.Errorf("%w: JSON-RPC: notifications are not supported", errMalformed)
		}
	}
	if len(req.id) == 0 {
		req.id = json.RawMessage("null")
	}
	for _, p := range raw.Params {
		d := json.NewDecoder(bytes.NewReader(p))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: JSON-RPC: %w", errMalformed, err)
		}
		v, err := fromJSON(v, 0)
		if err != nil {
			return nil, err
		}
		req.params = append(req.params, v)
	}
	return req, nil
}

func fromJSON(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: JSON-RPC: values nested deeper than %d", errMalformed, maxDepth)
	}
	switch v := v.(type) {
	case json.Number:
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return n, nil
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return nil, fmt.Errorf("%w: JSON-RPC: number %s", errMalformed, v)
		}
		return f, nil
	case []any:
		for i := range v {
			e, err := fromJSON(v[i], depth+1)
			if err != nil {
				return nil, err
			}
			v[i] = e
		}
		return v, nil
	case map[string]any:
		for k := range v {
			e, err := fromJSON(v[k], depth+1)
			if err != nil {
				return nil, err
			}
			v[k] = e
		}
		return v, nil
	}
	return v, nil
}

// invalidUTF8 returns the first string in params that is not valid UTF-8.
func invalidUTF8(params []any) (string, bool) {
	for _, p := range params {
		switch v := p.(type) {
		case string:
			if !utf8.ValidString(v) {
				return v, true
			}
		case []any:
			if s, bad := invalidUTF8(v); bad {
				return s, true
			}
		case map[string]any:
			for k, e := range v {
				if !utf8.ValidString(k) {
					return k, true
				}
				if s, bad := invalidUTF8([]any{e}); bad {
					return s, true
				}
			}
		}
	}
	return "", false
}

// encoder appends XML-RPC or JSON values to a buffer without reflection. It
// handles the Go types documented on Record plus int, Int32, []int64,
// map[string]int64, map[string][]string, []Record and nil (void).
type encoder struct {
	b    []byte
	err  error
	free [][]string // scratch slices for sorting map keys, reused
}

// sortedKeys returns the keys of m sorted, in a scratch slice that the
// caller gives back with release.
func sortedKeys[V any](e *encoder, m map[string]V) []string {
	var ks []string
	if n := len(e.free); n > 0 {
		ks = e.free[n-1][:0]
		e.free = e.free[:n-1]
	}
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func (e *encoder) release(ks []string) { e.free = append(e.free, ks) }

// fieldOrder returns the datamodel order of class's fields (nil for a
// class outside the schema).
func fieldOrder(class string) []string {
	cs, ok := Schema(class)
	if !ok {
		return nil
	}
	order := make([]string, len(cs.Fields))
	for i := range cs.Fields {
		order[i] = cs.Fields[i].Name
	}
	return order
}

// orderedFields calls fn for the fields of rec in datamodel order, as XAPI
// emits records, then for any other field in sorted order. It avoids
// sorting each of thousands of records' keys.
func (e *encoder) orderedFields(order []string, rec Record, fn func(k string, v any)) {
	seen := 0
	for _, k := range order {
		if v, ok := rec[k]; ok {
			fn(k, v)
			seen++
		}
	}
	if seen == len(rec) {
		return
	}
	ks := sortedKeys(e, rec)
	for _, k := range ks {
		if !slices.Contains(order, k) {
			fn(k, rec[k])
		}
	}
	e.release(ks)
}

func (e *encoder) fail(v any) {
	if e.err == nil {
		e.err = fmt.Errorf("xapisim: cannot encode a %T", v)
	}
}

const xmlHeader = `<?xml version="1.0"?>`

// xmlString appends s escaped as RPCLIB does: & < > " become entities and
// control bytes other than TAB, LF and CR are dropped.
func (e *encoder) xmlString(s string) {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var rep string
		switch {
		case c == '&':
			rep = "&amp;"
		case c == '<':
			rep = "&lt;"
		case c == '>':
			rep = "&gt;"
		case c == '"':
			rep = "&quot;"
		case c < 0x20 && c != '\t' && c != '\n' && c != '\r':
			rep = ""
		default:
			continue
		}
		e.b = append(e.b, s[start:i]...)
		e.b = append(e.b, rep...)
		start = i + 1
	}
	e.b = append(e.b, s[start:]...)
}

// formatDouble prints f as OCaml's "%.16g" does.
func formatDouble(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "nan"...)
	case math.IsInf(f, 1):
		return append(b, "inf"...)
	case math.IsInf(f, -1):
		return append(b, "-inf"...)
	}
	return strconv.AppendFloat(b, f, 'g', 16, 64)
}

// formatTime prints t as XAPI's dateTime.iso8601: YYYYMMDDTHH:MM:SSZ.
func formatTime(b []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(b, "20060102T15:04:05Z")
}

func (e *encoder) xmlStringValue(s string) {
	e.b = append(e.b, "<value>"...)
	e.xmlString(s)
	e.b = append(e.b, "</value>"...)
}

func (e *encoder) xmlIntValue(n int64) {
	e.b = append(e.b, "<value>"...)
	e.b = strconv.AppendInt(e.b, n, 10)
	e.b = append(e.b, "</value>"...)
}

func (e *encoder) xmlStringSet(v []string) {
	e.b = append(e.b, "<value><array><data>"...)
	for _, s := range v {
		e.xmlStringValue(s)
	}
	e.b = append(e.b, "</data></array></value>"...)
}

func (e *encoder) xmlValue(v any) {
	switch v := v.(type) {
	case nil:
		e.b = append(e.b, "<value></value>"...)
	case string:
		e.xmlStringValue(v)
	case int64:
		e.xmlIntValue(v)
	case int:
		e.xmlIntValue(int64(v))
	case Int32:
		e.b = append(e.b, "<value><i4>"...)
		e.b = strconv.AppendInt(e.b, int64(v), 10)
		e.b = append(e.b, "</i4></value>"...)
	case float64:
		e.b = append(e.b, "<value><double>"...)
		e.b = formatDouble(e.b, v)
		e.b = append(e.b, "</double></value>"...)
	case bool:
		if v {
			e.b = append(e.b, "<value><boolean>1</boolean></value>"...)
		} else {
			e.b = append(e.b, "<value><boolean>0</boolean></value>"...)
		}
	case time.Time:
		e.b = append(e.b, "<value><dateTime.iso8601>"...)
		e.b = formatTime(e.b, v)
		e.b = append(e.b, "</dateTime.iso8601></value>"...)
	case []string:
		e.xmlStringSet(v)
	case []int64:
		e.b = append(e.b, "<value><array><data>"...)
		for _, n := range v {
			e.xmlIntValue(n)
		}
		e.b = append(e.b, "</data></array></value>"...)
	case []any:
		e.b = append(e.b, "<value><array><data>"...)
		for _, x := range v {
			e.xmlValue(x)
		}
		e.b = append(e.b, "</data></array></value>"...)
	case []Record:
		e.b = append(e.b, "<value><array><data>"...)
		for _, x := range v {
			e.xmlValue(x)
		}
		e.b = append(e.b, "</data></array></value>"...)
	case map[string]string:
		e.b = append(e.b, "<value><struct>"...)
		ks := sortedKeys(e, v)
		for _, k := range ks {
			e.xmlMember(k)
			e.xmlStringValue(v[k])
			e.b = append(e.b, "</member>"...)
		}
		e.release(ks)
		e.b = append(e.b, "</struct></value>"...)
	case map[string]int64:
		e.b = append(e.b, "<value><struct>"...)
		ks := sortedKeys(e, v)
		for _, k := range ks {
			e.xmlMember(k)
			e.xmlIntValue(v[k])
			e.b = append(e.b, "</member>"...)
		}
		e.release(ks)
		e.b = append(e.b, "</struct></value>"...)
	case map[string][]string:
		e.b = append(e.b, "<value><struct>"...)
		ks := sortedKeys(e, v)
		for _, k := range ks {
			e.xmlMember(k)
			e.xmlStringSet(v[k])
			e.b = append(e.b, "</member>"...)
		}
		e.release(ks)
		e.b = append(e.b, "</struct></value>"...)
	case Record:
		e.xmlValue(map[string]any(v))
	case liveRecords:
		e.b = append(e.b, "<value><struct>"...)
		order := fieldOrder(v.class)
		v.each(func(ref string, rec Record) {
			e.xmlMember(ref)
			e.b = append(e.b, "<value><struct>"...)
			e.orderedFields(order, rec, func(k string, x any) {
				e.xmlMember(k)
				e.xmlValue(x)
				e.b = append(e.b, "</member>"...)
			})
			e.b = append(e.b, "</struct></value></member>"...)
		})
		e.b = append(e.b, "</struct></value>"...)
	case map[string]any:
		e.b = append(e.b, "<value><struct>"...)
		ks := sortedKeys(e, v)
		for _, k := range ks {
			e.xmlMember(k)
			e.xmlValue(v[k])
			e.b = append(e.b, "</member>"...)
		}
		e.release(ks)
		e.b = append(e.b, "</struct></value>"...)
	default:
		e.fail(v)
	}
}

// xmlMember opens a struct member. Unlike RPCLIB, which writes member names
// unescaped (so a map key with & or < yields invalid XML), the simulator
// escapes them so that its output is always well-formed.
func (e *encoder) xmlMember(name string) {
	e.b = append(e.b, "<member><name>"...)
	e.xmlString(name)
	e.b = append(e.b, "</name>"...)
}

// jsonString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func (e *encoder) jsonString(s string) {
	const hex = "0123456789abcdef"
	e.b = append(e.b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				e.b = append(e.b, s[start:i]...)
				e.b = append(e.b, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		e.b = append(e.b, s[start:i]...)
		switch c {
		case '"', '\\':
			e.b = append(e.b, '\\', c)
		case '\n':
			e.b = append(e.b, '\\', 'n')
		case '\r':
			e.b = append(e.b, '\\', 'r')
		case '\t':
			e.b = append(e.b, '\\', 't')
		default:
			e.b = append(e.b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	e.b = append(e.b, s[start:]...)
	e.b = append(e.b, '"')
}

func (e *encoder) jsonValue(v any) {
	switch v := v.(type) {
	case nil:
		e.b = append(e.b, `""`...) // void, as XAPI sends it
	case string:
		e.jsonString(v)
	case int64:
		e.b = strconv.AppendInt(e.b, v, 10)
	case int:
		e.b = strconv.AppendInt(e.b, int64(v), 10)
	case Int32:
		e.b = strconv.AppendInt(e.b, int64(v), 10)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			e.b = append(e.b, "null"...) // JSON has no NaN or infinities
		} else {
			e.b = strconv.AppendFloat(e.b, v, 'g', -1, 64)
		}
	case bool:
		e.b = strconv.AppendBool(e.b, v)
	case time.Time:
		e.b = append(e.b, '"')
		e.b = formatTime(e.b, v)
		e.b = append(e.b, '"')
	case []string:
		e.b = append(e.b, '[')
		for i, s := range v {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.jsonString(s)
		}
		e.b = append(e.b, ']')
	case []int64:
		e.b = append(e.b, '[')
		for i, n := range v {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.b = strconv.AppendInt(e.b, n, 10)
		}
		e.b = append(e.b, ']')
	case []any:
		e.b = append(e.b, '[')
		for i, x := range v {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.jsonValue(x)
		}
		e.b = append(e.b, ']')
	case []Record:
		e.b = append(e.b, '[')
		for i, x := range v {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.jsonValue(x)
		}
		e.b = append(e.b, ']')
	case map[string]string:
		e.b = append(e.b, '{')
		ks := sortedKeys(e, v)
		for i, k := range ks {
			e.jsonKey(i, k)
			e.jsonString(v[k])
		}
		e.release(ks)
		e.b = append(e.b, '}')
	case map[string]int64:
		e.b = append(e.b, '{')
		ks := sortedKeys(e, v)
		for i, k := range ks {
			e.jsonKey(i, k)
			e.b = strconv.AppendInt(e.b, v[k], 10)
		}
		e.release(ks)
		e.b = append(e.b, '}')
	case map[string][]string:
		e.b = append(e.b, '{')
		ks := sortedKeys(e, v)
		for i, k := range ks {
			e.jsonKey(i, k)
			e.jsonValue(v[k])
		}
		e.release(ks)
		e.b = append(e.b, '}')
	case Record:
		e.jsonValue(map[string]any(v))
	case liveRecords:
		e.b = append(e.b, '{')
		i := 0
		order := fieldOrder(v.class)
		v.each(func(ref string, rec Record) {
			e.jsonKey(i, ref)
			e.b = append(e.b, '{')
			j := 0
			e.orderedFields(order, rec, func(k string, x any) {
				e.jsonKey(j, k)
				e.jsonValue(x)
				j++
			})
			e.b = append(e.b, '}')
			i++
		})
		e.b = append(e.b, '}')
	case map[string]any:
		e.b = append(e.b, '{')
		ks := sortedKeys(e, v)
		for i, k := range ks {
			e.jsonKey(i, k)
			e.jsonValue(v[k])
		}
		e.release(ks)
		e.b = append(e.b, '}')
	default:
		e.fail(v)
	}
}

func (e *encoder) jsonKey(i int, k string) {
	if i > 0 {
		e.b = append(e.b, ',')
	}
	e.jsonString(k)
	e.b = append(e.b, ':')
}

// EncodeXMLValue returns v as an XML-RPC value fragment with XAPI's exact
// bytes, e.g. "<value>OpaqueRef:…</value>", as task results hold it; nil
// gives the void "<value></value>".
func EncodeXMLValue(v any) (string, error) {
	e := encoder{}
	e.xmlValue(v)
	return string(e.b), e.err
}

// appendXMLResponse appends a whole XML-RPC response: the Status/Value or
// Status/ErrorDescription struct, or the bare value when bare is set
// (system.listMethods).
func appendXMLResponse(b []byte, result any, fault *Fault, bare bool) ([]byte, error) {
	e := encoder{b: b}
	e.b = append(e.b, xmlHeader+"<methodResponse><params><param>"...)
	switch {
	case fault != nil:
		e.b = append(e.b, "<value><struct><member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name>"...)
		e.xmlValue(fault.Description())
		e.b = append(e.b, "</member></struct></value>"...)
	case bare:
		e.xmlValue(result)
	default:
		e.b = append(e.b, "<value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name>"...)
		e.xmlValue(result)
		e.b = append(e.b, "</member></struct></value>"...)
	}
	e.b = append(e.b, "</param></params></methodResponse>"...)
	return e.b, e.err
}

// appendJSONResponse appends a JSON-RPC response in the request's version.
func appendJSONResponse(b []byte, req *request, result any, fault *Fault) ([]byte, error) {
	e := encoder{b: b}
	e.b = append(e.b, '{')
	if req.v2 {
		e.b = append(e.b, `"jsonrpc":"2.0",`...)
		if fault != nil {
			e.b = append(e.b, `"error":{"code":1,"message":`...)
			e.jsonString(fault.Code)
			e.b = append(e.b, `,"data":`...)
			e.jsonValue(append([]string{}, fault.Params...))
			e.b = append(e.b, '}')
		} else {
			e.b = append(e.b, `"result":`...)
			e.jsonValue(result)
		}
	} else {
		if fault != nil {
			e.b = append(e.b, `"result":null,"error":`...)
			e.jsonValue(fault.Description())
		} else {
			e.b = append(e.b, `"result":`...)
			e.jsonValue(result)
			e.b = append(e.b, `,"error":null`...)
		}
	}
	e.b = append(e.b, `,"id":`...)
	e.b = append(e.b, req.id...)
	e.b = append(e.b, '}')
	return e.b, e.err
}

package xapisim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// whereExpr is a parsed get_all_records_where expression (XAPI's
// db_filter language):
//
//	expr  := value "=" value | expr "and" expr | expr "or" expr
//	       | "not" expr | "true" | "false" | "(" expr ")"
//	value := "\"literal\"" | "field" "\"name\""
//
// "and" and "or" have the same precedence and associate to the left; "not"
// binds tighter. Field names are database column names, where "__" stands
// for "_" ("name__label" is name_label).
type whereExpr interface {
	eval(rec Record) bool
}

type (
	whereConst bool
	whereNot   struct{ e whereExpr }
	whereAnd   struct{ l, r whereExpr }
	whereOr    struct{ l, r whereExpr }
	whereEq    struct{ l, r whereValue }
	whereValue struct {
		field bool
		s     string
	}
)

func (c whereConst) eval(Record) bool { return bool(c) }
func (n whereNot) eval(r Record) bool { return !n.e.eval(r) }
func (a whereAnd) eval(r Record) bool { return a.l.eval(r) && a.r.eval(r) }
func (o whereOr) eval(r Record) bool  { return o.l.eval(r) || o.r.eval(r) }
func (e whereEq) eval(r Record) bool  { return e.l.value(r) == e.r.value(r) }
func (v whereValue) value(r Record) string {
	if !v.field {
		return v.s
	}
	return dbString(r[strings.ReplaceAll(v.s, "__", "_")])
}

// dbString renders a field value as XAPI's database stores it.
func dbString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return string(formatDouble(nil, v))
	case time.Time:
		return string(formatTime(nil, v))
	case []string:
		parts := make([]string, len(v))
		for i, s := range v {
			parts[i] = "'" + s + "'"
		}
		return "(" + strings.Join(parts, " ") + ")"
	case map[string]string:
		var b strings.Builder
		b.WriteByte('(')
		for i, k := range sortedStringKeys(v) {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "('%s' '%s')", k, v[k])
		}
		b.WriteByte(')')
		return b.String()
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func sortedStringKeys(m map[string]string) []string {
	e := &encoder{}
	return sortedKeys(e, m)
}

type whereToken struct {
	kind string // "=", "(", ")", "true", "false", "field", "and", "or", "not", "ident", "eof"
	text string
}

func lexWhere(s string) ([]whereToken, error) {
	var toks []whereToken
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '=' || c == '(' || c == ')':
			toks = append(toks, whereToken{kind: string(c)})
			i++
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			toks = append(toks, whereToken{kind: "ident", text: s[i+1 : i+1+j]})
			i += j + 2
		default:
			matched := false
			for _, kw := range []string{"true", "false", "field", "and", "or", "not"} {
				if strings.HasPrefix(s[i:], kw) {
					toks = append(toks, whereToken{kind: kw})
					i += len(kw)
					matched = true
					break
				}
			}
			if !matched {
				return nil, fmt.Errorf("unexpected %q at %d", c, i)
			}
		}
	}
	return append(toks, whereToken{kind: "eof"}), nil
}

type whereParser struct {
	toks []whereToken
	pos  int
}

func (p *whereParser) peek() string { return p.toks[p.pos].kind }

func (p *whereParser) next() whereToken {
	t := p.toks[p.pos]
	if t.kind != "eof" {
		p.pos++
	}
	return t
}

// parseWhere parses an expression; errors become INTERNAL_ERROR as in XAPI.
func parseWhere(s string) (whereExpr, error) {
	toks, err := lexWhere(s)
	if err != nil {
		return nil, NewFault("INTERNAL_ERROR", "Db_filter.Expression_error: "+err.Error())
	}
	p := &whereParser{toks: toks}
	e, err := p.expr(0)
	if err == nil && p.peek() != "eof" {
		err = fmt.Errorf("trailing %s", p.peek())
	}
	if err != nil {
		return nil, NewFault("INTERNAL_ERROR", "Db_filter.Expression_error: "+err.Error())
	}
	return e, nil
}

func (p *whereParser) expr(depth int) (whereExpr, error) {
	l, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	for p.peek() == "and" || p.peek() == "or" {
		op := p.next().kind
		r, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		if op == "and" {
			l = whereAnd{l, r}
		} else {
			l = whereOr{l, r}
		}
	}
	return l, nil
}

func (p *whereParser) unary(depth int) (whereExpr, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("expression nested deeper than %d", maxDepth)
	}
	switch p.peek() {
	case "not":
		p.next()
		e, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return whereNot{e}, nil
	case "true", "false":
		return whereConst(p.next().kind == "true"), nil
	case "(":
		p.next()
		e, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.next().kind != ")" {
			return nil, fmt.Errorf("missing )")
		}
		return e, nil
	}
	l, err := p.value()
	if err != nil {
		return nil, err
	}
	if p.next().kind != "=" {
		return nil, fmt.Errorf("missing =")
	}
	r, err := p.value()
	if err != nil {
		return nil, err
	}
	return whereEq{l, r}, nil
}

func (p *whereParser) value() (whereValue, error) {
	t := p.next()
	switch t.kind {
	case "ident":
		return whereValue{s: t.text}, nil
	case "field":
		id := p.next()
		if id.kind != "ident" {
			return whereValue{}, fmt.Errorf("field without a name")
		}
		return whereValue{field: true, s: id.text}, nil
	}
	return whereValue{}, fmt.Errorf("unexpected %s", t.kind)
}

// allRecordsWhere implements <class>.get_all_records_where(expr).
func allRecordsWhere(class string) Handler {
	return func(c *Call) (any, error) {
		src, err := c.String(0)
		if err != nil {
			return nil, err
		}
		expr, err := parseWhere(src)
		if err != nil {
			return nil, err
		}
		return liveRecords{db: c.Sim.DB, class: class, match: expr.eval}, nil
	}
}

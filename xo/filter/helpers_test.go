package filter

import (
	"encoding/json"
	"fmt"
	"testing"
)

// astOf describes a tree in the JSON shape testdata/complex-matcher.js
// prints for complex-matcher's nodes.
func astOf(n Node) map[string]any {
	switch n := n.(type) {
	case *Null:
		return map[string]any{"type": "Null"}
	case *And:
		return map[string]any{"type": "And", "children": astList(n.Children)}
	case *Or:
		return map[string]any{"type": "Or", "children": astList(n.Children)}
	case *Not:
		return map[string]any{"type": "Not", "child": astOf(n.Child)}
	case *Property:
		return map[string]any{"type": "Property", "name": n.Name, "child": astOf(n.Child)}
	case *TruthyProperty:
		return map[string]any{"type": "TruthyProperty", "name": n.Name}
	case *StringNode:
		return map[string]any{"type": "String", "value": n.Value()}
	case *NumberOrString:
		return map[string]any{"type": "NumberOrString", "value": n.Value()}
	case *Glob:
		return map[string]any{"type": "Glob", "value": n.Value()}
	case *RegExp:
		return map[string]any{"type": "RegExp", "source": n.Source(), "flags": n.Flags()}
	case *Comparison:
		return map[string]any{"type": "Comparison", "op": n.Op(), "value": jsNumberToString(n.Value())}
	}
	panic(fmt.Sprintf("unknown node %T", n))
}

func astList(ns []Node) []any {
	out := make([]any, len(ns))
	for i, n := range ns {
		out[i] = astOf(n)
	}
	return out
}

// astJSON is astOf as canonical JSON, for comparisons.
func astJSON(t testing.TB, n Node) string {
	t.Helper()
	b, err := json.Marshal(astOf(n))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// decodeJSON decodes a JSON document as the REST layer would.
func decodeJSON(t testing.TB, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

package filter_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/xorest/xorest/xo/filter"
)

func Example() {
	var vms []any
	_ = json.Unmarshal([]byte(`[
		{"name_label": "MRA XOA", "power_state": "Running", "tags": ["prod"], "CPUs": {"number": 2}, "snapshots": ["a", "b", "c"]},
		{"name_label": "test-db", "power_state": "Halted", "tags": ["dev", "xo:no-bak"], "CPUs": {"number": 4}, "snapshots": []}
	]`), &vms)

	f, err := filter.Parse(`power_state:running tags:prod snapshots:length:>2`)
	if err != nil {
		panic(err)
	}
	for _, vm := range vms {
		fmt.Println(vm.(map[string]any)["name_label"], f.Match(vm))
	}

	f, _ = filter.Parse(`!tags:"xo:no-bak" |(CPUs:number:>=4 xoa)`)
	fmt.Println(f, f.Match(vms[0]), f.Match(vms[1]))

	_, err = filter.Parse("foo)")
	var se *filter.SyntaxError
	fmt.Println(err, errors.As(err, &se), se.Pos)
	// Output:
	// MRA XOA true
	// test-db false
	// !tags:"xo:no-bak" |(CPUs:number:>=4 xoa) true false
	// parse error: expected end of input at position 3 true 3
}

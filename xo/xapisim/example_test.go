package xapisim_test

import (
	"context"
	"fmt"

	"github.com/xorest/xorest/xo/xapisim"
)

// Calls can be made without HTTP, as a client would make them.
func ExampleSimulator_Call() {
	ctx := context.Background()
	sim := xapisim.New(xapisim.Default())
	session, _ := sim.Call(ctx, "session.login_with_password", "root", "password")
	pools, _ := sim.Call(ctx, "pool.get_all", session)
	name, _ := sim.Call(ctx, "pool.get_name_label", session, pools.([]string)[0])
	fmt.Println(name)

	_, err := sim.Call(ctx, "VM.get_record", session, "OpaqueRef:nope")
	fmt.Println(err)
	// Output:
	// pool0
	// HANDLE_INVALID(VM, OpaqueRef:nope)
}

// Tests reach error paths with fault rules: here the next two calls of
// pool.get_all fail as on a busy XAPI.
func ExampleSimulator_InjectFault() {
	ctx := context.Background()
	sim := xapisim.New(xapisim.Default())
	session := sim.Login("root", "")
	sim.InjectFault(xapisim.FaultRule{Method: "pool.get_all", Fault: xapisim.NewFault("TOO_MANY_PENDING_TASKS"), Count: 2})
	for range 3 {
		_, err := sim.Call(ctx, "pool.get_all", session)
		fmt.Println(err)
	}
	// Output:
	// TOO_MANY_PENDING_TASKS
	// TOO_MANY_PENDING_TASKS
	// <nil>
}

// A handler replaces (or adds) one method.
func ExampleSimulator_Register() {
	ctx := context.Background()
	sim := xapisim.New(xapisim.Default())
	session := sim.Login("root", "")
	sim.Register("host.get_API_version_minor", xapisim.Method{Params: 1, Handler: func(c *xapisim.Call) (any, error) {
		return int64(99), nil
	}})
	hosts, _ := sim.Call(ctx, "host.get_all", session)
	minor, _ := sim.Call(ctx, "host.get_API_version_minor", session, hosts.([]string)[0])
	fmt.Println(minor)
	// Output: 99
}

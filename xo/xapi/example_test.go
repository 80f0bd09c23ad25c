package xapi_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"sort"

	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// Example logs into a pool (here the simulator), reads typed records,
// runs an asynchronous call as a task and matches an XAPI error.
func Example() {
	ctx := context.Background()
	srv := httptest.NewServer(xapisim.New(xapisim.Default()))
	defer srv.Close()

	c, err := xapi.New(xapi.Options{
		URL:      srv.URL, // for https: Fingerprints or CAFile for XAPI's self-signed certificate
		Username: "root",
		Password: "password",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	vms, err := c.VMs(ctx) // or xapi.GetAllRecords[xapi.VM](ctx, c)
	if err != nil {
		log.Fatal(err)
	}
	var halted []string
	refs := map[string]xapi.Ref{}
	for ref, vm := range vms {
		if vm.PowerState == "Halted" && !vm.IsATemplate && !vm.IsControlDomain {
			halted = append(halted, vm.NameLabel)
			refs[vm.NameLabel] = ref
		}
	}
	sort.Strings(halted)
	fmt.Println("halted:", halted)

	// Async.VM.start, wait for the task, destroy it
	if _, err := c.CallAsyncWait(ctx, "VM.start", refs[halted[0]], false, false); err != nil {
		log.Fatal(err)
	}
	vm, err := xapi.GetRecord[xapi.VM](ctx, c, refs[halted[0]])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(vm.NameLabel, vm.PowerState)

	// starting it again fails with VM_BAD_POWER_STATE [vm; expected; actual]
	_, err = c.CallAsyncWait(ctx, "VM.start", refs[halted[0]], false, false)
	var xe *xapi.Error
	if errors.Is(err, xapi.ErrVMBadPowerState) && errors.As(err, &xe) {
		fmt.Println(xe.Code, xe.Param(1), xe.Param(2))
	}
	// Output:
	// halted: [vm1 vm5]
	// vm1 Running
	// VM_BAD_POWER_STATE halted running
}

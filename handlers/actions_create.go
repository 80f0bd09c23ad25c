package handlers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
)

// createVMParams are the parameters of a VM created from a template, after
// the template itself (reference §F.2 create_vm, a subset: no disks,
// networks, install media nor cloud-init yet).
func createVMParams() []actionParam {
	return []actionParam{
		{name: "name_label", typ: "string", description: "The new VM's name"},
		{name: "name_description", typ: "string", optional: true, description: "The new VM's description"},
		{name: "cpus", typ: "integer", optional: true, description: "Number of vCPUs at startup (VCPUs_max is raised when needed)"},
		{name: "memory", typ: "integer", optional: true, description: "Memory in bytes (static and dynamic maximum)"},
		{name: "boot", typ: "boolean", optional: true, description: "Start the VM once created (default false)"},
	}
}

// vmTemplateActions are the actions of VM templates.
func vmTemplateActions() []action {
	return []action{{
		name: "instantiate", summary: "Create a VM from the template (clone, provision, CPUs, memory, optional start); the result is {id} of the VM",
		params: createVMParams(), created: "vms",
		run: func(ctx context.Context, a *actionCall) (any, error) { return createVM(ctx, a, a.ref) },
	}}
}

// poolActions are the actions of pools.
func poolActions() []action {
	return []action{{
		name: "emergency_shutdown", summary: "Suspend every VM of the pool and shut every host down, the master last", run: poolEmergencyShutdown,
	}, {
		name: "create_vm", summary: "Create a VM from a template of the pool (clone, provision, CPUs, memory, optional start); the result is {id} of the VM",
		params:  append([]actionParam{{name: "template", typ: "string", kind: "VM-template", description: "The template's id"}}, createVMParams()...),
		created: "vms",
		run:     func(ctx context.Context, a *actionCall) (any, error) { return createVM(ctx, a, a.refs["template"]) },
	}}
}

// createVM creates a VM from template as XO's createVm does, in its basic
// form: VM.clone, VM.provision (the template's disks), not a template,
// description, vCPUs, memory, then VM.start when boot is set. A VM whose
// setup fails is destroyed with its disks (xo.DestroyVM), as XO does.
func createVM(ctx context.Context, a *actionCall, template xapi.Ref) (any, error) {
	c := a.client
	v, err := c.CallAsyncWait(ctx, "VM.clone", template, a.str("name_label", ""))
	if err != nil {
		return nil, fmt.Errorf("VM.clone %s: %w", template, err)
	}
	vm := xapi.Ref(fmt.Sprint(v))
	if err := setUpVM(ctx, a, vm); err != nil {
		if _, derr := xo.DestroyVM(ctx, c, vm); derr != nil {
			return nil, fmt.Errorf("%w (and destroying the half-created VM %s: %v)", err, vm, derr)
		}
		return nil, err
	}
	return newObjectID(ctx, c, "VM", vm)
}

// setUpVM does the steps of createVM after the clone.
func setUpVM(ctx context.Context, a *actionCall, vm xapi.Ref) error {
	c := a.client
	if _, err := c.CallAsyncWait(ctx, "VM.provision", vm); err != nil {
		return fmt.Errorf("VM.provision %s: %w", vm, err)
	}
	if _, err := c.Call(ctx, "VM.set_is_a_template", vm, false); err != nil {
		return fmt.Errorf("VM.set_is_a_template %s: %w", vm, err)
	}
	if d, ok := a.args["name_description"].(string); ok {
		if _, err := c.Call(ctx, "VM.set_name_description", vm, d); err != nil {
			return fmt.Errorf("VM.set_name_description %s: %w", vm, err)
		}
	}
	rec, err := xapi.GetRecord[xapi.VM](ctx, c, vm)
	if err != nil {
		return fmt.Errorf("VM.get_record %s: %w", vm, err)
	}
	if cpus, ok := a.args["cpus"].(int64); ok {
		calls := [][]any{{"VM.set_VCPUs_at_startup", cpus}}
		if cpus > rec.VCPUsMax {
			calls = [][]any{{"VM.set_VCPUs_max", cpus}, {"VM.set_VCPUs_at_startup", cpus}}
		}
		for _, call := range calls {
			if _, err := c.Call(ctx, call[0].(string), vm, call[1]); err != nil {
				return fmt.Errorf("%s %s: %w", call[0], vm, err)
			}
		}
	}
	if mem, ok := a.args["memory"].(int64); ok {
		if _, err := c.Call(ctx, "VM.set_memory_limits", vm, min(rec.MemoryStaticMin, mem), mem, mem, mem); err != nil {
			return fmt.Errorf("VM.set_memory_limits %s: %w", vm, err)
		}
	}
	if boot, _ := a.args["boot"].(bool); boot {
		if _, err := c.CallAsyncWait(ctx, "VM.start", vm, false, false); err != nil {
			return fmt.Errorf("VM.start %s: %w", vm, err)
		}
	}
	return nil
}

// poolEmergencyShutdown is XO's emergency shutdown (reference §F.2):
// pool.disable_ha (HA_NOT_ENABLED ignored), then per host host.disable and
// VM.suspend of each resident guest (a paused one is unpaused first), then
// host.shutdown of every host, the master last. The first failure stops
// it: the hosts still up keep running.
func poolEmergencyShutdown(ctx context.Context, a *actionCall) (any, error) {
	c := a.client
	if _, err := c.CallAsyncWait(ctx, "pool.disable_ha"); err != nil && !errors.Is(err, &xapi.Error{Code: "HA_NOT_ENABLED"}) {
		return nil, fmt.Errorf("pool.disable_ha: %w", err)
	}
	pool, err := xapi.GetRecord[xapi.Pool](ctx, c, a.ref)
	if err != nil {
		return nil, fmt.Errorf("pool.get_record %s: %w", a.ref, err)
	}
	hosts, err := c.Hosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("host.get_all_records: %w", err)
	}
	order := slices.Sorted(maps.Keys(hosts))
	order = slices.DeleteFunc(order, func(h xapi.Ref) bool { return h == pool.Master })
	order = append(order, pool.Master)
	for _, h := range order {
		if _, err := c.CallAsyncWait(ctx, "host.disable", h); err != nil {
			return nil, fmt.Errorf("host.disable %s: %w", hosts[h].UUID, err)
		}
		for _, vmRef := range hosts[h].ResidentVMs {
			vm, err := xapi.GetRecord[xapi.VM](ctx, c, vmRef)
			if err != nil {
				return nil, fmt.Errorf("VM.get_record %s: %w", vmRef, err)
			}
			if vm.IsControlDomain {
				continue
			}
			steps := []string{"VM.suspend"}
			if vm.PowerState == "Paused" {
				steps = []string{"VM.unpause", "VM.suspend"}
			}
			for _, m := range steps {
				if _, err := c.CallAsyncWait(ctx, m, vmRef); err != nil {
					return nil, fmt.Errorf("%s %s: %w", m, vm.UUID, err)
				}
			}
		}
	}
	for _, h := range order {
		if _, err := c.CallAsyncWait(ctx, "host.shutdown", h); err != nil {
			return nil, fmt.Errorf("host.shutdown %s: %w", hosts[h].UUID, err)
		}
	}
	return nil, nil
}

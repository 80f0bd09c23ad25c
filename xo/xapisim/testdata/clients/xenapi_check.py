"""Drives the simulator with Debian's XenAPI.py (python3-os-xenapi).

Usage: xenapi_check.py URL USER PASSWORD
Prints one JSON object with what it saw; exits non-zero on any failure.
The Go test (clients_test.go) compares the JSON with the simulator's state.
"""
import json
import sys
import time
import xmlrpc.client

from os_xenapi.client import XenAPI

CLASSES = ["pool", "host", "host_metrics", "VM", "VM_metrics", "VM_guest_metrics",
           "SR", "PBD", "SM", "VDI", "VBD", "VIF", "PIF", "PIF_metrics", "network",
           "Bond", "PCI", "PGPU", "GPU_group", "message", "task"]


def expect_failure(code, fn, *args):
    try:
        fn(*args)
    except XenAPI.Failure as f:
        if f.details[0] != code:
            raise AssertionError("expected %s, got %r" % (code, f.details))
        return f.details
    raise AssertionError("expected %s, call succeeded" % code)


def wait_task(x, task, timeout=30):
    deadline = time.time() + timeout
    while x.task.get_status(task) == "pending":
        if time.time() > deadline:
            raise AssertionError("task %s still pending" % task)
        time.sleep(0.02)
    return x.task.get_record(task)


def main():
    url, user, password = sys.argv[1:4]
    out = {}

    bad = XenAPI.Session(url)
    out["bad_login"] = expect_failure("SESSION_AUTHENTICATION_FAILED",
                                      bad.xenapi.login_with_password, user, password + "x", "1.0", "xorest-test")

    s = XenAPI.Session(url)
    s.xenapi.login_with_password(user, password, "1.0", "xorest-test")
    x = s.xenapi

    # What XenAPI.py itself calls after login, plus the API version.
    out["api_version"] = [s.API_version] if hasattr(s, "API_version") else []

    counts = {}
    for cls in CLASSES:
        recs = getattr(x, cls).get_all_records()
        for ref, rec in recs.items():
            assert ref.startswith("OpaqueRef:"), ref
            assert isinstance(rec, dict) and "uuid" in rec, (cls, ref)
        counts[cls] = len(recs)
    out["counts"] = counts

    vms = x.VM.get_all_records()
    halted = sorted(ref for ref, r in vms.items()
                    if r["power_state"] == "Halted" and not r["is_a_template"] and not r["is_control_domain"])
    assert halted, "no halted VM in the model"
    vm = halted[0]
    out["vm"] = vm
    # Wrong power state: the error XAPI gives, with lowercase states.
    out["bad_power_state"] = expect_failure("VM_BAD_POWER_STATE", x.VM.clean_shutdown, vm)
    out["unknown_method"] = expect_failure("MESSAGE_METHOD_UNKNOWN", lambda: x.VM.no_such_method(vm))
    out["handle_invalid"] = expect_failure("HANDLE_INVALID", x.VM.get_record, "OpaqueRef:00000000-0000-0000-0000-000000000000")

    # event.from: first call from "" returns every VM as "add".
    event_from = getattr(x.event, "from")
    batch = event_from(["vm"], "", 0.0)
    out["events_initial"] = len(batch["events"])
    out["valid_ref_counts_vm"] = batch["valid_ref_counts"]["vm"]
    token = batch["token"]
    x.VM.set_name_label(vm, "renamed by XenAPI.py")
    batch = event_from(["vm"], token, 5.0)
    mods = [e for e in batch["events"] if e["ref"] == vm and e["operation"] == "mod"]
    assert mods and mods[0]["snapshot"]["name_label"] == "renamed by XenAPI.py", batch
    out["event_mod"] = mods[0]["class"]

    # An Async call and its task result.
    task = x.Async.VM.snapshot(vm, "snap by XenAPI.py")
    rec = wait_task(x, task)
    out["async_status"] = rec["status"]
    out["async_name"] = rec["name_label"]
    out["async_result"] = rec["result"]
    # A failing Async call puts the error in error_info.
    task = x.Async.VM.clean_shutdown(vm)
    rec = wait_task(x, task)
    out["async_fail_status"] = rec["status"]
    out["async_fail_error"] = rec["error_info"]
    x.task.destroy(task)

    # After logout the old session ref is refused (XenAPI.py forgets it, so
    # ask with the plain xmlrpc.client and the old ref).
    old = s._session
    x.logout()
    raw = xmlrpc.client.ServerProxy(url).VM.get_all(old)
    assert raw["Status"] == "Failure", raw
    out["after_logout"] = raw["ErrorDescription"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()

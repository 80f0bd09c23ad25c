"""Checks session expiry with Debian's XenAPI.py (python3-os-xenapi).

Usage: xenapi_expiry.py URL USER PASSWORD
Logs in, prints "ready" and waits for a line on stdin (the Go test moves
the simulator's clock past the inactivity timeout meanwhile), then calls
with the old session on the raw XML-RPC proxy (no retry) and through
XenAPI.py's xenapi dispatcher (which logs in again on SESSION_INVALID).
Prints one JSON object with what it saw.
"""
import json
import sys

from os_xenapi.client import XenAPI


def main():
    url, user, password = sys.argv[1:4]
    s = XenAPI.Session(url)
    s.xenapi.login_with_password(user, password, "1.0", "xenapi-expiry")
    old = s._session
    out = {"session": old, "vms_before": len(s.xenapi.VM.get_all())}
    print("ready", flush=True)
    sys.stdin.readline()
    # Session inherits xmlrpc.client.ServerProxy: attributes other than
    # xenapi are plain XML-RPC calls returning XAPI's result struct.
    raw = s.VM.get_all(old)
    out["raw_status"] = raw["Status"]
    out["raw_error"] = raw.get("ErrorDescription", [])
    out["vms_after"] = len(s.xenapi.VM.get_all())
    out["new_session"] = s._session
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()

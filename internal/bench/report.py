"""Prints the JSON lines written by the bench drivers as tables with ratios.

Usage: report.py KIND FILE, where KIND is getall, cold, filter, watch, xva or vhdgen.
"""
import json
import sys

kind, path = sys.argv[1], sys.argv[2]
rows = [json.loads(line) for line in open(path) if line.strip()]
ms = lambda ns: ns / 1e6
mib = lambda b: b / 2**20

if kind == "getall":
    base = rows[0]
    print(f"{'client':32} {'records':>8} {'ms/call':>9} {'peak RSS MiB':>13} {'time vs xorest':>15}")
    for r in rows:
        print(f"{r['client']:32} {r['records']:>8} {ms(r['ns_per_call']):>9.1f} {mib(r['peak_rss_bytes']):>13.1f} "
              f"{r['ns_per_call'] / base['ns_per_call']:>14.2f}x")
    for r in rows[1:]:
        print(f"ratio: {r['client']} / xorest generic: time {r['ns_per_call'] / base['ns_per_call']:.2f}x, "
              f"peak RSS {r['peak_rss_bytes'] / base['peak_rss_bytes']:.2f}x")
elif kind == "cold":
    first, bare = rows
    print(f"{first['case']}: {ms(first['p50_ns']):.0f} ms")
    print(f"{bare['case']}: {ms(bare['ns_per_call']):.0f} ms")
    print(f"ratio: cold first request / bare get_all_records = {first['p50_ns'] / bare['ns_per_call']:.2f}x (aim: under 2x)")
elif kind == "filter":
    node = rows[-1]
    for r in rows[:-1]:
        print(f"{r['case']:28} p50 {ms(r['p50_ns']):8.2f} ms  p99 {ms(r['p99_ns']):8.2f} ms  {r['req_per_s']:8.1f} req/s  "
              f"{r['response_bytes']} bytes")
    print(f"{node['client']:28} {ms(node['ns_per_op']):8.2f} ms per request ({node['matched']} matched; in memory, no HTTP)")
    warm = rows[0]
    print(f"ratio: node in-memory time / xorest HTTP p50 = {node['ns_per_op'] / warm['p50_ns']:.2f}x (aim: at least 5x)")
    many = rows[1]
    print(f"ratio: xorest throughput with 4 clients / node = {many['req_per_s'] * node['ns_per_op'] / 1e9:.2f}x")
elif kind == "watch":
    for r in rows:
        print(f"{r['watchers']} watchers x {r['changes']} changes: delivered {r['delivered']}/{r['expected']}, "
              f"latency p50 {ms(r['p50_ns']):.1f} ms, p99 {ms(r['p99_ns']):.1f} ms")
elif kind == "xva":
    rss = [r for r in rows if r["case"] == "xorest peak RSS"][0]["bytes"]
    best = {}
    for r in rows:
        if "seconds" in r:
            mbs = r["bytes"] / r["seconds"] / 2**20
            best[r["case"]] = max(best.get(r["case"], 0), mbs)
            size = r["bytes"]
    for case, mbs in best.items():
        print(f"{case:16} {mbs:8.1f} MiB/s (best of 3, {size / 2**20:.0f} MiB XVA)")
    print(f"ratio: xorest / direct throughput = {best['xorest .xva'] / best['direct /export']:.2f} (aim: at least 0.95)")
    print(f"xorest peak RSS: {rss / 2**20:.1f} MiB (aim: at most 64 MiB)")
elif kind == "vhdgen":
    best = {}
    for r in rows:
        best[r["client"]] = min(best.get(r["client"], r["ns"]), r["ns"])
        size = r["bytes_in"]
    for client, ns in best.items():
        print(f"{client:24} {ms(ns):8.1f} ms  {mib(size) / (ns / 1e9):8.1f} MiB/s of virtual size (best of runs)")
    ours, peer = list(best.values())[:2]
    print(f"ratio: {list(best)[1]} time / xorest time = {peer / ours:.2f}x (aim: at least 2x)")
else:
    sys.exit(f"unknown kind {kind}")

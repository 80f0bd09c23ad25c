"""Prints the JSON lines written by the bench drivers as tables with ratios.

Usage: report.py KIND FILE, where KIND is getall, cold, filter, watch, xva, vhdgen,
s3export, lambdazip or coldstart.
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
elif kind == "s3export":
    # Rows: export (xva, vhd, raw), case, bytes, seconds; etag,
    # peak_rss_bytes and start_rss_bytes for the uploads.
    # The idle footprint is the lowest RSS before a transfer: a server keeps
    # what its first transfer grew to.
    idle = {}
    for r in rows:
        if "start_rss_bytes" in r:
            idle[r["case"]] = min(idle.get(r["case"], r["start_rss_bytes"]), r["start_rss_bytes"])
    for export in dict.fromkeys(r["export"] for r in rows):
        rs = [r for r in rows if r["export"] == export]
        best, rss, sizes, etags = {}, {}, {}, {}
        for r in rs:
            c = r["case"]
            best[c] = max(best.get(c, 0), r["bytes"] / r["seconds"] / 2**20)
            sizes.setdefault(c, set()).add(r["bytes"])
            if "peak_rss_bytes" in r:
                rss[c] = max(rss.get(c, 0), r["peak_rss_bytes"])
            if "etag" in r:
                etags.setdefault(c, set()).add(r["etag"])
        runs = len(rs) // len(best)
        size = max(max(v) for v in sizes.values())
        print(f"{export} export, {size / 2**20:.0f} MiB, best of {runs}:")
        for c, mbs in best.items():
            line = f"  {c:20} {mbs:8.1f} MiB/s"
            if c in rss:
                line += f"   peak RSS {mib(rss[c]):6.1f} MiB (idle {mib(idle[c]):5.1f} MiB)"
            print(line)
        sdk = [c for c in best if c.startswith("sdk ")]
        for c in sdk:
            print(f"ratio: xorest / {c} throughput = {best['xorest'] / best[c]:.2f} (aim: at least 0.9)")
        if sdk:
            grow = lambda c: rss[c] - idle[c]
            print(f"ratio: xorest peak RSS / {sdk[0]} peak RSS = {rss['xorest'] / rss[sdk[0]]:.2f}; "
                  f"growth over idle {grow('xorest') / grow(sdk[0]):.2f}")
        if "direct GET (no S3)" in best:
            print(f"ratio: xorest / direct GET (no S3) throughput = {best['xorest'] / best['direct GET (no S3)']:.2f}")
        same = len(set().union(*sizes.values())) == 1
        print(f"check: every case moved the same byte count: {'yes' if same else 'NO: ' + str(sizes)}")
        if etags:
            print(f"check: distinct ETags over the uploads: {len(set().union(*etags.values()))} "
                  "(1 when the export is reproducible and all parts line up)")
elif kind == "lambdazip":
    for r in rows:
        print(f"{r['case']:28} zip {mib(r['zip_bytes']):6.2f} MiB   bootstrap {mib(r['bootstrap_bytes']):6.2f} MiB")
    by = {r["case"]: r for r in rows}
    for arch, ours in (("arm64", "xorest arm64 (make lambda)"), ("amd64", "xorest amd64")):
        floor = by.get(f"floor {arch}")
        if floor and ours in by:
            print(f"ratio: {ours} zip / floor {arch} zip = {by[ours]['zip_bytes'] / floor['zip_bytes']:.2f}x")
elif kind == "coldstart":
    # Rows: one per coldstart run (or several runs per row): case, start_ns,
    # invoke_ns, init_ns lists.
    cases = {}
    for r in rows:
        c = cases.setdefault(r["case"], {"start_ns": [], "invoke_ns": [], "init_ns": []})
        for k in c:
            c[k] += r[k]
    p50 = lambda xs: sorted(xs)[(len(xs) - 1) // 2]
    print(f"{'case':42} {'runs':>4} {'start→answer p50':>17} {'max':>8} {'invoke→answer p50':>18} {'init p50':>9}")
    for name, c in cases.items():
        print(f"{name:42} {len(c['start_ns']):>4} {ms(p50(c['start_ns'])):>14.1f} ms {ms(max(c['start_ns'])):>5.1f} ms "
              f"{ms(p50(c['invoke_ns'])):>15.1f} ms {ms(p50(c['init_ns'])):>6.1f} ms")
    floor = next((n for n in cases if n.startswith("floor")), None)
    for name, c in cases.items():
        if floor and name != floor:
            f = cases[floor]
            print(f"ratio: {name} / floor: start→answer p50 {p50(c['start_ns']) / p50(f['start_ns']):.2f}x, "
                  f"max {max(c['start_ns']) / max(f['start_ns']):.2f}x, "
                  f"invoke→answer p50 {p50(c['invoke_ns']) / p50(f['invoke_ns']):.2f}x")
else:
    sys.exit(f"unknown kind {kind}")

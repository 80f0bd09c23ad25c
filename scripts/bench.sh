#!/usr/bin/env bash
# `make bench`: benchmarks side by side with their peers in one run, printing
# ratios. Machines here are noisy: compare the ratios, not absolute times.
#
# BENCH_CALLS (default 5) sets the timed calls per client.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
calls=${BENCH_CALLS:-5}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/getall" ./internal/bench/getall

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
  for _ in $(seq 1 600); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "bench: $1 did not answer" >&2; return 1
}

# Node resolves ES module imports from the script's folder: run peers from .peers.
nodedir="$root/.peers/bench"
mkdir -p "$nodedir"
cp internal/bench/*.mjs "$nodedir/"

echo "== XAPI client: VM.get_all_records of 10,000 VMs (xapisim --vms 10000), $calls calls each"
port=$(free_port)
bin/xapisim --listen "127.0.0.1:$port" --user root --password bench --vms 10000 >"$work/xapisim.log" 2>&1 &
pids+=($!)
url="http://127.0.0.1:$port"
wait_http "$url/"

{
  "$work/getall" -url "$url" -user root -password bench -n "$calls"
  "$work/getall" -url "$url" -user root -password bench -n "$calls" -typed
  node "$nodedir/getall_node.mjs" "$url" root bench "$calls" xml-rpc
  node "$nodedir/getall_node.mjs" "$url" root bench "$calls" json-rpc
} >"$work/getall.jsonl"

python3 - "$work/getall.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
base = rows[0]
print(f"{'client':32} {'records':>8} {'ms/call':>9} {'peak RSS MiB':>13} {'time vs xorest':>15}")
for r in rows:
    print(f"{r['client']:32} {r['records']:>8} {r['ns_per_call']/1e6:>9.1f} {r['peak_rss_bytes']/2**20:>13.1f} {r['ns_per_call']/base['ns_per_call']:>14.2f}x")
node = [r for r in rows if r['client'].startswith('xen-api')]
for r in node:
    print(f"ratio: {r['client']} takes {r['ns_per_call']/base['ns_per_call']:.2f}x the time of xorest (generic); "
          f"peak RSS {r['peak_rss_bytes']/base['peak_rss_bytes']:.2f}x")
PY

#!/usr/bin/env bash
# `make bench`: benchmarks side by side with their peers in one run, printing
# ratios. Machines here are noisy: compare the ratios, not absolute times.
#
#   BENCH_CALLS  timed XAPI calls per client (default 5)
#   BENCH_ONLY   run only these sections, space-separated: xapi rest watch formats xva
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
calls=${BENCH_CALLS:-5}
only=" ${BENCH_ONLY:-xapi rest watch formats xva} "
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/" ./internal/bench/getall ./internal/bench/restload ./cmd/xorest ./cmd/xapisim

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
  for _ in $(seq 1 1200); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "bench: $1 did not answer" >&2; return 1
}
# report FILE: prints the JSON lines of FILE as a table.
report() { python3 "$root/internal/bench/report.py" "$@"; }

# Node resolves ES module imports from the script's folder upwards: run the
# peers from .peers/bench, with the bench-only packages installed there.
nodedir="$root/.peers/bench"
mkdir -p "$nodedir"
cp internal/bench/*.mjs "$nodedir/"
if [ ! -f "$nodedir/node_modules/complex-matcher/package.json" ]; then
  # complex-matcher 1.1.1 (XO's current version) is not on the npm registry
  # reachable here; 0.7.0 is the newest it serves.
  npm install --prefix "$nodedir" --save-exact --no-audit --no-fund --loglevel=error complex-matcher@0.7.0 lodash@4.18.1
fi

if [[ $only == *" formats "* ]]; then
  # Disk formats and NBD, each side by side with its peer in one benchmark run.
  echo "== VMDK: streamOptimized from a 1 GiB sparse file (256 MiB data), xorest vs qemu-img convert"
  go test -run '^$' -bench VsQemu -benchtime 3x ./transfer/vmdk | grep -E '^Benchmark'
  echo "== VHD: dynamic VHD from the same kind of file, xorest vs qemu-img convert -O vpc"
  go test -run '^$' -bench 'FileToVHD|QemuImgConvert' -benchtime 3x ./transfer/vhd | grep -E '^Benchmark'
  echo "== VHD: dynamic VHD from a 1 GiB sparse raw file (256 MiB data), xorest vs XO's npm vhd-lib"
  if [ ! -f "$nodedir/node_modules/vhd-lib/package.json" ]; then
    # vhd-lib 4.15.0 depends on @vates/diff, which the reachable registry does
    # not serve: install the dependencies createReadableSparseStream needs and
    # unpack the vhd-lib tarball itself (vhd_node.mjs imports that file only).
    npm install --prefix "$nodedir" --save-exact --no-audit --no-fund --loglevel=error \
      async-iterator-to-stream@1.2.0 lodash@4.18.1 uuid@9.0.1 struct-fu@1.2.1
    (cd "$work" && npm pack --silent vhd-lib@4.15.0 >/dev/null)
    mkdir -p "$nodedir/node_modules/vhd-lib"
    tar xzf "$work/vhd-lib-4.15.0.tgz" -C "$nodedir/node_modules/vhd-lib" --strip-components=1
  fi
  go build -o "$work/vhdgen" ./internal/bench/vhdgen
  "$work/vhdgen" -make -in "$work/vhdin.raw"
  node "$nodedir/vhd_node.mjs" "$work/vhdin.raw" "$work/vhd-lib.vhd" 1 >/dev/null
  "$work/vhdgen" -in "$work/vhdin.raw" -out "$work/xorest.vhd" -n 1 >/dev/null
  for v in vhd-lib xorest; do
    echo "check: qemu-img compare -f raw in.raw -F vpc $v.vhd: $(qemu-img compare -f raw "$work/vhdin.raw" -F vpc "$work/$v.vhd" 2>&1 | tr '\n' ' ')"
  done
  echo "generation, output to /dev/null (both write(2) every chunk):"
  { "$work/vhdgen" -in "$work/vhdin.raw" -out /dev/null -n 3
    node "$nodedir/vhd_node.mjs" "$work/vhdin.raw" /dev/null 3; } > "$work/vhdgen.jsonl"
  report vhdgen "$work/vhdgen.jsonl"
  echo "generation, output to a file in the work dir (includes the filesystem's write cost):"
  { "$work/vhdgen" -in "$work/vhdin.raw" -out "$work/xorest.vhd" -n 3
    node "$nodedir/vhd_node.mjs" "$work/vhdin.raw" "$work/vhd-lib.vhd" 3; } > "$work/vhdgen.jsonl"
  report vhdgen "$work/vhdgen.jsonl"
  rm -f "$work/vhdin.raw" "$work"/*.vhd
  echo "== NBD: 1 GiB export read through transfer/nbd (N connections) vs nbdcopy, same nbdkit"
  go test -run '^$' -bench Reader -benchtime 3x ./transfer/nbd | grep -E '^Benchmark'
  echo "== S3: 512 MiB multipart upload to versitygw, transfer/s3 vs the SDK's uploaders (same server)"
  XOREST_PEERS_BIN="$root/.peers/bin" go test -run '^$' -bench UploadVsSDK -benchtime 5x ./transfer/s3 | grep -E '^Benchmark'
fi

if [[ $only == *" xva "* ]]; then
  # XVA pass-through: GET /rest/v0/vms/<id>.xva through xorest vs a direct GET
  # of the simulator's /export, for a VM whose 4 GiB disk holds 1 GiB of
  # incompressible data; and xorest's peak RSS over the transfers.
  echo "== XVA: export of a VM with a 4 GiB disk (1 GiB random data), through xorest vs direct from XAPI /export"
  vport=$(free_port)
  "$work/xapisim" --listen "127.0.0.1:$vport" --user root --password bench --vms 6 --disk-size 4294967296 >"$work/xapisim-xva.log" 2>&1 &
  pids+=($!)
  vx="http://127.0.0.1:$vport"
  wait_http "$vx/"
  export XOREST_TOKEN_STORE="file:$work/tokens-xva.json"
  vtoken=$("$work/xorest" token create --description bench 2>/dev/null)
  vrport=$(free_port)
  XOREST_XAPI_PASSWORD=bench "$work/xorest" serve --listen "127.0.0.1:$vrport" --xapi "$vx" --xapi-user root \
    --log-level warn >"$work/xorest-xva.log" 2>&1 &
  xpid=$!
  pids+=($xpid)
  vrest="http://127.0.0.1:$vrport/rest/v0"
  wait_http "$vrest"
  sess=$(curl -s -X POST -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","method":"session.login_with_password","params":["root","bench"],"id":1}' "$vx/jsonrpc" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["result"])')
  vm=$(curl -s -b "authenticationToken=$vtoken" "$vrest/vms?fields=uuid&filter=power_state:Halted&limit=1" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["uuid"])')
  vdi=$(curl -s -b "authenticationToken=$vtoken" "$vrest/vms/$vm/vdis?fields=uuid" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["uuid"])')
  head -c 1073741824 /dev/urandom >"$work/data.raw"
  curl -s -o /dev/null -T "$work/data.raw" "$vx/import_raw_vdi?vdi=$vdi&format=raw&session_id=$sess"
  rm -f "$work/data.raw"
  {
    for i in 1 2 3; do
      curl -s -o /dev/null -w '{"case":"direct /export","bytes":%{size_download},"seconds":%{time_total}}\n' "$vx/export?uuid=$vm&session_id=$sess"
      curl -s -o /dev/null -w '{"case":"xorest .xva","bytes":%{size_download},"seconds":%{time_total}}\n' -b "authenticationToken=$vtoken" "$vrest/vms/$vm.xva"
    done
    python3 -c 'import re,sys; print("{\"case\":\"xorest peak RSS\",\"bytes\":%d}" % (int(re.search(r"VmHWM:\s+(\d+)", open("/proc/%s/status" % sys.argv[1]).read()).group(1))*1024))' "$xpid"
  } >"$work/xva.jsonl"
  report xva "$work/xva.jsonl"
fi

if [[ $only != *" xapi "* && $only != *" rest "* && $only != *" watch "* ]]; then
  exit 0
fi

port=$(free_port)
"$work/xapisim" --listen "127.0.0.1:$port" --user root --password bench --vms 10000 >"$work/xapisim.log" 2>&1 &
pids+=($!)
xapi="http://127.0.0.1:$port"
wait_http "$xapi/"

if [[ $only == *" xapi "* ]]; then
  echo "== XAPI client: VM.get_all_records of a 10,000-VM pool (xapisim --vms 10000), $calls calls each"
  {
    "$work/getall" -url "$xapi" -user root -password bench -n "$calls" -transport json-rpc
    "$work/getall" -url "$xapi" -user root -password bench -n "$calls" -transport json-rpc -typed
    "$work/getall" -url "$xapi" -user root -password bench -n "$calls" -transport xml-rpc
    node "$nodedir/getall_node.mjs" "$xapi" root bench "$calls" json-rpc
    node "$nodedir/getall_node.mjs" "$xapi" root bench "$calls" xml-rpc
  } >"$work/getall.jsonl"
  report getall "$work/getall.jsonl"
fi

if [[ $only == *" rest "* || $only == *" watch "* ]]; then
  export XOREST_TOKEN_STORE="file:$work/tokens.json"
  token=$("$work/xorest" token create --description bench 2>/dev/null)
  rport=$(free_port)
  XOREST_XAPI_PASSWORD=bench "$work/xorest" serve --listen "127.0.0.1:$rport" --xapi "$xapi" --xapi-user root \
    --log-level warn >"$work/xorest.log" 2>&1 &
  pids+=($!)
  rest="http://127.0.0.1:$rport/rest/v0"
  wait_http "$rest"
fi

if [[ $only == *" rest "* ]]; then
  filter='power_state:Running !name_label:/^vm1/ CPUs:number:>=1'
  fields='name_label,power_state'
  q="fields=$fields&filter=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$filter")"
  echo "== REST: GET /vms?fields=$fields&filter=$filter over the 10,000-VM pool"
  {
    # Cold: the first request of a fresh xorest loads the pool.
    "$work/restload" -mode cold -url "$rest/vms?$q" -token "$token" | sed 's/^{/{"case":"xorest first request (cold)",/'
    "$work/getall" -url "$xapi" -user root -password bench -cold | sed 's/^{/{"case":"bare VM.get_all_records, fresh client",/'
  } >"$work/cold.jsonl"
  report cold "$work/cold.jsonl"
  curl -s -b "authenticationToken=$token" "$rest/vms?fields=*" >"$work/vms.json"
  {
    "$work/restload" -mode get -url "$rest/vms?$q" -token "$token" -n 40 -c 1 | sed 's/^{/{"case":"xorest warm, 1 client",/'
    "$work/restload" -mode get -url "$rest/vms?$q" -token "$token" -n 80 -c 4 | sed 's/^{/{"case":"xorest warm, 4 clients",/'
    node "$nodedir/filter_node.mjs" "$work/vms.json" "$filter" "$fields" 40
  } >"$work/filter.jsonl"
  report filter "$work/filter.jsonl"
fi

if [[ $only == *" watch "* ]]; then
  watchers=${BENCH_WATCHERS:-1000}
  echo "== REST: $watchers concurrent watchers of /vms?ndjson&watch&fields=name_label, one process; 20 renames"
  vm=$(curl -s -b "authenticationToken=$token" "$rest/vms?fields=uuid&limit=1&filter=power_state:Running" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["uuid"])')
  ulimit -n 65536 2>/dev/null || true
  "$work/restload" -mode watch -url "$rest/vms?ndjson&watch&fields=name_label" -token "$token" -watchers "$watchers" -changes 20 \
    -xapi "$xapi" -xapi-user root -xapi-password bench -vm "$vm" >"$work/watch.jsonl"
  report watch "$work/watch.jsonl"
fi

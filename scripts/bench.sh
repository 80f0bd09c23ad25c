#!/usr/bin/env bash
# `make bench`: benchmarks side by side with their peers in one run, printing
# ratios. Machines here are noisy: compare the ratios, not absolute times.
#
#   BENCH_CALLS  timed XAPI calls per client (default 5)
#   BENCH_ONLY   run only these sections, space-separated: xapi rest watch formats xva
#                s3export lambda
#   BENCH_S3_RUNS    uploads per case of the xva and vhd exports in the s3export
#                    section (default 3, at most 10)
#   BENCH_S3_RAW_RUNS  the same for the 4 GiB raw export (default 1; 0 skips it)
#   BENCH_COLD_RUNS  cold starts per case in the lambda section (default 5, at most 50)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
calls=${BENCH_CALLS:-5}
only=" ${BENCH_ONLY:-xapi rest watch formats xva s3export lambda} "
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

# xva_sim starts, once, the simulator of the xva and s3export sections: six
# VMs whose first disk is 4 GiB. It sets vx (its URL) and sess (a session).
xva_sim() {
  [ -n "${vx:-}" ] && return 0
  vport=$(free_port)
  "$work/xapisim" --listen "127.0.0.1:$vport" --user root --password bench --vms 6 --disk-size 4294967296 >"$work/xapisim-xva.log" 2>&1 &
  pids+=($!)
  vx="http://127.0.0.1:$vport"
  wait_http "$vx/"
  sess=$(curl -s -X POST -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","method":"session.login_with_password","params":["root","bench"],"id":1}' "$vx/jsonrpc" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["result"])')
}
# xva_disk REST TOKEN writes, once, 1 GiB of random data at the start of the
# first disk of the first halted VM of xva_sim, found through the xorest at
# REST. It sets vm and vdi (their uuids).
xva_disk() {
  [ -n "${vdi:-}" ] && return 0
  vm=$(curl -s -b "authenticationToken=$2" "$1/vms?fields=uuid&filter=power_state:Halted&limit=1" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["uuid"])')
  vdi=$(curl -s -b "authenticationToken=$2" "$1/vms/$vm/vdis?fields=uuid" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["uuid"])')
  head -c 1073741824 /dev/urandom >"$work/data.raw"
  curl -s -o /dev/null -T "$work/data.raw" "$vx/import_raw_vdi?vdi=$vdi&format=raw&session_id=$sess"
  rm -f "$work/data.raw"
}

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
  xva_sim
  export XOREST_TOKEN_STORE="file:$work/tokens-xva.json"
  vtoken=$("$work/xorest" token create --description bench 2>/dev/null)
  vrport=$(free_port)
  XOREST_XAPI_PASSWORD=bench "$work/xorest" serve --listen "127.0.0.1:$vrport" --xapi "$vx" --xapi-user root \
    --log-level warn >"$work/xorest-xva.log" 2>&1 &
  xpid=$!
  pids+=($xpid)
  vrest="http://127.0.0.1:$vrport/rest/v0"
  wait_http "$vrest"
  xva_disk "$vrest" "$vtoken"
  {
    for i in 1 2 3; do
      curl -s -o /dev/null -w '{"case":"direct /export","bytes":%{size_download},"seconds":%{time_total}}\n' "$vx/export?uuid=$vm&session_id=$sess"
      curl -s -o /dev/null -w '{"case":"xorest .xva","bytes":%{size_download},"seconds":%{time_total}}\n' -b "authenticationToken=$vtoken" "$vrest/vms/$vm.xva"
    done
    python3 -c 'import re,sys; print("{\"case\":\"xorest peak RSS\",\"bytes\":%d}" % (int(re.search(r"VmHWM:\s+(\d+)", open("/proc/%s/status" % sys.argv[1]).read()).group(1))*1024))' "$xpid"
  } >"$work/xva.jsonl"
  report xva "$work/xva.jsonl"
fi

if [[ $only == *" s3export "* ]]; then
  # Export to S3: the export action (POST …/actions/export?sync, which answers
  # once the object is complete) vs the SDK's own multipart uploaders fed the
  # same XAPI stream (internal/bench/s3peer), to the same versitygw, with
  # xorest's part size and concurrency (8 MiB, 4) and CRC32 checksums. The
  # cases take turns so that drift hits all of them. xva and vhd streams have
  # no length beforehand; raw has one (the disk's 4 GiB, 3 GiB of them
  # zeros), which is the path where the task's progress follows the upload.
  echo "== S3 export: VM (4 GiB disk, 1 GiB random data) to versitygw, xorest export action vs SDK uploaders of the same XAPI stream"
  go build -o "$work/" ./internal/bench/s3peer
  s3runs=${BENCH_S3_RUNS:-3}
  rawruns=${BENCH_S3_RAW_RUNS:-1}
  (( s3runs >= 1 && s3runs <= 10 && rawruns >= 0 && rawruns <= 10 )) ||
    { echo "bench: BENCH_S3_RUNS must be 1 to 10, BENCH_S3_RAW_RUNS 0 to 10" >&2; exit 1; }
  s3dir="$work/s3"
  mkdir -p "$s3dir"
  s3port=$(free_port)
  ROOT_ACCESS_KEY_ID=benchkey ROOT_SECRET_ACCESS_KEY=benchsecret \
    "$root/.peers/bin/versitygw" --port "127.0.0.1:$s3port" --quiet posix "$s3dir" >"$work/versitygw.log" 2>&1 &
  pids+=($!)
  s3="http://127.0.0.1:$s3port"
  wait_http "$s3/"
  s3env=(AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret AWS_SESSION_TOKEN= AWS_REGION=us-east-1
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true)
  env "${s3env[@]}" "$work/s3peer" mkbucket -endpoint "$s3" -bucket bench
  xva_sim
  stoken=$(XOREST_TOKEN_STORE="file:$work/tokens-s3.json" "$work/xorest" token create --description bench 2>/dev/null)
  srport=$(free_port)
  env "${s3env[@]}" XOREST_TOKEN_STORE="file:$work/tokens-s3.json" XOREST_XAPI_PASSWORD=bench \
    "$work/xorest" serve --listen "127.0.0.1:$srport" --xapi "$vx" --xapi-user root --log-level warn \
    --s3-bucket bench --s3-endpoint "$s3" --s3-path-style >"$work/xorest-s3.log" 2>&1 &
  spid=$!
  pids+=($spid)
  srest="http://127.0.0.1:$srport/rest/v0"
  wait_http "$srest"
  xva_disk "$srest" "$stoken"
  # s3case EXPORT KIND: one upload of EXPORT (xva: the VM; vhd, raw: its
  # disk) by KIND, printed as a JSON line.
  s3case() {
    local export=$1 kind=$2 src obj body="{\"format\":\"$1\",\"key\":\"xorest-$1\"}"
    if [ "$export" = xva ]; then
      src="$vx/export?uuid=$vm&session_id=$sess" obj="vms/$vm"
    else
      src="$vx/export_raw_vdi?vdi=$vdi&format=$export&session_id=$sess" obj="vdis/$vdi"
    fi
    case $kind in
      direct)
        curl -sf -o /dev/null -w "{\"export\":\"$export\",\"case\":\"direct GET (no S3)\",\"bytes\":%{size_download},\"seconds\":%{time_total}}\n" "$src" ;;
      xorest)
        # VmHWM is reset so that the peak is this export's; VmRSS before it
        # is xorest's idle footprint.
        grep VmRSS "/proc/$spid/status" >"$work/s3-idle.txt"
        echo 5 >"/proc/$spid/clear_refs"
        curl -s -o "$work/s3-answer.json" -w '%{http_code} %{time_total}\n' -X POST -H 'Content-Type: application/json' \
          -b "authenticationToken=$stoken" -d "$body" "$srest/$obj/actions/export?sync" >"$work/s3-curl.txt"
        python3 - "$export" "$work/s3-curl.txt" "$work/s3-answer.json" "/proc/$spid/status" "$work/s3-idle.txt" <<'PY'
import json, re, sys
export, curl, answer, status, idle = sys.argv[1:]
code, secs = open(curl).read().split()
body = open(answer).read()
if code != "200":
    sys.exit(f"bench: xorest export {export} answered {code}: {body}")
res = json.loads(body)
kib = lambda field, path: int(re.search(field + r":\s+(\d+)", open(path).read()).group(1)) * 1024
print(json.dumps({"export": export, "case": "xorest", "bytes": int(res["size"]), "seconds": float(secs),
                  "etag": res["etag"], "peak_rss_bytes": kib("VmHWM", status), "start_rss_bytes": kib("VmRSS", idle)}))
PY
        ;;
      manager | transfermanager)
        env "${s3env[@]}" "$work/s3peer" upload -endpoint "$s3" -bucket bench -key "sdk-$kind-$export" \
          -src "$src" -uploader "$kind" -case "sdk $kind" | sed "s/^{/{\"export\":\"$export\",/"
        env "${s3env[@]}" "$work/s3peer" rm -endpoint "$s3" -bucket bench -key "sdk-$kind-$export" ;;
    esac
    # The objects are deleted as soon as measured: the disk holds one at a time.
    [ "$kind" = xorest ] && env "${s3env[@]}" "$work/s3peer" rm -endpoint "$s3" -bucket bench -key "xorest-$export"
    return 0
  }
  cases=(direct xorest manager transfermanager)
  for export in xva vhd raw; do
    runs=$s3runs
    [ "$export" = raw ] && runs=$rawruns
    for ((i = 0; i < runs; i++)); do
      for ((j = 0; j < ${#cases[@]}; j++)); do
        s3case "$export" "${cases[(i + j) % ${#cases[@]}]}"
      done
    done
  done >"$work/s3export.jsonl"
  report s3export "$work/s3export.jsonl"
fi

if [[ $only == *" lambda "* ]]; then
  # The bundle `make lambda` makes (arm64), the same for amd64, and the
  # bundle of an aws-lambda-go hello world (internal/bench/lambdafloor),
  # built the same way; then cold starts under aws-lambda-rie, each from a
  # fresh emulator and process to the first answer, xorest and the floor
  # taking turns. The cold starts run this machine's architecture.
  echo "== Lambda: bundle size (make lambda) and cold start under aws-lambda-rie, xorest vs an aws-lambda-go hello world (the floor)"
  coldruns=${BENCH_COLD_RUNS:-5}
  (( coldruns >= 1 && coldruns <= 50 )) || { echo "bench: BENCH_COLD_RUNS must be 1 to 50" >&2; exit 1; }
  go build -o "$work/" ./internal/bench/coldstart
  make -s lambda >/dev/null
  # bundle GOARCH PKG DIR builds PKG as DIR/bootstrap and zips it into
  # DIR/bundle.zip with the Makefile's lambda recipe.
  bundle() {
    mkdir -p "$3"
    CGO_ENABLED=0 GOOS=linux GOARCH=$1 go build -tags lambda.norpc -trimpath -ldflags='-s -w' -o "$3/bootstrap" "$2"
    if command -v zip >/dev/null; then (cd "$3" && zip -q -X bundle.zip bootstrap)
    else python3 -c 'import sys,zipfile as z; f=z.ZipFile(sys.argv[1]+"/bundle.zip","w",z.ZIP_DEFLATED); i=z.ZipInfo("bootstrap",(1980,1,1,0,0,0)); i.external_attr=0o100755<<16; i.compress_type=z.ZIP_DEFLATED; f.writestr(i,open(sys.argv[1]+"/bootstrap","rb").read()); f.close()' "$3"; fi
  }
  zipline() { echo "{\"case\":\"$1\",\"zip_bytes\":$(stat -c %s "$2"),\"bootstrap_bytes\":$(stat -c %s "$3")}"; }
  host=$(go env GOARCH)
  bundle arm64 ./internal/bench/lambdafloor "$work/floor-arm64"
  bundle amd64 ./cmd/xorest "$work/xorest-amd64"
  bundle amd64 ./internal/bench/lambdafloor "$work/floor-amd64"
  {
    zipline "xorest arm64 (make lambda)" dist/xorest-lambda.zip dist/bootstrap
    zipline "floor arm64" "$work/floor-arm64/bundle.zip" "$work/floor-arm64/bootstrap"
    zipline "xorest amd64" "$work/xorest-amd64/bundle.zip" "$work/xorest-amd64/bootstrap"
    zipline "floor amd64" "$work/floor-amd64/bundle.zip" "$work/floor-amd64/bootstrap"
  } >"$work/lambdazip.jsonl"
  report lambdazip "$work/lambdazip.jsonl"

  lport=$(free_port)
  "$work/xapisim" --listen "127.0.0.1:$lport" --user root --password bench >"$work/xapisim-lambda.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$lport/"
  python3 - "$work" <<'PY'
import base64, json, sys
def v2(path, query, auth):
    h = {"host": "abc123.execute-api.eu-west-1.amazonaws.com", "accept": "application/json"}
    if auth:
        h["authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    return {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query, "headers": h,
            "requestContext": {"domainName": h["host"], "stage": "$default",
                               "http": {"method": "GET", "path": path, "sourceIp": "203.0.113.7"}}}
json.dump(v2("/rest/v0/vms", "fields=name_label,power_state", "root:bench"), open(sys.argv[1] + "/event-vms.json", "w"))
json.dump(v2("/rest/v0/vms", "", ""), open(sys.argv[1] + "/event-anon.json", "w"))
PY
  rie=("$work/coldstart" -rie "$root/.peers/bin/aws-lambda-rie" -n 1)
  lenv=(AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret AWS_SESSION_TOKEN=
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
    AWS_LAMBDA_FUNCTION_TIMEOUT=60 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1024)
  xenv=(XOREST_XAPI="http://127.0.0.1:$lport" XOREST_XAPI_USER=root XOREST_XAPI_PASSWORD=bench
    XOREST_TOKEN_STORE="file:$work/tokens-lambda.json" XOREST_LAMBDA_MODE=auto AWS_LAMBDA_FUNCTION_NAME=xorest)
  bundle "$host" ./cmd/xorest "$work/xorest-$host"
  bundle "$host" ./internal/bench/lambdafloor "$work/floor-$host"
  for ((i = 0; i < coldruns; i++)); do
    env "${lenv[@]}" AWS_LAMBDA_FUNCTION_NAME=floor "${rie[@]}" -bootstrap "$work/floor-$host/bootstrap" \
      -event "$work/event-vms.json" -case "floor (aws-lambda-go hello world)"
    env "${lenv[@]}" "${xenv[@]}" "${rie[@]}" -bootstrap "$work/xorest-$host/bootstrap" \
      -event "$work/event-anon.json" -status 401 -case "xorest, 401 without credentials"
    env "${lenv[@]}" "${xenv[@]}" "${rie[@]}" -bootstrap "$work/xorest-$host/bootstrap" \
      -event "$work/event-vms.json" -case "xorest, GET /vms with Basic (XAPI login)"
  done >"$work/coldstart.jsonl"
  echo "cold starts on $host, $coldruns runs each, fresh emulator and process per run:"
  report coldstart "$work/coldstart.jsonl"
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

#!/usr/bin/env bash
# Installs the real peers the tests run against, at pinned versions.
# Idempotent: what is already installed is left alone. Run by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: XenAPI.py (python3-os-xenapi), qemu-img (qemu-utils),
# headless Chromium for the docs page test.
APT_PKGS=(python3-os-xenapi qemu-utils python3-libvmdk chromium tar gzip zstd zip nbdkit libnbd-bin gnutls-bin mtools dosfstools util-linux)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-peers: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages, into the project-local .peers folder (never global).
NPM_PKGS=(xen-api@4.7.6 @apidevtools/swagger-parser@10.1.1)
mkdir -p .peers
want="${NPM_PKGS[*]}"
if [ "$(cat .peers/.installed 2>/dev/null)" != "$want" ]; then
  echo "install-peers: npm install ${want}"
  [ -f .peers/package.json ] || echo '{"private":true}' > .peers/package.json
  npm install --prefix .peers --save-exact --no-audit --no-fund --loglevel=error "${NPM_PKGS[@]}"
  echo "$want" > .peers/.installed
fi

# Go-installed peers, pinned, into .peers/bin: versitygw (a real S3 server)
# and aws-lambda-rie (the Lambda runtime interface emulator).
GO_PEERS=(
  github.com/versity/versitygw/cmd/versitygw@v1.8.0
  github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d
)
mkdir -p .peers/bin
for mod in "${GO_PEERS[@]}"; do
  bin=$(basename "${mod%@*}")
  stamp=".peers/bin/.$bin.version"
  if [ ! -x ".peers/bin/$bin" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$mod" ]; then
    echo "install-peers: go install $mod"
    GOBIN="$(pwd)/.peers/bin" go install "$mod"
    echo "$mod" > "$stamp"
  fi
done

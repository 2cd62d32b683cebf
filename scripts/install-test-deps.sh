#!/usr/bin/env bash
# Installs the Debian packages the test suite needs (real wireguard-go in network namespaces,
# nftables, a throwaway Postgres 15, iperf3 for the join benchmark, coturn for STUN interop and
# bench:stun, haproxy for the HA failover lab and the TLS-terminating proxy test, chromium for the
# admin UI tests and bench:ui: Playwright drives it, its own browser builds are not downloaded),
# gcc and libc6-dev for the STUN socket's batched UDP addon (packages/relay/native; scripts/build.mjs,
# which `npm test` runs after this, compiles it; without them StunServer falls back to node:dgram and
# the suite's native StunServer cases fail) and bench:stun's C load generator.
# Root, Debian. coturn's package does not start its daemon here (no init system);
# the tests run turnserver themselves on a loopback port.
set -euo pipefail
pkgs=(wireguard-go wireguard-tools iproute2 nftables iputils-ping conntrack iperf3 postgresql-15 procps coturn haproxy chromium gcc libc6-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "install as root: apt-get install ${missing[*]}" >&2; exit 1; fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

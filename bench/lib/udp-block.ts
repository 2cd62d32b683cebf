/** UDP blocking on a lab host for the relay benches (relay-lab, relay-profile). */
import { writeFileSync } from 'node:fs';
import type { Host } from '../../e2e/lab/index.js';

/** The relay's UDP port on the lab's server (its STUN port). */
export const RELAY_UDP_PORT = 3478;

/**
 * nftables on `h` (one table, replaced whole): all UDP on the LAN interface dropped (`all`), all but
 * the server's relay port (`relayUdpFrom`: the server's address), or nothing (`none`). Only eth0:
 * loopback (the agent's relay sockets) and the tunnel (adaptive MTU's probes to the peer's
 * responder, UDP inside WireGuard) always pass; blocking the tunnel too left relayed phases at the
 * 1280 the interface starts at.
 */
export async function setUdpBlock(h: Host, mode: 'all' | { relayUdpFrom: string } | 'none'): Promise<void> {
  const file = h.tmpPath('bench-udp-block.nft');
  const allow = typeof mode === 'object'
    ? { in: `ip saddr ${mode.relayUdpFrom} udp sport ${RELAY_UDP_PORT} accept; `, out: `ip daddr ${mode.relayUdpFrom} udp dport ${RELAY_UDP_PORT} accept; ` }
    : { in: '', out: '' };
  const table = mode === 'none' ? '' : `table inet bench_block {
  chain in { type filter hook input priority 0; policy accept; iifname != "eth0" accept; ${allow.in}meta l4proto udp drop; }
  chain out { type filter hook output priority 0; policy accept; oifname != "eth0" accept; ${allow.out}meta l4proto udp drop; }
}
`;
  writeFileSync(file, `table inet bench_block {}\ndelete table inet bench_block\n${table}`);
  await h.execOk('nft', ['-f', file]);
}

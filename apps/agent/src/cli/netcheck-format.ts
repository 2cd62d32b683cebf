/**
 * Human form of `weft netcheck`, in the spirit of `tailscale netcheck`: one line per finding, and
 * where the finding limits what works, what it means and what to do, in words. Spaces, not tabs:
 * terminalSafeLines escapes tabs.
 */
import { terminalSafeLines } from '@weft/protocol/terminal-text';
import type { NetcheckReport } from '../netcheck.js';

const ms = (v: number | null) => (v === null ? 'no answer' : `${v < 10 ? v.toFixed(1) : Math.round(v)}ms`);

/** Region names and codes come from the server: the whole text is made terminal-safe. */
export function formatNetcheck(r: NetcheckReport): string {
  return terminalSafeLines(formatRaw(r));
}

function formatRaw(r: NetcheckReport): string {
  const stunCount = r.regions.reduce((n, g) => n + g.stun.length, 0);
  const lines = ['Report:', `  * Time: ${r.time}`];
  if (r.udp) lines.push('  * UDP: yes');
  else {
    lines.push(
      `  * UDP: no. None of the ${stunCount} STUN server${stunCount === 1 ? '' : 's'} answered over UDP: this network (or a firewall on`,
      '    this host) blocks outgoing UDP. Direct WireGuard connections cannot work from here; traffic to',
      '    peers has to go through the relay over HTTPS. To get direct connections, allow outgoing UDP',
      '    (at least to the STUN port, usually 3478, and to your peers).',
    );
  }
  lines.push(`  * IPv4: ${r.ipv4 ? `yes, ${r.ipv4.address}:${r.ipv4.port}` : 'no'}`);
  lines.push(`  * IPv6: ${r.ipv6 ? `yes, [${r.ipv6.address}]:${r.ipv6.port}` : 'no'}`);
  lines.push(`  * Mapping varies by destination: ${r.udp ? varies(r.mappingVariesByDestination) : 'unknown (no UDP)'}`);
  lines.push(`  * Port preserved: ${r.portPreserved === null ? `unknown (${r.udp ? 'no IPv4 answer' : 'no UDP'})` : r.portPreserved ? `yes (local port ${r.localPort} is the public port)` : `no (local port ${r.localPort}, public port ${r.ipv4?.port ?? '?'})`}`);
  const preferred = r.regions.find((g) => g.id === r.preferredRegion);
  lines.push(`  * Preferred region: ${preferred ? `${preferred.code} (${preferred.name})` : 'none (no region answered)'}`);
  if (r.homeRegion !== undefined) {
    const home = r.regions.find((g) => g.id === r.homeRegion?.id);
    lines.push(`  * Home relay: ${r.homeRegion === null ? 'the control server\'s (no region with a relay answered yet)' : `${r.homeRegion.code}${home ? ` (${home.name})` : ''}`}`);
  }
  lines.push('  * Region latency:');
  const width = Math.max(...r.regions.map((g) => g.code.length));
  for (const g of [...r.regions].sort((a, b) => (a.latencyMs ?? Infinity) - (b.latencyMs ?? Infinity) || a.id - b.id)) {
    lines.push(`      - ${`${g.code}:`.padEnd(width + 1)} ${ms(g.latencyMs).padEnd(9)} (${g.name})`);
  }
  return lines.join('\n') + '\n';
}

function varies(v: boolean | null): string {
  if (v === null) return 'unknown (fewer than two STUN servers answered; the server can list more regions)';
  if (!v) return 'no (endpoint-independent: peers can reach this node at the address STUN saw)';
  return [
    'yes. This NAT maps each destination to a new public port (endpoint-dependent, "symmetric"):',
    '    the address STUN saw is not the one a peer would see. Direct connections work only to peers',
    '    whose NAT is endpoint-independent; with others traffic goes through the relay. If this is your',
    '    router, look for a setting such as "full-cone NAT", "endpoint-independent mapping", or UPnP.',
  ].join('\n');
}

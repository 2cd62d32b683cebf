/**
 * `weft metrics` / `GET /v1/metrics` on the local socket: the agent's own metrics in Prometheus
 * text exposition (format 0.0.4), read from the same `Status` as `weft status` plus the daemon's
 * counters. Per-peer series carry the peer's name and node id: one host's peers, not a fleet (the
 * fleet view is the server's `weft_links*`). A handful of gauges does not justify a client
 * library in the agent's bundle; the renderer escapes label values as the format requires.
 */
import type { Status } from './status.js';
import { LINK_STALE_AFTER_S } from '@weft/protocol';

export interface AgentCounters { reconnects: number; netmapsApplied: number; deltasApplied: number; controlConnects: number; linkReports: number }

export interface Sample { name: string; labels: Record<string, string>; value: number }
interface Family { name: string; help: string; type: 'gauge' | 'counter'; samples: Sample[] }

export function agentMetrics(status: Status, c: AgentCounters): Family[] {
  const fam = (name: string, type: Family['type'], help: string, samples: Array<[Record<string, string>, number]>): Family =>
    ({ name, help, type, samples: samples.map(([labels, value]) => ({ name, labels, value })) });
  const byPath = { direct: 0, relay: 0, none: 0 };
  for (const p of status.peers) byPath[p.path]++;
  const peer = (p: Status['peers'][number]) => ({ peer: p.name, id: String(p.id) });
  return [
    fam('weft_agent_control_connected', 'gauge', '1 while connected to the control server with a current netmap.', [[{}, status.online ? 1 : 0]]),
    fam('weft_agent_control_connects_total', 'counter', 'Control connections opened since the daemon started.', [[{}, c.controlConnects]]),
    fam('weft_agent_control_reconnects_total', 'counter', 'Control connections lost (each followed by a reconnect with backoff).', [[{}, c.reconnects]]),
    fam('weft_agent_netmaps_applied_total', 'counter', 'Full netmaps programmed into WireGuard.', [[{}, c.netmapsApplied]]),
    fam('weft_agent_deltas_applied_total', 'counter', 'Netmap deltas programmed into WireGuard.', [[{}, c.deltasApplied]]),
    fam('weft_agent_link_reports_total', 'counter', 'Link report messages sent to the control server.', [[{}, c.linkReports]]),
    fam('weft_agent_interface_up', 'gauge', '1 while the WireGuard interface is up.', [[{ interface: status.interface.name }, status.interface.up ? 1 : 0]]),
    fam('weft_agent_peers', 'gauge', 'Peers in the netmap, by path (direct, relay, none: no recent handshake).', Object.entries(byPath).map(([path, n]) => [{ path }, n])),
    fam('weft_agent_peer_handshake_age_seconds', 'gauge', `Seconds since the latest handshake with the peer (absent: never). Over ${LINK_STALE_AFTER_S} s while tx grows = dead link.`,
      status.peers.filter((p) => p.handshakeAgeSeconds !== null).map((p) => [peer(p), p.handshakeAgeSeconds!])),
    fam('weft_agent_peer_rx_bytes_total', 'counter', 'Bytes received from the peer (WireGuard counter).', status.peers.map((p) => [peer(p), p.rxBytes])),
    fam('weft_agent_peer_tx_bytes_total', 'counter', 'Bytes sent to the peer (WireGuard counter).', status.peers.map((p) => [peer(p), p.txBytes])),
  ];
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

export function exposition(families: Family[]): string {
  let out = '';
  for (const f of families) {
    out += `# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
      out += `${s.name}${labels ? `{${labels}}` : ''} ${s.value}\n`;
    }
  }
  return out;
}

/** `weft metrics --json`: the samples, flat. */
export function samplesOf(families: Family[]): Sample[] {
  return families.flatMap((f) => f.samples);
}

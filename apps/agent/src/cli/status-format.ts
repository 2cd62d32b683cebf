/** Human form of `weft status`, in the spirit of `tailscale status`: one line per peer. */
// The subpath, not the package root: the quick CLI commands do not load zod and the wire schemas.
import { terminalSafe, terminalSafeLines } from '@weft/protocol/terminal-text';
import type { Status } from '../status.js';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

export function formatAge(seconds: number | null): string {
  if (seconds === null) return 'never';
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

const stateText: Record<Status['state'], string> = {
  running: 'running',
  starting: 'starting',
  'needs-login': 'needs login (run: weft up --server URL)',
  stopped: 'stopped (run: weft up)',
  revoked: 'revoked by an admin (to join again: weft logout && weft up --server URL)',
  expired: 'node key expired (run: weft login)',
};

/** Nothing while no filter is sent (as before policies); otherwise what is in force, in words. */
function firewallLine(fw: Status['firewall'] | undefined): string | null {
  switch (fw?.state) {
    case undefined:
    case 'off':
      return null;
    case 'enforcing':
      return `firewall: enforcing the packet filter (${fw.rules} rule${fw.rules === 1 ? '' : 's'}; nftables table inet weft)`;
    case 'kept':
      return `firewall: NOT UPDATED: ${fw.error} (${fw.rules} rule${fw.rules === 1 ? '' : 's'})`;
    case 'blocked':
      return `firewall: BLOCKING ALL TUNNEL TRAFFIC: ${fw.error}`;
  }
}

/** Cells are made terminal-safe before they are measured (peer names come from other nodes). */
function table(rows: string[][]): string {
  rows = rows.map((r) => r.map(terminalSafe));
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd()).join('\n');
}

/** Every value here came from the server or from other nodes: the whole text is made terminal-safe. */
export function formatStatus(s: Status): string {
  return terminalSafeLines(formatStatusRaw(s));
}

function formatStatusRaw(s: Status): string {
  const lines: string[] = [];
  // First, where it cannot be missed: the control channel is readable and forgeable on the path.
  if (s.controlChannel?.warning) lines.push(`WARNING: ${s.controlChannel.warning}`, '');
  if (s.self) {
    lines.push(`${s.self.ipv4}  ${s.self.name}  ${s.self.user}  ${s.self.ipv6}`);
  }
  lines.push(`state: ${stateText[s.state]}`);
  lines.push(`control: ${s.server ?? '-'} (${s.online ? 'online' : 'offline'}${s.controlChannel?.caFile ? `, CA ${s.controlChannel.caFile}` : ''})`);
  if (s.interface.up) {
    lines.push(`interface: ${s.interface.name} (${s.interface.backend ?? '?'}, port ${s.interface.listenPort ?? '?'}, mtu ${s.interface.mtu})`);
  }
  if (s.self?.reflexiveEndpoint) lines.push(`public endpoint (seen by the server): ${s.self.reflexiveEndpoint}`);
  if (s.relay?.region) lines.push(`home relay: ${s.relay.region} (${s.relay.connected ? `connected, over ${s.relay.transport === 'udp' ? 'UDP' : 'WebSocket'}` : 'not connected'})`);
  if (s.login?.approval === 'admin') lines.push(`login: waiting for an admin to approve this device (weft-server nodes approve ${s.login.code}, or the Pending devices page at ${s.login.url})`);
  else if (s.login) lines.push(`login: open ${s.login.url} or ask an admin to run: weft-server nodes approve ${s.login.code}`);
  const fw = firewallLine(s.firewall);
  if (fw) lines.push(fw);
  for (const r of s.firewall?.skippedRules ?? []) lines.push(`packet filter rule ${r.index} left out: ${r.reason}`);
  if (s.lastError && s.lastError.code !== 'firewall_error') lines.push(`last error: ${s.lastError.message} [${s.lastError.code}]`);
  for (const k of s.skippedPeers ?? []) lines.push(`skipped peer ${k.id ?? '?'}: ${k.reason.replace(/[^\x20-\x7e]/g, '?')}`);
  if (s.peers.length === 0) {
    lines.push('', s.self ? 'no peers' : '');
    return lines.join('\n').trimEnd() + '\n';
  }
  const rows = [['IP', 'NAME', 'USER', 'PATH', 'ENDPOINT', 'HANDSHAKE', 'RX', 'TX', 'CONTROL']];
  for (const p of s.peers) {
    rows.push([
      p.ipv4, p.name, p.user, p.path === 'relay' && p.region ? `relay (${p.region})` : p.path, p.endpoint ?? '-', formatAge(p.handshakeAgeSeconds),
      formatBytes(p.rxBytes), formatBytes(p.txBytes), p.online ? 'online' : 'offline',
    ]);
  }
  lines.push('', table(rows));
  // Why a peer is not direct, in words, one line each under the table.
  const why = s.peers.filter((p) => p.path !== 'direct' && p.reason);
  if (why.length > 0) lines.push('', ...why.map((p) => `${p.name}: ${p.path}${p.pathSince ? ` since ${p.pathSince}` : ''}: ${p.reason}`));
  return lines.join('\n') + '\n';
}

/**
 * `weft doctor`: the usual WireGuard failures, checked against what this host really has. Pure:
 * `gather.ts` collects the facts (the daemon's status, `wg show dump`, `ip -j route get`,
 * `ip -j rule`, `nft -j list ruleset`, sysctls, the server's Date header) and these functions
 * judge them. Each check is PASS, WARN or FAIL and, when not PASS, says what to do.
 */
import { normalizeCidr } from '@weft/wg';
import type { Status } from '../status.js';
import { LINK_STALE_AFTER_S } from '@weft/protocol';
import { MTU_PROBE_PORT } from '../tunables.js';

export type Verdict = 'PASS' | 'WARN' | 'FAIL';
export interface CheckResult { id: string; title: string; status: Verdict; detail: string; fix: string | null }
export interface DoctorReport { version: 1; ok: boolean; checks: CheckResult[] }

export interface WgFacts { publicKey: string | null; peers: Array<{ publicKey: string; allowedIps: string[] }> }
export interface RouteFacts { dev: string | null; table: string | null; error: string | null }
export interface IpRule { priority: number; src?: string; srclen?: number; dst?: string; dstlen?: number; table?: string; action?: string; family: 4 | 6 }

export interface DoctorFacts {
  status: Status;
  /** This node's public key as the daemon holds it (state dir). */
  localNodeKey: string | null;
  /** `wg show IFACE dump`; null = could not be read (error says why). */
  wg: WgFacts | null;
  wgError: string | null;
  /** Netmap peers' allowed IPs, by node key (from the daemon). */
  netmapAllowedIps: Record<string, string[]>;
  /** `ip route get ADDR` per peer address. */
  routes: Record<string, RouteFacts>;
  rules: IpRule[];
  /** `nft -j list ruleset`; null = nft missing or failed (error says why). */
  nft: NftRuleset | null;
  nftError: string | null;
  listenPort: number | null;
  /** net.ipv4.ip_forward and net.ipv6.conf.all.forwarding; null = could not be read. */
  forwarding: { v4: boolean | null; v6: boolean | null };
  /**
   * Prefixes this node carries for other nodes (subnet routes, an exit node's default routes).
   * Nothing can route yet: the netmap's self has no advertised or approved routes and the agent
   * no exit flag, so gather passes none; the check below already judges a node that does.
   */
  routedPrefixes?: string[];
  /** Server clock minus ours, in seconds (from the Date header, half the round trip added); null = not reached. */
  clockSkewS: number | null;
  clockError: string | null;
  /** Peers the link reporter holds stale (node ids); status alone cannot see tx growth. */
  stalePeers: number[];
  /** The handshake age the link reporter calls stale (WEFT_STALE_HANDSHAKE_S); default LINK_STALE_AFTER_S. */
  staleAfterS?: number;
  /**
   * The smallest receive buffer (bytes, `ss -uanm` rb) of the UDP sockets bound to WireGuard's
   * port; null or absent = not read (ss missing, or a kernel WireGuard's sockets are not listed).
   */
  udpReceiveBuffer?: number | null;
}

export interface NftRuleset { nftables: Array<Record<string, any>> }

const pass = (id: string, title: string, detail: string): CheckResult => ({ id, title, status: 'PASS', detail, fix: null });
const warn = (id: string, title: string, detail: string, fix: string): CheckResult => ({ id, title, status: 'WARN', detail, fix });
const fail = (id: string, title: string, detail: string, fix: string): CheckResult => ({ id, title, status: 'FAIL', detail, fix });

/**
 * Below this, wireguard-go's socket overflows under one fast flow: in the lab (bench:relay-lab,
 * Debian wireguard-go 0.0.20220316, which keeps the kernel default of 208 KiB) a direct iperf3
 * stream dropped datagrams at 262 Mbit/s and ran at 448-482 Mbit/s with 0 drops at 4 MiB.
 */
export const UDP_BUFFER_WARN_BYTES = 1024 * 1024;
/** What the fix sets net.core.rmem_default / rmem_max to. */
export const UDP_BUFFER_FIX_BYTES = 4 * 1024 * 1024;

/** Clock skew: WARN from here, FAIL from the server's token tolerance (MACHINE_TOKEN_CLOCK_SKEW_S). */
export const CLOCK_WARN_S = 30;
export const CLOCK_FAIL_S = 300;

export function runChecks(f: DoctorFacts): DoctorReport {
  const s = f.status;
  const iface = s.interface.name;
  const checks: CheckResult[] = [];

  // Daemon and interface.
  if (s.state !== 'running') checks.push(fail('daemon', 'daemon and interface', `the node is ${s.state}`, s.state === 'needs-login' ? 'join: weft up --server URL' : 'bring it up: weft up'));
  else if (!s.interface.up) checks.push(fail('daemon', 'daemon and interface', `interface ${iface} is not up`, 'weft down && weft up (the daemon recreates the interface); see journalctl -u weft'));
  else checks.push(pass('daemon', 'daemon and interface', `daemon running, ${iface} up (${s.interface.backend ?? 'unknown'} backend), control ${s.online ? 'connected' : 'not connected'}`));

  // Keys: the server's (last netmap), the daemon's, and WireGuard's.
  const serverKey = s.self?.nodeKey ?? null;
  if (!serverKey || !f.localNodeKey) checks.push(fail('keys', 'node keys', 'no netmap or no local keys yet', 'weft up'));
  else if (serverKey !== f.localNodeKey) checks.push(fail('keys', 'node keys', `the server has ${short(serverKey)} for this node, the daemon ${short(f.localNodeKey)}`, 'weft logout && weft up --server URL (re-register this device)'));
  else if (f.wg && f.wg.publicKey !== f.localNodeKey) checks.push(fail('keys', 'node keys', `${iface} has key ${short(f.wg.publicKey ?? '(none)')}, not the node's ${short(f.localNodeKey)}`, 'weft down && weft up (reprograms the interface)'));
  else checks.push(pass('keys', 'node keys', `server, daemon and ${iface} agree on ${short(serverKey)}`));

  // Every netmap peer in wg with its allowed IPs.
  if (!f.wg) checks.push(fail('wg-peers', 'WireGuard peers', `could not read wg show ${iface}: ${f.wgError ?? 'unknown error'}`, 'install wireguard-tools (wg) and run doctor as root'));
  else {
    const have = new Map(f.wg.peers.map((p) => [p.publicKey, p.allowedIps.map(normalizeCidr).sort()]));
    const problems: string[] = [];
    for (const p of s.peers) {
      const want = (f.netmapAllowedIps[p.nodeKey] ?? []).map(normalizeCidr).sort();
      const got = have.get(p.nodeKey);
      if (!got) problems.push(`${p.name} (${short(p.nodeKey)}) is missing from ${iface}`);
      else if (got.join(',') !== want.join(',')) problems.push(`${p.name} has allowed IPs ${got.join(',') || '(none)'}, want ${want.join(',')}`);
    }
    if (problems.length) checks.push(fail('wg-peers', 'WireGuard peers', `${problems.join('; ')} (if it comes back after the fix, something else edits the interface: wg set, wg-quick)`, 'weft down && weft up'));
    else checks.push(pass('wg-peers', 'WireGuard peers', `all ${s.peers.length} netmap peers in ${iface} with the right allowed IPs`));
  }

  // Routes to peer addresses via the Weft interface; no ip rule diverting them.
  {
    const problems: string[] = [];
    const fixes: string[] = [];
    for (const p of s.peers) {
      for (const addr of [p.ipv4, p.ipv6]) {
        const r = f.routes[addr];
        if (!r) continue;
        if (r.error) problems.push(`${p.name} ${addr}: ${r.error}`);
        else if (r.dev !== iface) {
          const rule = divertingRule(f.rules, addr);
          if (rule) {
            problems.push(`${p.name} ${addr} goes via ${r.dev ?? '?'}: ip rule ${rule.priority} sends it to table ${rule.table ?? rule.action}`);
            fixes.push(`ip${rule.family === 6 ? ' -6' : ''} rule del priority ${rule.priority}`);
          } else {
            problems.push(`${p.name} ${addr} goes via ${r.dev ?? '?'}${r.table && r.table !== 'main' ? ` (table ${r.table})` : ''}, not ${iface}`);
            fixes.push(`ip${addr.includes(':') ? ' -6' : ''} route del ${addr}${r.dev ? ` dev ${r.dev}` : ''}${r.table && r.table !== 'main' ? ` table ${r.table}` : ''}`);
          }
        }
      }
    }
    if (problems.length) checks.push(fail('routes', 'routes to peers', problems.join('; '), [...new Set(fixes)].join(' && ') || `route the peers' addresses via ${iface}`));
    else checks.push(pass('routes', 'routes to peers', s.peers.length ? `every peer address routes via ${iface}` : 'no peers'));
  }

  // Firewall: Weft's table when a packet filter is in force; the WireGuard port not dropped by another table.
  if (!f.nft) checks.push(warn('firewall', 'firewall', `nft not readable: ${f.nftError ?? 'unknown'}`, 'install nftables and run doctor as root'));
  else {
    const tables = f.nft.nftables.filter((o) => o.table).map((o) => `${o.table.family} ${o.table.name}`);
    const weftThere = tables.includes('inet weft');
    const blockers = f.listenPort ? blockingRules(f.nft, f.listenPort) : [];
    if (s.firewall.state !== 'off' && !weftThere) checks.push(fail('firewall', 'firewall', `a packet filter is in force (${s.firewall.state}) but table inet weft is missing`, 'weft down && weft up (the daemon loads the table again)'));
    else if (blockers.length) {
      checks.push(fail('firewall', 'firewall', `UDP port ${f.listenPort} (WireGuard) is dropped by ${blockers.map((b) => `table ${b.family} ${b.table} chain ${b.chain}`).join(', ')}`,
        blockers.map((b) => `nft delete rule ${b.family} ${b.table} ${b.chain} handle ${b.handle}`).join(' && ')));
    } else checks.push(pass('firewall', 'firewall', `${weftThere ? 'table inet weft present' : 'no packet filter from the server (table inet weft not needed)'}; UDP ${f.listenPort ?? '?'} not dropped by any table`));
  }

  checks.push(forwardingCheck(f.routedPrefixes ?? [], f.forwarding));
  checks.push(udpBufferCheck(s.interface.backend ?? null, f.listenPort, f.udpReceiveBuffer ?? null));

  // Clock.
  if (f.clockSkewS === null) checks.push(warn('clock', 'clock', `server clock not read: ${f.clockError ?? 'not connected'}`, 'check the server is reachable (weft status), then run doctor again'));
  else {
    const abs = Math.abs(f.clockSkewS);
    const d = `this host is ${Math.round(abs)} s ${f.clockSkewS > 0 ? 'behind' : 'ahead of'} the server`;
    if (abs >= CLOCK_FAIL_S) checks.push(fail('clock', 'clock', `${d}: the server refuses machine tokens past ${CLOCK_FAIL_S} s`, 'sync the clock: timedatectl set-ntp true (or chronyc makestep)'));
    else if (abs >= CLOCK_WARN_S) checks.push(warn('clock', 'clock', d, 'sync the clock: timedatectl set-ntp true'));
    else checks.push(pass('clock', 'clock', `${d} (within ${CLOCK_WARN_S} s)`));
  }

  // Stale handshakes with traffic attempted.
  {
    const stale = s.peers.filter((p) => f.stalePeers.includes(p.id));
    if (stale.length) {
      checks.push(fail('handshakes', 'handshakes', `${stale.map((p) => `${p.name} (last handshake ${p.handshakeAgeSeconds === null ? 'never' : `${p.handshakeAgeSeconds} s ago`})`).join(', ')}: traffic attempted, no session for over ${f.staleAfterS ?? LINK_STALE_AFTER_S} s`,
        'on the peer: weft doctor (is its daemon and WireGuard running?); on both: weft netcheck (is UDP blocked?)'));
    } else checks.push(pass('handshakes', 'handshakes', 'no link with traffic attempted and no recent handshake'));
  }

  checks.push(mtuCheck(s));

  return { version: 1, ok: !checks.some((c) => c.status === 'FAIL'), checks };
}

/** Forwarding where the node routes: each address family it carries prefixes of needs its sysctl on. */
export function forwardingCheck(routed: string[], fwd: DoctorFacts['forwarding']): CheckResult {
  const title = 'forwarding';
  const state = (v: boolean | null) => (v === null ? 'unknown' : v ? 'on' : 'off');
  if (routed.length === 0) return pass('forwarding', title, `this node routes for no one (no subnet routes, not an exit node), so it needs no forwarding (IPv4 ${state(fwd.v4)}, IPv6 ${state(fwd.v6)})`);
  const families = [
    { v6: false, prefixes: routed.filter((p) => !p.includes(':')), on: fwd.v4, sysctl: 'net.ipv4.ip_forward' },
    { v6: true, prefixes: routed.filter((p) => p.includes(':')), on: fwd.v6, sysctl: 'net.ipv6.conf.all.forwarding' },
  ].filter((x) => x.prefixes.length > 0);
  const off = families.filter((x) => x.on === false);
  const unknown = families.filter((x) => x.on === null);
  if (off.length) {
    return fail('forwarding', title, off.map((x) => `this node routes ${x.prefixes.join(', ')} for its peers but ${x.sysctl} is 0: their packets stop here`).join('; '),
      `${off.map((x) => `sysctl -w ${x.sysctl}=1`).join(' && ')} (to keep it across reboots: a line ${off.map((x) => `${x.sysctl}=1`).join(', ')} in /etc/sysctl.d/99-weft.conf)`);
  }
  if (unknown.length) return warn('forwarding', title, `this node routes ${unknown.flatMap((x) => x.prefixes).join(', ')} but ${unknown.map((x) => x.sysctl).join(', ')} could not be read`, 'run doctor as root on a Linux host (/proc/sys must be readable)');
  return pass('forwarding', title, `forwarding on for the ${routed.length} prefix${routed.length === 1 ? '' : 'es'} this node routes (${routed.join(', ')})`);
}

/**
 * wireguard-go's UDP receive buffer: a userspace WireGuard reads its socket from one goroutine
 * per batch, and a fast flow that outruns it for a moment overflows a small buffer (TCP inside
 * then backs off). WARN below UDP_BUFFER_WARN_BYTES; kernel WireGuard is not judged.
 */
export function udpBufferCheck(backend: string | null, port: number | null, rb: number | null): CheckResult {
  const title = 'UDP receive buffer';
  if (backend !== 'userspace') return pass('udp-buffer', title, `not judged for the ${backend ?? 'unknown'} backend (only wireguard-go reads its socket from user space)`);
  if (rb === null) return pass('udp-buffer', title, `wireguard-go's socket${port ? ` on UDP ${port}` : ''} not measured (ss could not list it)`);
  const kib = (n: number) => `${Math.round(n / 1024)} KiB`;
  if (rb >= UDP_BUFFER_WARN_BYTES) return pass('udp-buffer', title, `wireguard-go's socket on UDP ${port ?? '?'} has a ${kib(rb)} receive buffer`);
  return warn('udp-buffer', title,
    `wireguard-go's socket on UDP ${port ?? '?'} has a ${kib(rb)} receive buffer (the system default: the agent raises it to 7 MiB when it can, as root on Linux 5.6+ with its native addon built, and its log says why it did not): a fast flow overflows it and loses packets, and TCP inside the tunnel slows down (lab: 262 Mbit/s with drops at 208 KiB, 450-480 with none at 4 MiB)`,
    `sysctl -w net.core.rmem_default=${UDP_BUFFER_FIX_BYTES} net.core.rmem_max=${UDP_BUFFER_FIX_BYTES} && weft down && weft up (wireguard-go takes the default when it opens its socket; to keep it across reboots: net.core.rmem_default=${UDP_BUFFER_FIX_BYTES} and net.core.rmem_max=${UDP_BUFFER_FIX_BYTES} in /etc/sysctl.d/99-weft.conf)`);
}

/**
 * Path MTU against the interface MTU, for every active peer (a live session: path direct or
 * relay). PASS: each measured path carries the interface MTU; FAIL: one does not (large packets
 * to it are lost: transfers stall while ping works); WARN: an active peer is not measured yet.
 */
export function mtuCheck(s: Status): CheckResult {
  const mtu = s.interface.mtu;
  const active = s.peers.filter((p) => p.path !== 'none');
  if (active.length === 0) return pass('mtu', 'path MTU', `no active peer (interface MTU ${mtu}, ${s.interface.mtuMode})`);
  const unmeasured = active.filter((p) => p.pathMtu === null);
  const small = active.filter((p) => p.pathMtu !== null && p.pathMtu < mtu);
  if (small.length) {
    const least = Math.min(...small.map((p) => p.pathMtu!));
    const detail = `interface MTU ${mtu} is larger than the path to ${small.map((p) => `${p.name} (${p.pathMtu})`).join(', ')}: packets above ${least} bytes to ${small.length === 1 ? 'it' : 'them'} are lost (large transfers stall while ping works)`;
    return fail('mtu', 'path MTU', detail, s.interface.mtuMode === 'fixed'
      ? `restart the daemon without --mtu (the MTU then follows the paths), or with --mtu ${least}`
      : `the daemon lowers the MTU at its next probe; until then: ip link set dev ${s.interface.name} mtu ${least}`);
  }
  if (unmeasured.length) {
    return warn('mtu', 'path MTU', `not measured yet for ${unmeasured.map((p) => p.name).join(', ')} (interface MTU ${mtu}, ${s.interface.mtuMode})`,
      `run weft doctor again in a few seconds (probing starts once a peer has a session); if it stays unmeasured, the peer's weft is older or its firewall drops UDP ${MTU_PROBE_PORT} on the tunnel`);
  }
  return pass('mtu', 'path MTU', `interface MTU ${mtu} (${s.interface.mtuMode}) fits every active path: ${active.map((p) => `${p.name} ${p.pathMtu}`).join(', ')}`);
}

function short(key: string): string {
  return key.length > 20 ? `${key.slice(0, 16)}...` : key;
}

/** A rule other than the standard three (local, main, default) whose selector covers `addr`. */
export function divertingRule(rules: IpRule[], addr: string): IpRule | undefined {
  const v6 = addr.includes(':');
  return rules.find((r) => r.family === (v6 ? 6 : 4) && !['local', 'main', 'default'].includes(r.table ?? '') && r.table !== undefined
    && (!r.dst || r.dst === 'all' || covers(r.dst, r.dstlen ?? (v6 ? 128 : 32), addr)) && (!r.src || r.src === 'all'));
}

function covers(net: string, len: number, addr: string): boolean {
  if (net.includes(':') || addr.includes(':')) return net === addr || len === 0;
  const n = (a: string) => a.split('.').reduce((x, o) => (x << 8) | Number(o), 0) >>> 0;
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((n(net) & mask) >>> 0) === ((n(addr) & mask) >>> 0);
}

export interface Blocker { family: string; table: string; chain: string; handle: number }

/**
 * Rules in tables other than Weft's that drop or reject UDP to `port` (a `udp dport` match equal
 * to the port, or a set/range holding it, followed by drop or reject). Weft's own table never
 * drops its port.
 */
export function blockingRules(rs: NftRuleset, port: number): Blocker[] {
  const out: Blocker[] = [];
  for (const o of rs.nftables) {
    const rule = o.rule;
    if (!rule || (rule.family === 'inet' && rule.table === 'weft')) continue;
    const exprs: any[] = rule.expr ?? [];
    const drops = exprs.some((e) => 'drop' in e || 'reject' in e);
    const matches = exprs.some((e) => {
      const m = e.match;
      if (!m || m.op === '!=') return false;
      const p = m.left?.payload;
      if (!p || p.field !== 'dport' || (p.protocol !== 'udp' && p.protocol !== 'th')) return false;
      return holds(m.right, port);
    });
    if (drops && matches) out.push({ family: rule.family, table: rule.table, chain: rule.chain, handle: rule.handle });
  }
  return out;
}

function holds(v: any, port: number): boolean {
  if (typeof v === 'number') return v === port;
  if (Array.isArray(v)) return v.some((x) => holds(x, port));
  if (v?.set) return holds(v.set, port);
  if (v?.range) return port >= v.range[0] && port <= v.range[1];
  return false;
}

export function formatReport(r: DoctorReport): string {
  const lines = r.checks.map((c) => `${c.status.padEnd(4)}  ${c.title}: ${c.detail}${c.fix ? `\n      fix: ${c.fix}` : ''}`);
  const fails = r.checks.filter((c) => c.status === 'FAIL').length;
  const warns = r.checks.filter((c) => c.status === 'WARN').length;
  return `${lines.join('\n')}\n\n${fails ? `${fails} FAIL` : 'no FAIL'}, ${warns} WARN\n`;
}

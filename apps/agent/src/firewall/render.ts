/**
 * CheckedFilter -> the nftables script that replaces Weft's table in one transaction. Pure: the
 * same filter and interface give the same text (golden files in test/unit/firewall/golden).
 *
 * One `inet` table, `weft`, and nothing outside it: other tools' tables (Docker's, the
 * distribution's firewall) are never named. The script creates the table if it is missing, deletes
 * it and builds it again; `nft -f` runs the file as one transaction, so the kernel sees either the
 * old table or the new one, never an empty one, and a script that fails changes nothing.
 *
 * Traffic arriving over the WireGuard interface (input, and forward for a subnet router) jumps to
 * `tunnel_in`; every other packet is left alone (the base chains' policy is accept):
 * - replies to connections this node opened are accepted (`ct direction reply`);
 * - every other packet is checked against the rules, not only a connection's first: a removed
 *   rule stops an open flow at its next packet, with no window while conntrack entries are cleared;
 * - anything else is dropped.
 * Before the jump, input accepts the path MTU probe port (MTU_PROBE_PORT): every peer may probe.
 * `output` stops the node from taking up a TCP flow over the tunnel in the middle (conntrack's
 * loose pickup, after the agent deletes the entry of a flow that lost permission): the node's
 * next segment would otherwise make it the flow's opener, and the peer's packets replies. The
 * local socket gets a reset, so the application sees the cut at once.
 */
import { PORT_PROTOCOLS, type CheckedFilter, type FilterRule, type PortRange } from './filter.js';
import { formatRange, merge, type Family, type Range } from './ranges.js';
import { MTU_PROBE_PORT } from '../tunables.js';

export const TABLE = 'weft';
/** Set elements per line in the script (readability only). */
const ELEMENTS_PER_LINE = 8;

/** Linux interface names: 1-15 characters; these are the ones that need no escaping in nft. */
export function checkInterfaceName(name: string): string {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) throw new Error(`interface name ${JSON.stringify(name)} cannot be used in an nftables rule`);
  return name;
}

const FAMILY = { 4: { ip: 'ip', type: 'ipv4_addr', nfproto: 'ipv4' }, 6: { ip: 'ip6', type: 'ipv6_addr', nfproto: 'ipv6' } } as const;

function anon(items: string[]): string {
  return items.length === 1 ? items[0]! : `{ ${items.join(', ')} }`;
}

function mergePorts(ports: PortRange[]): PortRange[] {
  const sorted = [...ports].sort((a, b) => a.lo - b.lo);
  const out: PortRange[] = [];
  for (const p of sorted) {
    const last = out[out.length - 1];
    if (last && p.lo <= last.hi + 1) last.hi = Math.max(last.hi, p.hi);
    else out.push({ ...p });
  }
  return out;
}

const portText = (p: PortRange) => (p.lo === p.hi ? String(p.lo) : `${p.lo}-${p.hi}`);

function elements(ranges: Range[]): string {
  const items = ranges.map(formatRange);
  const lines: string[] = [];
  for (let i = 0; i < items.length; i += ELEMENTS_PER_LINE) lines.push(items.slice(i, i + ELEMENTS_PER_LINE).join(', '));
  return lines.join(',\n\t\t\t     ');
}

interface Rendered {
  sets: string[];
  lines: string[];
}

/** One family of one rule: its source set (if any) and its accept lines. */
function renderFamily(rule: FilterRule, family: Family): Rendered {
  const f = FAMILY[family];
  const sets: string[] = [];
  // Single addresses go in a hash set, CIDRs and ranges in an interval set: at 10,000 addresses
  // nft needs half the time for the hash set (bench/nft.ts). One accept line per set.
  const saddrs: string[] = [];
  if (rule.src === null) {
    saddrs.push('');
  } else {
    const src = rule.src[family];
    if (src.length === 0) return { sets, lines: [] };
    const singles = src.filter((r) => r.lo === r.hi);
    const spans = src.filter((r) => r.lo !== r.hi);
    for (const [list, name, flags] of [[singles, `rule${rule.index}_src${family}`, ''], [spans, `rule${rule.index}_src${family}_nets`, '\t\tflags interval\n']] as const) {
      if (list.length === 0) continue;
      sets.push(`\tset ${name} {\n\t\ttype ${f.type}\n${flags}\t\telements = { ${elements(list)} }\n\t}`);
      saddrs.push(`${f.ip} saddr @${name}`);
    }
  }
  // Destination address set (text, or '' for any) -> its port ranges; addresses of one port range merged.
  const byPorts = new Map<string, { ports: PortRange; any: boolean; ranges: Range[] }>();
  for (const d of rule.dst) {
    const ranges = d.ranges?.filter((r) => r.family === family);
    if (ranges && ranges.length === 0) continue;
    const key = portText(d.ports);
    const g = byPorts.get(key) ?? { ports: d.ports, any: false, ranges: [] };
    if (ranges) g.ranges.push(...ranges);
    else g.any = true;
    byPorts.set(key, g);
  }
  if (byPorts.size === 0) return { sets, lines: [] };
  const byDst = new Map<string, PortRange[]>();
  for (const g of byPorts.values()) {
    const dst = g.any ? '' : anon(merge(g.ranges).map(formatRange));
    byDst.set(dst, [...(byDst.get(dst) ?? []), g.ports]);
  }
  const portProtos = rule.protos.filter((p) => PORT_PROTOCOLS.has(p));
  const otherProtos = rule.protos.filter((p) => !PORT_PROTOCOLS.has(p));
  const comment = `comment "rule ${rule.index}"`;
  const lines: string[] = [];
  const match = (saddr: string, dst: string) => {
    const parts = [saddr, dst === '' ? '' : `${f.ip} daddr ${dst}`].filter((p) => p !== '');
    return parts.length > 0 ? parts.join(' ') : `meta nfproto ${f.nfproto}`;
  };
  const dsts = [...byDst.keys()].sort();
  if (portProtos.length > 0) {
    for (const dst of dsts) {
      const ports = mergePorts(byDst.get(dst)!);
      const dport = ports.length === 1 && ports[0]!.lo === 0 && ports[0]!.hi === 65535 ? '' : ` th dport ${anon(ports.map(portText))}`;
      for (const saddr of saddrs) lines.push(`${match(saddr, dst)} meta l4proto ${anon(portProtos.map(String))}${dport} accept ${comment}`);
    }
  }
  if (otherProtos.length > 0) {
    // Ports mean nothing to these protocols: every destination of the rule, whatever its ports.
    const all = byDst.has('') ? [''] : [anon(merge([...byPorts.values()].flatMap((g) => g.ranges)).map(formatRange))];
    for (const dst of all) for (const saddr of saddrs) lines.push(`${match(saddr, dst)} meta l4proto ${anon(otherProtos.map(String))} accept ${comment}`);
  }
  return { sets, lines };
}

/** The whole script for `nft -f -`. */
export function renderRuleset(filter: CheckedFilter, interfaceName: string): string {
  const iface = JSON.stringify(checkInterfaceName(interfaceName));
  const sets: string[] = [];
  const accepts: string[] = [];
  for (const rule of filter.rules) {
    for (const family of [4, 6] as const) {
      const r = renderFamily(rule, family);
      sets.push(...r.sets);
      accepts.push(...r.lines);
    }
  }
  const chain = (name: string, body: string[]) => `\tchain ${name} {\n${body.map((l) => `\t\t${l}\n`).join('')}\t}`;
  const parts = [
    ...sets,
    // Path MTU probes (mtu-probe.ts) reach this node's responder whatever the policy: it only sends short acks.
    chain('input', ['type filter hook input priority filter; policy accept;', `iifname ${iface} udp dport ${MTU_PROBE_PORT} accept`, `iifname ${iface} jump tunnel_in`]),
    chain('forward', ['type filter hook forward priority filter; policy accept;', `iifname ${iface} jump tunnel_in`]),
    chain('output', [
      'type filter hook output priority filter; policy accept;',
      `oifname ${iface} ct state new meta l4proto tcp tcp flags & (syn | ack) != syn reject with tcp reset`,
    ]),
    chain('tunnel_in', [
      'ct state invalid drop',
      'ct state related accept',
      'ct state established ct direction reply accept',
      ...accepts,
      'drop',
    ]),
  ];
  return `# Weft packet filter for ${interfaceName}: generated, replaced whole on every change.\n`
    + `table inet ${TABLE} {}\ndelete table inet ${TABLE}\ntable inet ${TABLE} {\n${parts.join('\n')}\n}\n`;
}

/** Removes Weft's table (no filter: every tunnel packet is allowed, as before policies). */
export function renderRemoval(): string {
  return `table inet ${TABLE} {}\ndelete table inet ${TABLE}\n`;
}

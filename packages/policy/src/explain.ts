/**
 * Explain: may SRC reach DST (on a port, with a protocol), and which rule says so. The same
 * meaning as the compiled filters (a packet from `a` to `b` is allowed when a node receiving `b`
 * has a rule that admits it), answered for one question by walking the policy's rules in order
 * instead of compiling every node, so it costs one pass over the rules at any fleet size.
 *
 * SRC and DST name endpoints: an IP address; `tag:NAME` (the nodes carrying the tag); `node:NAME`
 * or `user:NAME` explicitly; or a bare name, which is a node's name first, else a user's name or
 * login (that user's untagged nodes). Every (source address, destination address) pair of the same
 * family is checked; the answer is "allowed" only when every pair is.
 */
import { containsAddr, formatAddr, parseAddr, union, type AddrSet } from './addr.js';
import type { Pos } from './errors.js';
import { ALLOW_ALL, type Policy, type PortRange, type Rule } from './model.js';
import type { Prepared, PreparedNode } from './nodes.js';
import { ICMPV6, PORTED, PROTO, parseProto } from './protocols.js';

/** An input as a JSON string: quoted, with line breaks and control characters escaped, so a refusal stays one line. */
const quote = (v: unknown): string => JSON.stringify(String(v));
import { ANY, NodeIndex, type Resolved } from './select.js';

/** Most addresses one side of a question may name: a user or tag wider than this is refused. */
export const MAX_EXPLAIN_ADDRS = 256;

export interface ExplainQuery {
  src: string;
  dst: string;
  /** Absent: any port (the answer lists the ports allowed). Not allowed for protocols without ports. */
  port?: number;
  /** A protocol name (tcp, udp, icmp, ...) or IANA number; absent = tcp. `icmp` is ICMPv4 or ICMPv6 by the pair's family. */
  proto?: string;
}

export interface ExplainEndpoint {
  /** What the question said. */
  input: string;
  /** What it was taken to be. */
  kind: 'ip' | 'node' | 'user' | 'tag';
  /** The node name, user login, tag, or the address. */
  name: string;
  /** The addresses it stands for, IPv4 first, ascending. */
  addresses: string[];
}

export interface ExplainPair {
  src: string;
  dst: string;
  /** The IANA protocol checked for this pair. */
  proto: number;
  allowed: boolean;
  /** Every rule that admits the pair, in policy order (the first is the one that decides). */
  rules: Pos[];
  /** With no port asked: the ports the rules admit ("22", "80-90", "*"), merged and ascending. */
  ports?: string[];
  /** Why nothing could admit it, when that is not just "no rule says so". */
  note?: string;
}

export interface Explanation {
  /** True when every pair is allowed. */
  allowed: boolean;
  /** True when no policy is stored: the built-in default, every node reaches every node. */
  default: boolean;
  src: ExplainEndpoint;
  dst: ExplainEndpoint;
  port: number | null;
  /** The rule that allows the first allowed pair; null when nothing is allowed or for the default. */
  rule: Pos | null;
  pairs: ExplainPair[];
}

/** A question that cannot be answered as asked; `field` names the part that is wrong. */
export class ExplainRefused extends Error {
  constructor(readonly field: 'src' | 'dst' | 'port' | 'proto', message: string) {
    super(message);
  }
}

type Addr = { family: 4 | 6; value: bigint };

/** `policy` null: none stored, the default (every node reaches every node). */
export function explain(policy: Policy | null, prepared: Prepared, q: ExplainQuery): Explanation {
  const p = policy ?? ALLOW_ALL;
  const index = new NodeIndex(prepared, p);
  const protos = parseProto(q.proto ?? 'tcp');
  if (!protos) throw new ExplainRefused('proto', `unknown protocol ${quote(q.proto)}: use a name (${Object.keys(PROTO).join(', ')}) or a number 0-255`);
  const ported = protos.every((n) => PORTED.has(n));
  if (q.port !== undefined) {
    if (!Number.isInteger(q.port) || q.port < 0 || q.port > 65535) throw new ExplainRefused('port', `port ${q.port} is not 0-65535`);
    if (!ported) throw new ExplainRefused('port', `protocol ${q.proto} has no ports; leave the port out`);
  }
  const src = endpoint(prepared, q.src, 'src');
  const dst = endpoint(prepared, q.dst, 'dst');
  const srcs = src.addrs;
  const dsts = dst.addrs;
  const sources = p.rules.map((r) => resolveSources(index, r));
  const pairs: ExplainPair[] = [];
  for (const a of srcs) {
    for (const b of dsts) {
      if (a.family !== b.family) continue;
      // icmp names both ICMPs: each family checks its own.
      const proto = protos.length === 1 ? protos[0]! : a.family === 4 ? protos.find((n) => n !== ICMPV6) ?? protos[0]! : ICMPV6;
      pairs.push(checkPair(p, index, sources, a, b, proto, q.port ?? null));
    }
  }
  if (!pairs.length) throw new ExplainRefused('dst', `${quote(q.src)} and ${quote(q.dst)} share no IP family (one is IPv4 only, the other IPv6 only)`);
  const allowed = pairs.every((x) => x.allowed);
  const first = pairs.find((x) => x.allowed);
  return {
    allowed,
    default: policy === null,
    src: src.view,
    dst: dst.view,
    port: q.port ?? null,
    rule: policy === null ? null : first?.rules[0] ?? null,
    pairs: policy === null ? pairs.map((x) => ({ ...x, rules: [] })) : pairs,
  };
}

function resolveSources(index: NodeIndex, rule: Rule): Resolved {
  const sets: AddrSet[] = [];
  for (const sel of rule.src) {
    const r = index.resolve(sel);
    if (r === ANY) return ANY;
    sets.push(r);
  }
  return union(...sets);
}

const has = (set: Resolved, x: Addr) => set === ANY || containsAddr(set, x.family, x.value);

function checkPair(p: Policy, index: NodeIndex, sources: Resolved[], a: Addr, b: Addr, proto: number, port: number | null): ExplainPair {
  const out: ExplainPair = { src: formatAddr(a.family, a.value), dst: formatAddr(b.family, b.value), proto, allowed: false, rules: [] };
  const owners = index.owners(b.family, b.value);
  if (!owners.length) {
    out.note = `no node has ${out.dst} or an approved route holding it, so nothing receives it`;
    if (port === null && PORTED.has(proto)) out.ports = [];
    return out;
  }
  // autogroup:self: b must be an own address of an untagged node, and a one of that user's nodes.
  const selfOwner = owners.map((i) => index.prepared.nodes[i]!).find((n) => !n.tagged && containsAddr(n.ips, b.family, b.value));
  const mine = selfOwner ? index.resolve({ kind: 'user', login: selfOwner.input.user! }) : null;
  const ports: PortRange[] = [];
  p.rules.forEach((rule, i) => {
    if (!rule.protos.includes(proto) || !has(sources[i]!, a)) return;
    let admits = false;
    for (const d of rule.dst) {
      // A protocol without ports (icmp, ...) is admitted only by a rule open on every port, as in Tailscale's filter.
      const open = !PORTED.has(proto) ? d.ports.filter((r) => r.first === 0 && r.last === 65535) : port === null ? d.ports : d.ports.filter((r) => r.first <= port && port <= r.last);
      if (!open.length) continue;
      const reaches = d.sel.kind === 'self' ? mine !== null && has(mine, a) : has(index.resolve(d.sel), b);
      if (!reaches) continue;
      admits = true;
      ports.push(...open);
    }
    if (admits && !out.rules.some((r) => r.line === rule.pos.line && r.col === rule.pos.col)) out.rules.push(rule.pos);
  });
  out.allowed = out.rules.length > 0;
  if (port === null && PORTED.has(proto)) out.ports = portsText(ports);
  return out;
}

function portsText(ranges: PortRange[]): string[] {
  const sorted = [...ranges].sort((x, y) => x.first - y.first || x.last - y.last);
  const merged: { first: number; last: number }[] = [];
  for (const r of sorted) {
    const last = merged.at(-1);
    if (last && r.first <= last.last + 1) last.last = Math.max(last.last, r.last);
    else merged.push({ ...r });
  }
  return merged.map((r) => (r.first === 0 && r.last === 65535 ? '*' : r.first === r.last ? String(r.first) : `${r.first}-${r.last}`));
}

function endpoint(prepared: Prepared, input: string, field: 'src' | 'dst'): { view: ExplainEndpoint; addrs: Addr[] } {
  const text = input.trim();
  const ip = parseAddr(text);
  if (ip) return { view: { input, kind: 'ip', name: formatAddr(ip.family, ip.value), addresses: [formatAddr(ip.family, ip.value)] }, addrs: [ip] };
  const nodes = prepared.nodes;
  const named = (kind: ExplainEndpoint['kind'], name: string, of: PreparedNode[], none: string) => {
    const addrs = addressesOf(of);
    if (!addrs.length) throw new ExplainRefused(field, none);
    if (addrs.length > MAX_EXPLAIN_ADDRS) throw new ExplainRefused(field, `${quote(input)} names ${addrs.length} addresses (at most ${MAX_EXPLAIN_ADDRS}); explain one node or IP`);
    return { view: { input, kind, name, addresses: addrs.map((x) => formatAddr(x.family, x.value)) }, addrs };
  };
  const byNode = (name: string) => nodes.find((n) => n.name === name);
  const byUser = (name: string) => prepared.users.find((u) => u.login === name) ?? prepared.users.find((u) => u.name === name);
  const userNodes = (login: string) => nodes.filter((n) => !n.tagged && n.input.user === login);
  if (text.startsWith('tag:')) return named('tag', text, nodes.filter((n) => n.tagged && n.input.tags.includes(text)), `no node carries ${text}`);
  const explicit = /^(node|user):(.*)$/.exec(text);
  if (explicit?.[1] === 'node') {
    const n = byNode(explicit[2]!);
    if (!n) throw new ExplainRefused(field, `no node named ${quote(explicit[2])}`);
    return named('node', n.name, [n], `node ${n.name} has no addresses`);
  }
  if (explicit?.[1] === 'user') {
    const u = byUser(explicit[2]!);
    if (!u) throw new ExplainRefused(field, `no user named ${quote(explicit[2])}`);
    return named('user', u.login, userNodes(u.login), `user ${u.name} has no untagged nodes (a tagged node is not its user's)`);
  }
  const n = byNode(text);
  if (n) return named('node', n.name, [n], `node ${n.name} has no addresses`);
  const u = byUser(text);
  if (u) return named('user', u.login, userNodes(u.login), `user ${u.name} has no untagged nodes (a tagged node is not its user's)`);
  throw new ExplainRefused(field, `${quote(input)} is not an IP address, a node, a user or a tag: give a node name, a user's name or login, tag:NAME, or an IP (node:NAME and user:NAME pick one when a node and a user share a name)`);
}

function addressesOf(nodes: PreparedNode[]): Addr[] {
  const out: Addr[] = [];
  for (const family of [4, 6] as const) {
    for (const n of nodes) for (const [lo] of family === 4 ? n.ips.v4 : n.ips.v6) out.push({ family, value: lo });
  }
  return out.sort((x, y) => x.family - y.family || (x.value < y.value ? -1 : x.value > y.value ? 1 : 0));
}

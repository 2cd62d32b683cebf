/**
 * Policy text -> validated `Policy`, or every problem with its line and column. Features of
 * Tailscale's policy files that Weft does not support yet are rejected by name, never ignored.
 */
import { isTagName, TAG_RULE } from '@weft/protocol';
import { parseAddrSet, subtract, union, EMPTY, type AddrSet } from './addr.js';
import { byPosition, PolicyError, PolicyRejected, type Pos } from './errors.js';
import { parseHuJson, type JsonNode } from './hujson.js';
import type { DstEntry, Policy, PolicyTest, PortRange, Rule, Selector, TestCase } from './model.js';
import { DEFAULT_PROTOS, PORTED, parseProto } from './protocols.js';

const SUPPORTED = ['groups', 'hosts', 'tagOwners', 'ipsets', 'acls', 'grants', 'autoApprovers', 'tests'];
/** Tailscale sections Weft knows of but does not implement yet. */
const NOT_YET = ['ssh', 'sshTests', 'nodeAttrs', 'postures', 'defaultSrcPosture', 'derpMap', 'disableIPv4', 'OneCGNATRoute', 'randomizeClientPort', 'attrConfig', 'autogroups'];
const UNSUPPORTED_AUTOGROUPS = ['autogroup:internet', 'autogroup:admin', 'autogroup:owner', 'autogroup:it-admin', 'autogroup:network-admin', 'autogroup:billing-admin', 'autogroup:auditor', 'autogroup:nonroot', 'autogroup:shared', 'autogroup:multiple-roles'];

const GROUP_RE = /^group:[A-Za-z0-9][A-Za-z0-9._-]*$/;
const IPSET_RE = /^ipset:[A-Za-z0-9][A-Za-z0-9._-]*$/;
const HOST_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const LOGIN_RE = /^[^\s@:]+@[^\s@:]*$/;

type Ctx = 'src' | 'dst' | 'test-src' | 'test-dst';

/**
 * `directoryGroups`: groups the deployment's directory defines (SCIM-provisioned groups), by
 * name ("group:eng") to member logins. They may be named in the policy as if it defined them; a
 * group the policy also defines gets the members of both.
 */
export interface ParseOptions {
  directoryGroups?: ReadonlyMap<string, readonly string[]>;
  /**
   * A `group:` the policy names that neither it nor the directory defines is an empty group, not
   * an error: for a stored policy (judged strictly when it was set) whose directory group was
   * deleted since, so its members lose what it granted rather than the whole policy failing.
   */
  missingGroupsEmpty?: boolean;
}

export function parsePolicy(text: string, opts: ParseOptions = {}): Policy {
  let root: JsonNode;
  try {
    root = parseHuJson(text);
  } catch (e) {
    if (e instanceof PolicyError) throw new PolicyRejected([e]);
    throw e;
  }
  const v = new Validator(opts.directoryGroups, opts.missingGroupsEmpty ?? false);
  const policy = v.policy(root);
  if (v.errors.length) throw new PolicyRejected(v.errors.sort(byPosition));
  return policy;
}

class Validator {
  readonly errors: PolicyError[] = [];
  private groups = new Map<string, string[]>();
  private tagOwners = new Map<string, string[]>();
  private hosts = new Map<string, AddrSet>();
  private ipsetNodes = new Map<string, JsonNode>();
  private ipsets = new Map<string, AddrSet | 'resolving' | 'bad'>();

  constructor(
    private readonly directoryGroups: ReadonlyMap<string, readonly string[]> | undefined,
    private readonly missingGroupsEmpty: boolean,
  ) {}

  private hasGroup(name: string): boolean {
    if (this.groups.has(name)) return true;
    if (!this.missingGroupsEmpty || !GROUP_RE.test(name)) return false;
    this.groups.set(name, []);
    return true;
  }

  private err(pos: Pos, message: string): void {
    this.errors.push(new PolicyError(pos, message));
  }

  policy(root: JsonNode): Policy {
    const empty: Policy = { groups: new Map(), tagOwners: new Map(), rules: [], tests: [], autoApprovers: { routes: [], exitNode: [] } };
    if (root.kind !== 'object') {
      this.err(root.pos, 'a policy is a JSON object ({ "acls": [...], ... })');
      return empty;
    }
    const sections = new Map<string, JsonNode>();
    for (const { key, keyPos, value } of root.entries) {
      if (SUPPORTED.includes(key)) sections.set(key, value);
      else if (NOT_YET.includes(key)) this.err(keyPos, `"${key}" is a Tailscale policy feature Weft does not support yet; remove it`);
      else this.err(keyPos, `unknown top-level key "${key}" (known: ${SUPPORTED.join(', ')})`);
    }
    // Names first, so references can be checked in any order.
    this.readGroups(sections.get('groups'));
    this.readTagOwners(sections.get('tagOwners'));
    this.readHosts(sections.get('hosts'));
    this.readIpsetNames(sections.get('ipsets'));
    for (const name of this.ipsetNodes.keys()) this.resolveIpset(name, []);
    this.checkTagOwners(sections.get('tagOwners'));
    const rules = [...this.readAcls(sections.get('acls')), ...this.readGrants(sections.get('grants'))];
    rules.sort((a, b) => a.pos.line - b.pos.line || a.pos.col - b.pos.col);
    return {
      groups: this.groups,
      tagOwners: this.tagOwners,
      rules,
      tests: this.readTests(sections.get('tests')),
      autoApprovers: this.readAutoApprovers(sections.get('autoApprovers')),
    };
  }

  // ---- shape helpers ----

  private object(node: JsonNode | undefined, what: string): { key: string; keyPos: Pos; value: JsonNode }[] {
    if (!node) return [];
    if (node.kind !== 'object') {
      this.err(node.pos, `${what} must be an object`);
      return [];
    }
    return node.entries;
  }

  private array(node: JsonNode | undefined, what: string): JsonNode[] {
    if (!node) return [];
    if (node.kind !== 'array') {
      this.err(node.pos, `${what} must be an array`);
      return [];
    }
    return node.items;
  }

  private strings(node: JsonNode | undefined, what: string): { text: string; pos: Pos }[] {
    return this.array(node, what).flatMap((item) => {
      if (item.kind !== 'string') {
        this.err(item.pos, `${what} must hold strings`);
        return [];
      }
      return [{ text: item.value, pos: item.pos }];
    });
  }

  private fields(node: JsonNode, what: string, known: string[], notYet: string[]): Map<string, JsonNode> | null {
    if (node.kind !== 'object') {
      this.err(node.pos, `${what} must be an object`);
      return null;
    }
    const out = new Map<string, JsonNode>();
    for (const { key, keyPos, value } of node.entries) {
      if (known.includes(key)) out.set(key, value);
      else if (notYet.includes(key)) this.err(keyPos, `"${key}" in ${what} is a Tailscale policy feature Weft does not support yet`);
      else this.err(keyPos, `unknown key "${key}" in ${what} (known: ${known.join(', ')})`);
    }
    return out;
  }

  // ---- named sets ----

  private readGroups(node: JsonNode | undefined): void {
    for (const { key, keyPos, value } of this.object(node, '"groups"')) {
      if (!GROUP_RE.test(key)) this.err(keyPos, `group name "${key}" must look like group:name`);
      const members: string[] = [];
      for (const m of this.strings(value, `group "${key}"`)) {
        if (m.text.startsWith('group:')) this.err(m.pos, `group "${key}" contains "${m.text}": groups cannot contain other groups (as in Tailscale), list its users instead`);
        else if (m.text.startsWith('tag:') || m.text.startsWith('autogroup:')) this.err(m.pos, `group "${key}" contains "${m.text}": groups hold only users`);
        else if (!LOGIN_RE.test(m.text)) this.err(m.pos, `group member "${m.text}" is not a user login (name@domain)`);
        else members.push(m.text);
      }
      this.groups.set(key, [...new Set(members)].sort());
    }
    for (const [name, members] of this.directoryGroups ?? []) {
      if (!GROUP_RE.test(name)) continue;
      this.groups.set(name, [...new Set([...(this.groups.get(name) ?? []), ...members])].sort());
    }
  }

  private readTagOwners(node: JsonNode | undefined): void {
    for (const { key, keyPos, value } of this.object(node, '"tagOwners"')) {
      if (!isTagName(key)) this.err(keyPos, `tag name "${key}" must look like ${TAG_RULE}`);
      this.tagOwners.set(key, this.strings(value, `tagOwners "${key}"`).map((s) => s.text));
    }
  }

  private checkTagOwners(node: JsonNode | undefined): void {
    for (const { key, value } of this.object(node, '"tagOwners"')) {
      for (const o of this.strings(value, `tagOwners "${key}"`)) this.owner(o, `tag "${key}"`);
    }
  }

  /** An owner in tagOwners or autoApprovers: a user, a group, a tag, or autogroup:member / autogroup:admin. */
  private owner(o: { text: string; pos: Pos }, what: string): void {
    if (o.text.startsWith('group:')) {
      if (!this.hasGroup(o.text)) this.err(o.pos, `${what}: unknown group "${o.text}"`);
    } else if (o.text.startsWith('tag:')) {
      if (!this.tagOwners.has(o.text)) this.err(o.pos, `${what}: unknown tag "${o.text}" (tags must be declared in tagOwners)`);
    } else if (o.text === 'autogroup:member' || o.text === 'autogroup:admin' || o.text === 'autogroup:owner') {
      // Accepted as owners; roles arrive with a later slice.
    } else if (!LOGIN_RE.test(o.text)) {
      this.err(o.pos, `${what}: owner "${o.text}" is not a user, group or tag`);
    }
  }

  private readHosts(node: JsonNode | undefined): void {
    for (const { key, keyPos, value } of this.object(node, '"hosts"')) {
      if (!HOST_RE.test(key) || parseAddrSet(key).hasOwnProperty('set')) {
        this.err(keyPos, `host name "${key}" must be letters, digits, dots, dashes or underscores, and not an address`);
        continue;
      }
      if (value.kind !== 'string') {
        this.err(value.pos, `host "${key}" must be an IP address or CIDR string`);
        continue;
      }
      const parsed = value.value.includes('-') ? { error: `host "${key}": "${value.value}" must be an IP address or CIDR, not a range` } : parseAddrSet(value.value);
      if ('error' in parsed) this.err(value.pos, parsed.error);
      else this.hosts.set(key, parsed.set);
    }
  }

  private readIpsetNames(node: JsonNode | undefined): void {
    for (const { key, keyPos, value } of this.object(node, '"ipsets"')) {
      if (!IPSET_RE.test(key)) this.err(keyPos, `ipset name "${key}" must look like ipset:name`);
      else this.ipsetNodes.set(key, value);
    }
  }

  /** Entries: an IP, CIDR, range, host, or another ipset; "add X" (the default) or "remove X". */
  private resolveIpset(name: string, path: string[]): AddrSet | null {
    const have = this.ipsets.get(name);
    if (have === 'bad' || have === 'resolving') return null;
    if (have) return have;
    this.ipsets.set(name, 'resolving');
    let set = EMPTY;
    let removed = EMPTY;
    let ok = true;
    for (const e of this.strings(this.ipsetNodes.get(name), `ipset "${name}"`)) {
      const m = /^(add|remove)\s+(.*)$/.exec(e.text);
      const op = m ? m[1] : 'add';
      const ref = m ? m[2]!.trim() : e.text;
      let part: AddrSet | null = null;
      if (ref.startsWith('ipset:')) {
        if (!this.ipsetNodes.has(ref)) this.err(e.pos, `ipset "${name}": unknown ipset "${ref}"`);
        else if (this.ipsets.get(ref) === 'resolving') this.err(e.pos, `ipset cycle: ${[...path, name, ref].join(' -> ')}`);
        else part = this.resolveIpset(ref, [...path, name]);
      } else if (ref.startsWith('autogroup:') || ref.startsWith('tag:') || ref.startsWith('group:') || ref.includes('@')) {
        this.err(e.pos, `ipset "${name}": "${ref}" is not allowed in an ipset (only IPs, CIDRs, ranges, hosts and ipsets)`);
      } else if (this.hosts.has(ref)) {
        part = this.hosts.get(ref)!;
      } else {
        const parsed = parseAddrSet(ref);
        if ('error' in parsed) this.err(e.pos, `ipset "${name}": ${HOST_RE.test(ref) && !/^[\d.]+$/.test(ref) ? `unknown host "${ref}"` : parsed.error}`);
        else part = parsed.set;
      }
      if (!part) {
        ok = false;
        continue;
      }
      if (op === 'add') set = union(set, part);
      else removed = union(removed, part);
    }
    const result = subtract(set, removed);
    this.ipsets.set(name, ok ? result : 'bad');
    return ok ? result : null;
  }

  // ---- selectors ----

  private selector(text: string, pos: Pos, ctx: Ctx): Selector | null {
    const where = ctx === 'src' || ctx === 'test-src' ? 'source' : 'destination';
    if (text === '*') return ctx === 'test-src' || ctx === 'test-dst' ? this.bad(pos, `"*" cannot be a test ${where}; name a user, tag, host or IP`) : { kind: 'all' };
    if (text.startsWith('autogroup:')) {
      if (text === 'autogroup:member') return { kind: 'member' };
      if (text === 'autogroup:tagged') return { kind: 'tagged' };
      if (text === 'autogroup:self') return ctx === 'dst' ? { kind: 'self' } : this.bad(pos, `autogroup:self is only allowed as a destination`);
      if (text === 'autogroup:danger-all') return ctx === 'src' ? { kind: 'danger-all' } : this.bad(pos, `autogroup:danger-all is only allowed as a source`);
      if (UNSUPPORTED_AUTOGROUPS.includes(text)) return this.bad(pos, `${text} is a Tailscale autogroup Weft does not support yet`);
      return this.bad(pos, `unknown autogroup "${text}"`);
    }
    if (text.startsWith('group:')) return this.hasGroup(text) ? { kind: 'group', name: text } : this.bad(pos, `unknown group "${text}"`);
    if (text.startsWith('tag:')) return this.tagOwners.has(text) ? { kind: 'tag', name: text } : this.bad(pos, `unknown tag "${text}" (tags must be declared in tagOwners)`);
    if (text.startsWith('ipset:')) {
      if (!this.ipsetNodes.has(text)) return this.bad(pos, `unknown ipset "${text}"`);
      const set = this.ipsets.get(text);
      return set && typeof set === 'object' ? { kind: 'addrs', set } : null; // a bad ipset was reported where it is defined
    }
    if (text.includes('@')) return LOGIN_RE.test(text) ? { kind: 'user', login: text } : this.bad(pos, `"${text}" is not a user login (name@domain)`);
    if (this.hosts.has(text)) return { kind: 'addrs', set: this.hosts.get(text)! };
    const parsed = parseAddrSet(text);
    if ('set' in parsed) return { kind: 'addrs', set: parsed.set };
    if (HOST_RE.test(text) && !/^[\d.]+$/.test(text)) return this.bad(pos, `unknown host "${text}" (not in "hosts", and not a user, group, tag, ipset or address)`);
    return this.bad(pos, parsed.error);
  }

  private bad(pos: Pos, message: string): null {
    this.err(pos, message);
    return null;
  }

  private ports(text: string, pos: Pos): PortRange[] | null {
    if (text === '*') return [{ first: 0, last: 65535 }];
    const out: PortRange[] = [];
    for (const part of text.split(',')) {
      const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
      const first = m ? Number(m[1]) : NaN;
      const last = m ? Number(m[2] ?? m[1]) : NaN;
      if (!m || first > 65535 || last > 65535) return this.bad(pos, `bad port "${part}" in "${text}": use *, a port 0-65535, a range a-b, or a comma list of those`);
      if (first > last) return this.bad(pos, `port range "${part}" ends before it starts`);
      out.push({ first, last });
    }
    return out;
  }

  /** `selector:ports`, split at the last colon (`[v6]:port` also accepted). */
  private dstWithPorts(text: string, pos: Pos, ctx: Ctx): DstEntry | null {
    const colon = text.lastIndexOf(':');
    if (colon === -1) return this.bad(pos, `destination "${text}" needs ports: write ${text}:* or ${text}:22`);
    let selText = text.slice(0, colon);
    if (selText.startsWith('[') && selText.endsWith(']')) selText = selText.slice(1, -1);
    const portText = text.slice(colon + 1);
    if (/^(tag|group|autogroup|ipset)$/.test(selText)) return this.bad(pos, `destination "${text}" needs ports: write ${text}:*`);
    const sel = this.selector(selText, pos, ctx);
    const ports = this.ports(portText, pos);
    return sel && ports ? { sel, ports } : null;
  }

  // ---- rules ----

  private readAcls(node: JsonNode | undefined): Rule[] {
    const rules: Rule[] = [];
    for (const item of this.array(node, '"acls"')) {
      const f = this.fields(item, 'an acls entry', ['action', 'src', 'dst', 'proto', 'users', 'ports'], ['srcPosture']);
      if (!f) continue;
      const action = f.get('action');
      if (!action) this.err(item.pos, 'acls entry needs "action": "accept"');
      else if (action.kind !== 'string' || action.value !== 'accept') this.err(action.pos, `action must be "accept" (policies allow; there is no deny)`);
      if (f.has('src') && f.has('users')) this.err(item.pos, 'acls entry has both "src" and its legacy name "users"');
      if (f.has('dst') && f.has('ports')) this.err(item.pos, 'acls entry has both "dst" and its legacy name "ports"');
      const srcNode = f.get('src') ?? f.get('users');
      const dstNode = f.get('dst') ?? f.get('ports');
      if (!srcNode) this.err(item.pos, 'acls entry needs "src"');
      if (!dstNode) this.err(item.pos, 'acls entry needs "dst"');
      let protos = [...DEFAULT_PROTOS];
      const proto = f.get('proto');
      if (proto) {
        const parsed = proto.kind === 'string' ? parseProto(proto.value) : proto.kind === 'number' && Number.isInteger(proto.value) ? parseProto(String(proto.value)) : null;
        if (!parsed) this.err(proto.pos, `unknown proto ${proto.kind === 'string' ? `"${proto.value}"` : ''}: use a name (tcp, udp, icmp, sctp, gre, esp, ah, ...) or an IANA number 0-255`);
        else protos = parsed;
      }
      const src = this.strings(srcNode, '"src"').map((s) => this.selector(s.text, s.pos, 'src'));
      const dst = this.strings(dstNode, '"dst"').map((d) => {
        const entry = this.dstWithPorts(d.text, d.pos, 'dst');
        if (entry && proto && !protos.every((p) => PORTED.has(p)) && !(entry.ports.length === 1 && entry.ports[0]!.first === 0 && entry.ports[0]!.last === 65535)) {
          return this.bad(d.pos, `"${d.text}": protocol ${proto.kind === 'string' ? proto.value : ''} has no ports, use :*`);
        }
        return entry;
      });
      if (src.every((s) => s) && dst.every((d) => d) && srcNode && dstNode && this.nonEmpty(srcNode, src, 'src') && this.nonEmpty(dstNode, dst, 'dst')) {
        rules.push({ pos: item.pos, src: src as Selector[], dst: dst as DstEntry[], protos: [...new Set(protos)].sort((a, b) => a - b) });
      }
    }
    return rules;
  }

  private nonEmpty(node: JsonNode, list: unknown[], what: string): boolean {
    if (list.length === 0 && node.kind === 'array') this.err(node.pos, `"${what}" is empty`);
    return list.length > 0;
  }

  /** `ip` entries: `*`, `PORTS`, `PROTO:PORTS` (`tcp:22`, `udp:1000-2000`, `icmp:*`, `6:443`). */
  private readGrants(node: JsonNode | undefined): Rule[] {
    const rules: Rule[] = [];
    for (const item of this.array(node, '"grants"')) {
      const f = this.fields(item, 'a grants entry', ['src', 'dst', 'ip'], ['app', 'via', 'srcPosture']);
      if (!f) continue;
      for (const k of ['src', 'dst', 'ip']) if (!f.has(k)) this.err(item.pos, `grants entry needs "${k}"${k === 'ip' ? ' (application grants, "app", are not supported yet)' : ''}`);
      const src = this.strings(f.get('src'), '"src"').map((s) => this.selector(s.text, s.pos, 'src'));
      const dst = this.strings(f.get('dst'), '"dst"').map((d) => this.selector(d.text, d.pos, 'dst'));
      const byProtos = new Map<string, { protos: number[]; ports: PortRange[] }>();
      let ok = true;
      for (const ip of this.strings(f.get('ip'), '"ip"')) {
        let protos = [...DEFAULT_PROTOS];
        let portText = ip.text;
        const colon = ip.text.indexOf(':');
        if (colon !== -1) {
          const parsed = parseProto(ip.text.slice(0, colon));
          if (!parsed) {
            ok = this.bad(ip.pos, `unknown protocol "${ip.text.slice(0, colon)}" in "${ip.text}"`) ?? false;
            continue;
          }
          protos = parsed;
          portText = ip.text.slice(colon + 1);
        }
        const ports = this.ports(portText, ip.pos);
        if (!ports) {
          ok = false;
          continue;
        }
        if (colon !== -1 && !protos.every((p) => PORTED.has(p)) && portText !== '*') {
          ok = this.bad(ip.pos, `"${ip.text}": that protocol has no ports, use ${ip.text.slice(0, colon)}:*`) ?? false;
          continue;
        }
        const key = protos.join(',');
        const entry = byProtos.get(key) ?? { protos, ports: [] };
        entry.ports.push(...ports);
        byProtos.set(key, entry);
      }
      const srcNode = f.get('src');
      const dstNode = f.get('dst');
      const ipNode = f.get('ip');
      if (!ok || !src.every((s) => s) || !dst.every((d) => d) || !srcNode || !dstNode || !ipNode) continue;
      if (!this.nonEmpty(srcNode, src, 'src') || !this.nonEmpty(dstNode, dst, 'dst') || !this.nonEmpty(ipNode, [...byProtos.keys()], 'ip')) continue;
      for (const { protos, ports } of byProtos.values()) {
        rules.push({ pos: item.pos, src: src as Selector[], dst: (dst as Selector[]).map((sel) => ({ sel, ports })), protos: [...new Set(protos)].sort((a, b) => a - b) });
      }
    }
    return rules;
  }

  // ---- tests and autoApprovers ----

  private readTests(node: JsonNode | undefined): PolicyTest[] {
    const tests: PolicyTest[] = [];
    for (const item of this.array(node, '"tests"')) {
      const f = this.fields(item, 'a tests entry', ['src', 'proto', 'accept', 'deny'], ['srcPostureAttrs']);
      if (!f) continue;
      const srcNode = f.get('src');
      if (!srcNode || srcNode.kind !== 'string') {
        this.err(srcNode?.pos ?? item.pos, 'tests entry needs "src": a user, tag, host or IP');
        continue;
      }
      const src = this.selector(srcNode.value, srcNode.pos, 'test-src');
      let proto = 6;
      const protoNode = f.get('proto');
      if (protoNode) {
        const parsed = protoNode.kind === 'string' ? parseProto(protoNode.value) : null;
        if (!parsed || parsed.length !== 1) this.err(protoNode.pos, 'test "proto" must be one protocol (tcp, udp, sctp, or a number)');
        else proto = parsed[0]!;
      }
      const cases = (key: 'accept' | 'deny'): TestCase[] => this.strings(f.get(key), `"${key}"`).flatMap((c) => {
        const entry = this.dstWithPorts(c.text, c.pos, 'test-dst');
        if (!entry) return [];
        const p = entry.ports;
        if (p.length !== 1 || p[0]!.first !== p[0]!.last) {
          this.err(c.pos, `test destination "${c.text}" must name one port`);
          return [];
        }
        return [{ pos: c.pos, text: c.text, sel: entry.sel, port: p[0]!.first }];
      });
      const accept = cases('accept');
      const deny = cases('deny');
      if (!f.has('accept') && !f.has('deny')) this.err(item.pos, 'tests entry needs "accept" or "deny"');
      if (src) tests.push({ pos: item.pos, srcText: srcNode.value, src, proto, accept, deny });
    }
    return tests;
  }

  private readAutoApprovers(node: JsonNode | undefined): Policy['autoApprovers'] {
    const out: Policy['autoApprovers'] = { routes: [], exitNode: [] };
    if (!node) return out;
    const f = this.fields(node, '"autoApprovers"', ['routes', 'exitNode'], ['services']);
    if (!f) return out;
    for (const { key, keyPos, value } of this.object(f.get('routes'), '"routes"')) {
      const parsed = key.includes('-') ? { error: `route "${key}" must be a CIDR` } : parseAddrSet(key);
      if ('error' in parsed) this.err(keyPos, parsed.error);
      const owners = this.strings(value, `autoApprovers route "${key}"`);
      for (const o of owners) this.owner(o, `autoApprovers route "${key}"`);
      out.routes.push({ prefix: key, owners: owners.map((o) => o.text) });
    }
    const exit = this.strings(f.get('exitNode'), '"exitNode"');
    for (const o of exit) this.owner(o, 'autoApprovers exitNode');
    out.exitNode = exit.map((o) => o.text);
    return out;
  }
}


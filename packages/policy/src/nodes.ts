/**
 * The nodes a policy is compiled against (the NODES_JSON shape of `weft-server policy compile`):
 *
 *   { "users": [{ "id": 1, "name": "odin", "login": "odin@example.com" }],
 *     "nodes": [{ "id": 1, "name": "web-1", "user": "odin@example.com", "tags": [],
 *                 "ipv4": "100.64.0.1", "ipv6": "fd7a::1",
 *                 "advertisedRoutes": [], "approvedRoutes": [] }] }
 *
 * `user` is the owner's login, null for a tagged node (a node with tags never counts as its user's,
 * as in Tailscale). `approvedRoutes` is final. Every listed user is a member (autogroup:member).
 */
import { isTagName, TAG_RULE } from '@weft/protocol';
import { fromRanges, parseAddrSet, union, type AddrSet, type Range } from './addr.js';
import { byPosition, PolicyError, PolicyRejected, type Pos } from './errors.js';
import { parseHuJson, type JsonNode } from './hujson.js';

export interface UserInput { id: number; name: string; login: string }
export interface NodeInput {
  id: number;
  name: string;
  user: string | null;
  tags: string[];
  ipv4: string | null;
  ipv6: string | null;
  advertisedRoutes: string[];
  approvedRoutes: string[];
}
export interface NodesInput { users: UserInput[]; nodes: NodeInput[] }

/** A node ready for compiling; `idx` is its position in name order. */
export interface PreparedNode {
  idx: number;
  input: NodeInput;
  name: string;
  tagged: boolean;
  /** The node's own addresses. */
  ips: AddrSet;
  /** Its addresses and approved routes: what traffic to or from it can carry. */
  reach: AddrSet;
}

export interface Prepared { users: UserInput[]; nodes: PreparedNode[] }

/** Parses NODES_JSON text (plain JSON; comments tolerated) with line:col for every problem. */
export function parseNodes(text: string): Prepared {
  let root: JsonNode;
  try {
    root = parseHuJson(text);
  } catch (e) {
    if (e instanceof PolicyError) throw new PolicyRejected([e], 'nodes file');
    throw e;
  }
  const errors: PolicyError[] = [];
  const input = shape(root, errors);
  const prepared = input ? prepare(input, errors, positions(root)) : null;
  if (errors.length || !prepared) throw new PolicyRejected(errors.sort(byPosition), 'nodes file');
  return prepared;
}

/** Checks and prepares typed input (for callers that did not start from text). */
export function prepareNodes(input: NodesInput): Prepared {
  const errors: PolicyError[] = [];
  const p = prepare(input, errors, () => ({ line: 0, col: 0 }));
  if (errors.length) throw new PolicyRejected(errors, 'nodes');
  return p;
}

function toPlain(n: JsonNode): unknown {
  switch (n.kind) {
    case 'object': return Object.fromEntries(n.entries.map((e) => [e.key, toPlain(e.value)]));
    case 'array': return n.items.map(toPlain);
    case 'null': return null;
    default: return n.value;
  }
}

function positions(root: JsonNode): (path: (string | number)[]) => Pos {
  return (path) => {
    let n: JsonNode | undefined = root;
    let pos = root.pos;
    for (const k of path) {
      if (!n) break;
      if (n.kind === 'object' && typeof k === 'string') n = n.entries.find((e) => e.key === k)?.value;
      else if (n.kind === 'array' && typeof k === 'number') n = n.items[k];
      else n = undefined;
      if (n) pos = n.pos;
    }
    return pos;
  };
}

function shape(root: JsonNode, errors: PolicyError[]): NodesInput | null {
  const at = positions(root);
  const fail = (path: (string | number)[], message: string) => errors.push(new PolicyError(at(path), message));
  const v = toPlain(root) as Record<string, unknown>;
  if (!v || typeof v !== 'object' || Array.isArray(v)) {
    fail([], 'the nodes file is an object: { "users": [...], "nodes": [...] }');
    return null;
  }
  for (const k of Object.keys(v)) if (k !== 'users' && k !== 'nodes') fail([k], `unknown key "${k}" (known: users, nodes)`);
  const users = Array.isArray(v.users) ? v.users : (fail(['users'], '"users" must be an array'), []);
  const nodes = Array.isArray(v.nodes) ? v.nodes : (fail(['nodes'], '"nodes" must be an array'), []);
  const okUsers: UserInput[] = [];
  users.forEach((u: Record<string, unknown>, i) => {
    if (!u || typeof u !== 'object') return fail(['users', i], 'a user is an object { id, name, login }');
    if (!Number.isInteger(u.id)) fail(['users', i, 'id'], `users[${i}].id must be an integer`);
    if (typeof u.name !== 'string') fail(['users', i, 'name'], `users[${i}].name must be a string`);
    if (typeof u.login !== 'string' || !u.login.includes('@')) fail(['users', i, 'login'], `users[${i}].login must be a login like name@example.com`);
    for (const k of Object.keys(u)) if (!['id', 'name', 'login'].includes(k)) fail(['users', i, k], `unknown key "${k}" in users[${i}]`);
    okUsers.push(u as unknown as UserInput);
  });
  const okNodes: NodeInput[] = [];
  nodes.forEach((n: Record<string, unknown>, i) => {
    if (!n || typeof n !== 'object') return fail(['nodes', i], 'a node is an object { id, name, user, tags, ipv4, ipv6, advertisedRoutes, approvedRoutes }');
    const known = ['id', 'name', 'user', 'tags', 'ipv4', 'ipv6', 'advertisedRoutes', 'approvedRoutes'];
    for (const k of Object.keys(n)) if (!known.includes(k)) fail(['nodes', i, k], `unknown key "${k}" in nodes[${i}]`);
    if (!Number.isInteger(n.id)) fail(['nodes', i, 'id'], `nodes[${i}].id must be an integer`);
    if (typeof n.name !== 'string' || n.name === '') fail(['nodes', i, 'name'], `nodes[${i}].name must be a non-empty string`);
    if (n.user !== null && n.user !== undefined && typeof n.user !== 'string') fail(['nodes', i, 'user'], `nodes[${i}].user must be a login or null`);
    for (const k of ['ipv4', 'ipv6']) if (n[k] !== null && n[k] !== undefined && typeof n[k] !== 'string') fail(['nodes', i, k], `nodes[${i}].${k} must be an address or null`);
    for (const k of ['tags', 'advertisedRoutes', 'approvedRoutes']) {
      if (n[k] !== undefined && (!Array.isArray(n[k]) || !(n[k] as unknown[]).every((x) => typeof x === 'string'))) fail(['nodes', i, k], `nodes[${i}].${k} must be an array of strings`);
    }
    okNodes.push({
      id: n.id as number,
      name: n.name as string,
      user: (n.user as string | null | undefined) ?? null,
      tags: (n.tags as string[] | undefined) ?? [],
      ipv4: (n.ipv4 as string | null | undefined) ?? null,
      ipv6: (n.ipv6 as string | null | undefined) ?? null,
      advertisedRoutes: (n.advertisedRoutes as string[] | undefined) ?? [],
      approvedRoutes: (n.approvedRoutes as string[] | undefined) ?? [],
    });
  });
  return errors.length ? null : { users: okUsers, nodes: okNodes };
}

function prepare(input: NodesInput, errors: PolicyError[], at: (path: (string | number)[]) => Pos): Prepared {
  const fail = (path: (string | number)[], message: string) => errors.push(new PolicyError(at(path), message));
  const logins = new Set<string>();
  input.users.forEach((u, i) => {
    if (logins.has(u.login)) fail(['users', i, 'login'], `user login "${u.login}" is listed twice`);
    logins.add(u.login);
  });
  const names = new Map<string, number>();
  const addrOwner = new Map<string, string>();
  const nodes: PreparedNode[] = [];
  input.nodes.forEach((n, i) => {
    if (names.has(n.name)) fail(['nodes', i, 'name'], `node name "${n.name}" is used twice (nodes[${names.get(n.name)}] and nodes[${i}])`);
    names.set(n.name, i);
    const tagged = n.tags.length > 0;
    n.tags.forEach((t, j) => {
      if (!isTagName(t)) fail(['nodes', i, 'tags', j], `nodes[${i}] tag "${t}" must look like ${TAG_RULE}`);
    });
    if (!tagged && n.user === null) fail(['nodes', i, 'user'], `node "${n.name}" has neither a user nor tags`);
    if (!tagged && n.user !== null && !logins.has(n.user)) fail(['nodes', i, 'user'], `node "${n.name}" belongs to "${n.user}", who is not in "users"`);
    const v4: Range[] = [];
    const v6: Range[] = [];
    for (const [key, family] of [['ipv4', 4], ['ipv6', 6]] as const) {
      const text = n[key];
      if (text === null) continue;
      const parsed = parseAddrSet(text);
      const set = 'set' in parsed ? parsed.set : null;
      const ranges = set ? (family === 4 ? set.v4 : set.v6) : [];
      if (!set || ranges.length !== 1 || ranges[0]![0] !== ranges[0]![1] || text.includes('/') || text.includes('-')) {
        fail(['nodes', i, key], `node "${n.name}" ${key} "${text}" is not an IPv${family} address`);
        continue;
      }
      const other = addrOwner.get(String(family) + ranges[0]![0]);
      if (other !== undefined) fail(['nodes', i, key], `node "${n.name}" ${key} ${text} is also ${other}'s`);
      addrOwner.set(String(family) + ranges[0]![0], n.name);
      (family === 4 ? v4 : v6).push(ranges[0]!);
    }
    const routeSets: AddrSet[] = [];
    for (const key of ['advertisedRoutes', 'approvedRoutes'] as const) {
      n[key].forEach((r, j) => {
        const parsed = r.includes('-') ? { error: `"${r}" is not a CIDR` } : parseAddrSet(r);
        if ('error' in parsed) fail(['nodes', i, key, j], `node "${n.name}" ${key}: ${parsed.error}`);
        else if (key === 'approvedRoutes') routeSets.push(parsed.set);
      });
    }
    const ips = fromRanges(v4, v6);
    nodes.push({ idx: 0, input: n, name: n.name, tagged, ips, reach: union(ips, ...routeSets) });
  });
  nodes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  nodes.forEach((n, i) => (n.idx = i));
  return { users: input.users, nodes };
}

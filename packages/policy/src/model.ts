/** The validated policy, as the compiler and the reference read it. Built only by `parsePolicy`. */
import type { AddrSet } from './addr.js';
import type { Pos } from './errors.js';
import { DEFAULT_PROTOS } from './protocols.js';

export type Selector =
  | { kind: 'all' }
  | { kind: 'danger-all' }
  | { kind: 'member' }
  | { kind: 'tagged' }
  | { kind: 'self' }
  | { kind: 'user'; login: string }
  | { kind: 'group'; name: string }
  | { kind: 'tag'; name: string }
  /** A host, an ipset, an IP, CIDR or range: a fixed set of addresses. */
  | { kind: 'addrs'; set: AddrSet };

export interface PortRange { first: number; last: number }

export interface DstEntry { sel: Selector; ports: PortRange[] }

/** One access rule (an `acls` entry, or one protocol set of a `grants` entry). */
export interface Rule {
  pos: Pos;
  src: Selector[];
  dst: DstEntry[];
  /** IANA protocol numbers, ascending. */
  protos: number[];
}

export interface TestCase { pos: Pos; text: string; sel: Selector; port: number }

export interface PolicyTest {
  pos: Pos;
  srcText: string;
  src: Selector;
  proto: number;
  accept: TestCase[];
  deny: TestCase[];
}

export interface Policy {
  /** group name -> member logins. */
  groups: ReadonlyMap<string, readonly string[]>;
  /** tag name -> owners (kept for later slices: who may apply a tag). */
  tagOwners: ReadonlyMap<string, readonly string[]>;
  rules: readonly Rule[];
  tests: readonly PolicyTest[];
  /** Parsed and validated; applied by a later slice (route approval). */
  autoApprovers: { routes: { prefix: string; owners: string[] }[]; exitNode: string[] };
}

/** The policy in force when none is stored: every node may reach every node. */
export const ALLOW_ALL: Policy = {
  groups: new Map(),
  tagOwners: new Map(),
  rules: [{ pos: { line: 0, col: 0 }, src: [{ kind: 'all' }], dst: [{ sel: { kind: 'all' }, ports: [{ first: 0, last: 65535 }] }], protos: [...DEFAULT_PROTOS] }],
  tests: [],
  autoApprovers: { routes: [], exitNode: [] },
};

/**
 * The positional parts of a compact resume (`presence` and `endpoints`, protocol agent.ts
 * `ResumePresence`), made once for a whole peer list and cut per session: every agent of the
 * shared list gets the same list without its own entry, so each part is one joined text with the
 * offset of every entry, and leaving one entry out is two slices, not a pass over the list.
 *
 * Made per session, the pass cost 18 ms at 10,000 peers (a date parse, a 128-bit sum and a JSON
 * text per peer), so a reconnect storm of 10,000 resuming agents spent minutes of server CPU on
 * it, against 1.8 ms for a full netmap made from shared chunks. Made once, it is rebuilt only when
 * the list changed (the caller keys it on the list's generation).
 */
import { resumeStateChar, type Peer } from '@weft/protocol';
import { addMod128, revisionHex } from '@weft/crypto';

/** Comma-joined entries and where each starts, so one can be left out by slicing. */
class JoinedList {
  readonly text: string;
  private readonly starts: number[];

  constructor(items: readonly string[]) {
    this.starts = new Array<number>(items.length);
    let at = 0;
    for (let i = 0; i < items.length; i++) {
      this.starts[i] = at;
      at += items[i]!.length + 1;
    }
    this.text = items.join(',');
  }

  /** The text without entry `i` (-1: all of it). */
  without(i: number): string {
    if (i < 0) return this.text;
    const n = this.starts.length;
    if (n === 1) return '';
    // The last entry takes the comma before it; any other, the comma after it.
    if (i === n - 1) return this.text.slice(0, this.starts[i]! - 1);
    return this.text.slice(0, this.starts[i]) + this.text.slice(this.starts[i + 1]);
  }
}

export interface CompactResumeCut {
  /** The `presence` object's JSON. */
  presence: string;
  /** The `endpoints` array body (without brackets). */
  endpoints: () => string;
  /** The endpoints revision of the list without the entry (what an agent holding it sent). */
  endpointsRevision: string;
}

export class CompactResumeParts {
  private readonly position = new Map<number, number>();
  private readonly state: string;
  private readonly base: number;
  private readonly lastSeen: JoinedList;
  private readonly endpoints: JoinedList;
  private readonly endpointsSum: bigint;
  private readonly endpointsHash: bigint[];
  private readonly seen: (number | null)[];
  /** How many entries have the earliest lastSeen (the base). */
  private readonly atBase: number;

  /**
   * `peers` in the list's order with each one's endpoints hash (peerEndpointsHash). `base` is the
   * earliest lastSeen of the list without the agent's own entry, as the per-session pass had it:
   * the whole list's, unless the agent's own entry alone holds it (then its cut is made anew).
   */
  constructor(peers: readonly { peer: Peer; endpointsHash: bigint }[]) {
    let state = '';
    let base = Infinity;
    const seen: (number | null)[] = new Array(peers.length);
    const endpoints: string[] = new Array(peers.length);
    this.endpointsHash = new Array(peers.length);
    let sum = 0n;
    for (let i = 0; i < peers.length; i++) {
      const { peer: p, endpointsHash } = peers[i]!;
      this.position.set(p.id, i);
      state += resumeStateChar(p.online, p.nat);
      const t = p.lastSeen === null ? null : Date.parse(p.lastSeen);
      seen[i] = t;
      if (t !== null && t < base) base = t;
      endpoints[i] = JSON.stringify(p.endpoints);
      this.endpointsHash[i] = endpointsHash;
      sum = addMod128(sum, endpointsHash);
    }
    this.state = state;
    this.seen = seen;
    this.atBase = seen.filter((t) => t === base).length;
    this.base = base === Infinity ? 0 : base;
    this.lastSeen = new JoinedList(seen.map((t) => (t === null ? 'null' : String(t - this.base))));
    this.endpoints = new JoinedList(endpoints);
    this.endpointsSum = sum;
  }

  /** The parts for the agent of node `id` (its own entry left out when listed). */
  except(id: number): CompactResumeCut {
    const i = this.position.get(id) ?? -1;
    const state = i < 0 ? this.state : this.state.slice(0, i) + this.state.slice(i + 1);
    const sum = i < 0 ? this.endpointsSum : addMod128(this.endpointsSum, -this.endpointsHash[i]!);
    let presence = `{"base":${this.base},"state":"${state}","lastSeen":[${this.lastSeen.without(i)}]}`;
    if (i >= 0 && this.atBase === 1 && this.seen[i] === this.base) {
      // Its own entry alone was the earliest: the others count from the earliest of theirs.
      const others = this.seen.filter((_, k) => k !== i);
      const b = others.reduce<number>((m, t) => (t !== null && t < m ? t : m), Infinity);
      const base = b === Infinity ? 0 : b;
      presence = `{"base":${base},"state":"${state}","lastSeen":[${others.map((t) => (t === null ? 'null' : t - base)).join(',')}]}`;
    }
    return {
      presence,
      endpoints: () => this.endpoints.without(i),
      endpointsRevision: revisionHex(sum),
    };
  }
}

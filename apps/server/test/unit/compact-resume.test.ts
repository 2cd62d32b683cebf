/**
 * CompactResumeParts against the per-session pass it replaced (the reference: every peer but the
 * agent's own, in list order): the same presence text, endpoints text and endpoints revision, and
 * decoded the same way the agent decodes it, the same lastSeen per peer.
 */
import { describe, expect, it } from 'vitest';
import { endpointsRevision, peerEndpointsHash } from '@weft/crypto';
import { resumeStateChar, type Peer } from '@weft/protocol';
import { CompactResumeParts } from '../../src/mapper/compact-resume.js';

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function peers(n: number, rnd: () => number): Peer[] {
  const out: Peer[] = [];
  for (let i = 0, id = 1; i < n; i++, id += 1 + Math.floor(rnd() * 3)) {
    const nat = rnd() < 0.3 ? null : { udp: rnd() < 0.5, mappingVariesByDestination: rnd() < 0.3 ? null : rnd() < 0.5 };
    out.push({
      id, online: rnd() < 0.6, nat,
      lastSeen: rnd() < 0.2 ? null : new Date(1_700_000_000_000 + Math.floor(rnd() * 1e9)).toISOString(),
      endpoints: Array.from({ length: Math.floor(rnd() * 3) }, (_, k) => `10.0.${id % 250}.${k}:41641`),
    } as unknown as Peer);
  }
  return out;
}

/** What an agent of `id` reads: each peer's state, absolute lastSeen (ms) and endpoints. */
function reference(list: Peer[], id: number) {
  const others = list.filter((p) => p.id !== id);
  return {
    state: others.map((p) => resumeStateChar(p.online, p.nat)).join(''),
    lastSeen: others.map((p) => (p.lastSeen === null ? null : Date.parse(p.lastSeen))),
    endpoints: others.map((p) => JSON.stringify(p.endpoints)).join(','),
    endpointsRevision: endpointsRevision(others),
  };
}

function decode(cut: ReturnType<CompactResumeParts['except']>, base?: number) {
  const p = JSON.parse(cut.presence) as { base: number; state: string; lastSeen: (number | null)[] };
  if (base !== undefined) expect(p.base).toBe(base);
  expect(p.lastSeen.length).toBe(p.state.length);
  return {
    state: p.state,
    lastSeen: p.lastSeen.map((t) => (t === null ? null : p.base + t)),
    endpoints: cut.endpoints(),
    endpointsRevision: cut.endpointsRevision,
  };
}

describe('CompactResumeParts', () => {
  it('cuts the same resume as the per-session pass for every agent of random lists (first, last, middle, absent, alone)', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rnd = random(seed);
      const list = peers(seed % 7 === 0 ? 1 : Math.floor(rnd() * 60), rnd);
      const parts = new CompactResumeParts(list.map((peer) => ({ peer, endpointsHash: peerEndpointsHash(peer.id, peer.endpoints) })));
      // Every listed node, plus one not in the list (a node whose class does not see itself).
      // The base too is the per-session pass's: the earliest lastSeen of the others (0: none).
      const baseOf = (id: number) => Math.min(Infinity, ...list.filter((p) => p.id !== id && p.lastSeen !== null).map((p) => Date.parse(p.lastSeen!)));
      for (const id of [...list.map((p) => p.id), 1_000_000]) {
        const b = baseOf(id);
        expect(decode(parts.except(id), b === Infinity ? 0 : b), `seed ${seed}, node ${id}`).toEqual(reference(list, id));
      }
    }
  });

  it('an empty list gives an empty resume', () => {
    const cut = new CompactResumeParts([]).except(5);
    expect(JSON.parse(cut.presence)).toEqual({ base: 0, state: '', lastSeen: [] });
    expect(cut.endpoints()).toBe('');
    expect(cut.endpointsRevision).toBe(endpointsRevision([]));
  });
});

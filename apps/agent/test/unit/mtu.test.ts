import { describe, expect, it } from 'vitest';
import { inUse, interfaceMtuFor, MtuHysteresis, MtuSearch, OVERHEAD, probeCeiling } from '../../src/mtu.js';
import { MTU_CEILING, MTU_FLOOR } from '../../src/tunables.js';

/** Runs a search against a path that carries outer packets up to `outerLimit` bytes (IPv4 underlay). */
function searchAgainst(outerLimit: number, ceiling = MTU_CEILING): MtuSearch {
  const s = new MtuSearch(ceiling);
  for (let size = s.next(), n = 0; size !== null; size = s.next(), n++) {
    if (n > 20) throw new Error('search does not end');
    s.record(size, size + OVERHEAD[4] <= outerLimit);
  }
  return s;
}

describe('path MTU search', () => {
  it('a clean 1500 underlay: one probe, at the ceiling 1420', () => {
    const s = searchAgainst(1500);
    expect(s.result).toBe(1420);
    expect(s.probed).toEqual([{ size: 1420, ok: true }]);
  });

  it('a 1400 hop: the largest inner size that fits, 1340, in at most 9 probes', () => {
    const s = searchAgainst(1400);
    expect(s.result).toBe(1340);
    expect(s.probed.length).toBeLessThanOrEqual(9);
    expect(s.probed.filter((p) => p.ok).every((p) => p.size <= 1340)).toBe(true);
  });

  it('every outer limit between the floor and the ceiling lands on exactly limit - 60', () => {
    for (let outer = MTU_FLOOR + 60; outer <= MTU_CEILING + 60; outer++) expect(searchAgainst(outer).result, String(outer)).toBe(outer - 60);
  });

  it('nothing above the floor works: the floor (a path that cannot carry 1280 is not usable anyway)', () => {
    expect(searchAgainst(1000).result).toBe(MTU_FLOOR);
  });

  it('an ack above a failure (a path that grew mid-search) is taken and the search goes on above it', () => {
    const s = new MtuSearch(1420);
    s.record(1420, false);
    s.record(1350, false);
    s.record(1400, true);
    expect(s.result).toBe(1400);
    expect(s.next()).not.toBeNull();
    expect(s.next()!).toBeGreaterThan(1400);
  });

  it('the ceiling is the underlay MTU less the IPv6 overhead, within [1280, 1420]', () => {
    expect(probeCeiling(1500)).toBe(1420);
    expect(probeCeiling(1400)).toBe(1320);
    expect(probeCeiling(9000)).toBe(1420);
    expect(probeCeiling(65536)).toBe(1420); // a relayed peer's socket is on lo
    expect(probeCeiling(1280)).toBe(1280);
    expect(probeCeiling(null)).toBe(1420);
    expect(() => new MtuSearch(1200)).toThrow(/below the floor/);
  });
});

describe('interface MTU from the paths in use', () => {
  it('the smallest path MTU, clamped to [1280, 1420]; none measured = leave it', () => {
    expect(interfaceMtuFor([1420, 1340, 1400])).toBe(1340);
    expect(interfaceMtuFor([1420])).toBe(1420);
    expect(interfaceMtuFor([1200])).toBe(1280);
    expect(interfaceMtuFor([1500])).toBe(1420);
    expect(interfaceMtuFor([])).toBeNull();
  });

  it('hysteresis: down at once, up only after the higher target held for the hold time, the smallest seen taken', () => {
    const h = new MtuHysteresis(1420, 5_000);
    expect(h.update(1340, 0)).toBe(1340); // down: at once
    expect(h.update(1420, 1_000)).toBeNull(); // up: waits
    expect(h.update(1400, 3_000)).toBeNull();
    expect(h.update(1420, 6_000)).toBe(1400); // held 5 s: the smallest target seen while waiting
    expect(h.current).toBe(1400);
  });

  it('hysteresis: a target that dips back during the hold restarts it (a flapping pair does not move the MTU)', () => {
    const h = new MtuHysteresis(1340, 5_000);
    expect(h.update(1420, 0)).toBeNull();
    expect(h.update(1340, 2_000)).toBeNull(); // back: the pending rise is dropped
    expect(h.update(1420, 4_000)).toBeNull();
    expect(h.update(1420, 8_000)).toBeNull(); // only 4 s since it came back
    expect(h.update(1420, 9_000)).toBe(1420);
    expect(h.update(null, 10_000)).toBeNull(); // nothing measured in use: stays
    expect(h.current).toBe(1420);
  });

  it('a pair is in use when more than keepalives and this agent\'s own probes moved', () => {
    expect(inUse(200, 0)).toBe(false); // keepalives
    expect(inUse(30_000, 29_000)).toBe(false); // only our probes and their acks
    expect(inUse(1_000_000, 3_000)).toBe(true);
  });
});

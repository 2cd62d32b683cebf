/** Address-set union against a brute-force membership check on a small universe (union has a merge path for a few sets and a sort path for many). */
import { describe, expect, it } from 'vitest';
import { fromRanges, union, type AddrSet, type Range } from '../src/addr.js';
import { prng } from './random-inputs.js';

const UNIVERSE = 200;

function randomSet(r: () => number): AddrSet {
  const ranges: Range[] = [];
  for (let k = Math.floor(r() * 6); k > 0; k--) {
    const lo = Math.floor(r() * UNIVERSE);
    const hi = Math.min(UNIVERSE - 1, lo + Math.floor(r() * 12));
    ranges.push([BigInt(lo), BigInt(hi)]);
  }
  const v6 = BigInt(Math.floor(r() * 4));
  return fromRanges(ranges, r() < 0.5 ? [[v6, v6]] : []);
}

const members = (ranges: readonly Range[]) => {
  const out = new Set<number>();
  for (const [lo, hi] of ranges) for (let v = Number(lo); v <= Number(hi); v++) out.add(v);
  return out;
};

function canonical(ranges: readonly Range[]): boolean {
  return ranges.every(([lo, hi], i) => lo <= hi && (i === 0 || lo > ranges[i - 1]![1] + 1n));
}

describe('union', () => {
  it('of 1-20 random sets holds exactly their addresses, merged and ascending (seeds 1..400)', () => {
    for (let seed = 1; seed <= 400; seed++) {
      const r = prng(seed);
      const sets = Array.from({ length: 1 + Math.floor(r() * 20) }, () => randomSet(r));
      const u = union(...sets);
      for (const fam of ['v4', 'v6'] as const) {
        const want = new Set(sets.flatMap((s) => [...members(s[fam])]));
        expect([...members(u[fam])].sort((a, b) => a - b), `seed ${seed} ${fam}`).toEqual([...want].sort((a, b) => a - b));
        expect(canonical(u[fam]), `seed ${seed} ${fam} canonical`).toBe(true);
      }
    }
  });
});

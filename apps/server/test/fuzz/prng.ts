/**
 * A tiny seeded PRNG (mulberry32) for the fuzz tier: the same seed gives the same sequence of
 * inputs, so a failure is replayed with `WEFT_FUZZ_SEED=<seed>`.
 */
export class Rng {
  private s: number;
  constructor(readonly seed: number) {
    this.s = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (!items.length) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }

  hex(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += '0123456789abcdef'[this.int(0, 15)];
    return s;
  }

  word(n: number, alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(0, alphabet.length - 1)];
    return s;
  }
}

/** The seed the normal test command uses. */
export const FIXED_SEED = 0x5eed;

/**
 * Seed and case count: fixed in the normal suite; `npm run fuzz` sets `WEFT_FUZZ_SEED` (random
 * unless given) and `WEFT_FUZZ_SCALE` (cases = the suite's count times the scale).
 */
export function fuzzSettings(suiteRuns: number): { seed: number; runs: number } {
  const seedText = process.env.WEFT_FUZZ_SEED;
  const seed = seedText ? Number(seedText) : FIXED_SEED;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`WEFT_FUZZ_SEED must be an integer 0-4294967295, got "${seedText}"`);
  const scaleText = process.env.WEFT_FUZZ_SCALE;
  const scale = scaleText ? Number(scaleText) : 1;
  if (!(scale > 0)) throw new Error(`WEFT_FUZZ_SCALE must be a positive number, got "${scaleText}"`);
  return { seed, runs: Math.max(1, Math.round(suiteRuns * scale)) };
}

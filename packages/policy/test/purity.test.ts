/**
 * @weft/policy is pure (ARCHITECTURE.md): no I/O, no clock, no randomness, no environment, and no
 * repo imports but @weft/protocol. This fails on an import or global that would break that.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '../src');

describe('@weft/policy stays pure', () => {
  it('imports only its own files and @weft/protocol, and touches no I/O, clock, randomness or env', () => {
    const bad: string[] = [];
    for (const f of readdirSync(SRC).filter((x) => x.endsWith('.ts'))) {
      const text = readFileSync(join(SRC, f), 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)) {
        const spec = m[1]!;
        if (!spec.startsWith('./') && spec !== '@weft/protocol') bad.push(`${f}: imports ${spec}`);
      }
      for (const g of ['process.', 'Date.now', 'new Date', 'Math.random', 'fetch(', 'require(', 'globalThis', 'setTimeout', 'performance.']) {
        if (text.includes(g)) bad.push(`${f}: uses ${g}`);
      }
    }
    expect(bad).toEqual([]);
  });
  it('declares no dependencies outside the repo boundary', () => {
    const pkg = JSON.parse(readFileSync(join(SRC, '../package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    expect(Object.keys(pkg.dependencies ?? {}).filter((d) => d !== '@weft/protocol')).toEqual([]);
  });
});

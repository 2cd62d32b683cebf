/** Readable cases, policy + nodes -> expected output, compared byte for byte (see golden.ts to regenerate). */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GOLDEN, goldenCases, render } from './golden.js';

describe('golden policies', () => {
  it('has cases', () => expect(goldenCases().length).toBeGreaterThanOrEqual(4));
  for (const name of goldenCases()) {
    it(name, () => {
      const { file, text } = render(name);
      const expected = join(GOLDEN, name, file);
      expect(existsSync(expected), `${expected} missing: run npx tsx packages/policy/test/golden.ts --write and review`).toBe(true);
      expect(text).toBe(readFileSync(expected, 'utf8'));
    });
  }
});

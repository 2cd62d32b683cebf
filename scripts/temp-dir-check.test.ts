import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const repo = resolve(import.meta.dirname, '..');
const outer = mkdtempSync(join(tmpdir(), 'weft-check-'));
afterAll(() => rmSync(outer, { recursive: true, force: true }));

/** A nested vitest run of the fixture, with a TMPDIR of its own (not this run's). */
function runFixture(leak: boolean): Promise<{ code: number | null; output: string; tmp: string }> {
  const tmp = mkdtempSync(join(outer, leak ? 'leaky-' : 'clean-'));
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp, WEFT_FIXTURE_LEAK: leak ? '1' : '' };
  delete env.WEFT_TEST_RUN_TMPDIR;
  delete env.VITEST;
  delete env.VITEST_POOL_ID;
  delete env.VITEST_WORKER_ID;
  return new Promise((res) => {
    const child = spawn('npx', ['vitest', 'run', '--config', 'test-support/fixtures/temp-dir-check.config.ts'], { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('close', (code) => res({ code, output, tmp }));
  });
}

describe('the temp-dir check every tier runs under', () => {
  it('fails a run whose tests leave a temp entry behind, naming it, and a clean run passes', async () => {
    const [leaky, clean] = await Promise.all([runFixture(true), runFixture(false)]);
    expect(leaky.code, leaky.output).toBe(1);
    expect(leaky.output).toMatch(/FAIL temp-dir check: the tests left 1 temp entry behind in TMPDIR: weft-fixture-\w+\./);
    expect(clean.code, clean.output).toBe(0);
    expect(clean.output).not.toContain('temp-dir check');
    // Each run removed its own directory, leaked entry included; only compile caches (tsx's, and Node's
    // own that npx turns on) remain: they are in the fixture run's TMPDIR before its check starts.
    for (const r of [leaky, clean]) expect(readdirSync(r.tmp).filter((n) => !n.startsWith('tsx-') && n !== 'node-compile-cache')).toEqual([]);
  }, 60_000);
});

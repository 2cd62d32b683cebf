#!/usr/bin/env node
// The whole test suite, every tier, in order: prisma generate, typecheck, the agent bundle, unit,
// integration (PGlite and a throwaway Postgres), fuzz (a fixed seed: `npm run fuzz` for a random
// one), e2e (network namespaces, real wireguard-go). A
// tier whose prerequisites are missing fails with a message saying what to install; nothing is
// skipped.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

// Node 20 is end of life; the suite runs on a maintained LTS line (22 or 24; CI uses 24).
const nodeMajor = Number(process.versions.node.split('.')[0]);
if (nodeMajor < 22) {
  console.error(`npm test needs Node.js 22 or newer (this is ${process.version}). Run it as: bash scripts/with-node.sh npm test`);
  process.exit(2);
}

// Each vitest tier also writes a JSON report: after the tier, its wall time and slowest files are
// printed (so every CI log shows where the time went), and the run ends with one line of totals.
const reports = mkdtempSync(join(tmpdir(), 'weft-test-reports-'));
/** How many of a tier's files are listed by time, slowest first. */
const SLOWEST_FILES = 10;
const vitest = (project) => ['npx', 'vitest', 'run', '--project', project, '--reporter=default', '--reporter=json', `--outputFile.json=${join(reports, project + '.json')}`];

const steps = [
  ['typecheck', ['npx', 'tsc', '-p', 'tsconfig.json']],
  ['prisma generate', ['npx', 'prisma', 'generate']],
  // The weft CLI runs from its bundle when current (apps/agent/bin/weft.mjs); rebuild it so the
  // tiers test the code as it is now, at bundle speed.
  ['build', ['node', 'scripts/build.mjs']],
  ['unit', vitest('unit')],
  ['integration', vitest('integration')],
  ['fuzz', vitest('fuzz')],
  ['e2e', vitest('e2e')],
];
const only = process.argv.slice(2);
const env = { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: '/bin/false', CHECKPOINT_DISABLE: '1' };
// Generate first so the typecheck sees the client.
steps.unshift(steps.splice(1, 1)[0]);
for (const [name, cmd] of steps) {
  if (only.length && !only.includes(name)) continue;
  console.log(`\n=== ${name}: ${cmd.join(' ')}`);
  const started = performance.now();
  const r = spawnSync(cmd[0], cmd.slice(1), { stdio: 'inherit', env });
  tierTimes(name, (performance.now() - started) / 1000);
  if (r.status !== 0) {
    console.error(`\n=== ${name} failed (exit ${r.status ?? r.signal})`);
    totals();
    process.exit(1);
  }
}
console.log('\n=== all tiers passed');
totals();

/** The step's wall time; for a vitest tier also its slowest files, from its JSON report. */
function tierTimes(name, seconds) {
  console.log(`\n=== ${name}: ${seconds.toFixed(1)} s wall`);
  const report = readReport(name);
  if (!report) return;
  const files = report.testResults
    .map((f) => ({ file: relative(process.cwd(), f.name), seconds: (f.endTime - f.startTime) / 1000, tests: f.assertionResults.length }))
    .sort((a, b) => b.seconds - a.seconds)
    .slice(0, SLOWEST_FILES);
  console.log(`=== ${name}: slowest ${files.length} of ${report.testResults.length} files`);
  for (const f of files) console.log(`${f.seconds.toFixed(1).padStart(8)} s  ${f.file} (${f.tests} tests)`);
}

/** A vitest tier's JSON report; null for a step that is not a vitest tier or did not write one. */
function readReport(project) {
  try {
    return JSON.parse(readFileSync(join(reports, project + '.json'), 'utf8'));
  } catch {
    return null;
  }
}

function totals() {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const project of ['unit', 'integration', 'fuzz', 'e2e']) {
    const r = readReport(project);
    if (!r) continue; // tier not run
    passed += r.numPassedTests;
    failed += r.numFailedTests;
    skipped += r.numPendingTests + r.numTodoTests;
  }
  rmSync(reports, { recursive: true, force: true });
  console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
}

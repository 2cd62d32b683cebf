#!/usr/bin/env node
// `npm run fuzz`: the fuzz tier (vitest project `fuzz`) with a random seed, printed, and ten times
// the cases the normal suite runs. Replay a run with `WEFT_FUZZ_SEED=<seed> npm run fuzz`; set
// WEFT_FUZZ_SCALE for more or fewer cases. Extra arguments go to vitest (one file, say).
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';

const seed = process.env.WEFT_FUZZ_SEED ?? String(randomInt(0, 2 ** 32));
const scale = process.env.WEFT_FUZZ_SCALE ?? '10';
console.log(`fuzz: WEFT_FUZZ_SEED=${seed} WEFT_FUZZ_SCALE=${scale}`);
const env = { ...process.env, WEFT_FUZZ_SEED: seed, WEFT_FUZZ_SCALE: scale, PRISMA_SCHEMA_ENGINE_BINARY: '/bin/false', CHECKPOINT_DISABLE: '1' };
const r = spawnSync('npx', ['vitest', 'run', '--project', 'fuzz', ...process.argv.slice(2)], { stdio: 'inherit', env });
console.log(`fuzz: replay with WEFT_FUZZ_SEED=${seed} WEFT_FUZZ_SCALE=${scale} npm run fuzz`);
process.exit(r.status ?? 1);

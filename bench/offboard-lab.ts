/**
 * `npm run bench:offboard-lab`: issue 11's offboard timing on the real network (network
 * namespaces, real weft-server, real agents with wireguard-go; needs root like the e2e lab).
 * BENCH_PEERS (3) peers of one user stay connected; each of BENCH_ROUNDS (20) rounds joins a new
 * user's device, offboards the user through `POST /api/v1/users/:id/offboard`, and times from the
 * response having been read (and, separately, from the request being sent) to the last peer's
 * `wg show IFACE dump` (polled every 10 ms in its namespace) lacking the user's key
 * (e2e/lab/offboard.ts, the same code as e2e/offboard-lab.test.ts). Two setups, each its own lab:
 *   single    one server, embedded PGlite, the call on it;
 *   replicas  two replicas on one Postgres, the peers on r2, the user's device on r1, the call on r1.
 * Writes bench/results/offboard-lab.json. BENCH_SETUPS=single,replicas picks setups.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { startPostgres, type TestPostgres } from '../test-support/postgres.js';
import { Lab } from '../e2e/lab/lab.js';
import { joinVictim, timeOffboard } from '../e2e/lab/offboard.js';
import { WeftAgent, WeftServer } from '../e2e/lab/weft.js';
import { machine } from './lib/machine.js';
import { percentile, round } from './lib/stats.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const PEERS = Number(process.env.BENCH_PEERS ?? 3);
const SETUPS = (process.env.BENCH_SETUPS ?? 'single,replicas').split(',') as ('single' | 'replicas')[];
const here = import.meta.dirname;

const summary = (xs: number[]) => ({ samples: xs.length, p50: round(percentile(xs, 50)), p99: round(percentile(xs, 99)), max: round(Math.max(...xs)), min: round(Math.min(...xs)) });

async function runSetup(setup: 'single' | 'replicas') {
  const peerNames = Array.from({ length: PEERS }, (_, i) => `p${i + 1}`);
  const lab = await Lab.create({ name: setup === 'single' ? 'obb1' : 'obb2', hosts: ['server', 'v', ...peerNames] });
  let pg: TestPostgres | null = null;
  return lab.run(async () => {
    let callOn: WeftServer;
    let victimOn: WeftServer;
    let peersOn: WeftServer;
    if (setup === 'single') {
      callOn = victimOn = peersOn = await WeftServer.start(lab);
    } else {
      pg = await startPostgres();
      const env = { WEFT_DATABASE_URL: `postgres://postgres@localhost/weft?host=${encodeURIComponent(pg.socketDir)}&port=${pg.port}` };
      const r1 = await WeftServer.start(lab, { name: 'r1', port: 8081, env });
      const r2 = await WeftServer.start(lab, { name: 'r2', port: 8082, env });
      callOn = victimOn = r1;
      peersOn = r2;
    }
    const authKey = await peersOn.authKey('ops');
    const peers = await Promise.all(peerNames.map(async (h) => {
      const a = await WeftAgent.start(lab.hosts[h]!);
      await a.upOk({ server: peersOn.url, authKey, hostname: h });
      return a;
    }));
    const fromResponse: number[] = [];
    const fromSent: number[] = [];
    const perPeer: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const victim = await joinVictim(victimOn.api, victimOn.url, `leaver${i}`, [lab.hosts.v!]);
      const t = await timeOffboard({ api: callOn.api, victim, peers });
      fromResponse.push(t.lastMs);
      fromSent.push(t.lastFromSentMs);
      perPeer.push(...t.perPeerMs);
      console.log(`${setup} round ${i + 1}/${ROUNDS}: last peer ${t.lastMs} ms after the response (${t.lastFromSentMs} ms after the request was sent); per peer ${JSON.stringify(t.perPeerMs)}`);
      await Promise.all(victim.agents.map((a) => a.stop()));
    }
    return {
      setup,
      backend: setup === 'single' ? 'pglite (embedded)' : 'postgres 15, two replicas',
      callOn: setup === 'single' ? 'the only server' : 'r1 (the offboarded device\'s replica)',
      peersOn: setup === 'single' ? 'the only server' : 'r2',
      peers: PEERS,
      rounds: ROUNDS,
      lastPeerFromResponseMs: summary(fromResponse),
      lastPeerFromRequestSentMs: summary(fromSent),
      everyPeerFromResponseMs: summary(perPeer),
    };
  }).finally(async () => {
    await pg?.stop();
  });
}

const results = [];
for (const s of SETUPS) results.push(await runSetup(s));
const out = {
  benchmark: 'offboard-lab',
  date: new Date().toISOString(),
  machine: machine({ 'wireguard-go': ['wireguard-go', ['--version']], wg: ['wg', ['--version']] }),
  setup: `real-network lab (e2e/lab): per round a new user with one device joins, is offboarded through POST /api/v1/users/:id/offboard, and each of ${PEERS} peers' wg show IFACE dump is polled every 10 ms in its namespace until it lacks the user's key. fromResponse: from the REST response having been read by the requesting process (negative: the peers had dropped the key before the response was read; the server pushes the removal at commit, before it answers); fromRequestSent: from just before the request went out (the call's own time included, and the requesting process's first fetch: a fresh Node process per call). Target (issue 11): p99 under 1 s in both setups.`,
  results,
};
mkdirSync(resolve(here, 'results'), { recursive: true });
writeFileSync(resolve(here, 'results/offboard-lab.json'), JSON.stringify(out, null, 2) + '\n');
console.log(JSON.stringify(out, null, 2));

/**
 * Cross-replica delivery through the change outbox, on one Postgres 15 with real server
 * processes: replica A takes DELETE /api/v1/nodes/:id, the node's agent is connected to another
 * replica, and we time from A's 200 to that agent's socket closing with NodeDeleted.
 *   - `hinted`: the normal path (NOTIFY wakes the follower, which reads the outbox).
 *   - `timerOnly`: the replica ignores every NOTIFY (WEFT_TEST_OUTBOX ignoreHints), so only the
 *     1 s catch-up timer delivers: the bound for a lost NOTIFY.
 * And the database cost of the append itself: transactions that update one row, with and without
 * an outbox append, one client and 8 concurrent clients (the append serialises writers).
 *
 * `npm run bench:outbox` writes bench/results/outbox.json with the machine noted.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import pg from 'pg';
import { OUTBOX_APPEND_SQL } from '@weft/db';
import { CloseCode } from '@weft/protocol';
import { cli, spawnServer, type ServerProcess } from '../apps/server/test/support/process.js';
import { createDatabaseOn, startPostgres } from '../test-support/postgres.js';
import { SimAgent } from '../test-support/sim-agent.js';
import { machine } from './lib/machine.js';
import { median, percentile, round } from './lib/stats.js';

const OUT = fileURLToPath(new URL('./results/outbox.json', import.meta.url));
const HINTED_DELETES = Number(process.env.HINTED_DELETES ?? 100);
const TIMER_DELETES = Number(process.env.TIMER_DELETES ?? 30);
const APPENDS = Number(process.env.APPENDS ?? 2000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cluster = await startPostgres();
const servers: ServerProcess[] = [];
try {
  const url = await createDatabaseOn(cluster.url);
  const a = await spawnServer({ DATABASE_URL: url });
  servers.push(a);
  const [hinted, timerOnly] = await Promise.all([
    spawnServer({ DATABASE_URL: url }),
    spawnServer({ DATABASE_URL: url, WEFT_TEST_OUTBOX: JSON.stringify({ ignoreHints: true }) }),
  ]);
  servers.push(hinted, timerOnly);
  const created = await cli(['apikeys', 'create', '--scopes', 'admin', '--json', '--data-dir', a.dataDir]);
  if (created.code !== 0) throw new Error(created.stderr);
  const adminKey = JSON.parse(created.stdout).key as string;
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(a.url + path, {
      method,
      headers: { authorization: `Bearer ${adminKey}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as any;
  };
  await api('POST', '/api/v1/users', { name: 'bench' });
  const authKey = (await api('POST', '/api/v1/authkeys', { user: 'bench', reusable: true })).key as string;

  /**
   * Per delete: ms from A's reply to the agent's close on `s`. Deletes are spaced by a random pause
   * (up to the catch-up interval for timer-only, so they do not phase-lock to its ticks).
   */
  const propagation = async (s: ServerProcess, n: number, name: string, pauseMs: number) => {
    const agents = Array.from({ length: n }, (_, i) => new SimAgent(a.url, `${name}-${i}`));
    for (const ag of agents) await ag.register(authKey);
    await Promise.all(agents.map((ag) => ag.connect({ url: s.url })));
    await sleep(1000);
    const samples: number[] = [];
    for (const ag of agents) {
      await api('DELETE', `/api/v1/nodes/${ag.self!.id}`);
      const t0 = performance.now();
      await ag.waitFor(() => ag.closed !== null, 10_000, `${ag.hostname} closed`);
      samples.push(performance.now() - t0);
      if (ag.closed!.code !== CloseCode.NodeDeleted) throw new Error(`unexpected close ${ag.closed!.code}`);
      await sleep(Math.random() * pauseMs);
    }
    return { deletes: n, p50Ms: round(median(samples)), p99Ms: round(percentile(samples, 99)), maxMs: round(Math.max(...samples)) };
  };
  const hintedResult = await propagation(hinted, HINTED_DELETES, 'hinted', 200);
  console.log('hinted', hintedResult);
  const timerResult = await propagation(timerOnly, TIMER_DELETES, 'timer', 1000);
  console.log('timer-only', timerResult);
  for (const s of servers) await s.stop();
  servers.length = 0;

  // The append's own cost, on an otherwise idle database.
  const pool = new pg.Pool({ connectionString: url, max: 8 });
  await pool.query('CREATE TABLE bench_row (id int PRIMARY KEY, n bigint NOT NULL)');
  await pool.query('INSERT INTO bench_row SELECT g, 0 FROM generate_series(1, 8) g');
  const payload = JSON.stringify({ kind: 'nodes-removed', nodeIds: [1] });
  const txs = async (clients: number, append: boolean) => {
    const per = Math.floor(APPENDS / clients);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        const client = await pool.connect();
        try {
          for (let i = 0; i < per; i++) {
            await client.query('BEGIN');
            await client.query('UPDATE bench_row SET n = n + 1 WHERE id = $1', [c + 1]);
            if (append) await client.query(OUTBOX_APPEND_SQL, ['bench', payload]);
            await client.query('COMMIT');
          }
        } finally {
          client.release();
        }
      }),
    );
    const ms = performance.now() - t0;
    return { transactions: per * clients, txPerMs: round((per * clients) / ms, 3), msPerTx: round(ms / (per * clients), 3) };
  };
  const dbCost: Record<string, unknown> = {};
  for (const clients of [1, 8]) {
    const without = await txs(clients, false);
    const withAppend = await txs(clients, true);
    dbCost[`clients${clients}`] = { without, withAppend, extraMsPerChange: round(withAppend.msPerTx - without.msPerTx, 3) };
    console.log(`db cost, ${clients} client(s)`, dbCost[`clients${clients}`]);
  }
  await pool.end();

  const out = {
    benchmark: 'outbox',
    date: new Date().toISOString(),
    machine: machine({ postgres: ['/usr/lib/postgresql/15/bin/postgres', ['--version']] }),
    setup:
      'three weft-server processes (tsx) on one Postgres 15 on loopback; deletes made through replica A, agents (SimAgent) connected to replica B. ' +
      'propagation = ms from A answering DELETE /api/v1/nodes/:id to the agent socket on B closing (NodeDeleted), one delete at a time with a random pause (0-200 ms hinted, 0-1000 ms timerOnly so deletes do not phase-lock to the timer). ' +
      'hinted: NOTIFY wakes B (normal). timerOnly: B ignores every NOTIFY, the 1 s catch-up timer alone delivers (the lost-NOTIFY bound). ' +
      'dbCost: BEGIN; UPDATE one row; [outbox append]; COMMIT, sequential per client; with 8 clients the append serialises writers on the counter row.',
    propagation: { hinted: hintedResult, timerOnly: timerResult },
    dbCost,
  };
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(out, null, 2) + '\n');
  console.log('wrote bench/results/outbox.json');
} finally {
  for (const s of servers) await s.stop();
  await cluster.stop();
}

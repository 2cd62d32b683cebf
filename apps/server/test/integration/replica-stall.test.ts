/**
 * The replica-stall hazard, bounded: a replica stopped inside a transaction holds the commit-order
 * lock, and every writer on every replica needs it. Postgres ends the stalled session after
 * `idle_in_transaction_session_timeout` (its locks with it), so the other replica's writers wait
 * at most that long; a writer that waits past `lock_timeout` is answered 503 `database_busy`
 * (retryable), not 500; the pool drops connections Postgres terminated and carries on.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { openDatabase, PG_IDLE_IN_TRANSACTION_TIMEOUT_MS, CHANGE_BUS_APPLICATION_NAME, type Database } from '@weft/db';
import { createTestDatabase } from '../../../../test-support/test-database.js';
import { buildApp, type App } from '../../src/app.js';
import { SYSTEM } from '../../src/state/index.js';
import { spawnServer, type ServerProcess } from '../support/process.js';
import { adminKeyFor, restApi } from '../support/replicas.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The commit-order lock's key (state/context.ts). */
const COMMIT_ORDER_LOCK = 0x77656661;

/** /proc state letter of a process: T = stopped. */
const procState = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];

describe('a replica stalled inside a transaction', () => {
  let url: string;
  let a: ServerProcess;
  let b: ServerProcess;
  let adminKey: string;
  let pool: pg.Pool;

  const api = restApi(() => adminKey);

  beforeAll(async () => {
    url = await createTestDatabase();
    a = await spawnServer({ DATABASE_URL: url });
    // B stops itself (SIGSTOP) right after the audit insert of its first user.create: inside the transaction, holding the lock.
    b = await spawnServer({ DATABASE_URL: url, WEFT_TEST_STOP_IN_TX: 'user.create' });
    adminKey = await adminKeyFor(a);
    pool = new pg.Pool({ connectionString: url, max: 2 });
  }, 240_000);
  afterAll(async () => {
    if (b?.proc.pid) b.proc.kill('SIGCONT');
    await pool?.end();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('blocks writers on the other replica no longer than the idle-in-transaction timeout, and recovers once resumed', async () => {
    const stalled = api(b, 'POST', '/api/v1/users', { name: 'written-while-stalling' });
    const pid = b.proc.pid!;
    const deadline = Date.now() + 30_000;
    while (procState(pid) !== 'T') {
      if (Date.now() > deadline) throw new Error(`replica B never stopped inside its transaction:\n${b.output()}`);
      await sleep(50);
    }
    const holding = await pool.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()",
    );
    expect(Number(holding.rows[0]!.n)).toBe(1);

    const t0 = Date.now();
    const during = await api(a, 'POST', '/api/v1/users', { name: 'written-on-a' });
    const waitedMs = Date.now() - t0;
    expect(during.status, JSON.stringify(during.body)).toBe(201);
    // Bounded by the idle timeout (plus scheduling on a loaded machine), far below Prisma's 60 s.
    expect(waitedMs).toBeLessThan(PG_IDLE_IN_TRANSACTION_TIMEOUT_MS + 10_000);
    process.stdout.write(`replica-stall: a write on A waited ${waitedMs} ms behind B stopped in a transaction (idle_in_transaction_session_timeout ${PG_IDLE_IN_TRANSACTION_TIMEOUT_MS} ms)\n`);

    b.proc.kill('SIGCONT');
    // B's own write lost its session: rolled back, answered as retryable, not as a 500.
    const lost = await stalled;
    expect(lost.status, JSON.stringify(lost.body)).toBe(503);
    expect(lost.body).toMatchObject({ code: 'database_busy', retryable: true });
    expect((await api(a, 'GET', '/api/v1/users/written-while-stalling')).status).toBe(404);
    // And B's next write works on a fresh connection.
    const after = await api(b, 'POST', '/api/v1/users', { name: 'written-on-b-after' });
    expect(after.status, JSON.stringify(after.body)).toBe(201);
    expect((await fetch(`${b.url}/readyz`)).status).toBe(200);
  }, 120_000);
});

describe('lock waits and terminated sessions (Postgres)', () => {
  let db: Database;
  let built: App;
  let key: string;
  let holder: pg.Client;
  const LOCK_MS = 500;

  const createUser = async (name: string) => {
    const res = await built.app.inject({ method: 'POST', url: '/api/v1/users', headers: { authorization: `Bearer ${key}` }, payload: { name } });
    return { status: res.statusCode, body: res.json() };
  };

  beforeAll(async () => {
    const url = await createTestDatabase();
    db = await openDatabase({ databaseUrl: url, timeouts: { lockMs: LOCK_MS } });
    built = await buildApp({ db, serverUrl: 'http://127.0.0.1' });
    key = (await built.state.apiKeys.create(SYSTEM, { scopes: ['admin'] })).key;
    holder = new pg.Client({ connectionString: url });
    await holder.connect();
  }, 120_000);
  afterAll(async () => {
    await holder?.end();
    await built?.app.close();
    await db?.close();
  });

  it('a writer that waits past lock_timeout gets 503 database_busy (retryable) and nothing is written', async () => {
    await holder.query('BEGIN');
    await holder.query(`SELECT pg_advisory_xact_lock(${COMMIT_ORDER_LOCK})`);
    try {
      const refused = await createUser('waits-too-long');
      expect(refused.status).toBe(503);
      expect(refused.body).toMatchObject({ code: 'database_busy', retryable: true });
    } finally {
      await holder.query('ROLLBACK');
    }
    expect((await createUser('after-the-lock')).status).toBe(201);
    expect((await built.state.users.list()).map((u) => u.name)).not.toContain('waits-too-long');
  });

  it('the pool drops sessions Postgres terminated and the next write works', async () => {
    expect((await createUser('before-terminate')).status).toBe(201);
    const terminated = await holder.query<{ n: string }>(
      `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name NOT LIKE $1`,
      [`${CHANGE_BUS_APPLICATION_NAME}%`],
    );
    expect(Number(terminated.rows[0]!.n)).toBeGreaterThan(0);
    // The pool hears of each idle connection's end (it removes them) within moments.
    await sleep(500);
    expect((await createUser('after-terminate')).status).toBe(201);
  });
});

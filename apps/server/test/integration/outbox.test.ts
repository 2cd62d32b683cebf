/**
 * Cross-replica delivery through the change outbox: real server processes on one Postgres, the
 * bus broken or ignored, transactions racing for outbox ids, a replica stalled past retention.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { CHANGE_BUS_APPLICATION_NAME, OUTBOX_APPEND_SQL, Outbox } from '@weft/db';
import { CloseCode } from '@weft/protocol';
import { createTestDatabase } from '../../../../test-support/test-database.js';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { spawnServer, type ServerProcess } from '../support/process.js';
import { adminKeyFor, restApi } from '../support/replicas.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('change outbox across replicas', () => {
  let url: string;
  let a: ServerProcess;
  /** Catch-up timer far away: only hints and reconnects deliver to it. */
  let b: ServerProcess;
  /** Ignores every NOTIFY: only the catch-up timer (500 ms) delivers to it. */
  let c: ServerProcess;
  let adminKey: string;
  let authKey: string;
  let pool: pg.Pool;
  const C_CATCH_UP_MS = 500;

  const api = restApi(() => adminKey);

  /** `n` agents registered through A and connected to `s`, all visible to each other. */
  const agentsOn = async (s: ServerProcess, n: number, name: string) => {
    const agents = Array.from({ length: n }, (_, i) => new SimAgent(a.url, `${name}-${i}`));
    for (const ag of agents) await ag.register(authKey);
    await Promise.all(agents.map((ag) => ag.connect({ url: s.url })));
    return agents;
  };

  beforeAll(async () => {
    url = await createTestDatabase();
    a = await spawnServer({ DATABASE_URL: url });
    [b, c] = await Promise.all([
      spawnServer({ DATABASE_URL: url, WEFT_TEST_OUTBOX: JSON.stringify({ catchUpIntervalMs: 600_000 }) }),
      spawnServer({ DATABASE_URL: url, WEFT_TEST_OUTBOX: JSON.stringify({ catchUpIntervalMs: C_CATCH_UP_MS, ignoreHints: true }) }),
    ]);
    adminKey = await adminKeyFor(a);
    expect((await api(a, 'POST', '/api/v1/users', { name: 'fleet' })).status).toBe(201);
    authKey = (await api(a, 'POST', '/api/v1/authkeys', { user: 'fleet', reusable: true })).body.key;
    pool = new pg.Pool({ connectionString: url, max: 4 });
  }, 120_000);
  afterAll(async () => {
    await pool?.end();
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
  });

  it('every delete of a burst on A reaches B although B lost its bus connection mid-burst', async () => {
    const victims = await agentsOn(b, 30, 'burst');
    const [watcher] = await agentsOn(b, 1, 'burst-watch');
    await watcher!.waitFor(() => victims.every((v) => watcher!.peers.has(v.self!.id)), 10_000, 'watcher sees every victim');
    const listener = `${CHANGE_BUS_APPLICATION_NAME}/${b.proc.pid}`;

    for (const [i, v] of victims.entries()) {
      if (i === 10) {
        const killed = await pool.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [listener]);
        expect(killed.rowCount, "B's listening connection").toBe(1);
      }
      expect((await api(a, 'DELETE', `/api/v1/nodes/${v.self!.id}`)).status).toBe(200);
    }

    for (const v of victims) await v.waitFor(() => v.closed !== null, 10_000, `${v.hostname} closed by B`);
    expect(victims.map((v) => v.closed!.code)).toEqual(victims.map(() => CloseCode.NodeDeleted));
    await watcher!.waitFor(() => victims.every((v) => !watcher!.peers.has(v.self!.id)), 10_000, 'every victim gone from the watcher on B');
    expect(b.output()).toContain('change-bus connection lost');
    // Repaired from the outbox, not by reloading everything.
    expect(b.output()).not.toContain('fell behind');
    watcher!.close();
  });

  it('with every NOTIFY lost, the catch-up timer delivers a delete within its interval', async () => {
    const [victim, watcher] = await agentsOn(c, 2, 'timer');
    await watcher!.waitFor(() => watcher!.peers.has(victim!.self!.id), 10_000, 'watcher sees victim');
    const t0 = Date.now();
    expect((await api(a, 'DELETE', `/api/v1/nodes/${victim!.self!.id}`)).status).toBe(200);
    // The bound: one interval, plus one read and the mapper's work (slack for a loaded machine).
    await victim!.waitFor(() => victim!.closed !== null, C_CATCH_UP_MS + 2_500, 'victim closed by C from the timer alone');
    expect(victim!.closed!.code).toBe(CloseCode.NodeDeleted);
    await watcher!.waitFor(() => !watcher!.peers.has(victim!.self!.id), 2_000, 'victim gone from the watcher on C');
    console.log(`timer-only delivery: ${Date.now() - t0} ms (interval ${C_CATCH_UP_MS} ms)`);
    watcher!.close();
  });

  it('a writer waiting for an outbox id behind an open transaction loses no change, whether the first commits or rolls back', async () => {
    const [x, y, z, w, watcher] = await agentsOn(b, 5, 'race');
    await watcher!.waitFor(() => [x, y, z].every((v) => watcher!.peers.has(v!.self!.id)), 10_000, 'watcher sees x, y, z');
    const first = await pool.connect();
    const second = await pool.connect();
    try {
      const deleteAndAppend = async (client: pg.PoolClient, id: number) => {
        await client.query('DELETE FROM nodes WHERE id = $1', [id]);
        return client.query<{ id: string }>(OUTBOX_APPEND_SQL, ['test-writer', JSON.stringify({ kind: 'nodes-removed', nodeIds: [id] })]);
      };
      const expectContiguousFrom = async (from: number) => {
        const ids = (await pool.query<{ id: string }>('SELECT id FROM changes WHERE id >= $1 ORDER BY id', [from])).rows.map((r) => Number(r.id));
        expect(ids, 'outbox ids with no hole').toEqual(ids.map((_, i) => from + i));
      };
      const waitingOnLock = async (client: pg.PoolClient) => {
        const pid = (client as unknown as { processID: number }).processID;
        for (let i = 0; i < 100; i++) {
          const r = await pool.query(`SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1`, [pid]);
          if (r.rows[0]?.wait_event_type === 'Lock') return;
          await sleep(50);
        }
        throw new Error('second writer never waited for the outbox counter');
      };

      // x's transaction takes an id and stays open; y's asks for the next one and must wait.
      await first.query('BEGIN');
      await second.query('BEGIN');
      const firstId = Number((await deleteAndAppend(first, x!.self!.id)).rows[0]!.id);
      const secondAppend = deleteAndAppend(second, y!.self!.id);
      await waitingOnLock(second);
      await first.query('COMMIT');
      const secondId = Number((await secondAppend).rows[0]!.id);
      await second.query('COMMIT');
      // Other writers (presence batches of the agents just connected) may take ids in between; what
      // must hold is order, and no hole in the ids a reader walks.
      expect(secondId).toBeGreaterThan(firstId);
      await expectContiguousFrom(firstId);
      for (const v of [x!, y!]) await v.waitFor(() => v.closed !== null, 10_000, `${v.hostname} closed by B`);

      // A rolled-back id is handed out again: no hole for a reader to stop at or skip over.
      await first.query('BEGIN');
      await second.query('BEGIN');
      const rolledBack = Number((await deleteAndAppend(first, w!.self!.id)).rows[0]!.id);
      const afterRollback = deleteAndAppend(second, z!.self!.id);
      await waitingOnLock(second);
      await first.query('ROLLBACK');
      expect(Number((await afterRollback).rows[0]!.id)).toBeGreaterThanOrEqual(rolledBack);
      await second.query('COMMIT');
      await expectContiguousFrom(firstId);
      await z!.waitFor(() => z!.closed !== null, 10_000, 'z closed by B');
      expect([x, y, z].map((v) => v!.closed!.code)).toEqual([CloseCode.NodeDeleted, CloseCode.NodeDeleted, CloseCode.NodeDeleted]);
      await watcher!.waitFor(() => [x, y, z].every((v) => !watcher!.peers.has(v!.self!.id)), 10_000, 'x, y, z gone from the watcher');
      // The rolled-back delete never happened.
      expect(w!.closed).toBeNull();
      expect(watcher!.peers.has(w!.self!.id)).toBe(true);
    } finally {
      await first.query('ROLLBACK').catch(() => {});
      await second.query('ROLLBACK').catch(() => {});
      first.release();
      second.release();
      watcher!.close();
    }
  });

  /**
   * SIGSTOP `r` at a moment it holds no open transaction. A replica stopped inside one keeps its
   * locks (the commit-order lock, the outbox counter) and every other writer waits for it: that is
   * a different failure than the one this test is about, bounded by idle_in_transaction_session_timeout
   * (replica-stall.test.ts).
   */
  async function stopWhileIdle(r: ServerProcess): Promise<void> {
    for (let i = 0; i < 50; i++) {
      r.proc.kill('SIGSTOP');
      await sleep(300);
      const open = await pool.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()");
      if (Number(open.rows[0]!.n) === 0) return;
      r.proc.kill('SIGCONT');
      await sleep(200);
    }
    throw new Error('the replica never stopped outside a transaction');
  }

  it('a replica stalled past the retention window reloads everything and drops what was deleted meanwhile', async () => {
    const [victim, watcher] = await agentsOn(b, 2, 'stall');
    await watcher!.waitFor(() => watcher!.peers.has(victim!.self!.id), 10_000, 'watcher sees victim');
    await stopWhileIdle(b);
    try {
      expect((await api(a, 'DELETE', `/api/v1/nodes/${victim!.self!.id}`)).status).toBe(200);
      // What a replica's pruner does once the rows are older than the retention.
      expect(await new Outbox(pool).prune(0)).toBeGreaterThan(0);
    } finally {
      b.proc.kill('SIGCONT');
    }
    await victim!.waitFor(() => victim!.closed !== null, 10_000, 'victim closed by B after its resync');
    expect(victim!.closed!.code).toBe(CloseCode.NodeDeleted);
    await watcher!.waitFor(() => !watcher!.peers.has(victim!.self!.id), 10_000, 'victim gone from the watcher');
    expect(b.output()).toContain('fell behind the change outbox retention');
    watcher!.close();
  }, 180_000); // a stopped and resumed replica, then a full reload, on a loaded machine
});

/**
 * `weft-server doctor` against real servers (the CLI process over REST with an admin key): a
 * healthy replica has no FAIL and exits 0; a STUN port that does not answer and a database
 * migrated by a newer server are FAILs naming what to do (exit 1); the bus check reads the real
 * outbox on Postgres, and a replica whose change-bus listener is really stopped (its Postgres backend
 * SIGSTOPped, so no NOTIFY reaches it) while the other writes is a WARN with the lag and the fix,
 * and PASS again once it hears the bus. TLS is WARN on plain HTTP.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StunServer } from '@weft/relay';
import { CHANGE_BUS_APPLICATION_NAME } from '@weft/db';
import pg from 'pg';
import { createTestDatabase } from '../../../../test-support/test-database.js';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { BUS_LAG_WARN_S } from '../../src/doctor.js';
import { relayCheck } from '../../src/doctor.js';
import { cli, spawnServer, type ServerProcess } from '../support/process.js';
import { adminKeyFor, restApi } from '../support/replicas.js';
import { startServer, type Backend, type TestServer } from '../support/server.js';

interface Check { id: string; status: string; detail: string; fix: string | null }

// Each CLI run starts a process (through tsx when sources changed): slow on a loaded machine.
const SLOW = { timeout: 240_000 };

async function doctor(srv: TestServer): Promise<{ code: number; checks: Record<string, Check> }> {
  const json = await cli(['doctor', '--json', '--server', srv.url, '--api-key', srv.adminKey]);
  return { code: json.code, checks: Object.fromEntries((JSON.parse(json.stdout).checks as Check[]).map((c) => [c.id, c])) };
}

describe.each(['pglite', 'postgres'] as Backend[])('weft-server doctor (%s)', (backend) => {
  let srv: TestServer;
  let stun: StunServer;

  beforeAll(async () => {
    stun = await StunServer.listen({ listen: '127.0.0.1:0' });
    srv = await startServer(backend, { regions: { embeddedStunPort: stun.address().port, extra: [] } });
  }, 240_000);
  afterAll(async () => {
    await srv?.close();
    await stun?.close();
  });

  it('a healthy replica: no FAIL, exit 0; plain HTTP is a WARN with the fix', async () => {
    const d = await doctor(srv);
    expect(Object.values(d.checks).filter((c) => c.status === 'FAIL')).toEqual([]);
    expect(d.code).toBe(0);
    expect(d.checks.database!.status).toBe('PASS');
    expect(d.checks.migrations).toMatchObject({ status: 'PASS', detail: expect.stringMatching(/^all \d+ applied$/) });
    expect(d.checks.stun).toMatchObject({ status: 'PASS', detail: expect.stringContaining('answers') });
    // The check connected to /api/v1/relay on the replica's own port and got the refusal a client without a token gets.
    expect(d.checks.relay).toMatchObject({ status: 'PASS', detail: expect.stringMatching(/^\/api\/v1\/relay answers \(401 machine_unauthorized to a client without a machine token, as it should\), 0 client\(s\)$/), fix: null });
    expect(d.checks.tls).toMatchObject({ status: 'WARN', fix: expect.stringContaining('--tls-cert') });
    expect(d.checks.bus!.detail).toMatch(backend === 'pglite' ? /^embedded database/ : /^this replica is 0 change\(s\) behind the outbox$/);
    const text = await cli(['doctor', '--server', srv.url, '--api-key', srv.adminKey]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^PASS  database: /m);
    expect(text.stdout).toMatch(/^WARN  TLS: this server serves plain HTTP\n      fix: /m);
  }, SLOW.timeout);

  it('a database migrated by a newer server: migrations FAIL saying to upgrade; exit 1', async () => {
    await srv.state.ctx.prisma.$executeRawUnsafe(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, finished_at, applied_steps_count) VALUES ('doctor-test', 'x', '29990101000000_from_the_future', now(), now(), 1)`,
    );
    try {
      const d = await doctor(srv);
      expect(d.code).toBe(1);
      expect(d.checks.migrations).toMatchObject({ status: 'FAIL', detail: expect.stringContaining('29990101000000_from_the_future'), fix: expect.stringContaining('upgrade') });
    } finally {
      await srv.state.ctx.prisma.$executeRawUnsafe(`DELETE FROM "_prisma_migrations" WHERE id = 'doctor-test'`);
    }
    expect((await doctor(srv)).code).toBe(0);
  }, SLOW.timeout);

  it('the relay switched off: a WARN saying so, with the flag that turns it on; exit 0', async () => {
    const off = await startServer(backend, { relay: false, regions: { embeddedStunPort: stun.address().port, extra: [] } });
    try {
      const d = await doctor(off);
      expect(d.code).toBe(0);
      expect(d.checks.relay).toMatchObject({ status: 'WARN', detail: expect.stringMatching(/^off \(--relay off\): /), fix: 'turn it on: --relay on' });
      const text = await cli(['doctor', '--server', off.url, '--api-key', off.adminKey]);
      expect(text.stdout).toMatch(/^WARN  relay: off \(--relay off\): nodes that cannot reach each other directly have no fallback\n      fix: turn it on: --relay on$/m);
    } finally {
      await off.close();
    }
  }, SLOW.timeout);
});

describe('the relay check against listeners that do not serve the relay', () => {
  it('nothing listening: FAIL naming the URL and the error; a 404 (no relay route): FAIL saying to turn it on', async () => {
    const { createServer } = await import('node:http');
    const http = createServer((_req, res) => res.writeHead(404, { 'content-type': 'application/problem+json' }).end('{"code":"not_found"}'));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const port = (http.address() as { port: number }).port;
    try {
      expect(await relayCheck(0, { host: '127.0.0.1', port, tls: false })).toMatchObject({
        status: 'FAIL', detail: `ws://127.0.0.1:${port}/api/v1/relay answered a client without a machine token with 404 not_found, not 401 machine_unauthorized`, fix: expect.stringContaining('--relay on'),
      });
    } finally {
      await new Promise((r) => http.close(r));
    }
    // The port is closed now: nothing answers.
    expect(await relayCheck(0, { host: '127.0.0.1', port, tls: false })).toMatchObject({ status: 'FAIL', detail: expect.stringMatching(new RegExp(`^ws://127\\.0\\.0\\.1:${port}/api/v1/relay did not answer a WebSocket upgrade: .*ECONNREFUSED`)) });
    expect(await relayCheck(2, null)).toMatchObject({ status: 'WARN', detail: 'on, 2 client(s); not probed: this replica has no TCP listener' });
  });
});

describe('weft-server doctor with STUN down', () => {
  let srv: TestServer;
  let silent: Socket;
  beforeAll(async () => {
    // A UDP port that never answers: what doctor sees when STUN is down.
    silent = createSocket('udp4');
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
    srv = await startServer('pglite', { regions: { embeddedStunPort: silent.address().port, extra: [] } });
  }, 240_000);
  afterAll(async () => {
    await srv?.close();
    silent?.close();
  });

  it('STUN that does not answer: FAIL naming the port; exit 1', async () => {
    const d = await doctor(srv);
    expect(d.code).toBe(1);
    expect(d.checks.stun).toMatchObject({ status: 'FAIL', detail: expect.stringContaining(`udp ${silent.address().port} on loopback did not answer`) });
  }, SLOW.timeout);
});

describe('weft-server doctor: the change bus of a replica that stops hearing it (two replicas, real Postgres)', () => {
  let a: ServerProcess;
  /** Catch-up timer far away (10 min): only NOTIFY hints deliver to it, as they do within a second in production. */
  let b: ServerProcess;
  let pool: pg.Pool;
  let adminKey: string;
  let authKey: string;
  let stoppedBackend: number | null = null;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const busOf = async (s: ServerProcess) => {
    const r = await cli(['doctor', '--json', '--server', s.url, '--api-key', adminKey]);
    return (JSON.parse(r.stdout).checks as Check[]).find((c) => c.id === 'bus')!;
  };

  beforeAll(async () => {
    const url = await createTestDatabase();
    a = await spawnServer({ DATABASE_URL: url });
    b = await spawnServer({ DATABASE_URL: url, WEFT_TEST_OUTBOX: JSON.stringify({ catchUpIntervalMs: 600_000 }) });
    adminKey = await adminKeyFor(a);
    const api = restApi(() => adminKey);
    expect((await api(a, 'POST', '/api/v1/users', { name: 'bus' })).status).toBe(201);
    authKey = (await api(a, 'POST', '/api/v1/authkeys', { user: 'bus', reusable: true })).body.key;
    pool = new pg.Pool({ connectionString: url, max: 2 });
  }, 240_000);
  afterAll(async () => {
    if (stoppedBackend !== null) process.kill(stoppedBackend, 'SIGCONT');
    await pool?.end();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it("healthy: PASS, 0 behind; B's listener backend stopped while A registers a node: WARN with the count, the age and the fix; resumed: PASS again", async () => {
    expect(await busOf(b)).toMatchObject({ status: 'PASS', detail: 'this replica is 0 change(s) behind the outbox', fix: null });

    // B's LISTEN connection, paused where it runs: its Postgres backend gets SIGSTOP (no NOTIFY is
    // forwarded to B, and B's socket stays open, so B sees no reconnect to catch up on).
    const r = await pool.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [`${CHANGE_BUS_APPLICATION_NAME}/${b.proc.pid}`]);
    expect(r.rowCount, "B's listening connection").toBe(1);
    stoppedBackend = r.rows[0]!.pid;
    process.kill(stoppedBackend, 'SIGSTOP');

    await new SimAgent(a.url, 'written-on-a').register(authKey);
    // A hears its own change at commit: not behind.
    expect((await busOf(a)).status).toBe('PASS');
    await sleep((BUS_LAG_WARN_S + 1) * 1000);
    const lagging = await busOf(b);
    expect(lagging.status, lagging.detail).toBe('WARN');
    const m = /^this replica is (\d+) change\(s\) behind the outbox, the oldest unapplied one (\d+) s old$/.exec(lagging.detail);
    expect(m, lagging.detail).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(1);
    expect(Number(m![2])).toBeGreaterThanOrEqual(BUS_LAG_WARN_S);
    expect(lagging.fix).toContain('application_name weft-change-bus/PID');

    // The listener runs again: the queued NOTIFYs reach B, it reads the outbox and is level.
    process.kill(stoppedBackend, 'SIGCONT');
    stoppedBackend = null;
    const deadline = Date.now() + 30_000;
    let bus = await busOf(b);
    while (bus.status !== 'PASS' && Date.now() < deadline) {
      await sleep(500);
      bus = await busOf(b);
    }
    expect(bus).toMatchObject({ status: 'PASS', detail: 'this replica is 0 change(s) behind the outbox' });
  }, 240_000);
});

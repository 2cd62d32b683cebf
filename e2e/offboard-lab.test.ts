/**
 * Issue 11, "Suspend and offboard", measured in the real-network lab: two weft-server replicas on
 * one Postgres (r1, r2 in host `server`), peers p1-p3 of user ops connected to r2, and each
 * offboarded user's devices connected to r1. `POST /api/v1/users/:id/offboard` is timed from its
 * response to the last peer's `wg show` lacking the user's keys (lab/offboard.ts); the bound
 * asserted is generous for this shared machine and the numbers are printed (bench/offboard-lab.ts
 * repeats it for p50/p99). The cases share the lab and run in order.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startPostgres, type TestPostgres } from '../test-support/postgres.js';
import { CHANGE_BUS_APPLICATION_NAME } from '@weft/db';
import { timeOffboard, joinVictim, type Victim } from './lab/offboard.js';
import { useLab } from './lab/vitest.js';
import { waitFor } from './lab/wait.js';
import { WeftAgent, WeftServer } from './lab/weft.js';

/** Issue 11: p99 under 1 s (bench/offboard-lab.ts); a single run here is asserted with room. */
const TARGET_MS = 1000;
const BOUND_MS = 3000;
/** With the bus broken the change comes from the outbox catch-up (every CHANGE_CATCH_UP_INTERVAL_MS, 1 s, and on reconnect). */
const BROKEN_BUS_BOUND_MS = 5000;

type P = 'p1' | 'p2' | 'p3';
const PEERS: readonly P[] = ['p1', 'p2', 'p3'];
let pgc: TestPostgres;
let r1: WeftServer;
let r2: WeftServer;
const peers = {} as Record<P, WeftAgent>;
const ips = {} as Record<P, string>;

const ctx = useLab({ name: 'ob', hosts: ['server', 'v1', 'v2', 'p1', 'p2', 'p3'] }, async (lab) => {
  pgc = await startPostgres();
  // The server namespace cannot reach the host's loopback; Postgres's unix socket is a file.
  const env = { WEFT_DATABASE_URL: `postgres://postgres@localhost/weft?host=${encodeURIComponent(pgc.socketDir)}&port=${pgc.port}` };
  r1 = await WeftServer.start(lab, { name: 'r1', port: 8081, env });
  r2 = await WeftServer.start(lab, { name: 'r2', port: 8082, env });
  const authKey = await r2.authKey('ops');
  await Promise.all(PEERS.map(async (h) => {
    peers[h] = await WeftAgent.start(lab.hosts[h]);
    ips[h] = (await peers[h].upOk({ server: r2.url, authKey, hostname: h })).self!.ipv4;
  }));
});
afterAll(async () => {
  await pgc?.stop();
});

const allPeers = () => PEERS.map((h) => peers[h]);

/** After the offboard: the user's devices reach no one, and they are gone from every peer. */
async function assertCutOff(victim: Victim): Promise<void> {
  for (const p of PEERS) {
    const keys = ((await peers[p].wgDump())?.peers ?? []).map((x) => x.publicKey);
    for (const k of victim.keys) expect(keys, `${p} still holds a key of ${victim.user}`).not.toContain(k);
  }
  for (const a of victim.agents) {
    for (const p of PEERS) {
      const r = await a.host.ping(ips[p], { count: 2, intervalMs: 100, timeoutMs: 1500 });
      expect(r.received, `${a.host.name} (offboarded ${victim.user}) -> ${p}: ${r.output}`).toBe(0);
    }
  }
  const u = await r1.api.get<{ status: string }>(`/api/v1/users/${victim.userId}`);
  expect(u.status).toBe('offboarded');
}

async function stopVictim(victim: Victim): Promise<void> {
  await Promise.all(victim.agents.map((a) => a.stop()));
}

describe('offboarding on the real network, two replicas on one Postgres', () => {
  it(`offboard through the peers' replica: both devices' keys leave every peer (target ${TARGET_MS} ms), the devices reach no one, and the other pairs keep working`, async () => {
    await waitFor(async () => (await ctx.lab.hosts.p1.ping(ips.p2, { count: 1, timeoutMs: 2000 })).ok, { timeoutMs: 20_000, intervalMs: 200, what: 'p1 pings p2' });
    const victim = await joinVictim(r1.api, r1.url, 'eve', [ctx.lab.hosts.v1, ctx.lab.hosts.v2]);
    await waitFor(async () => (await ctx.lab.hosts.v1.ping(ips.p3, { count: 1, timeoutMs: 2000 })).ok, { timeoutMs: 20_000, intervalMs: 200, what: 'eve\'s v1 reaches p3 before the offboard' });
    // p1 <-> p2 are not the user's: 100 pings 30 ms apart across the offboard lose nothing.
    const stream = ctx.lab.hosts.p1.ping(ips.p2, { count: 100, intervalMs: 30, timeoutMs: 15_000 });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const t = await timeOffboard({ api: r2.api, victim, peers: allPeers() });
      console.info(`offboard (call on r2, the peers' replica; eve's 2 devices on r1): keys gone from every peer ${t.lastMs} ms after the call returned (${t.lastFromSentMs} ms after it was sent); per peer ${JSON.stringify(t.perPeerMs)}`);
      expect(t.lastMs).toBeLessThan(BOUND_MS);
    } finally {
      const r = await stream;
      expect(r.received, `p1 -> p2 across the offboard: ${r.output}`).toBe(100);
    }
    await assertCutOff(victim);
    await stopVictim(victim);
  });

  it(`offboard through the other replica than the peers': the keys leave every peer (target ${TARGET_MS} ms)`, async () => {
    const victim = await joinVictim(r1.api, r1.url, 'mallory', [ctx.lab.hosts.v1]);
    const t = await timeOffboard({ api: r1.api, victim, peers: allPeers() });
    console.info(`offboard (call on r1, peers on r2): keys gone from every peer ${t.lastMs} ms after the call returned (${t.lastFromSentMs} ms after it was sent); per peer ${JSON.stringify(t.perPeerMs)}`);
    expect(t.lastMs).toBeLessThan(BOUND_MS);
    await assertCutOff(victim);
    await stopVictim(victim);
  });

  it('the peers\' replica losing its bus connection (pg_terminate_backend of its LISTEN) during an offboard still drops the keys: the outbox catch-up delivers what the NOTIFY lost', async () => {
    const victim = await joinVictim(r1.api, r1.url, 'trent', [ctx.lab.hosts.v1]);
    const admin = new pg.Client({ connectionString: pgc.url });
    await admin.connect();
    const listener = `${CHANGE_BUS_APPLICATION_NAME}/${r2.process.pid}`;
    let terminated = 0;
    let breaking = true;
    // Kept broken from before the call until the keys are gone: each reconnect of r2's listener
    // is cut again, so no NOTIFY of the offboard can reach it.
    const breaker = (async () => {
      while (breaking) {
        const r = await admin.query<{ ok: boolean }>('SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1', [listener]);
        terminated += r.rows.filter((x) => x.ok).length;
        await new Promise((res) => setTimeout(res, 5));
      }
    })();
    const lostBefore = r2.process.lines().filter((l) => l.includes('change-bus connection lost')).length;
    try {
      const t = await timeOffboard({
        api: r1.api, victim, peers: allPeers(), timeoutMs: 15_000,
        beforeCall: async () => {
          await waitFor(() => terminated > 0, { timeoutMs: 5000, intervalMs: 10, what: `r2's bus listener (${listener}) terminated` });
        },
      });
      console.info(`offboard with r2's bus broken (${terminated} LISTEN backends terminated): keys gone from every peer ${t.lastMs} ms after the call returned; per peer ${JSON.stringify(t.perPeerMs)}`);
      expect(t.lastMs).toBeLessThan(BROKEN_BUS_BOUND_MS);
    } finally {
      breaking = false;
      await breaker;
      await admin.end();
    }
    expect(terminated).toBeGreaterThan(0);
    expect(r2.process.lines().filter((l) => l.includes('change-bus connection lost')).length).toBeGreaterThan(lostBefore);
    await assertCutOff(victim);
    await stopVictim(victim);
    // Left alone, the listener comes back by itself.
    await waitFor(() => r2.process.lines().some((l) => l.includes('change-bus connection restored')), { timeoutMs: 10_000, intervalMs: 100, what: 'r2 reports its bus restored' });
  });
});

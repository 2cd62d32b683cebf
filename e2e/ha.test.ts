/**
 * Issue 12, "High availability, tested": two replicas on one Postgres behind HAProxy (Debian's,
 * configured by deploy/haproxy/haproxy.cfg as shipped: only the addresses and maxconn are swapped). Kill -9 the
 * replica one agent is on: that agent is back on the other replica within 10 s with a full netmap,
 * a change made on the survivor during the failover reaches every agent, and a ping stream between
 * the agents loses nothing meanwhile (tunnels never depend on the control connection).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startPostgres, type TestPostgres } from '../test-support/postgres.js';
import { useLab } from './lab/vitest.js';
import { REPO, WeftAgent, WeftServer } from './lab/weft.js';
import { GiveUp, waitFor } from './lab/wait.js';
import { httpFrom } from './lab/weft-rest.js';
import type { LabProcess } from './lab/index.js';

const FAILOVER_MS = 10_000;
let pg: TestPostgres;
let replicas: Record<'r1' | 'r2', WeftServer>;
let haproxy: LabProcess;
let balancerUrl: string;
const agents = {} as Record<'a' | 'b', WeftAgent>;
const ips = {} as Record<'a' | 'b', string>;

const ctx = useLab({ name: 'ha', hosts: ['server', 'a', 'b'] }, async (lab) => {
  pg = await startPostgres();
  // The lab's server namespace cannot reach the host's loopback; Postgres's unix socket is a file.
  const databaseUrl = `postgres://postgres@localhost/weft?host=${encodeURIComponent(pg.socketDir)}&port=${pg.port}`;
  const server = lab.hosts.server;
  balancerUrl = `http://${server.ip}:8080`;
  const env = { WEFT_DATABASE_URL: databaseUrl };
  const r1 = await WeftServer.start(lab, { name: 'r1', port: 8081, advertisedUrl: balancerUrl, env });
  const r2 = await WeftServer.start(lab, { name: 'r2', port: 8082, advertisedUrl: balancerUrl, env });
  replicas = { r1, r2 };
  const shipped = readFileSync(join(REPO, 'deploy/haproxy/haproxy.cfg'), 'utf8');
  const cfg = shipped
    .replace('bind :8080', `bind ${server.ip}:8080`)
    .replace('maxconn 20000', 'maxconn 1000') // this machine's descriptor limit is 20,000
    .replace('replica-1.internal:8080', '127.0.0.1:8081')
    .replace('replica-2.internal:8080', '127.0.0.1:8082');
  expect(cfg).not.toEqual(shipped);
  expect(cfg, 'maxconn swapped for this machine').toMatch(/^ {4}maxconn 1000$/m);
  const cfgPath = server.tmpPath('haproxy.cfg');
  writeFileSync(cfgPath, cfg);
  haproxy = server.spawn('haproxy', ['-db', '-f', cfgPath], { logName: 'haproxy' });
  await waitFor(async () => {
    if (!haproxy.running) throw new GiveUp(`haproxy exited:\n${haproxy.tail(20)}`);
    return (await httpFrom(server, 'GET', `${balancerUrl}/readyz`, { timeoutMs: 2000 }).catch(() => null))?.status === 200;
  }, { timeoutMs: 20_000, intervalMs: 200, what: 'haproxy passing /readyz to a replica' });
  const authKey = await r1.authKey('ops');
  for (const h of ['a', 'b'] as const) {
    agents[h] = await WeftAgent.start(lab.hosts[h]);
    const st = await agents[h].upOk({ server: balancerUrl, authKey, hostname: h });
    ips[h] = st.self!.ipv4;
  }
});
afterAll(async () => {
  await pg?.stop();
});

async function connectedOn(r: WeftServer): Promise<number> {
  return (await r.api.call<{ connectedNodes: number }>('GET', '/api/v1/status')).connectedNodes;
}

describe('two replicas behind HAProxy', () => {
  it(`kill -9 one replica: its agent is back on the other within ${FAILOVER_MS} ms with a full netmap, a change made meanwhile reaches everyone, and no tunnel drops`, async () => {
    // leastconn spreads agents by connection count; which replica each one holds is up to haproxy.
    await waitFor(async () => (await connectedOn(replicas.r1)) + (await connectedOn(replicas.r2)) === 2, { timeoutMs: 20_000, intervalMs: 250, what: 'both agents connected through haproxy' });
    const onR1 = await connectedOn(replicas.r1);
    const [victim, survivor] = onR1 >= 1 ? [replicas.r1, replicas.r2] : [replicas.r2, replicas.r1];
    console.info(`agents on r1: ${onR1}, on r2: ${2 - onR1}; killing ${victim === replicas.r1 ? 'r1' : 'r2'}`);
    const warm = await ctx.lab.hosts.a.ping(ips.b, { count: 3, intervalMs: 100, timeoutMs: 5000 });
    expect(warm.ok, warm.output).toBe(true);

    const stream = ctx.lab.hosts.a.ping(ips.b, { count: 120, intervalMs: 100, timeoutMs: 20_000 });
    await new Promise((r) => setTimeout(r, 1000));
    const t0 = Date.now();
    await victim.process.kill({ signal: 'SIGKILL' });
    // A change made on the survivor during the failover.
    const b = await survivor.api.nodeByHostname('b');
    await survivor.api.call('POST', `/api/v1/nodes/${b!.id}/rename`, { name: 'b-renamed' });

    await waitFor(async () => (await connectedOn(survivor)) === 2, { timeoutMs: FAILOVER_MS, intervalMs: 100, what: 'both agents on the surviving replica' });
    const back = Date.now() - t0;
    await waitFor(async () => {
      const [sa, sb] = await Promise.all([agents.a.status(), agents.b.status()]);
      return sa.online && sb.online && sa.peers.some((p) => p.name === 'b-renamed') && sb.self?.name === 'b-renamed';
    }, { timeoutMs: Math.max(1000, FAILOVER_MS - (Date.now() - t0)), intervalMs: 100, what: 'both agents online with the rename made during the failover' });
    console.info(`failover: both agents on the surviving replica ${back} ms after kill -9, the rename everywhere ${Date.now() - t0} ms after`);

    const r = await stream;
    expect(r.sent, r.output).toBe(120);
    expect(r.received, `a -> b during the failover: ${r.output}`).toBe(120);
    expect(haproxy.running).toBe(true);
  });
});

/**
 * The HA deployment of deploy/haproxy/haproxy.cfg, in the lab: two weft-server replicas on one
 * Postgres, each with the relay mesh to the other (relayMeshUrl = its own address, relayMeshPeers
 * = the other's: behind one balancer a node's control and relay connections can land on different
 * replicas, so the relays must forward between them), and Debian's HAProxy in front, configured
 * by the shipped file with only the addresses and maxconn swapped (plus the caller's `backend`
 * lines). Used by e2e/ha.test.ts and e2e/ha-relay.test.ts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { startPostgres, type TestPostgres } from '../../test-support/postgres.js';
import type { Host } from './host.js';
import type { Lab } from './lab.js';
import type { LabProcess } from './process.js';
import { GiveUp, waitFor } from './wait.js';
import { httpFrom } from './weft-rest.js';
import { REPO, WeftServer } from './weft.js';

export type ReplicaName = 'r1' | 'r2';

export interface HaDeployment {
  pg: TestPostgres;
  replicas: Record<ReplicaName, WeftServer>;
  haproxy: LabProcess;
  /** The one address agents are given (HAProxy on the lab's server host). */
  balancerUrl: string;
  /** Each replica's separate metrics listener (on the server host's loopback). */
  metricsUrl: Record<ReplicaName, string>;
}

const PORTS: Record<ReplicaName, { http: number; metrics: number; peer: ReplicaName; backend: string }> = {
  r1: { http: 8081, metrics: 9091, peer: 'r2', backend: 'replica-1' },
  r2: { http: 8082, metrics: 9092, peer: 'r1', backend: 'replica-2' },
};

export interface HaOptions {
  /** Pins each agent host's connections to one replica (a `use-server` line by source address). */
  pin?: Partial<Record<ReplicaName, Host>>;
}

/** Starts the deployment on `server` (the lab host the replicas and HAProxy run in). Stop `pg` in afterAll. */
export async function startHaDeployment(lab: Lab, server: Host, opts: HaOptions = {}): Promise<HaDeployment> {
  const pg = await startPostgres();
  // The lab's server namespace cannot reach the host's loopback; Postgres's unix socket is a file.
  const databaseUrl = `postgres://postgres@localhost/weft?host=${encodeURIComponent(pg.socketDir)}&port=${pg.port}`;
  const balancerUrl = `http://${server.ip}:8080`;
  const start = (name: ReplicaName) => {
    const { http, metrics, peer } = PORTS[name];
    return WeftServer.start(lab, {
      name, port: http, advertisedUrl: balancerUrl, readyTimeoutMs: 180_000,
      env: {
        WEFT_DATABASE_URL: databaseUrl,
        WEFT_RELAY_MESH_URL: `http://127.0.0.1:${http}`,
        WEFT_RELAY_MESH_PEERS: `http://127.0.0.1:${PORTS[peer].http}`,
        WEFT_METRICS_LISTEN: `127.0.0.1:${metrics}`,
      },
    });
  };
  // One at a time: the first applies the migrations and makes the mesh secret the second reads.
  const replicas = { r1: await start('r1'), r2: await start('r2') };

  const shipped = readFileSync(join(REPO, 'deploy/haproxy/haproxy.cfg'), 'utf8');
  const pins = Object.entries(opts.pin ?? {}).map(([r, h]) => `    use-server ${PORTS[r as ReplicaName].backend} if { src ${h!.ip} }\n`).join('');
  const cfg = shipped
    .replace('bind :8080', `bind ${server.ip}:8080`)
    .replace('maxconn 20000', 'maxconn 1000') // this machine's descriptor limit is 20,000
    .replace('    balance leastconn\n', `    balance leastconn\n${pins}`)
    .replace('replica-1.internal:8080', `127.0.0.1:${PORTS.r1.http}`)
    .replace('replica-2.internal:8080', `127.0.0.1:${PORTS.r2.http}`);
  // The shipped file must still have what is swapped: a change to it fails here, not as a mystery.
  expect(cfg, 'the shipped haproxy.cfg, addresses swapped').toContain(`127.0.0.1:${PORTS.r2.http} check`);
  expect(cfg, 'maxconn swapped for this machine').toMatch(/^ {4}maxconn 1000$/m);
  if (pins) expect(cfg, 'the pins are in the backend').toContain(pins);
  const cfgPath = server.tmpPath('haproxy.cfg');
  writeFileSync(cfgPath, cfg);
  const haproxy = server.spawn('haproxy', ['-db', '-f', cfgPath], { logName: 'haproxy' });
  await waitFor(async () => {
    if (!haproxy.running) throw new GiveUp(`haproxy exited:\n${haproxy.tail(20)}`);
    return (await httpFrom(server, 'GET', `${balancerUrl}/readyz`, { timeoutMs: 2000 }).catch(() => null))?.status === 200;
  }, { timeoutMs: 20_000, intervalMs: 200, what: 'haproxy passing /readyz to a replica' });
  const metricsUrl = { r1: `http://127.0.0.1:${PORTS.r1.metrics}/metrics`, r2: `http://127.0.0.1:${PORTS.r2.metrics}/metrics` };
  const deployment = { pg, replicas, haproxy, balancerUrl, metricsUrl };
  await waitFor(async () => (await meshLinks(server, deployment, 'r1')) === 1 && (await meshLinks(server, deployment, 'r2')) === 1,
    { timeoutMs: 20_000, intervalMs: 250, what: 'each replica linked to the other (weft_relay_mesh_links 1)' });
  return deployment;
}

/** One sample of a replica's /metrics, 0 when the series is absent. */
export async function replicaMetric(server: Host, ha: Pick<HaDeployment, 'metricsUrl'>, r: ReplicaName, series: string): Promise<number> {
  const res = await httpFrom(server, 'GET', ha.metricsUrl[r], { timeoutMs: 5000 });
  expect(res.status, `${r} /metrics`).toBe(200);
  const line = res.text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

function meshLinks(server: Host, ha: Pick<HaDeployment, 'metricsUrl'>, r: ReplicaName): Promise<number> {
  return replicaMetric(server, ha, r, 'weft_relay_mesh_links');
}

/** Control connections (agents) on replica `r`. */
export async function connectedOn(r: WeftServer): Promise<number> {
  return (await r.api.call<{ connectedNodes: number }>('GET', '/api/v1/status')).connectedNodes;
}

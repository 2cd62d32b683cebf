/**
 * Every relay of a deployment forwards to every other: two server replicas on one Postgres, their
 * embedded relays meshed (RelayMeshDialer), and two real `weft-relay` processes, region-1 linked
 * to replica 1 and region-2 to replica 2. A node on region-1 reaches a node on region-2 (through
 * both replicas) and one on replica 2's embedded relay, both ways; deleting a node stops its
 * relayed packets at once, wherever it is homed. And a region linked to both replicas keeps its
 * clients relaying when the replica it announces them on goes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyBytes } from '@weft/crypto';
import { CloseCode } from '@weft/protocol';
import { RelayPeer } from '../../../../test-support/relay-peer.js';
import type { SimAgent } from '../../../../test-support/sim-agent.js';
import { createTestDatabase } from '../../../../test-support/test-database.js';
import { RelayMeshDialer } from '../../src/agent/relay-mesh.js';
import { freePort } from '../support/process.js';
import { joinedAgent } from '../support/replicas.js';
import { startServer, type TestServer } from '../support/server.js';

const RELAY_BIN = resolve(import.meta.dirname, '../../../relay/bin/weft-relay.mjs');
const quiet = { info: () => {}, warn: () => {} };

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, what: string, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await Promise.resolve().then(fn).catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Sends from `from` to `toKey` until `to` gets one (presence may still be travelling), then checks the sender key. */
async function reaches(from: RelayPeer, to: RelayPeer, fromKey: string, toKey: string, tag: string): Promise<void> {
  const before = to.packets.length;
  await until(() => {
    from.send(toKey as never, Buffer.from(tag));
    return to.packets.length > before ? true : undefined;
  }, `a packet ${tag}`, 20_000);
  const got = to.packets.slice(before);
  expect(got.every((p) => p.packet.toString() === tag && p.from.equals(Buffer.from(keyBytes(fromKey as never))))).toBe(true);
}

type Region = { proc: ChildProcess; url: string; out: () => string };

/** A real `weft-relay` process linked to `servers` (one URL per replica). */
async function spawnRegion(servers: string[], name: string, secretFile: string): Promise<Region> {
  const port = await freePort();
  const proc = spawn(process.execPath, [RELAY_BIN, '--server', servers.join(','), '--mesh-secret-file', secretFile, '--listen', `127.0.0.1:${port}`, '--stun-listen', '127.0.0.1:0', '--name', name], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  return { proc, url: `http://127.0.0.1:${port}`, out: () => out };
}

/**
 * A node joined through replica `s`, with its relay socket open on `relayUrl` (retried until that
 * relay has linked); both are kept in `agents` and `peers` for the teardown.
 */
async function relayNode(s: TestServer, name: string, relayUrl: string, authKey: string, agents: SimAgent[], peers: RelayPeer[]) {
  const a = await joinedAgent(s.url, name, authKey);
  agents.push(a);
  const r = await until(() => RelayPeer.open(relayUrl, a.machine.privateKey), `${name}'s relay socket on ${relayUrl}`);
  peers.push(r);
  return { a, r, key: a.node.publicKey as string };
}

type Health = { ok: boolean; links: Array<{ server: string; linked: boolean; primary: boolean }> };
const health = async (r: Region): Promise<Health> => (await fetch(`${r.url}/healthz`)).json() as Promise<Health>;

describe('relays of a deployment relay to each other (two replicas, two standalone regions)', () => {
  let work: string;
  let r1: TestServer;
  let r2: TestServer;
  let dialers: RelayMeshDialer[] = [];
  const regions: Region[] = [];
  const agents: SimAgent[] = [];
  const peers: RelayPeer[] = [];
  let authKey: string;

  async function region(server: TestServer, name: string, secretFile: string) {
    const r = await spawnRegion([server.url], name, secretFile);
    regions.push(r);
    return r;
  }

  const node = (s: TestServer, name: string, relayUrl: string) => relayNode(s, name, relayUrl, authKey, agents, peers);

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'weft-relay-regions-'));
    const url = await createTestDatabase();
    r1 = await startServer('postgres', {}, url);
    r2 = await startServer('postgres', {}, url);
    dialers = [
      new RelayMeshDialer({ relay: r1.relay!, secret: r1.relayMeshSecret!, selfUrl: r1.url, peers: [r2.url], log: quiet }),
      new RelayMeshDialer({ relay: r2.relay!, secret: r2.relayMeshSecret!, selfUrl: r2.url, peers: [r1.url], log: quiet }),
    ];
    const secretFile = join(work, 'mesh.secret');
    writeFileSync(secretFile, `${r1.relayMeshSecret!.toString('base64')}\n`, { mode: 0o600 });
    await region(r1, 'region-1', secretFile);
    await region(r2, 'region-2', secretFile);
    await r1.api('POST', '/api/v1/users', { name: 'ops' });
    authKey = (await r1.api('POST', '/api/v1/authkeys', { user: 'ops', reusable: true })).body.key;
    await until(() => dialers.every((d) => d.linked.length === 1), 'the replicas linked to each other');
  }, 120_000);
  afterAll(async () => {
    for (const p of peers) p.close();
    for (const a of agents) a.close();
    for (const r of regions) if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
    for (const d of dialers) d.close();
    await r1?.close();
    await r2?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('a node on region-1 (linked to replica 1) and one on region-2 (linked to replica 2) relay to each other both ways', async () => {
    const x = await node(r1, 'reg-x', regions[0]!.url);
    const y = await node(r2, 'reg-y', regions[1]!.url);
    await reaches(x.r, y.r, x.key, y.key, 'x->y');
    await reaches(y.r, x.r, y.key, x.key, 'y->x');
    // Through both replicas: each passed packets on toward the other's region.
    expect(r1.relay!.counters.mesh.forwardedOut).toBeGreaterThan(0);
    expect(r2.relay!.counters.mesh.forwardedOut).toBeGreaterThan(0);
  }, 90_000);

  it('a node on region-1 and one on replica 2\'s embedded relay relay to each other both ways', async () => {
    const x = await node(r1, 'reg-x2', regions[0]!.url);
    const w = await node(r2, 'emb-w', r2.url);
    await reaches(x.r, w.r, x.key, w.key, 'x2->w');
    await reaches(w.r, x.r, w.key, x.key, 'w->x2');
  }, 90_000);

  it('deleting a node on region-2 closes it there and stops packets to it from region-1 at once', async () => {
    const x = await node(r1, 'reg-x3', regions[0]!.url);
    const v = await node(r2, 'reg-victim', regions[1]!.url);
    await reaches(x.r, v.r, x.key, v.key, 'before delete');
    expect((await r1.api('DELETE', `/api/v1/nodes/${v.a.self!.id}`)).status).toBe(200);
    await v.r.waitFor(() => v.r.closed !== null, 10_000, 'the victim\'s relay socket closed');
    expect(v.r.closed!.code).toBe(CloseCode.NodeDeleted);
    const received = v.r.packets.length;
    for (let i = 0; i < 5; i++) x.r.send(v.key as never, Buffer.from('after delete'));
    await x.r.waitFor(() => x.r.gone.length > 0, 10_000, 'the sender told its peer is gone');
    expect(v.r.packets.length).toBe(received);
    // And it cannot come back on either region.
    for (const r of regions) {
      const err = await RelayPeer.open(r.url, v.a.machine.privateKey).then(() => null, (e: { refused?: { status: number } }) => e);
      expect(err?.refused?.status).toBe(401);
    }
  }, 90_000);
});

describe('a region linked to every replica (weft-relay --server URL1,URL2) outlives one of them', () => {
  let work: string;
  const servers: TestServer[] = [];
  let dialers: RelayMeshDialer[] = [];
  let region: Region;
  const agents: SimAgent[] = [];
  const peers: RelayPeer[] = [];
  let authKey: string;

  const node = (s: TestServer, name: string, relayUrl: string) => relayNode(s, name, relayUrl, authKey, agents, peers);

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'weft-relay-failover-'));
    const url = await createTestDatabase();
    servers.push(await startServer('postgres', {}, url), await startServer('postgres', {}, url));
    const [r1, r2] = servers as [TestServer, TestServer];
    dialers = [
      new RelayMeshDialer({ relay: r1.relay!, secret: r1.relayMeshSecret!, selfUrl: r1.url, peers: [r2.url], log: quiet }),
      new RelayMeshDialer({ relay: r2.relay!, secret: r2.relayMeshSecret!, selfUrl: r2.url, peers: [r1.url], log: quiet }),
    ];
    const secretFile = join(work, 'mesh.secret');
    writeFileSync(secretFile, `${r1.relayMeshSecret!.toString('base64')}\n`, { mode: 0o600 });
    region = await spawnRegion([r1.url, r2.url], 'region-ha', secretFile);
    await r1.api('POST', '/api/v1/users', { name: 'ops' });
    authKey = (await r1.api('POST', '/api/v1/authkeys', { user: 'ops', reusable: true })).body.key;
    await until(() => dialers.every((d) => d.linked.length === 1), 'the replicas linked to each other');
    await until(async () => (await health(region)).links.every((l) => l.linked) || undefined, 'the region linked to both replicas').catch((err: Error) => {
      throw new Error(`${err.message}; weft-relay said:\n${region.out()}`);
    });
  }, 120_000);
  afterAll(async () => {
    for (const p of peers) p.close();
    for (const a of agents) a.close();
    if (region?.proc.exitCode === null) region.proc.kill('SIGKILL');
    for (const d of dialers) d.close();
    for (const s of servers) await s.close().catch(() => {});
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the replica its mesh frames travel on goes: its clients stay connected and relay on through the other; a delete there cuts them; with no replica left it fails closed', async () => {
    const h = await health(region);
    expect(h.ok).toBe(true);
    const primary = servers.find((s) => h.links.find((l) => l.primary)?.server === s.url)!;
    const survivor = servers.find((s) => s !== primary)!;
    expect(primary).toBeDefined();
    const x = await node(survivor, 'ha-x', region.url);
    const y = await node(survivor, 'ha-y', region.url);
    const w = await node(survivor, 'ha-w', survivor.url);
    await reaches(x.r, w.r, x.key, w.key, 'x->w before');
    await reaches(w.r, x.r, w.key, x.key, 'w->x before');

    // The replica the region announces its clients on goes away.
    dialers[servers.indexOf(primary)]!.close();
    await primary.close();
    await until(async () => {
      const now = await health(region);
      return (now.ok && now.links.filter((l) => l.linked).map((l) => l.server).join() === survivor.url && now.links.find((l) => l.primary)?.server === survivor.url) || undefined;
    }, 'the region relinked its mesh frames to the survivor', 15_000);
    await reaches(x.r, w.r, x.key, w.key, 'x->w after');
    await reaches(w.r, x.r, w.key, x.key, 'w->x after');
    await reaches(x.r, y.r, x.key, y.key, 'x->y after');
    expect(x.r.closed).toBeNull();
    expect(y.r.closed).toBeNull();

    // The survivor learnt of x when x joined (its token was presented there too): a delete there cuts x on the region.
    expect((await survivor.api('DELETE', `/api/v1/nodes/${x.a.self!.id}`)).status).toBe(200);
    await x.r.waitFor(() => x.r.closed !== null, 10_000, "x's relay socket closed");
    expect(x.r.closed!.code).toBe(CloseCode.NodeDeleted);

    // No replica left: nothing can revoke, so the region closes its clients.
    dialers[servers.indexOf(survivor)]!.close();
    await survivor.close();
    await y.r.waitFor(() => y.r.closed !== null, 10_000, "y's relay socket closed");
    expect(y.r.closed!.code).toBe(1013);
    expect((await fetch(`${region.url}/healthz`)).status).toBe(503);
  }, 120_000);
});

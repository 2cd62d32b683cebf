/**
 * Netmap resume under an access policy and the compact resume: a reconnecting agent whose view
 * class's list is the revision it holds gets `presence` (and `endpoints` only when its endpoints
 * revision differs) with its packet filter, and ends exactly where a fresh netmap would leave it;
 * a change of its view while away (a node of its class, a policy change) gets it the full
 * netmap; an older resuming agent (no endpoints revision) gets a full netmap under a policy.
 * Also: a session that got its resume in a patch window is not sent the window's patches it
 * already holds. Real server (PGlite and Postgres) restarted on the same database, real
 * WebSocket agents.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateNodeKey } from '@weft/crypto';
import { type Database, openDatabase } from '@weft/db';
import type { Peer } from '@weft/protocol';
import { createTestDatabase } from '../../../../test-support/test-database.js';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import type { App } from '../../src/app.js';
import { SYSTEM } from '../../src/state/index.js';
import { BACKENDS, listenOn } from '../support/server.js';

/** Each user's devices reach each other (two view classes: ops and dev). */
const SELF = { acls: [{ action: 'accept', src: ['autogroup:member'], dst: ['autogroup:self:*'] }] };

describe.each(BACKENDS)('netmap resume under a policy on %s', (backend) => {
  let dir = '';
  let databaseUrl: string | undefined;
  let db: Database;
  let app: App;
  let url = '';
  const ops: SimAgent[] = [];
  const dev: SimAgent[] = [];
  let opsPrinter = 0;

  const start = async () => {
    db = await openDatabase(backend === 'pglite' ? { dataDir: dir } : { databaseUrl: databaseUrl! });
    ({ app, url } = await listenOn(db));
  };
  const stop = async () => {
    await app.app.close();
    await db.close();
  };
  const reconnect = async (a: SimAgent, resume: boolean, endpoints = true) => {
    const mark = a.received.length;
    await a.connect({ url, resume, endpoints });
    await a.waitFor(() => a.received.length > mark, 10_000, `${a.hostname} first message`);
    return a.received[mark]!.msg;
  };
  const held = (a: SimAgent) => [...a.peers.values()].map(({ nat, ...p }) => (nat ? { ...p, nat } : p) as Peer).sort((x, y) => x.id - y.id);
  /** The packet filter the agent holds: the last netmap's or resume's, then deltas'. */
  const filterOf = (a: SimAgent) => {
    let f: unknown;
    for (const r of a.received) if (r.msg.type !== 'delta' || r.msg.packetFilter !== undefined) f = r.msg.packetFilter;
    return f;
  };
  const fresh = async (a: SimAgent) => {
    await a.disconnect();
    expect((await reconnect(a, false)).type).toBe('netmap');
    return { peers: held(a), filter: filterOf(a) };
  };
  const quiet = async () => {
    await app.mapper.settled();
    await new Promise((r) => setTimeout(r, 300));
    await app.mapper.settled();
  };
  const setPolicy = async (doc: unknown) => {
    await app.state.policy.set(JSON.stringify(doc), (await app.state.policy.current()).version, SYSTEM);
    await quiet();
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-resume-policy-'));
    if (backend === 'postgres') databaseUrl = await createTestDatabase();
    await start();
    for (const name of ['ops', 'dev']) await app.state.users.create(SYSTEM, { name });
    const opsKey = (await app.state.authKeys.create(SYSTEM, { user: 'ops', reusable: true })).key;
    const devKey = (await app.state.authKeys.create(SYSTEM, { user: 'dev', reusable: true })).key;
    opsPrinter = (await app.state.nodes.createExternal(SYSTEM, { user: 'ops', hostname: 'printer', nodeKey: generateNodeKey().publicKey })).id;
    await setPolicy(SELF);
    for (const [list, key, name] of [[ops, opsKey, 'ops'], [dev, devKey, 'dev']] as const) {
      for (let i = 0; i < 3; i++) {
        const a = new SimAgent(url, `${name}-${i}`);
        await a.register(key);
        list.push(a);
        expect((await reconnect(a, false)).type).toBe('netmap');
      }
    }
    for (const a of ops) await a.waitFor(() => a.peers.size === 3, 10_000, `${a.hostname} sees ops`);
    for (const a of dev) await a.waitFor(() => a.peers.size === 2, 10_000, `${a.hostname} sees dev`);
  }, 120_000);
  afterAll(async () => {
    for (const a of [...ops, ...dev]) a.close();
    await stop().catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('after a restart an agent holding its class revision gets a compact resume with its filter and ends where a fresh netmap leaves it', async () => {
    await quiet();
    for (const a of [...ops, ...dev]) expect(a.revision, a.hostname).toMatch(/^[0-9a-f]{32}$/);
    expect(ops[0]!.revision).not.toBe(dev[0]!.revision);
    for (const a of [...ops, ...dev]) await a.disconnect();
    // A volatile field changed while they were away: endpoints come with the resume.
    await app.state.nodes.patch(opsPrinter, { endpoints: ['192.0.2.7:41641'] });
    await stop();
    await start();
    const [o0, o1, o2] = ops as [SimAgent, SimAgent, SimAgent];
    const first = await reconnect(o0, true);
    expect(first.type).toBe('resume');
    expect(first.presence).toBeDefined();
    expect(first.endpoints).toBeDefined();
    expect(first.packetFilter).toEqual(expect.any(Array));
    expect(first.patch).toBeUndefined();
    for (const a of [o1, ...dev]) expect((await reconnect(a, true)).type, a.hostname).toBe('resume');
    // An agent of the older resume (no endpoints revision) gets the full netmap under a policy.
    expect((await reconnect(o2, true, false)).type).toBe('netmap');
    await quiet();
    const resumed = { peers: held(o0), filter: filterOf(o0) };
    expect(resumed.peers.map((p) => p.id)).toEqual([opsPrinter, o1.self!.id, o2.self!.id].sort((x, y) => x - y));
    expect(resumed.peers.find((p) => p.id === opsPrinter)?.endpoints).toEqual(['192.0.2.7:41641']);
    expect(resumed.peers.find((p) => p.id === o2.self!.id)?.online).toBe(true);
    expect(await fresh(o0)).toEqual(resumed);
    // Nothing changed since: the next resume leaves endpoints out, and still matches a fresh netmap.
    await quiet();
    await o1.disconnect();
    const again = await reconnect(o1, true);
    expect(again.type).toBe('resume');
    expect(again.endpoints).toBeUndefined();
    await quiet();
    const o1Held = { peers: held(o1), filter: filterOf(o1) };
    expect(await fresh(o1)).toEqual(o1Held);
  }, 60_000);

  it('a node of its class added while away gets the full netmap; one of another class does not; deltas keep connected agents resumable', async () => {
    const [o0, o1] = ops as [SimAgent, SimAgent];
    const d0 = dev[0]!;
    await quiet();
    await o0.disconnect();
    await d0.disconnect();
    const scanner = await app.state.nodes.createExternal(SYSTEM, { user: 'ops', hostname: 'scanner', nodeKey: generateNodeKey().publicKey });
    // o1 was connected: it got the upsert with its class's new revision.
    await o1.waitFor(() => o1.peers.has(scanner.id), 10_000, 'the upsert');
    await quiet();
    expect((await reconnect(o0, true)).type).toBe('netmap');
    expect(held(o0).map((p) => p.id)).toContain(scanner.id);
    // dev does not see ops' scanner: its revision still holds.
    expect((await reconnect(d0, true)).type).toBe('resume');
    await quiet();
    expect({ peers: held(d0), filter: filterOf(d0) }).toEqual(await fresh(d0));
    await o1.disconnect();
    expect((await reconnect(o1, true)).type).toBe('resume');
    await quiet();
    const o1Held = { peers: held(o1), filter: filterOf(o1) };
    expect(await fresh(o1)).toEqual(o1Held);
  }, 60_000);

  it('a policy change that changes its view while away gets the full netmap; one that changes only its filter resumes with the new filter', async () => {
    const [o0, o1] = ops as [SimAgent, SimAgent];
    const d0 = dev[0]!;
    await quiet();
    // Only the ports change: views stay, filters change.
    await o0.disconnect();
    await setPolicy({ acls: [{ action: 'accept', src: ['autogroup:member'], dst: ['autogroup:self:22,443'] }] });
    const r = await reconnect(o0, true);
    expect(r.type).toBe('resume');
    expect(JSON.stringify(r.packetFilter)).toContain('443');
    await quiet();
    expect(await fresh(o0)).toEqual({ peers: held(o0), filter: filterOf(o0) });
    // ops may now reach dev: both views change.
    await o1.disconnect();
    await d0.disconnect();
    await setPolicy({ acls: [{ action: 'accept', src: ['autogroup:member'], dst: ['autogroup:self:22,443'] }, { action: 'accept', src: ['ops@'], dst: ['dev@:*'] }] });
    expect((await reconnect(o1, true)).type).toBe('netmap');
    expect(held(o1).map((p) => p.id)).toEqual(expect.arrayContaining(dev.map((a) => a.self!.id)));
    expect((await reconnect(d0, true)).type).toBe('netmap');
    await quiet();
    // o0 stayed connected through the change: its deltas said its new revision.
    await o0.disconnect();
    expect((await reconnect(o0, true)).type).toBe('resume');
    await quiet();
    expect(await fresh(o0)).toEqual({ peers: held(o0), filter: filterOf(o0) });
    await setPolicy(SELF);
  }, 60_000);
});

describe.each(BACKENDS)('patches to a session resumed in the window on %s', (backend) => {
  let dir = '';
  let db: Database;
  let app: App;
  let url = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-resume-patch-'));
    db = await openDatabase(backend === 'pglite' ? { dataDir: dir } : { databaseUrl: await createTestDatabase() });
    // A window that never ends by itself: the test ends it.
    ({ app, url } = await listenOn(db, { patchIntervalMs: 600_000 }));
  }, 60_000);
  afterAll(async () => {
    await app.app.close().catch(() => {});
    await db.close().catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is sent only the patches recorded after its resume', async () => {
    await app.state.users.create(SYSTEM, { name: 'ops' });
    const key = (await app.state.authKeys.create(SYSTEM, { user: 'ops', reusable: true })).key;
    const x = (await app.state.nodes.createExternal(SYSTEM, { user: 'ops', hostname: 'x', nodeKey: generateNodeKey().publicKey })).id;
    const y = (await app.state.nodes.createExternal(SYSTEM, { user: 'ops', hostname: 'y', nodeKey: generateNodeKey().publicKey })).id;
    const a = new SimAgent(url, 'a');
    const b = new SimAgent(url, 'b');
    for (const s of [a, b]) {
      await s.register(key);
      await s.connect({ url });
      await s.waitFor(() => s.received.some((r) => r.msg.type === 'netmap'), 10_000, 'netmap');
    }
    const settle = async () => {
      await new Promise((r) => setTimeout(r, 200)); // presence writes
      await app.mapper.settled();
      app.mapper.flushPatches();
    };
    await settle();
    await b.waitFor(() => b.peers.size === 3 && b.revision !== null, 10_000, 'b sees all');
    await b.disconnect();
    await settle();
    // In one window: x changes, then b resumes (it gets x's change in the resume), then y changes.
    await app.state.nodes.patch(x, { endpoints: ['192.0.2.1:41641'] });
    await app.mapper.settled();
    const mark = b.received.length;
    await b.connect({ url, resume: true });
    await b.waitFor(() => b.received.length > mark, 10_000, 'resume');
    expect(b.received[mark]!.msg.type).toBe('resume');
    expect(b.peers.get(x)?.endpoints).toEqual(['192.0.2.1:41641']);
    await new Promise((r) => setTimeout(r, 200));
    await app.mapper.settled();
    await app.state.nodes.patch(y, { endpoints: ['192.0.2.2:41641'] });
    await app.mapper.settled();
    app.mapper.flushPatches();
    await b.waitFor(() => b.peers.get(y)?.endpoints[0] === '192.0.2.2:41641', 10_000, "y's patch");
    await a.waitFor(() => a.peers.get(y)?.endpoints[0] === '192.0.2.2:41641', 10_000, "y's patch at a");
    const patched = b.received.slice(mark + 1).flatMap((r) => ((r.msg.patch as { id: number }[] | undefined) ?? []).map((p) => p.id));
    expect(patched).toContain(y);
    expect(patched).not.toContain(x);
    // a connected before the window: it gets both.
    const aPatched = a.received.flatMap((r) => ((r.msg.patch as { id: number }[] | undefined) ?? []).map((p) => p.id));
    expect(aPatched).toEqual(expect.arrayContaining([x, y]));
    a.close();
    b.close();
  }, 60_000);

  it('two agents resuming from one list each get their own cut of it, and one resuming after a change gets the change (the parts are made once per version of the list)', async () => {
    await app.state.users.create(SYSTEM, { name: 'cut' });
    const key = (await app.state.authKeys.create(SYSTEM, { user: 'cut', reusable: true })).key;
    const x = (await app.state.nodes.createExternal(SYSTEM, { user: 'cut', hostname: 'cut-x', nodeKey: generateNodeKey().publicKey })).id;
    const agents = [new SimAgent(url, 'cut-a'), new SimAgent(url, 'cut-b'), new SimAgent(url, 'cut-c')];
    for (const s of agents) {
      await s.register(key);
      await s.connect({ url });
      await s.waitFor(() => s.received.some((r) => r.msg.type === 'netmap'), 10_000, 'netmap');
    }
    await new Promise((r) => setTimeout(r, 200)); // presence writes
    await app.mapper.settled();
    app.mapper.flushPatches();
    const [a, b, c] = agents as [SimAgent, SimAgent, SimAgent];
    const all = await app.state.nodes.list();
    for (const s of agents) await s.waitFor(() => s.peers.size === all.length - 1 && s.revision !== null, 10_000, `${s.hostname} sees all`);
    for (const s of agents) await s.disconnect();
    await new Promise((r) => setTimeout(r, 200));
    await app.mapper.settled();
    app.mapper.flushPatches();
    const resume = async (s: SimAgent) => {
      const mark = s.received.length;
      await s.connect({ url, resume: true });
      await s.waitFor(() => s.received.length > mark, 10_000, `${s.hostname}'s resume`);
      expect(s.received[mark]!.msg.type, s.hostname).toBe('resume');
      expect(s.received[mark]!.msg).toHaveProperty('presence');
      // Each holds every peer but itself.
      expect([...s.peers.keys()].sort((p, q) => p - q), s.hostname).toEqual(all.map((n) => n.id).filter((id) => id !== s.self!.id).sort((p, q) => p - q));
      return s;
    };
    await resume(a);
    await resume(b);
    // A change to x after a and b resumed: c's resume must have it (a cut of parts made before would not).
    await app.state.nodes.patch(x, { endpoints: ['192.0.2.9:41641'] });
    await app.mapper.settled();
    await resume(c);
    expect(c.peers.get(x)?.endpoints).toEqual(['192.0.2.9:41641']);
    for (const s of agents) s.close();
  }, 60_000);
});

/**
 * Every change the write path emits was also recorded in the outbox, in its transaction: a
 * write that emits without recording reaches this replica's agents and no other's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateNodeKey } from '@weft/crypto';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import type { Change } from '../../src/state/changes.js';
import { audit, TX_OPTIONS, type Actor } from '../../src/state/context.js';
import { startServer, type TestServer } from '../support/server.js';

/** jsonb reorders object keys: compare with keys sorted. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const T: Actor = { type: 'local-socket', origin: 'cli' };

describe('outbox on postgres', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer('postgres');
  });
  afterAll(async () => {
    await s?.close();
  });

  it('records every change the write path emits, once, with this replica as origin', async () => {
    const emitted: Change[] = [];
    const emit = s.state.ctx.emit;
    s.state.ctx.emit = (change) => {
      emitted.push(change);
      emit(change);
    };
    const from = (await s.state.ctx.prisma.changeSeq.findUniqueOrThrow({ where: { id: 1 } })).last;
    const st = s.state;

    await st.users.create(T, { name: 'ops' });
    await st.users.create(T, { name: 'leaver' });
    // The user lifecycle: suspend (nodes-suspended), resume (nodes-upserted), offboard and
    // delete (nodes-removed), each with a device, so each has a change to record.
    await st.users.create(T, { name: 'paused' });
    await st.users.create(T, { name: 'offboarded' });
    await st.nodes.createExternal(T, { user: 'paused', hostname: 'paused-ext', nodeKey: generateNodeKey().publicKey });
    await st.nodes.createExternal(T, { user: 'offboarded', hostname: 'offboarded-ext', nodeKey: generateNodeKey().publicKey });
    await st.users.suspend(T, 'paused');
    await st.users.resume(T, 'paused');
    await st.users.offboard(T, 'offboarded');
    const ext = await st.nodes.createExternal(T, { user: 'ops', hostname: 'ext', nodeKey: generateNodeKey().publicKey });
    await st.nodes.rename(T, ext.id, 'ext-renamed');
    await st.nodes.patch(ext.id, { endpoints: ['192.0.2.1:41641'] });
    await st.nodes.expire(T, ext.id);
    // Key expiry: extend (it comes back), then the sweeper cutting it off once its time passed.
    await st.nodes.setExpiry(T, ext.id, { extendDays: 1 });
    await st.nodes.setExpiry(T, ext.id, { disabled: true });
    await st.nodes.setExpiry(T, ext.id, { disabled: false });
    await s.state.ctx.prisma.node.update({ where: { id: ext.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    await st.nodes.sweepExpired();
    await st.nodes.delete(T, ext.id);
    await st.nodes.createExternal(T, { user: 'leaver', hostname: 'leaver-ext', nodeKey: generateNodeKey().publicKey });
    // Delete offboards first: the node goes with it.
    await st.users.delete(T, 'leaver');
    // The policy: a new version, and a rollback (a new version again).
    await st.policy.set('{"acls": [{"action": "accept", "src": ["ops@"], "dst": ["*:22"]}]}', 0, T);
    await st.policy.set('{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}', 1, T);
    await st.policy.rollback(1, 2, T);

    const key = (await st.authKeys.create(T, { user: 'ops', ephemeral: true })).key;
    const joined = new SimAgent(s.url, 'joined');
    await joined.register(key);
    await joined.connect();
    await joined.waitFor(() => joined.received.some((r) => r.msg.type === 'netmap'), 10_000, 'netmap');
    joined.close();
    const interactive = new SimAgent(s.url, 'interactive');
    const pending = await interactive.register();
    if (pending.status !== 'pending') throw new Error('expected a pending login');
    await st.logins.approve(T, pending.code, 'ops', { byAdmin: true });
    await st.presence.settled();
    // The ephemeral node, offline now, is reaped (ephemeralTimeoutS 1 in the harness).
    await joined.waitFor(() => emitted.some((c) => c.kind === 'nodes-removed' && c.nodeIds.includes(joined.self!.id)), 10_000, 'ephemeral reaped');
    await st.presence.settled();

    const rows = await s.state.ctx.prisma.outboxChange.findMany({ where: { id: { gt: from } }, orderBy: { id: 'asc' } });
    const mine = rows.filter((r) => r.origin === s.hub.origin);
    expect(mine.length, 'rows of other origins').toBe(rows.length);
    expect(new Set(emitted.map((c) => c.kind))).toEqual(new Set(['nodes-upserted', 'nodes-patched', 'nodes-expired', 'nodes-suspended', 'nodes-removed', 'presence', 'policy-changed']));
    expect(emitted.filter((c) => c.kind === 'policy-changed')).toEqual([1, 2, 3].map((version) => ({ kind: 'policy-changed', version })));
    expect(mine.map((r) => canonical(r.payload)).sort()).toEqual(emitted.map(canonical).sort());
    // Gap-free, so a reader can tell "pruned" from "not committed yet".
    expect(mine.map((r) => Number(r.id))).toEqual(mine.map((_, i) => Number(from) + 1 + i));
  });

  it('an audited write and an outbox write never deadlock, whichever of audit and record each does first', async () => {
    const { prisma, record } = s.state.ctx;
    const noop: Change = { kind: 'nodes-upserted', nodeIds: [] };
    const waiting = async () => (await prisma.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted`)[0]!.n;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let recorded!: () => void;
    const hasRecorded = new Promise<void>((r) => (recorded = r));
    // First: record (the change_seq row lock), then, once the second is queued, audit.
    const first = prisma.$transaction(async (tx) => {
      await record(tx, noop);
      recorded();
      await released;
      await audit(tx, T, 'test.commit-order', null);
    }, TX_OPTIONS);
    await hasRecorded;
    // Second: audit, then record. With the two locks in different orders this is the deadlock.
    const second = prisma.$transaction(async (tx) => {
      await audit(tx, T, 'test.commit-order', null);
      await record(tx, noop);
    }, TX_OPTIONS);
    while ((await waiting()) === 0) await new Promise((r) => setTimeout(r, 10));
    release();
    await expect(Promise.all([first, second])).resolves.toBeDefined();
  });
});

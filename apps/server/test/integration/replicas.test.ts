import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode } from '@weft/protocol';
import { createTestDatabase } from '../../../../test-support/test-database.js';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { spawnServer, type ServerProcess } from '../support/process.js';
import { adminKeyFor, restApi } from '../support/replicas.js';

describe('two server processes on one Postgres', () => {
  let a: ServerProcess;
  let b: ServerProcess;
  let adminKey: string;
  const api = restApi(() => adminKey);

  beforeAll(async () => {
    const url = await createTestDatabase();
    // Started together: both migrate the empty database at once.
    [a, b] = await Promise.all([spawnServer({ DATABASE_URL: url }), spawnServer({ DATABASE_URL: url })]);
    adminKey = await adminKeyFor(a);
    expect((await api(a, 'POST', '/api/v1/users', { name: 'fleet' })).status).toBe(201);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('200 concurrent registrations across both: no duplicate, no lost node', async () => {
    const key = (await api(b, 'POST', '/api/v1/authkeys', { user: 'fleet', reusable: true })).body.key;
    const agents = Array.from({ length: 200 }, (_, i) => new SimAgent(i % 2 ? a.url : b.url, 'worker'));
    const results = await Promise.all(agents.map((ag) => ag.register(key)));
    expect(results.every((r) => r.status === 'registered')).toBe(true);
    const nodes = (await api(a, 'GET', '/api/v1/nodes')).body.items as { ipv4: string; ipv6: string; name: string; nodeKey: string }[];
    expect(nodes).toHaveLength(200);
    for (const field of ['ipv4', 'ipv6', 'name', 'nodeKey'] as const) expect(new Set(nodes.map((n) => n[field])).size, field).toBe(200);
    expect(new Set(agents.map((ag) => ag.self!.ipv4))).toEqual(new Set(nodes.map((n) => n.ipv4)));
  });

  it('a change made on one replica reaches agents connected to the other', async () => {
    const key = (await api(a, 'POST', '/api/v1/authkeys', { user: 'fleet', reusable: true })).body.key;
    const onA = new SimAgent(a.url, 'on-a');
    const onB = new SimAgent(b.url, 'on-b');
    await onA.register(key);
    await onB.register(key);
    await onA.connect();
    await onB.connect();
    await onA.waitFor(() => onA.peers.has(onB.self!.id), 10_000, 'on-b visible on replica A');
    // A node joining through B reaches the agent on A.
    const late = new SimAgent(b.url, 'late');
    await late.register(key);
    await onA.waitFor(() => onA.peers.has(late.self!.id), 10_000, 'late join via B reaches A');
    // Deleting through A closes the socket held by B and updates the agent on A.
    expect((await api(a, 'DELETE', `/api/v1/nodes/${onB.self!.id}`)).status).toBe(200);
    await onB.waitFor(() => onB.closed !== null, 10_000, 'on-b closed by replica B');
    expect(onB.closed!.code).toBe(CloseCode.NodeDeleted);
    await onA.waitFor(() => !onA.peers.has(onB.self!.id), 10_000, 'on-b removed on A');
    onA.close();
  });

  it('suspend, resume and offboard made on one replica reach agents and sockets on the other', async () => {
    expect((await api(a, 'POST', '/api/v1/users', { name: 'roamer' })).status).toBe(201);
    const own = (await api(a, 'POST', '/api/v1/authkeys', { user: 'roamer', reusable: true })).body.key;
    const watch = (await api(a, 'POST', '/api/v1/authkeys', { user: 'fleet', reusable: true })).body.key;
    const device = new SimAgent(b.url, 'roamer-laptop');
    const observer = new SimAgent(a.url, 'observer');
    await device.register(own);
    await observer.register(watch);
    await device.connect();
    await observer.connect();
    await observer.waitFor(() => observer.peers.has(device.self!.id), 10_000, 'device visible on A');
    // Suspended through A: B closes the device's socket (nodes-suspended from the outbox), A drops it.
    expect((await api(a, 'POST', '/api/v1/users/roamer/suspend')).status).toBe(200);
    await device.waitFor(() => device.closed !== null, 10_000, 'device closed by replica B');
    expect(device.closed!.code).toBe(CloseCode.UserSuspended);
    await observer.waitFor(() => !observer.peers.has(device.self!.id), 10_000, 'device dropped on A');
    // Resumed through B: the observer on A sees it again once it reconnects.
    expect((await api(b, 'POST', '/api/v1/users/roamer/resume')).status).toBe(200);
    await device.connect();
    await observer.waitFor(() => observer.peers.has(device.self!.id), 10_000, 'device back on A');
    // Offboarded through A: B closes the socket as deleted.
    expect((await api(a, 'POST', '/api/v1/users/roamer/offboard')).status).toBe(200);
    await device.waitFor(() => device.closed !== null, 10_000, 'device closed again by replica B');
    expect(device.closed!.code).toBe(CloseCode.NodeDeleted);
    await observer.waitFor(() => !observer.peers.has(device.self!.id), 10_000, 'device removed on A');
    observer.close();
  });
});

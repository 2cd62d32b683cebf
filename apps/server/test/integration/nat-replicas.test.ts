/**
 * A node's netcheck verdict (`nat` message) reaches its peers on the other replica too: carried
 * through the change outbox as a `nat` change (state/nat.ts), applied as a patch (never an
 * upsert), cleared there when the node leaves, and never cleared by a replica the node has left
 * after it reported to another one.
 */
import { describe, expect, it } from 'vitest';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { until, useTwoReplicas } from '../support/replicas.js';

const natDeltas = (w: SimAgent, id: number) =>
  w.received.filter((r) => r.msg.type === 'delta' && JSON.stringify(r.msg).includes('"nat"')).map((r) => r.msg as { patch?: { id: number; nat?: unknown }[]; upsert?: { id: number }[] })
    .filter((d) => d.patch?.some((p) => p.id === id && 'nat' in p) || d.upsert?.some((u) => u.id === id));

describe('netcheck verdicts across two replicas on one Postgres', () => {
  const t = useTwoReplicas({ patchIntervalMs: 20 });

  it('a verdict reported on replica 1 reaches a peer on replica 2 as a patch, and later joiners there; it is cleared there when the node leaves', async () => {
    const authKey = await t.authKey();
    const a = await t.agent(t.r1, 'nat-r1-sender', authKey);
    const b = await t.agent(t.r2, 'nat-r2-watcher', authKey);
    const id = a.self!.id;
    await b.waitFor(() => b.peers.has(id), 10_000, 'sender in watcher');
    expect(b.peers.get(id)).not.toHaveProperty('nat');
    a.send(JSON.stringify({ type: 'nat', nat: { udp: true, mappingVariesByDestination: true } }));
    await b.waitFor(() => b.peers.get(id)?.nat?.mappingVariesByDestination === true, 10_000, 'nat on the other replica');
    const c = await t.agent(t.r2, 'nat-r2-latecomer', authKey);
    expect(c.peers.get(id)?.nat).toEqual({ udp: true, mappingVariesByDestination: true });
    a.send(JSON.stringify({ type: 'nat', nat: { udp: false, mappingVariesByDestination: null } }));
    await b.waitFor(() => b.peers.get(id)?.nat?.udp === false, 10_000, 'second verdict on the other replica');
    // Patches only: no view was recomputed for a verdict.
    expect(natDeltas(b, id).every((d) => d.patch !== undefined && d.upsert === undefined)).toBe(true);
    a.close();
    await b.waitFor(() => b.peers.get(id)?.nat === null, 10_000, 'nat cleared on the other replica');
  });

  it('an older verdict the outbox brings late from the replica a node left does not replace the one it reported since', async () => {
    const authKey = await t.authKey();
    const w = await t.agent(t.r2, 'late-watch', authKey);
    const a = await t.agent(t.r2, 'late-mover', authKey);
    const id = a.self!.id;
    a.send(JSON.stringify({ type: 'nat', nat: { udp: true, mappingVariesByDestination: true } }));
    await w.waitFor(() => w.peers.get(id)?.nat?.mappingVariesByDestination === true, 10_000, 'the verdict on replica 2');
    // What replica 1 recorded before the node moved, arriving only now (the order a slow bus gives).
    await t.r2.app.mapper.apply({ kind: 'nat', origin: 'replica-left-behind', nodes: [{ id, nat: { udp: true, mappingVariesByDestination: false }, at: Date.now() - 5000 }] });
    // A marker applied after it: once the watcher has the marker's patch, it has whatever the late verdict sent.
    const probe = await t.agent(t.r2, 'late-probe', authKey);
    probe.send(JSON.stringify({ type: 'nat', nat: { udp: false, mappingVariesByDestination: null } }));
    await w.waitFor(() => w.peers.get(probe.self!.id)?.nat?.udp === false, 10_000, 'the marker');
    expect(w.peers.get(id)?.nat).toEqual({ udp: true, mappingVariesByDestination: true });
    // A verdict reported there later than the node's last one here does win.
    await t.r2.app.mapper.apply({ kind: 'nat', origin: 'replica-left-behind', nodes: [{ id, nat: { udp: false, mappingVariesByDestination: null }, at: Date.now() + 1000 }] });
    await w.waitFor(() => w.peers.get(id)?.nat?.udp === false, 10_000, 'the later verdict from the other replica');
  });

  it('a node that moves to replica 2 and reports there keeps its verdict when its old session on replica 1 ends', async () => {
    const authKey = await t.authKey();
    const w1 = await t.agent(t.r1, 'move-watch-r1', authKey);
    const a = await t.agent(t.r1, 'mover', authKey);
    const id = a.self!.id;
    a.send(JSON.stringify({ type: 'nat', nat: { udp: true, mappingVariesByDestination: false } }));
    await w1.waitFor(() => w1.peers.get(id)?.nat?.mappingVariesByDestination === false, 10_000, 'first verdict');
    // The same node on replica 2 (a reconnect that landed elsewhere) reports a new verdict before its old session closes.
    const again = Object.assign(new SimAgent(t.r2.url, 'mover'), { machine: a.machine, node: a.node, self: a.self });
    await again.connect();
    const w2 = await t.agent(t.r2, 'move-watch-r2', authKey);
    again.send(JSON.stringify({ type: 'nat', nat: { udp: true, mappingVariesByDestination: true } }));
    await w1.waitFor(() => w1.peers.get(id)?.nat?.mappingVariesByDestination === true, 10_000, 'the new verdict on replica 1');
    await w2.waitFor(() => w2.peers.get(id)?.nat?.mappingVariesByDestination === true, 10_000, 'the new verdict on replica 2');
    // The old session ends: neither replica drops the verdict of the session that is still there.
    a.close();
    await until(async () => !t.r1.app.mapper.isAttached(id), 'replica 1 saw the old session end');
    await t.r1.app.state.nat.settled();
    // A marker after it in the outbox: once replica 2 shows the marker, it has applied whatever replica 1 recorded at the close.
    const probe = await t.agent(t.r1, 'move-probe', authKey);
    probe.send(JSON.stringify({ type: 'nat', nat: { udp: false, mappingVariesByDestination: null } }));
    await w2.waitFor(() => w2.peers.get(probe.self!.id)?.nat?.udp === false, 10_000, 'the marker on replica 2');
    const probe2 = await t.agent(t.r2, 'move-probe-2', authKey);
    for (const w of [w1, w2, probe, probe2]) expect(w.peers.get(id)?.nat, w.hostname).toEqual({ udp: true, mappingVariesByDestination: true });
    again.close();
    await w1.waitFor(() => w1.peers.get(id)?.nat === null, 10_000, 'cleared on replica 1 once the node left replica 2');
  });
});

/**
 * Per-node netmaps under an access policy, end to end: the real server (PGlite and Postgres) with
 * real WebSocket agents. The policy text comes from the test's own `loadPolicy` and a change is
 * announced through the mapper's entry point, as the policy store will do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateNodeKey } from '@weft/crypto';
import { compile, parsePolicy, prepareNodes } from '@weft/policy';
import type { FilterRule } from '@weft/protocol';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { RelayPeer } from '../../../../test-support/relay-peer.js';
import { PeerGoneReason } from '@weft/relay';
import { policyLogin, SYSTEM } from '../../src/state/index.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';
import { joinedAgent } from '../support/replicas.js';

const WEB_443 = JSON.stringify({
  tagOwners: { 'tag:web': [], 'tag:db': [] },
  acls: [{ action: 'accept', src: ['alice@'], dst: ['tag:web:443'] }],
});
const WEB_443_AND_BOB_22 = JSON.stringify({
  tagOwners: { 'tag:web': [], 'tag:db': [] },
  acls: [
    { action: 'accept', src: ['alice@'], dst: ['tag:web:443'] },
    { action: 'accept', src: ['bob@'], dst: ['tag:web:22'] },
  ],
});
const SELF = JSON.stringify({ acls: [{ action: 'accept', src: ['autogroup:member'], dst: ['autogroup:self:*'] }] });

describe.each(BACKENDS)('per-node netmaps from the access policy on %s', (backend) => {
  let s: TestServer;
  let policy: string | null = WEB_443;
  let version = 0;
  const keys: Record<string, string> = {};
  const agents: SimAgent[] = [];

  beforeAll(async () => {
    s = await startServer(backend, { loadPolicy: async () => policy });
    // The mapper reads `policy` above; the stored policy only defines the tags keys and nodes are created with (tagOwners, node-tags.test.ts).
    const stored = JSON.stringify({ tagOwners: { 'tag:web': [], 'tag:db': [] }, acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }] });
    expect((await s.api('PUT', '/api/v1/policy', { text: stored }, { 'if-match': '"0"' })).status).toBe(200);
    for (const name of ['alice', 'bob']) {
      await s.api('POST', '/api/v1/users', { name });
      keys[name] = (await s.api('POST', '/api/v1/authkeys', { user: name, reusable: true })).body.key;
    }
    keys.web = (await s.api('POST', '/api/v1/authkeys', { user: 'alice', reusable: true, tags: ['tag:web'] })).body.key;
  });
  afterAll(async () => {
    for (const a of agents) a.close();
    await s?.close();
  });

  async function joined(hostname: string, key: string): Promise<SimAgent> {
    const a = await joinedAgent(s.url, hostname, key);
    agents.push(a);
    return a;
  }

  async function setPolicy(text: string | null): Promise<void> {
    policy = text;
    await s.mapper.apply({ kind: 'policy-changed', version: ++version });
  }

  const ids = (a: SimAgent) => [...a.peers.keys()].sort((x, y) => x - y);
  const filter = (a: SimAgent): FilterRule[] | null | undefined => {
    let f: FilterRule[] | null | undefined;
    for (const r of a.received) {
      if (r.msg.type === 'netmap') f = r.msg.packetFilter as FilterRule[] | undefined;
      else if ('packetFilter' in r.msg) f = r.msg.packetFilter as FilterRule[] | null;
    }
    return f;
  };
  /** What `a` got after index `from`, leaving out online/endpoint patches (presence of the test's own agents). */
  const since = (a: SimAgent, from: number) => a.received.slice(from).filter((r) => !(r.msg.type === 'delta' && Object.keys(r.msg).every((k) => k === 'type' || k === 'seq' || k === 'patch')));
  /** Proves `a` was sent nothing since `from`: a resync is answered after anything already sent. */
  async function quietSince(a: SimAgent, from: number): Promise<void> {
    await s.mapper.settled();
    a.send(JSON.stringify({ type: 'resync' }));
    await a.waitFor(() => a.received.slice(from).some((r) => r.msg.type === 'netmap'), 5000, 'resync netmap');
    expect(since(a, from).map((r) => r.raw.slice(0, 120))[0]).toMatch(/^\{"type":"netmap"/);
  }

  let alice: SimAgent, bob: SimAgent, web: SimAgent;

  it('a policy hides a node: it is not in the other netmap at all, and the filter says who may reach whom', async () => {
    alice = await joined('alice-laptop', keys.alice!);
    bob = await joined('bob-laptop', keys.bob!);
    web = await joined('web-1', keys.web!);
    await alice.waitFor(() => alice.peers.has(web.self!.id), 5000, 'web in alice netmap');
    await s.mapper.settled();
    expect(ids(alice)).toEqual([web.self!.id]);
    expect(ids(web)).toEqual([alice.self!.id]);
    expect(ids(bob)).toEqual([]);
    // Bob's node is nowhere: not in any netmap, not in any delta.
    for (const a of [alice, web]) expect(a.received.some((r) => r.raw.includes(bob.node.publicKey))).toBe(false);
    expect(bob.received.some((r) => r.raw.includes(web.node.publicKey) || r.raw.includes(alice.node.publicKey))).toBe(false);
    expect(filter(web)).toEqual([{ srcIPs: [alice.self!.ipv4, alice.self!.ipv6], dstPorts: [{ ip: web.self!.ipv4, ports: '443-443' }, { ip: web.self!.ipv6, ports: '443-443' }], protos: [1, 6, 17, 58] }]);
    expect(filter(alice)).toEqual([]);
    expect(filter(bob)).toEqual([]);
  });

  it('a policy change sends deltas only to the nodes whose view or filter changed', async () => {
    const mark = { alice: alice.received.length, bob: bob.received.length, web: web.received.length };
    await setPolicy(WEB_443_AND_BOB_22);
    await bob.waitFor(() => bob.peers.has(web.self!.id), 5000, 'web in bob netmap');
    await web.waitFor(() => web.peers.has(bob.self!.id), 5000, 'bob in web netmap');
    expect(ids(bob)).toEqual([web.self!.id]);
    expect(ids(web)).toEqual([alice.self!.id, bob.self!.id].sort((x, y) => x - y));
    expect(since(bob, mark.bob).map((r) => r.msg.type)).toEqual(['delta']);
    expect(since(web, mark.web).map((r) => r.msg.type)).toEqual(['delta']);
    expect(filter(web)).toHaveLength(2);
    expect(filter(web)![1]).toMatchObject({ srcIPs: [bob.self!.ipv4, bob.self!.ipv6], dstPorts: [{ ip: web.self!.ipv4, ports: '22-22' }, { ip: web.self!.ipv6, ports: '22-22' }] });
    // Alice sees and is reached by the same as before: she was sent nothing.
    await quietSince(alice, mark.alice);
  });

  it('endpoint and online patches go only to the nodes that see the patched node', async () => {
    const mark = alice.received.length;
    bob.send(JSON.stringify({ type: 'endpoints', endpoints: ['192.0.2.9:41641'] }));
    await web.waitFor(() => web.peers.get(bob.self!.id)?.endpoints[0] === '192.0.2.9:41641', 10_000, 'bob endpoint patch at web');
    // Alice does not see bob: a resync is answered after anything already sent her, and nothing named bob.
    await s.mapper.settled();
    alice.send(JSON.stringify({ type: 'resync' }));
    await alice.waitFor(() => alice.received.slice(mark).some((r) => r.msg.type === 'netmap'), 5000, 'resync netmap');
    const patched = alice.received.slice(mark).flatMap((r) => ((r.msg.patch as { id: number }[] | undefined) ?? []).map((p) => p.id));
    expect(patched).not.toContain(bob.self!.id);
    expect(alice.received.some((r) => r.raw.includes('192.0.2.9'))).toBe(false);
  });

  it('a stored policy that does not parse changes nothing: the one in force stays, nobody is sent anything', async () => {
    const mark = { alice: alice.received.length, bob: bob.received.length, web: web.received.length };
    const views = [alice, bob, web].map((a) => s.mapper.peersOf(a.self!.id));
    const good = policy;
    await setPolicy('{ "acls": [ { "action": "accept", "src": ["nobody@"], "dst": ["tag:nope:*"] } ] }');
    expect([alice, bob, web].map((a) => s.mapper.peersOf(a.self!.id))).toEqual(views);
    for (const [a, from] of [[alice, mark.alice], [bob, mark.bob], [web, mark.web]] as const) await quietSince(a, from);
    policy = good; // what the store would still hold
  });

  it('a node joining or leaving is sent only to the nodes that may see it', async () => {
    const mark = { alice: alice.received.length, bob: bob.received.length };
    const web2 = await joined('web-2', keys.web!);
    await alice.waitFor(() => alice.peers.has(web2.self!.id), 5000, 'web-2 in alice netmap');
    await bob.waitFor(() => bob.peers.has(web2.self!.id), 5000, 'web-2 in bob netmap');
    expect(ids(web2)).toEqual([alice.self!.id, bob.self!.id].sort((x, y) => x - y));
    // web-1 does not see web-2 (no rule between tags) and got nothing about it.
    await s.mapper.settled();
    expect(web.peers.has(web2.self!.id)).toBe(false);
    expect(web.received.some((r) => r.raw.includes(web2.node.publicKey))).toBe(false);
    const mark2 = web.received.length;
    expect((await s.api('DELETE', `/api/v1/nodes/${web2.self!.id}`)).status).toBe(200);
    await alice.waitFor(() => !alice.peers.has(web2.self!.id), 5000, 'web-2 removed from alice');
    await bob.waitFor(() => !bob.peers.has(web2.self!.id), 5000, 'web-2 removed from bob');
    await quietSince(web, mark2);
    expect(alice.received.length).toBeGreaterThan(mark.alice);
  });

  it('a tag change moves a node between views', async () => {
    const carol = await joined('bob-server', keys.bob!);
    await web.waitFor(() => web.peers.has(carol.self!.id), 5000, 'bob-server in web netmap');
    expect(ids(carol)).toEqual([web.self!.id]);
    expect(alice.peers.has(carol.self!.id)).toBe(false);
    // Tagged tag:web, it is no longer bob's: alice may reach it, bob and web-1 no longer see it.
    await s.state.nodes.setTags(SYSTEM, carol.self!.id, ['tag:web']);
    await alice.waitFor(() => alice.peers.has(carol.self!.id), 5000, 'tagged node in alice netmap');
    await web.waitFor(() => !web.peers.has(carol.self!.id), 5000, 'tagged node gone from web');
    await carol.waitFor(() => ids(carol).join() === [alice.self!.id, bob.self!.id].sort((x, y) => x - y).join(), 5000, 'tagged node sees alice and bob');
    await bob.waitFor(() => bob.peers.has(carol.self!.id), 5000, 'bob may reach tag:web on 22');
    expect(filter(carol)).toHaveLength(2);
    // And back: untagged, it is bob's again.
    await s.state.nodes.setTags(SYSTEM, carol.self!.id, []);
    await alice.waitFor(() => !alice.peers.has(carol.self!.id), 5000, 'untagged node gone from alice');
    await carol.waitFor(() => ids(carol).join() === String(web.self!.id), 5000, 'untagged node sees web only');
    expect(filter(carol)).toEqual([]);
  });

  it('autogroup:self: a user own devices see each other and nothing else', async () => {
    const alice2 = await joined('alice-phone', keys.alice!);
    await setPolicy(SELF);
    const all = await s.api('GET', '/api/v1/nodes');
    const byUser = (u: string) => (all.body.items as { id: number; user: string; tags: string[] }[]).filter((n) => n.user === u && !n.tags.length).map((n) => n.id).sort((x, y) => x - y);
    const aliceIds = byUser('alice');
    const bobIds = byUser('bob');
    await alice.waitFor(() => ids(alice).join() === aliceIds.filter((x) => x !== alice.self!.id).join(), 5000, 'alice sees her own devices only');
    await alice2.waitFor(() => ids(alice2).join() === aliceIds.filter((x) => x !== alice2.self!.id).join(), 5000, 'alice-phone sees her own devices only');
    await bob.waitFor(() => ids(bob).join() === bobIds.filter((x) => x !== bob.self!.id).join(), 5000, 'bob sees his own devices only');
    await web.waitFor(() => ids(web).length === 0, 5000, 'tagged node sees nobody');
    expect(filter(alice)).toEqual([{ srcIPs: expect.any(Array), dstPorts: [{ ip: alice.self!.ipv4, ports: '0-65535' }, { ip: alice.self!.ipv6, ports: '0-65535' }], protos: [1, 6, 17, 58] }]);
    expect(filter(web)).toEqual([]);
  });

  it('removing the policy restores all-see-all and allow-all', async () => {
    await setPolicy(null);
    const all = (await s.api('GET', '/api/v1/nodes')).body.items as { id: number; expired: boolean }[];
    const live = all.filter((n) => !n.expired).map((n) => n.id).sort((x, y) => x - y);
    for (const a of [alice, bob, web]) {
      await a.waitFor(() => ids(a).join() === live.filter((x) => x !== a.self!.id).join(), 5000, `${a.hostname} sees every node`);
      expect(filter(a)).toBeNull();
    }
    // A fresh netmap carries no filter at all, as before any policy.
    const fresh = await joined('after-policy', keys.bob!);
    expect('packetFilter' in fresh.received[0]!.msg).toBe(false);
  });

  it('after random joins, deletes, tag and policy changes every view equals a from-scratch compile', async () => {
    let seed = backend === 'pglite' ? 7 : 11;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
    const policies = [WEB_443, WEB_443_AND_BOB_22, SELF, null, JSON.stringify({ tagOwners: { 'tag:web': [], 'tag:db': [] }, groups: { 'group:eng': ['alice@', 'bob@'] }, acls: [{ action: 'accept', src: ['group:eng'], dst: ['tag:db:5432'] }, { action: 'accept', src: ['tag:web'], dst: ['tag:db:5432', 'autogroup:self:22'] }] })];
    const watchers = [alice, bob, web];
    const verify = async () => {
      await s.mapper.settled();
      const rows = await s.state.nodes.rows();
      const live = rows.filter((r) => !r.expiresAt || r.expiresAt.getTime() > Date.now());
      const users = [...new Map(live.map((r) => [r.userId, r.user])).entries()].map(([id, u]) => ({ id, name: u.name, login: policyLogin(u) }));
      const prepared = prepareNodes({
        users,
        nodes: live.map((r) => ({ id: r.id, name: r.name, user: r.tags.length ? null : policyLogin(r.user), tags: r.tags, ipv4: r.ipv4, ipv6: r.ipv6, advertisedRoutes: [], approvedRoutes: [] })),
      });
      const compiled = compile(policy === null ? null : parsePolicy(policy), prepared).compiled;
      const idOf = new Map(live.map((r) => [r.name, r.id]));
      for (const r of live) {
        const want = compiled.nodes[r.name]!.peers.map((n) => idOf.get(n)!).sort((x, y) => x - y);
        expect(s.mapper.peersOf(r.id), `node ${r.name} (policy ${policy})`).toEqual(want);
      }
      // What the connected agents were told, replayed, is the same.
      for (const a of watchers) {
        const me = live.find((r) => r.id === a.self!.id)!;
        const want = compiled.nodes[me.name]!;
        await a.waitFor(() => ids(a).join() === want.peers.map((n) => idOf.get(n)!).sort((x, y) => x - y).join(), 5000, `${a.hostname} replayed view`);
        expect(filter(a) ?? null, a.hostname).toEqual(policy === null ? null : want.rules);
      }
    };
    let checkedUnderPolicy = 0;
    for (let step = 0; step < 30; step++) {
      const nodes = (await s.api('GET', '/api/v1/nodes')).body.items as { id: number; name: string }[];
      const roll = rand();
      if (roll < 0.35) await s.api('POST', '/api/v1/nodes', { user: pick(['alice', 'bob']), hostname: `rnd-${step}`, nodeKey: generateNodeKey().publicKey, tags: rand() < 0.4 ? [pick(['tag:web', 'tag:db'])] : [] });
      else if (roll < 0.5) {
        const victim = nodes.find((n) => n.name.startsWith('rnd-'));
        if (victim) await s.api('DELETE', `/api/v1/nodes/${victim.id}`);
      } else if (roll < 0.8) {
        const n = pick(nodes.filter((x) => !watchers.some((w) => w.self!.id === x.id)));
        if (n) await s.state.nodes.setTags(SYSTEM, n.id, pick([[], ['tag:web'], ['tag:db'], ['tag:web', 'tag:db']]));
      } else await setPolicy(pick(policies));
      if (step % 6 === 5) {
        await verify();
        if (policy !== null) checkedUnderPolicy++;
      }
    }
    expect(checkedUnderPolicy).toBeGreaterThan(1);
  }, 120_000);

  it('the relay forwards only between nodes the policy lets see each other; a hidden pair is dropped as not allowed', async () => {
    await setPolicy(WEB_443);
    const ra = await joined('relay-alice', keys.alice!);
    const rb = await joined('relay-bob', keys.bob!);
    const rw = await joined('relay-web', keys.web!);
    const [pa, pb, pw] = await Promise.all([ra, rb, rw].map((x) => RelayPeer.open(s.url, x.machine.privateKey)));
    try {
      const before = s.relay!.counters.dropped.notAllowed;
      pa!.send(rw.node.publicKey, Buffer.from('alice may reach web:443'));
      pb!.send(rw.node.publicKey, Buffer.from('bob may not'));
      await pw!.waitFor(() => pw!.packets.length >= 1, 5000, 'the allowed packet at web');
      await pb!.waitFor(() => pb!.gone.length === 1, 5000, 'bob told not-allowed');
      expect(pb!.gone[0]!.reason).toBe(PeerGoneReason.NotAllowed);
      expect(s.relay!.counters.dropped.notAllowed - before).toBe(1);
      expect(pw!.packets.map((p) => p.packet.toString())).toEqual(['alice may reach web:443']);
    } finally {
      for (const p of [pa, pb, pw]) p?.close();
    }
  });
});

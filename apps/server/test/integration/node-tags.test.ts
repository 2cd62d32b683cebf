/**
 * Node tags over REST (`PUT /api/v1/nodes/:id/tags`) and `weft-server nodes tag` against a real
 * server with a stored policy: names validated, only tags the policy defines in tagOwners, a
 * signed-in user only the tags they own, a refusal changes nothing, the change is audited and
 * moves the node between views with deltas only to the agents whose view changed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateNodeKey } from '@weft/crypto';
import { admin } from '../../src/cli/admin.js';
import { SYSTEM, userActor } from '../../src/state/index.js';
import { ApiError } from '../../src/errors.js';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { joinedAgent } from '../support/replicas.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';

// ops may reach tag:web on 443; tag:db is owned by dora only; tag:ci exists but nobody may apply it as a person.
const POLICY = JSON.stringify({
  groups: { 'group:ops': ['olga@'] },
  tagOwners: { 'tag:web': ['group:ops'], 'tag:db': ['dora@'], 'tag:ci': [] },
  acls: [{ action: 'accept', src: ['group:ops'], dst: ['tag:web:443'] }],
});

/** Users `names`, each with a reusable auth key: name -> key. */
async function usersWithKeys(s: TestServer, names: string[]): Promise<Record<string, string>> {
  const keys: Record<string, string> = {};
  for (const name of names) {
    await s.api('POST', '/api/v1/users', { name });
    keys[name] = (await s.api('POST', '/api/v1/authkeys', { user: name, reusable: true })).body.key;
  }
  return keys;
}

/** `joinedAgent`, kept in `agents` to close. */
async function joined(s: TestServer, agents: SimAgent[], hostname: string, key: string): Promise<SimAgent> {
  const a = await joinedAgent(s.url, hostname, key);
  agents.push(a);
  return a;
}

describe.each(BACKENDS)('node tags on %s', (backend) => {
  let s: TestServer;
  const agents: SimAgent[] = [];
  let olga: SimAgent, dora: SimAgent, box: SimAgent;
  let upserts = 0;

  beforeAll(async () => {
    s = await startServer(backend);
    const emit = s.state.ctx.emit;
    s.state.ctx.emit = (c) => {
      if (c.kind === 'nodes-upserted') upserts++;
      emit(c);
    };
    const keys = await usersWithKeys(s, ['olga', 'dora']);
    const join = (hostname: string, key: string) => joined(s, agents, hostname, key);
    olga = await join('olga-laptop', keys.olga!);
    dora = await join('dora-laptop', keys.dora!);
    box = await join('dora-box', keys.dora!);
  });
  afterAll(async () => {
    for (const a of agents) a.close();
    await s?.close();
  });

  const put = (id: number, body: unknown) => s.api('PUT', `/api/v1/nodes/${id}/tags`, body);
  const tagsOf = async (id: number) => (await s.api('GET', `/api/v1/nodes/${id}`)).body.tags as string[];
  /** What a tag write touches: the audit log, and the node changes it emits (agents' presence patches are left out). */
  const footprint = async () => ({ audit: await s.state.ctx.prisma.auditEvent.count(), upserts });

  it('with no policy stored no tag is defined: 422 tag_unknown naming it, nothing written', async () => {
    const before = await footprint();
    const r = await put(box.self!.id, { tags: ['tag:web'] });
    expect(r.status).toBe(422);
    expect(r.type).toContain('application/problem+json');
    expect(r.body).toMatchObject({ code: 'tag_unknown', retryable: false });
    expect(r.body.detail).toContain('tag:web');
    expect(await footprint()).toEqual(before);
    expect(await tagsOf(box.self!.id)).toEqual([]);
  });

  it('a malformed tag or body is 400 naming the field; an unknown node 404; nothing written', async () => {
    const etag = (await s.api('GET', '/api/v1/policy')).headers.get('etag')!;
    expect((await s.api('PUT', '/api/v1/policy', { text: POLICY }, { 'if-match': etag })).status).toBe(200);
    const before = await footprint();
    for (const body of [{ tags: ['web'] }, { tags: ['tag:Web!'] }, { tags: 'tag:web' }, {}, { tags: ['tag:web'], extra: 1 }]) {
      const r = await put(box.self!.id, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.code).toBe('invalid_request');
      expect(JSON.stringify(r.body.errors ?? r.body.detail)).toMatch(/tags|extra/);
    }
    // Tailscale's rule at the wire schema too (a digit first, an underscore): refused with the tag named.
    for (const bad of ['tag:1x', 'tag:web_1']) {
      const r = await put(box.self!.id, { tags: [bad] });
      expect(r.status).toBe(400);
      expect(r.body.detail).toContain(`"${bad}"`);
    }
    expect((await put(999_999, { tags: ['tag:web'] })).status).toBe(404);
    expect(await footprint()).toEqual(before);
  });

  it('a tag the policy does not define is refused naming it, even for an admin API key', async () => {
    const before = await footprint();
    const r = await put(box.self!.id, { tags: ['tag:web', 'tag:nope'] });
    expect(r.status).toBe(422);
    expect(r.body).toMatchObject({ code: 'tag_unknown' });
    expect(r.body.detail).toBe('tag "tag:nope" is not defined in the policy\'s tagOwners (defined: tag:ci, tag:db, tag:web)');
    expect(await footprint()).toEqual(before);
  });

  it('an admin API key applies a defined tag: audited, and the node moves between views with deltas only where a view changed', async () => {
    // Before: no rule involves dora's untagged devices, so nobody sees them.
    await s.mapper.settled();
    expect(s.mapper.peersOf(olga.self!.id)).toEqual([]);
    const mark = dora.received.length;
    const r = await put(box.self!.id, { tags: ['tag:web', 'tag:web'] });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.tags).toEqual(['tag:web']);
    // olga (group:ops) may now reach it on 443: she and the box see each other.
    await olga.waitFor(() => olga.peers.has(box.self!.id), 5000, 'tagged box in olga netmap');
    await box.waitFor(() => box.peers.has(olga.self!.id), 5000, 'olga in the tagged box netmap');
    expect(s.mapper.peersOf(box.self!.id)).toEqual([olga.self!.id]);
    // dora's laptop sees nobody before or after: it was sent nothing (a resync is answered after anything queued).
    await s.mapper.settled();
    dora.send(JSON.stringify({ type: 'resync' }));
    await dora.waitFor(() => dora.received.slice(mark).some((x) => x.msg.type === 'netmap'), 5000, 'resync netmap');
    expect(dora.received.slice(mark).filter((x) => !(x.msg.type === 'delta' && Object.keys(x.msg).every((k) => k === 'type' || k === 'seq' || k === 'patch')))[0]!.msg.type).toBe('netmap');
    const events = (await s.api('GET', '/api/v1/audit?action=node.tags')).body.items as { action: string; actor: string; target: string; detail: unknown }[];
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ action: 'node.tags', target: 'node:dora-box', detail: { before: [], after: ['tag:web'] } });
    expect(events[0]!.actor).toMatch(/^apikey:/);
  });

  it('a signed-in user may apply only the tags they own in tagOwners (through a group or their login)', async () => {
    const olgaUser = (await s.api('GET', '/api/v1/users/olga')).body;
    const doraUser = (await s.api('GET', '/api/v1/users/dora')).body;
    const asOlga = userActor({ userId: olgaUser.id, userName: 'olga' });
    const asDora = userActor({ userId: doraUser.id, userName: 'dora' });
    const before = await footprint();
    const refused = await s.state.nodes.setTags(asOlga, box.self!.id, ['tag:db']).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).def.code).toBe('tag_not_owned');
    expect((refused as ApiError).def.status).toBe(403);
    expect((refused as ApiError).message).toBe('olga@ is not an owner of tag "tag:db" in the policy\'s tagOwners (owners: dora@)');
    await expect(s.state.nodes.setTags(asDora, box.self!.id, ['tag:ci'])).rejects.toMatchObject({ def: { code: 'tag_not_owned' } });
    expect(await footprint()).toEqual(before);
    expect(await tagsOf(box.self!.id)).toEqual(['tag:web']);
    expect((await s.state.nodes.setTags(asDora, box.self!.id, ['tag:db'])).tags).toEqual(['tag:db']);
    expect((await s.state.nodes.setTags(asOlga, box.self!.id, ['tag:web'])).tags).toEqual(['tag:web']);
    const events = (await s.api('GET', '/api/v1/audit?action=node.tags')).body.items as { actor: string }[];
    expect(events.slice(-2).map((e) => e.actor)).toEqual(['user:dora', 'user:olga']);
    // The server's own callers are not asked (they are not a person or a key).
    expect((await s.state.nodes.setTags(SYSTEM, box.self!.id, ['tag:web'])).tags).toEqual(['tag:web']);
  });

  it('weft-server nodes tag NAME tag:x,tag:y sets them by name; "-" removes them; a refusal exits non-zero with the reason', async () => {
    const run = async (args: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await admin([...args, '--server', s.url, '--api-key', s.adminKey], (l) => out.push(l), (l) => err.push(l));
      return { code, out: out.join('\n'), err: err.join('\n') };
    };
    const ok = await run(['nodes', 'tag', 'dora-box', 'tag:web,tag:db']);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toContain('Tagged node dora-box tag:db, tag:web');
    expect(await tagsOf(box.self!.id)).toEqual(['tag:db', 'tag:web']);
    const bad = await run(['nodes', 'tag', 'dora-box', 'tag:nope']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('tag "tag:nope" is not defined');
    expect(await tagsOf(box.self!.id)).toEqual(['tag:db', 'tag:web']);
    const missing = await run(['nodes', 'tag', 'no-such-node', 'tag:web']);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('no node is named "no-such-node"');
    const cleared = await run(['nodes', 'tag', 'dora-box', '-']);
    expect(cleared.code, cleared.err).toBe(0);
    expect(await tagsOf(box.self!.id)).toEqual([]);
    // Untagged, the box is dora's again: olga no longer sees it.
    await olga.waitFor(() => !olga.peers.has(box.self!.id), 5000, 'untagged box gone from olga');
  });
});

/**
 * Tags given at creation pass the same tagOwners rule: `POST /api/v1/nodes` and `weft-server
 * nodes add-peer --tags`, and `POST /api/v1/authkeys` with tags (judged when the key is created,
 * for its creator; a node joining with the key gets its tags without a new check).
 */
describe.each(BACKENDS)('tags at creation on %s', (backend) => {
  let s: TestServer;
  const agents: SimAgent[] = [];
  beforeAll(async () => {
    s = await startServer(backend);
    for (const name of ['olga', 'dora']) expect((await s.api('POST', '/api/v1/users', { name })).status).toBe(201);
  });
  afterAll(async () => {
    for (const a of agents) a.close();
    await s?.close();
  });

  const nodeKey = () => generateNodeKey().publicKey;
  /** What a refused write must leave alone: nodes, auth keys, the audit log. */
  const footprint = async () => ({
    nodes: await s.state.ctx.prisma.node.count(),
    keys: await s.state.ctx.prisma.authKey.count(),
    audit: await s.state.ctx.prisma.auditEvent.count(),
  });
  const cli = async (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await admin([...args, '--server', s.url, '--api-key', s.adminKey], (l) => out.push(l), (l) => err.push(l));
    return { code, out: out.join('\n'), err: err.join('\n') };
  };
  const user = async (name: string) => userActor({ userId: (await s.api('GET', `/api/v1/users/${name}`)).body.id, userName: name });

  it('with no policy stored, a node or an auth key created with tags is 422 tag_unknown naming the tag, nothing written', async () => {
    const before = await footprint();
    const node = await s.api('POST', '/api/v1/nodes', { user: 'olga', hostname: 'phone', nodeKey: nodeKey(), tags: ['tag:web'] });
    expect(node.status).toBe(422);
    expect(node.type).toContain('application/problem+json');
    expect(node.body).toMatchObject({ code: 'tag_unknown', retryable: false });
    expect(node.body.detail).toContain('tag:web');
    const key = await s.api('POST', '/api/v1/authkeys', { user: 'olga', tags: ['tag:web'] });
    expect(key.status).toBe(422);
    expect(key.body).toMatchObject({ code: 'tag_unknown', retryable: false });
    expect(key.body.detail).toContain('tag:web');
    expect(await footprint()).toEqual(before);
    // Without tags both are still made.
    expect((await s.api('POST', '/api/v1/nodes', { user: 'olga', hostname: 'plain', nodeKey: nodeKey() })).status).toBe(201);
    expect((await s.api('POST', '/api/v1/authkeys', { user: 'olga' })).status).toBe(201);
  });

  it('POST /api/v1/nodes and nodes add-peer --tags: an undefined tag is refused naming it, nothing written; a defined one is applied', async () => {
    const etag = (await s.api('GET', '/api/v1/policy')).headers.get('etag')!;
    expect((await s.api('PUT', '/api/v1/policy', { text: POLICY }, { 'if-match': etag })).status).toBe(200);
    const before = await footprint();
    const r = await s.api('POST', '/api/v1/nodes', { user: 'olga', hostname: 'phone', nodeKey: nodeKey(), tags: ['tag:web', 'tag:nope'] });
    expect(r.status).toBe(422);
    expect(r.body).toMatchObject({ code: 'tag_unknown' });
    expect(r.body.detail).toBe('tag "tag:nope" is not defined in the policy\'s tagOwners (defined: tag:ci, tag:db, tag:web)');
    const bad = await cli(['nodes', 'add-peer', 'cli-phone', '--user', 'olga', '--tags', 'tag:nope']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('tag "tag:nope" is not defined');
    expect(await footprint()).toEqual(before);
    expect((await s.api('GET', '/api/v1/nodes?q=cli-phone')).body.items).toEqual([]);

    const ok = await s.api('POST', '/api/v1/nodes', { user: 'olga', hostname: 'phone', nodeKey: nodeKey(), tags: ['tag:web'] });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    expect(ok.body.tags).toEqual(['tag:web']);
    const added = await cli(['nodes', 'add-peer', 'cli-phone', '--user', 'olga', '--tags', 'tag:ci']);
    expect(added.code, added.err).toBe(0);
    expect((await s.api('GET', '/api/v1/nodes?q=cli-phone')).body.items.map((n: { tags: string[] }) => n.tags)).toEqual([['tag:ci']]);
  });

  it('a signed-in user creates a node or an auth key only with tags they own', async () => {
    const [asOlga, asDora] = [await user('olga'), await user('dora')];
    const before = await footprint();
    await expect(s.state.nodes.createExternal(asOlga, { user: 'olga', hostname: 'db-x', nodeKey: nodeKey(), tags: ['tag:db'] }))
      .rejects.toMatchObject({ def: { code: 'tag_not_owned', status: 403 }, message: 'olga@ is not an owner of tag "tag:db" in the policy\'s tagOwners (owners: dora@)' });
    await expect(s.state.authKeys.create(asOlga, { user: 'olga', tags: ['tag:db'] })).rejects.toMatchObject({ def: { code: 'tag_not_owned' } });
    await expect(s.state.authKeys.create(asDora, { user: 'dora', tags: ['tag:ci'] })).rejects.toMatchObject({ def: { code: 'tag_not_owned' } });
    expect(await footprint()).toEqual(before);
    expect((await s.state.nodes.createExternal(asDora, { user: 'dora', hostname: 'db-x', nodeKey: nodeKey(), tags: ['tag:db'] })).tags).toEqual(['tag:db']);
    expect((await s.state.authKeys.create(asOlga, { user: 'olga', tags: ['tag:web'] })).tags).toEqual(['tag:web']);
  });

  it('an auth key is judged when it is created: a node joining with it later gets its tags with no new check', async () => {
    const created = await s.state.authKeys.create(await user('dora'), { user: 'dora', tags: ['tag:db'], reusable: true });
    expect(created.tags).toEqual(['tag:db']);
    // dora no longer owns tag:db: the key made while she did still tags what joins with it.
    const etag = (await s.api('GET', '/api/v1/policy')).headers.get('etag')!;
    const next = JSON.stringify({ ...JSON.parse(POLICY), tagOwners: { 'tag:web': ['group:ops'], 'tag:db': [], 'tag:ci': [] } });
    expect((await s.api('PUT', '/api/v1/policy', { text: next }, { 'if-match': etag })).status).toBe(200);
    const agent = new SimAgent(s.url, 'db-joined');
    agents.push(agent);
    await agent.register(created.key);
    expect((await s.api('GET', `/api/v1/nodes/${agent.self!.id}`)).body.tags).toEqual(['tag:db']);
  });
});

/**
 * A mixed-case tag end to end (Tailscale's rule: a tag's case is part of its name): set over REST
 * as written, matched by the policy selector of the same case only, and in both agents' netmaps
 * and the tagged node's packet filter; the same name in another case is another tag.
 */
describe.each(BACKENDS)('mixed-case tags on %s', (backend) => {
  let s: TestServer;
  const agents: SimAgent[] = [];
  let olga: SimAgent, box: SimAgent;
  const CASED = JSON.stringify({
    groups: { 'group:ops': ['olga@'] },
    tagOwners: { 'tag:WebProd': ['group:ops'], 'tag:webprod': ['group:ops'] },
    acls: [{ action: 'accept', src: ['group:ops'], dst: ['tag:WebProd:443'] }],
  });
  beforeAll(async () => {
    s = await startServer(backend);
    const keys = await usersWithKeys(s, ['olga', 'dora']);
    const join = (hostname: string, key: string) => joined(s, agents, hostname, key);
    olga = await join('olga-laptop', keys.olga!);
    box = await join('dora-box', keys.dora!);
    const etag = (await s.api('GET', '/api/v1/policy')).headers.get('etag')!;
    expect((await s.api('PUT', '/api/v1/policy', { text: CASED }, { 'if-match': etag })).status).toBe(200);
  });
  afterAll(async () => {
    for (const a of agents) a.close();
    await s?.close();
  });
  const put = (id: number, tags: string[]) => s.api('PUT', `/api/v1/nodes/${id}/tags`, { tags });
  /** The packet filter the agent holds now: from its latest netmap or delta that carried one. */
  const filterOf = (a: SimAgent) => [...a.received].reverse().find((r) => 'packetFilter' in r.msg)?.msg.packetFilter as { srcIPs: string[]; dstPorts: { ip: string; ports: string }[] }[] | undefined;

  it('tag:WebProd set over REST is kept as written, matched by the policy, and reaches both netmaps and the filter', async () => {
    const r = await put(box.self!.id, ['tag:WebProd']);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.tags).toEqual(['tag:WebProd']);
    expect((await s.api('GET', `/api/v1/nodes/${box.self!.id}`)).body.tags).toEqual(['tag:WebProd']);
    await olga.waitFor(() => olga.peers.has(box.self!.id), 5000, 'the tag:WebProd box in olga netmap');
    await box.waitFor(() => box.peers.has(olga.self!.id), 5000, 'olga in the box netmap');
    await box.waitFor(() => (filterOf(box) ?? []).length > 0, 5000, 'the box filter');
    expect(filterOf(box)).toEqual([{ srcIPs: [olga.self!.ipv4, olga.self!.ipv6], dstPorts: [{ ip: box.self!.ipv4, ports: '443-443' }, { ip: box.self!.ipv6, ports: '443-443' }], protos: [1, 6, 17, 58] }]);
  });

  it('tag:webprod is another tag: the rule for tag:WebProd no longer matches; a case the policy does not define is refused', async () => {
    expect((await put(box.self!.id, ['tag:webprod'])).status).toBe(200);
    await olga.waitFor(() => !olga.peers.has(box.self!.id), 5000, 'the tag:webprod box gone from olga');
    await box.waitFor(() => !box.peers.has(olga.self!.id) && filterOf(box)?.length === 0, 5000, 'olga gone from the box, its filter empty');
    const r = await put(box.self!.id, ['tag:WEBPROD']);
    expect(r.status).toBe(422);
    expect(r.body).toMatchObject({ code: 'tag_unknown' });
    expect(r.body.detail).toContain('"tag:WEBPROD"');
    expect((await s.api('GET', `/api/v1/nodes/${box.self!.id}`)).body.tags).toEqual(['tag:webprod']);
  });
});

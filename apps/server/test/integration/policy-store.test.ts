/**
 * The policy lifecycle over REST on both backends: the default with none stored, If-Match on every
 * write (428 without, 412 when stale, exactly one of two racing writers wins), a rejected policy
 * changes nothing (history, active version, audit, outbox), history and versions, rollback as a
 * new version with the old text, explain against the live nodes, scopes, and the change each
 * write records and emits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateNodeKey } from '@weft/crypto';
import type { Change } from '../../src/state/changes.js';
import { SYSTEM } from '../../src/state/index.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';

const POLICY_V1 = `{
  // ops may reach the web servers on ssh and https
  "groups": { "group:ops": ["ana@"] },
  "tagOwners": { "tag:web": ["group:ops"] },
  "acls": [
    { "action": "accept", "src": ["group:ops"], "dst": ["tag:web:22,443"] },
  ],
  "tests": [
    { "src": "ana@", "accept": ["tag:web:22"], "deny": ["tag:web:80"] },
  ],
}
`;

const POLICY_V2 = POLICY_V1.replace('"tag:web:22,443"', '"tag:web:22,443,8080"');

describe.each(BACKENDS)('policy store on %s', (backend) => {
  let s: TestServer;
  const emitted: Change[] = [];
  beforeAll(async () => {
    s = await startServer(backend);
    const emit = s.state.ctx.emit;
    s.state.ctx.emit = (c) => {
      emitted.push(c);
      emit(c);
    };
    // ana's laptop and a tagged web server: the nodes the policies are judged against.
    await s.state.users.create(SYSTEM, { name: 'ana' });
    await s.state.users.create(SYSTEM, { name: 'ben' });
    await s.state.nodes.createExternal(SYSTEM, { user: 'ana', hostname: 'ana-laptop', nodeKey: generateNodeKey().publicKey });
    await s.state.nodes.createExternal(SYSTEM, { user: 'ben', hostname: 'web-1', nodeKey: generateNodeKey().publicKey, tags: ['tag:web'] });
    await s.state.nodes.createExternal(SYSTEM, { user: 'ben', hostname: 'ben-pc', nodeKey: generateNodeKey().publicKey });
  });
  afterAll(async () => s?.close());

  /** Everything a policy write could touch, to show that a refused one touched nothing. */
  async function footprint() {
    const p = s.state.ctx.prisma;
    return {
      versions: await p.policyVersion.count(),
      active: (await s.state.policy.active())?.version ?? 0,
      audit: await p.auditEvent.count(),
      outbox: await p.outboxChange.count(),
      emitted: emitted.length,
    };
  }

  const put = (text: string, ifMatch?: string, headers: Record<string, string> = {}) =>
    s.api('PUT', '/api/v1/policy', { text }, { ...(ifMatch !== undefined ? { 'if-match': ifMatch } : {}), ...headers });

  it('with none stored, GET says so: version 0, default, ETag "0"; explain allows everything by the default', async () => {
    const r = await s.api('GET', '/api/v1/policy');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ version: 0, default: true, text: null, createdAt: null, author: null, restoredFrom: null });
    expect(r.headers.get('etag')).toBe('"0"');
    const e = await s.api('POST', '/api/v1/policy/explain', { src: 'ana-laptop', dst: 'ben-pc', port: 5432 });
    expect(e.status, JSON.stringify(e.body)).toBe(200);
    expect(e.body).toMatchObject({ version: 0, allowed: true, default: true, rule: null });
    expect((await s.api('GET', '/api/v1/policy/history')).body).toEqual({ items: [], next: null });
  });

  it('a write without If-Match is 428, with a bad one 400; nothing is written', async () => {
    const before = await footprint();
    const missing = await put(POLICY_V1);
    expect(missing.status).toBe(428);
    expect(missing.type).toContain('application/problem+json');
    expect(missing.body).toMatchObject({ code: 'precondition_required', retryable: false });
    const star = await put(POLICY_V1, '*');
    expect(star.status).toBe(400);
    expect(star.body.errors[0]).toMatchObject({ path: 'headers.if-match' });
    const rollback = await s.api('POST', '/api/v1/policy/rollback', { version: 1 });
    expect(rollback.status).toBe(428);
    expect(await footprint()).toEqual(before);
  });

  it('PUT with If-Match "0" stores version 1, audited, with author, diff and ETag; the change is recorded and emitted', async () => {
    const r = await put(POLICY_V1, '"0"');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.headers.get('etag')).toBe('"1"');
    expect(r.body).toMatchObject({ version: 1, default: false, text: POLICY_V1, changed: true, restoredFrom: null, author: { type: 'apikey', origin: 'api' } });
    expect(r.body.author.label).toMatch(/^apikey:weft-api-/);
    expect(r.body.diff).toMatch(/^--- policy v0 \(none: the default\)\n\+\+\+ policy v1\n@@ -0,0 \+1,11 @@\n\+\{\n/);
    const got = await s.api('GET', '/api/v1/policy');
    expect(got.headers.get('etag')).toBe('"1"');
    expect(got.body).toMatchObject({ version: 1, text: POLICY_V1 });
    expect(await s.state.policy.active()).toEqual({ version: 1, text: POLICY_V1 });
    const events = (await s.api('GET', '/api/v1/audit?action=policy.')).body.items;
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ action: 'policy.set', target: 'policy', actorType: 'apikey', origin: 'api', before: { version: 0 }, after: { version: 1 }, detail: { version: 1, added: 11, removed: 0 } });
    expect(emitted.filter((c) => c.kind === 'policy-changed')).toEqual([{ kind: 'policy-changed', version: 1 }]);
    if (backend === 'postgres') {
      const rows = await s.state.ctx.prisma.outboxChange.findMany({ orderBy: { id: 'asc' } });
      expect(rows.at(-1)!.payload).toEqual({ kind: 'policy-changed', version: 1 });
    }
  });

  it('a stale If-Match is 412 policy_version_conflict with the current ETag; nothing is written', async () => {
    const before = await footprint();
    const r = await put(POLICY_V2, '"0"');
    expect(r.status).toBe(412);
    expect(r.body).toMatchObject({ code: 'policy_version_conflict', retryable: false });
    expect(r.body.detail).toContain('the active policy is version 1');
    expect(r.headers.get('etag')).toBe('"1"');
    expect(await footprint()).toEqual(before);
  });

  it('a rejected policy (syntax, unknown names, an ipset cycle, a failing test) is 422 with every line and column, and changes nothing', async () => {
    const cases: [string, string, { line: number; col: number; message: RegExp }[]][] = [
      ['syntax', '{\n  "acls": [\n    { "action": "accept" "src": ["*"] },\n  ],\n}\n', [{ line: 3, col: 26, message: /expected/i }]],
      ['unknown group and tag', '{\n  "acls": [\n    { "action": "accept", "src": ["group:nope"], "dst": ["tag:nope:22"] },\n  ],\n}\n', [
        { line: 3, col: 35, message: /unknown group "group:nope"/ },
        { line: 3, col: 58, message: /unknown tag "tag:nope"/ },
      ]],
      ['ipset cycle', '{\n  "ipsets": {\n    "ipset:a": ["ipset:b"],\n    "ipset:b": ["ipset:a"],\n  },\n}\n', [{ line: 4, col: 17, message: /ipset cycle: ipset:a -> ipset:b -> ipset:a/ }]],
      // The test is judged on the live nodes: ben-pc is ben's, and nothing lets ben reach web-1.
      ['failing test', POLICY_V1.replace('"src": "ana@", "accept": ["tag:web:22"], "deny": ["tag:web:80"]', '"src": "ben@", "accept": ["tag:web:22"]'), [{ line: 9, col: 33, message: /test failed: "ben@" cannot reach "tag:web:22"/ }]],
    ];
    for (const [what, text, want] of cases) {
      const before = await footprint();
      const r = await put(text, '"1"');
      expect(r.status, what).toBe(422);
      expect(r.type).toContain('application/problem+json');
      expect(r.body.code).toBe('policy_invalid');
      expect(r.body.detail, what).toContain('the active policy stays in force');
      expect(r.body.errors, what).toHaveLength(want.length);
      want.forEach((w, i) => {
        expect(r.body.errors[i], what).toMatchObject({ path: 'body.text', line: w.line, col: w.col });
        expect(r.body.errors[i].message, what).toMatch(w.message);
      });
      expect(await footprint(), what).toEqual(before);
      expect(await s.state.policy.active()).toEqual({ version: 1, text: POLICY_V1 });
      // check gives the same verdict, and also writes nothing.
      const c = await s.api('POST', '/api/v1/policy/check', { text });
      expect(c.status).toBe(200);
      expect(c.body.valid).toBe(false);
      expect(c.body.errors.map((e: { line: number; col: number }) => [e.line, e.col]), what).toEqual(want.map((w) => [w.line, w.col]));
      expect(await footprint(), what).toEqual(before);
    }
  });

  it('check accepts a valid policy, counting nodes and tests, and writes nothing', async () => {
    const before = await footprint();
    const c = await s.api('POST', '/api/v1/policy/check', { text: POLICY_V2 });
    expect(c.body).toEqual({ valid: true, errors: [], nodes: 3, tests: 1 });
    expect(await footprint()).toEqual(before);
  });

  it('PUT of the text in force changes nothing: no version, no audit, no change', async () => {
    const before = await footprint();
    const r = await put(POLICY_V1, '"1"');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ version: 1, changed: false, diff: '' });
    expect(await footprint()).toEqual(before);
  });

  it('two writers from the same version: exactly one wins, the others get 412', async () => {
    const texts = [0, 1, 2, 3].map((i) => POLICY_V2.replace('8080', String(8080 + i)));
    const results = await Promise.all(texts.map((t) => put(t, '"1"')));
    const codes = results.map((r) => r.status).sort();
    expect(codes, JSON.stringify(results.map((r) => r.body))).toEqual([200, 412, 412, 412]);
    const winner = results.find((r) => r.status === 200)!;
    expect(winner.body.version).toBe(2);
    expect(await s.state.policy.active()).toEqual({ version: 2, text: winner.body.text });
    expect(await s.state.ctx.prisma.policyVersion.count()).toBe(2);
    expect((await s.api('GET', '/api/v1/audit?action=policy.')).body.items).toHaveLength(2);
  });

  it('history pages newest first with author, diff and counts; versions/:v has the text', async () => {
    const v3 = await put(POLICY_V1.replace('// ops', '// the ops team'), '"2"');
    expect(v3.body.version).toBe(3);
    const page1 = await s.api('GET', '/api/v1/policy/history?limit=2');
    expect(page1.status).toBe(200);
    expect(page1.body.items.map((i: { version: number }) => i.version)).toEqual([3, 2]);
    expect(page1.body.next).toBe(2);
    // v3 is v1 with a new comment; v2 had another port: two lines differ.
    expect(page1.body.items[0]).toMatchObject({ added: 2, removed: 2, restoredFrom: null, author: { type: 'apikey' } });
    expect(page1.body.items[0].diff).toContain('-  // ops may reach');
    expect(page1.body.items[0]).not.toHaveProperty('text');
    const page2 = await s.api('GET', `/api/v1/policy/history?limit=2&before=${page1.body.next}`);
    expect(page2.body).toMatchObject({ items: [{ version: 1 }], next: null });
    const v1 = await s.api('GET', '/api/v1/policy/versions/1');
    expect(v1.body).toMatchObject({ version: 1, text: POLICY_V1 });
    const missing = await s.api('GET', '/api/v1/policy/versions/99');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ code: 'policy_version_not_found' });
    expect(missing.body.detail).toContain('versions are 1 to 3');
    expect((await s.api('GET', '/api/v1/policy/versions/0')).status).toBe(400);
    expect((await s.api('GET', '/api/v1/policy/history?limit=0')).status).toBe(400);
  });

  it('rollback makes a new version with the old text, audited as policy.rollback; stale or unknown changes nothing', async () => {
    const before = await footprint();
    const stale = await s.api('POST', '/api/v1/policy/rollback', { version: 1 }, { 'if-match': '"2"' });
    expect(stale.status).toBe(412);
    const unknown = await s.api('POST', '/api/v1/policy/rollback', { version: 42 }, { 'if-match': '"3"' });
    expect(unknown.status).toBe(404);
    expect(await footprint()).toEqual(before);
    const r = await s.api('POST', '/api/v1/policy/rollback', { version: 2 }, { 'if-match': '"3"' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.headers.get('etag')).toBe('"4"');
    const v2 = (await s.api('GET', '/api/v1/policy/versions/2')).body;
    expect(r.body).toMatchObject({ version: 4, text: v2.text, restoredFrom: 2, changed: true });
    expect(await s.state.policy.active()).toEqual({ version: 4, text: v2.text });
    const ev = (await s.api('GET', '/api/v1/audit?action=policy.rollback')).body.items;
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({ target: 'policy', detail: { version: 4, restoredFrom: 2 }, before: { version: 3 }, after: { version: 4 } });
    expect(emitted.filter((c) => c.kind === 'policy-changed').at(-1)).toEqual({ kind: 'policy-changed', version: 4 });
  });

  it('explain names the rule and its line by the policy in force; a bad question is 400 naming the field', async () => {
    const e = await s.api('POST', '/api/v1/policy/explain', { src: 'ana', dst: 'web-1', port: 22 });
    expect(e.status, JSON.stringify(e.body)).toBe(200);
    expect(e.body).toMatchObject({ version: 4, allowed: true, default: false, port: 22, rule: { line: 6, col: 5 } });
    expect(e.body.rule.text).toContain('"src": ["group:ops"]');
    expect(e.body.src).toMatchObject({ kind: 'user', name: 'ana@' });
    const denied = await s.api('POST', '/api/v1/policy/explain', { src: 'ben-pc', dst: 'web-1', port: 22 });
    expect(denied.body).toMatchObject({ allowed: false, rule: null });
    // No port: the ports allowed, from version 4 (version 2's text: 22, 443 and the racing winner's port).
    const winnerPort = /443,(\d+)/.exec((await s.state.policy.active())!.text)![1]!;
    const ports = await s.api('POST', '/api/v1/policy/explain', { src: 'ana-laptop', dst: 'web-1' });
    expect(ports.body.pairs[0].ports).toEqual(['22', '443', winnerPort]);
    const bad = await s.api('POST', '/api/v1/policy/explain', { src: 'nobody', dst: 'web-1' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'invalid_request', errors: [{ path: 'body.src' }] });
    const badProto = await s.api('POST', '/api/v1/policy/explain', { src: 'ana', dst: 'web-1', proto: 'icmp', port: 1 });
    expect(badProto.body.errors[0].path).toBe('body.port');
  });

  it('a read key reads, checks and explains, but cannot write; no key gets nothing, and is refused before a large body is read', async () => {
    const read = { authorization: `Bearer ${s.readKey}` };
    expect((await s.api('GET', '/api/v1/policy', undefined, read)).status).toBe(200);
    expect((await s.api('GET', '/api/v1/policy/history', undefined, read)).status).toBe(200);
    expect((await s.api('POST', '/api/v1/policy/check', { text: POLICY_V1 }, read)).status).toBe(200);
    expect((await s.api('POST', '/api/v1/policy/explain', { src: 'ana', dst: 'web-1' }, read)).status).toBe(200);
    const before = await footprint();
    expect((await put(POLICY_V1, '"4"', read)).status).toBe(403);
    expect((await s.api('POST', '/api/v1/policy/rollback', { version: 1 }, { ...read, 'if-match': '"4"' })).status).toBe(403);
    // 3 MB without a key: 401 (the body is not read), not 413 or a parse.
    const big = await put('x'.repeat(3_000_000), '"4"', { authorization: '' });
    expect(big.status).toBe(401);
    expect(await footprint()).toEqual(before);
  });

  it('a policy larger than the 64 KiB other bodies may be is accepted; one over MAX_POLICY_CHARS is 400', async () => {
    const padding = Array.from({ length: 3000 }, (_, i) => `  // padding line ${i} to make the policy larger than the default body limit`).join('\n');
    const big = POLICY_V1.replace('{\n', `{\n${padding}\n`);
    expect(big.length).toBeGreaterThan(200_000);
    const r = await put(big, '"4"');
    expect(r.status, JSON.stringify(r.body).slice(0, 300)).toBe(200);
    expect(r.body.version).toBe(5);
    const over = await put('{}' + ' '.repeat(1024 * 1024), '"5"');
    expect(over.status).toBe(400);
    expect(over.body.errors[0].path).toBe('body.text');
  });

  it('the OpenAPI document lists every policy route', async () => {
    const doc = (await s.api('GET', '/api/v1/openapi.json')).body;
    for (const [path, method] of [['/api/v1/policy', 'get'], ['/api/v1/policy', 'put'], ['/api/v1/policy/check', 'post'], ['/api/v1/policy/history', 'get'], ['/api/v1/policy/versions/{version}', 'get'], ['/api/v1/policy/rollback', 'post'], ['/api/v1/policy/explain', 'post']] as const) {
      expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    }
    expect(doc.paths['/api/v1/policy'].put.parameters.some((p: { name: string; in: string }) => p.name === 'if-match' && p.in === 'header')).toBe(true);
  });
});

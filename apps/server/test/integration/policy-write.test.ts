/**
 * What a policy write reads: a policy without `tests` is judged by parsing alone (compiling it
 * against the nodes refuses nothing, and at 10,000 nodes loading and compiling them took seconds
 * before the PUT answered); a policy with `tests` is judged against the current users and nodes,
 * and a failing test refuses it. Counted through the server's own per-query metric
 * (`weft_db_query_duration_seconds_count`), on both backends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';

const usersRead = (exposition: string) => Number(/^weft_db_query_duration_seconds_count\{model="User",operation="findMany"\} (\d+)$/m.exec(exposition)?.[1] ?? 0);

describe.each(BACKENDS)('judging a policy write on %s', (backend) => {
  let s: TestServer;
  let version = 0;
  const put = async (policy: unknown) => {
    const r = await s.api('PUT', '/api/v1/policy', { text: JSON.stringify(policy) }, { 'if-match': `"${version}"` });
    if (r.status === 200) version = r.body.version;
    return r;
  };
  const reads = async () => usersRead(await s.metrics!.exposition());

  beforeAll(async () => {
    s = await startServer(backend, { metrics: {} });
    await s.api('POST', '/api/v1/users', { name: 'odin' });
    // Two of odin's nodes, so the tests below have addresses to judge.
    const key = (await s.api('POST', '/api/v1/authkeys', { user: 'odin', reusable: true })).body.key;
    for (const name of ['laptop', 'desktop']) await new SimAgent(s.url, name).register(key);
  }, 120_000);
  afterAll(async () => {
    await s?.close();
  });

  it('a policy without tests is stored without reading the users and nodes; one with a parse error is refused naming its line', async () => {
    const before = await reads();
    const ok = await put({ acls: [{ action: 'accept', src: ['odin@'], dst: ['odin@:*'] }] });
    expect(ok.status).toBe(200);
    expect(await reads()).toBe(before);
    const bad = await put({ acls: [{ action: 'accept', src: ['group:nobody'], dst: ['*:*'] }] });
    expect(bad.status).toBe(422);
    expect(bad.body.code).toBe('policy_invalid');
    expect(bad.body.errors[0].line).toBeGreaterThan(0);
    expect((await s.api('GET', '/api/v1/policy')).body.version).toBe(version);
  });

  it('a policy with tests is judged against the users and nodes, and a failing test refuses it', async () => {
    const before = await reads();
    const failing = await put({ acls: [{ action: 'accept', src: ['odin@'], dst: ['odin@:22'] }], tests: [{ src: 'odin@', accept: ['odin@:443'] }] });
    expect(failing.status).toBe(422);
    expect(failing.body.detail).toContain('test failed');
    expect(await reads()).toBeGreaterThan(before);
    expect((await s.api('GET', '/api/v1/policy')).body.version).toBe(version);
    const passing = await put({ acls: [{ action: 'accept', src: ['odin@'], dst: ['odin@:22'] }], tests: [{ src: 'odin@', accept: ['odin@:22'], deny: ['odin@:443'] }] });
    expect(passing.status).toBe(200);
  });
});

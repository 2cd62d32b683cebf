/**
 * REST fuzz: every route in the live OpenAPI document gets generated and mutated input (wrong
 * types, boundary numbers, control characters, oversize strings, lookalike keys and addresses,
 * extra and missing fields, hostile path segments, bad credentials, wrong methods). Held to: never
 * a 5xx or a dropped connection, /healthz keeps answering, a 4xx is catalogued problem+json and
 * wrote nothing, a wrong method is 405, and a connected agent keeps its session and its deltas.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importJWK, SignJWT } from 'jose';
import { generateMachineKey, machinePrivateJwk, machinePublicKeyOf, signMachineToken, type MachinePrivateKey } from '@weft/crypto';
import { MACHINE_TOKEN_AUDIENCE } from '@weft/protocol';
import { startServer, type TestServer } from '../support/server.js';
import { dbSnapshot, FailureLog, problemViolations, show, snapshotDiff } from './invariants.js';
import { connectObserver, healthy, probeObserver, type Observer } from './observer.js';
import { fuzzSettings, Rng } from './prng.js';
import { brokenJson, hostileSegment, hostileValue, mutate, NASTY_CHARS, remember, validValue, type Pools, type Schema } from './values.js';

/** Cases in the normal suite: about 12 s on an idle 2-core machine. */
const SUITE_CASES = 450;
const PROBE_EVERY = 100;
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
/** POSTs that write nothing (they carry a body): a read-scope key may use them. */
const READ_ONLY_POSTS = new Set(['/api/v1/policy/check', '/api/v1/policy/explain']);

interface Operation {
  method: string;
  /** OpenAPI path, "/api/v1/nodes/{id}". */
  path: string;
  params: { name: string; schema: Schema }[];
  body: Schema | null;
  /** Methods the path also answers (for the wrong-method cases). */
  methods: string[];
}

interface Request {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** How the input was made, for the report. */
  what: string[];
  wrongMethod: boolean;
  /** Which credentials it carries. */
  auth: Credential;
}

type Credential = 'admin' | 'read' | 'none or bad' | 'machine' | 'bad machine token';

function operations(doc: { paths: Record<string, Record<string, { parameters?: { in: string; name: string; schema: Schema }[]; requestBody?: { content: Record<string, { schema: Schema }> } }>> }): Operation[] {
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    const methods = Object.keys(item).map((m) => m.toUpperCase());
    for (const [m, op] of Object.entries(item)) {
      ops.push({
        method: m.toUpperCase(),
        path,
        params: (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => ({ name: p.name, schema: p.schema })),
        body: op.requestBody?.content['application/json']?.schema ?? null,
        methods,
      });
    }
  }
  return ops;
}

/**
 * A machine token signed properly by `key` but with claims of the fuzzer's choosing: a wrong
 * protocol version type, or issued and expiring years from now.
 */
async function oddToken(rng: Rng, key: MachinePrivateKey): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims = rng.pick<Record<string, unknown>>([{ pv: 'x' }, { pv: 1.5 }, {}, { pv: 1, iat: now + 10 * 365 * 86400, exp: now + 10 * 365 * 86400 }, { pv: 1, iat: now, exp: now - 60 }]);
  const jwt = new SignJWT({ iat: now, exp: now + 60, ...claims }).setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' }).setSubject(machinePublicKeyOf(key)).setAudience(MACHINE_TOKEN_AUDIENCE);
  return jwt.sign(await importJWK(machinePrivateJwk(key), 'EdDSA'));
}

/** A broken %-escape or a segment longer than the router takes (Fastify's 100). */
function unroutable(url: string): boolean {
  const path = url.split('?')[0]!;
  try {
    decodeURIComponent(path);
  } catch {
    return true;
  }
  return path.split('/').some((seg) => seg.length > 100);
}

/**
 * A "." or ".." segment (also as %2e) is resolved by the client before sending (WHATWG URL), so
 * the request reaches a different path than the template it was made from: no 405 is owed.
 */
function dotSegment(url: string): boolean {
  return url.split('?')[0]!.split('/').some((seg) => /^(\.|%2e){1,2}$/i.test(seg));
}

/** Header values fetch can send: no control characters but tab, nothing above U+00FF. */
const headerSafe = (s: string) => s.replace(/[^\t\x20-\x7e\x80-\xff]/g, '?');

describe('REST fuzz on pglite: every OpenAPI route', () => {
  const { seed, runs } = fuzzSettings(SUITE_CASES);
  let s: TestServer;
  let observer: Observer;
  let ops: Operation[];
  const pools: Pools = new Map();
  const machines: MachinePrivateKey[] = Array.from({ length: 3 }, () => generateMachineKey().privateKey);
  /** Rows the fuzzer must not delete or expire: its own keys and the observer. */
  const guarded = { users: new Set<string>(), nodes: new Set<string>(), apikeys: new Set<string>() };

  beforeAll(async () => {
    s = await startServer('pglite', { ephemeralTimeoutS: 3600 });
    observer = await connectObserver(s);
    guarded.users.add(String(observer.user.id)).add(observer.user.name);
    guarded.nodes.add(String(observer.nodeId));
    for (const k of (await s.api('GET', '/api/v1/apikeys')).body.items as { id: number }[]) guarded.apikeys.add(String(k.id));
    // Something for every route to find: a user, an auth key, a pending login, a node-less peer.
    const u = (await s.api('POST', '/api/v1/users', { name: 'fz-seed' })).body;
    remember(pools, 'users.user', u.id);
    remember(pools, 'users.user', u.name);
    remember(pools, 'user', u.name);
    remember(pools, 'user', observer.user.name);
    const k = (await s.api('POST', '/api/v1/authkeys', { user: 'fz-seed', reusable: true })).body;
    remember(pools, 'authKey', k.key);
    remember(pools, 'authkeys.id', k.id);
    const doc = (await (await fetch(`${s.url}/api/v1/openapi.json`)).json()) as Parameters<typeof operations>[0];
    ops = operations(doc);
    console.log(`REST fuzz: WEFT_FUZZ_SEED=${seed}, ${runs} cases over ${ops.length} operations`);
  });
  afterAll(async () => {
    observer?.agent.close();
    await s?.close();
  });

  /**
   * One request for `op`. `force` pins one hostile part and keeps the rest valid (admin key or a
   * good machine token, valid body): the systematic pass that opens every run.
   */
  async function buildRequest(rng: Rng, op: Operation, force?: { seg?: [string, string]; field?: [string, string] }): Promise<Request> {
    const what: string[] = [];
    let method = op.method;
    const wrongMethod = !force && rng.chance(0.04);
    if (wrongMethod) {
      method = rng.pick(METHODS.filter((m) => !op.methods.includes(m) && !(m === 'GET' && op.methods.includes('HEAD'))));
      what.push(`wrong method (route has ${op.methods.join(', ')})`);
    }
    const resource = op.path.split('/')[3] ?? '';
    let path = op.path;
    for (const p of op.params) {
      let seg: string;
      if (force?.seg?.[0] === p.name) {
        seg = force.seg[1];
        what.push(`path ${p.name} pinned`);
      } else if (force || rng.chance(0.55)) {
        seg = encodeURIComponent(String(validValue(rng, p.schema, pools, `${resource}.${p.name}`)));
      } else {
        seg = hostileSegment(rng);
        what.push(`path ${p.name} hostile`);
      }
      // Routes that cut a node or user off (delete, expire, suspend, offboard) leave the observer be.
      if (isGuarded(resource, seg) && (method === 'DELETE' || /\/(expire|suspend|offboard)$/.test(op.path))) seg = '999999';
      path = path.replace(`{${p.name}}`, seg);
    }
    if (!force && rng.chance(0.08)) {
      path += '?' + rng.pick(['a=%00', '__proto__[admin]=1', 'id=-1', 'x=' + 'a'.repeat(3000), '&&&', 'q=' + encodeURIComponent('\u202e')]);
      what.push('query string');
    }
    const { auth, headers } = force
      ? op.path.startsWith('/agent/')
        ? { auth: 'machine' as const, headers: { authorization: `Bearer ${await signMachineToken(rng.pick(machines))}` } as Record<string, string> }
        : { auth: 'admin' as const, headers: { authorization: `Bearer ${s.adminKey}` } as Record<string, string> }
      : await credentials(rng, op.path, what);
    let body: string | undefined;
    if (op.body && force) {
      const valid = validValue(rng, op.body, pools) as Record<string, unknown>;
      if (force.field) {
        const [k, c] = force.field;
        const base = String(validValue(rng, op.body.properties![k]!, pools, k));
        valid[k] = base.slice(0, base.length >> 1) + c + base.slice(base.length >> 1);
        what.push(`${JSON.stringify(c)} in field ${k}`);
      }
      body = JSON.stringify(valid);
      headers['content-type'] = 'application/json';
    } else if (op.body) {
      const valid = validValue(rng, op.body, pools);
      const mode = rng.next();
      if (mode < 0.25) {
        body = JSON.stringify(valid);
        what.push('valid body');
      } else if (mode < 0.85) {
        let v: unknown = valid;
        for (let i = rng.int(1, 2); i > 0; i--) {
          const m = mutate(rng, v, op.body);
          v = m.value;
          what.push(m.what);
        }
        body = JSON.stringify(v);
      } else if (mode < 0.95) {
        body = brokenJson(rng, valid);
        what.push('broken JSON');
      } else {
        what.push('no body');
      }
      if (method === 'GET') {
        body = undefined; // fetch cannot send one
      } else if (body !== undefined) headers['content-type'] = rng.chance(0.95) ? 'application/json' : rng.pick(['text/plain', 'application/json; charset=latin1', 'application/x-www-form-urlencoded', 'multipart/form-data', '']);
    } else if (rng.chance(0.1) && method !== 'GET') {
      body = JSON.stringify(hostileValue(rng));
      headers['content-type'] = 'application/json';
      what.push('body where none is expected');
    }
    return { method, url: path, headers, body, what, wrongMethod, auth };
  }

  function isGuarded(resource: string, seg: string): boolean {
    const set = guarded[resource as keyof typeof guarded];
    if (!set) return false;
    let text: string;
    try {
      text = decodeURIComponent(seg);
    } catch {
      return false;
    }
    const n = Number(text);
    return set.has(text) || (Number.isFinite(n) && text.trim() !== '' && set.has(String(n)));
  }

  async function credentials(rng: Rng, path: string, what: string[]): Promise<{ auth: Credential; headers: Record<string, string> }> {
    const r = rng.next();
    const as = (auth: Credential, value: string) => ({ auth, headers: value ? { authorization: headerSafe(value) } : ({} as Record<string, string>) });
    if (path.startsWith('/agent/')) {
      const m = rng.pick(machines);
      if (r < 0.75) return as('machine', `Bearer ${await signMachineToken(m)}`);
      what.push('bad machine token');
      const good = await signMachineToken(m);
      return as('bad machine token', rng.pick([
        '', 'Bearer', 'Bearer ', 'Bearer a.b.c', 'Basic YTpi', `Bearer ${good}x`, `Bearer ${good.slice(0, -4)}AAAA`, `Bearer ${good.replace('.', '..')}`,
        `Bearer ${await signMachineToken(m, 3600)}`, `Bearer ${await oddToken(rng, m)}`, `Bearer ${await oddToken(rng, m)}`, `Bearer ${'a'.repeat(3000)}.b.c`, `bearer ${good}`, `Bearer  ${good}`, `Bearer ${String(hostileValue(rng))}`,
      ]));
    }
    if (r < 0.8) return as('admin', `Bearer ${s.adminKey}`);
    if (r < 0.88) {
      what.push('read-scope key');
      return as('read', `Bearer ${s.readKey}`);
    }
    what.push('bad API key');
    return as('none or bad', rng.pick(['', 'Bearer', `Bearer ${s.adminKey}x`, `Bearer ${s.adminKey.slice(0, -1)}`, `bearer ${s.adminKey}`, `Bearer ${s.adminKey} extra`, 'Bearer weft-api-000000000000-' + 'A'.repeat(32), `Bearer ${rng.pick(NASTY_CHARS)}`, 'Basic YWRtaW46YWRtaW4=', `Bearer ${s.readKey}`.toUpperCase(), `Bearer ${await signMachineToken(rng.pick(machines))}`]));
  }

  /** Every path parameter at the integer edges, every string field with a NUL and an escape. */
  async function systematic(rng: Rng): Promise<{ op: Operation; req: Request }[]> {
    const out: { op: Operation; req: Request }[] = [];
    for (const op of ops) {
      for (const p of op.params) {
        for (const seg of ['0', '-1', '2147483648', '9007199254740993', 'a%00b']) out.push({ op, req: await buildRequest(rng, op, { seg: [p.name, seg] }) });
      }
      for (const [k, field] of Object.entries(op.body?.properties ?? {})) {
        if (field.type !== 'string') continue;
        for (const c of ['\u0000', '\u001b]0;pwned\u0007']) out.push({ op, req: await buildRequest(rng, op, { field: [k, c] }) });
      }
    }
    return out;
  }

  async function random(rng: Rng): Promise<{ op: Operation; req: Request }> {
    const op = rng.pick(ops);
    return { op, req: await buildRequest(rng, op) };
  }

  /** The input as text a person can replay with curl; API keys shown by role. */
  function describeRequest(req: Request): string {
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, v.replace(s.adminKey, '<admin key>').replace(s.readKey, '<read key>')]));
    return `${req.method} ${req.url} headers=${show(headers, 300)} body=${req.body === undefined ? '(none)' : show(req.body)} [${req.what.join('; ')}]`;
  }

  function harvest(op: Operation, body: any): void {
    const resource = op.path.split('/')[3] ?? '';
    const items: any[] = Array.isArray(body?.items) ? body.items : body && typeof body === 'object' ? [body] : [];
    for (const it of items) {
      if (op.path.startsWith('/agent/')) {
        if (it.status === 'pending') remember(pools, 'logins.code', it.code);
        if (it.node?.id) remember(pools, 'nodes.id', it.node.id);
        continue;
      }
      if (typeof it.id === 'number') remember(pools, `${resource}.${resource === 'users' ? 'user' : 'id'}`, it.id);
      if (resource === 'users' && typeof it.name === 'string') {
        remember(pools, 'users.user', it.name);
        remember(pools, 'user', it.name);
      }
      if (resource === 'logins' && typeof it.code === 'string') remember(pools, 'logins.code', it.code);
      if (resource === 'authkeys' && typeof it.key === 'string') remember(pools, 'authKey', it.key);
    }
  }

  it('holds every invariant on generated and mutated input', async () => {
    const rng = new Rng(seed);
    const log = new FailureLog('REST fuzz', seed, runs, `WEFT_FUZZ_SEED=${seed} WEFT_FUZZ_SCALE=${process.env.WEFT_FUZZ_SCALE ?? 1} npm run fuzz -- apps/server/test/fuzz/rest.test.ts`);
    const pinned = await systematic(rng);
    console.log(`REST fuzz: ${pinned.length} pinned cases, then ${runs} random ones`);
    for (let i = 0; i < pinned.length + runs; i++) {
      const { op, req } = i < pinned.length ? pinned[i]! : await random(rng);
      const target = `${op.method} ${op.path}`;
      const fail = (invariant: string, observed: string) => log.add({ invariant, target, index: i, input: describeRequest(req), observed });
      const before = await dbSnapshot(s.state.ctx.prisma);
      let status: number;
      let type: string | null;
      let text: string;
      try {
        const res = await fetch(s.url + req.url, { method: req.method, headers: req.headers, body: req.body, signal: AbortSignal.timeout(10_000) });
        status = res.status;
        type = res.headers.get('content-type');
        text = await res.text();
      } catch (err) {
        fail('never a dropped connection', `${(err as Error).message} ${String((err as Error).cause ?? '')}`);
        if (!(await healthy(s.url))) {
          fail('the server keeps answering /healthz', 'no answer after this request');
          break;
        }
        continue;
      }
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        /* left as text */
      }
      const observed = `${status} ${type} ${show(body, 400)}`;
      if (status >= 500) fail('never a 5xx', observed);
      if (status >= 400) {
        const bad = problemViolations(status, type, body);
        if (bad.length) fail(`4xx is catalogued problem+json (${bad.map((v) => v.rule).join(', ')})`, `${bad.map((v) => v.detail).join('; ')}; ${observed}`);
        const diff = snapshotDiff(before, await dbSnapshot(s.state.ctx.prisma));
        if (diff) fail('nothing written on a 4xx', `${diff}; ${observed}`);
      }
      const ok = status >= 200 && status < 300;
      if (ok && (req.auth === 'none or bad' || req.auth === 'bad machine token')) fail('no credentials, no access: anything but a valid key or machine token gets no 2xx', observed);
      if (ok && req.auth === 'read' && ((req.method !== 'GET' && !READ_ONLY_POSTS.has(op.path)) || op.path.startsWith('/api/v1/apikeys'))) fail('a read-scope key reads, but never writes or lists API keys', observed);
      // A path the router cannot even decode is refused before its method matters.
      if (req.wrongMethod && status !== 405 && !(status === 400 && unroutable(req.url)) && !dotSegment(req.url)) fail('a wrong method is 405 method_not_allowed', observed);
      if (ok) harvest(op, body);
      if (!(await healthy(s.url))) {
        fail('the server keeps answering /healthz', `no answer after this request; it got ${observed}`);
        break;
      }
      if ((i + 1) % PROBE_EVERY === 0 || i === pinned.length + runs - 1) {
        const probe = await probeObserver(s, observer, i);
        if (probe) {
          log.add({ invariant: 'a connected agent keeps its session and gets deltas', target: 'observer', index: i, input: `after case ${i}: ${describeRequest(req)}`, observed: probe });
          break;
        }
      }
    }
    expect(log.report()).toBe('');
  });
});

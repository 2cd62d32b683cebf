/**
 * Prometheus metrics against a real server on loopback with real simulated agents: the exposition
 * parses, and the values move with what the agents and the API do.
 */
import { createSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '@weft/db';
import { bindingRequest } from '@weft/relay';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { createTestDatabase } from '../../../../test-support/test-database.js';
import { buildApp, type App } from '../../src/app.js';
import { cli, freePort, spawnServer, type ServerProcess } from '../support/process.js';
import { startServer, type TestServer } from '../support/server.js';

interface Sample { name: string; labels: Record<string, string>; value: number }

/** Text exposition format 0.0.4: `# HELP`/`# TYPE` lines and `name{label="value",...} number`. */
function parseExposition(text: string): { samples: Sample[]; help: Map<string, string>; type: Map<string, string> } {
  const samples: Sample[] = [];
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      (meta[1] === 'HELP' ? help : type).set(meta[2]!, meta[3]!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!m) throw new Error(`unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    const body = m[2] ?? '';
    let lm: RegExpExecArray | null;
    let end = 0;
    while ((lm = re.exec(body))) {
      labels[lm[1]!] = lm[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
      end = re.lastIndex;
    }
    if (end !== body.length) throw new Error(`unparseable labels: ${line}`);
    const raw = m[3]!;
    samples.push({ name: m[1]!, labels, value: raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw) });
  }
  return { samples, help, type };
}

/** The value of one series (labels must match exactly those given); absent = 0. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const hit = samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === Object.keys(labels).length);
  return hit?.value ?? 0;
}

const sum = (samples: Sample[], name: string, pred: (l: Record<string, string>) => boolean = () => true) =>
  samples.filter((s) => s.name === name && pred(s.labels)).reduce((n, s) => n + s.value, 0);

const TOKEN = 'metrics-token-0123456789abcdef';

describe('metrics on the main port behind a token', () => {
  let srv: TestServer;
  let authKey: string;
  const agents: SimAgent[] = [];

  const scrape = async () => {
    const res = await fetch(`${srv.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return parseExposition(await res.text()).samples;
  };

  beforeAll(async () => {
    srv = await startServer('pglite', { metrics: { token: TOKEN }, limits: { authFailureBurst: 1, authFailurePerSecond: 0.001 } });
    await srv.api('POST', '/api/v1/users', { name: 'fleet' });
    authKey = (await srv.api('POST', '/api/v1/authkeys', { user: 'fleet', reusable: true })).body.key;
  });
  afterAll(async () => {
    for (const a of agents) a.close();
    await srv?.close();
  });

  it('refuses a scrape without the token or with a wrong one with 401 problem+json', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789abcdef' }, { authorization: TOKEN }] as Record<string, string>[]) {
      const res = await fetch(`${srv.url}/metrics`, { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const body = (await res.json()) as { code: string; retryable: boolean };
      expect(body).toMatchObject({ code: 'unauthenticated', retryable: false });
    }
  });

  it('every metric has help text, a weft_ or standard prefix, and the process defaults are there', async () => {
    const res = await fetch(`${srv.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const { samples, help, type } = parseExposition(await res.text());
    for (const name of type.keys()) {
      expect(help.get(name), name).toBeTruthy();
      expect(name).toMatch(/^(weft_|process_|nodejs_)/);
    }
    for (const name of ['weft_nodes', 'weft_sessions', 'weft_changes_applied_total', 'weft_change_apply_to_send_seconds', 'weft_netmap_bytes_sent_total',
      'weft_delta_bytes_sent_total', 'weft_change_bus_lag_seconds', 'weft_db_query_duration_seconds', 'weft_http_requests_total', 'weft_rate_limit_refusals_total']) {
      expect(type.has(name), name).toBe(true);
    }
    expect(samples.some((s) => s.name === 'process_cpu_user_seconds_total')).toBe(true);
    expect(samples.some((s) => s.name === 'nodejs_eventloop_lag_p99_seconds')).toBe(true);
    // This app was built without a STUN service: no weft_stun_* series.
    expect([...type.keys()].filter((n) => n.startsWith('weft_stun_'))).toEqual([]);
  });

  it('sessions and online nodes match the connected agents; netmap bytes grow by what each agent received', async () => {
    let samples = await scrape();
    expect(value(samples, 'weft_sessions')).toBe(0);
    for (let i = 0; i < 3; i++) {
      const a = new SimAgent(srv.url, `m${i}`);
      await a.register(authKey);
      const before = value(await scrape(), 'weft_netmap_bytes_sent_total');
      await a.connect();
      await a.waitFor(() => a.received.some((r) => r.msg.type === 'netmap'), 10_000, 'netmap');
      agents.push(a);
      const after = value(await scrape(), 'weft_netmap_bytes_sent_total');
      expect(after - before).toBe(a.received.find((r) => r.msg.type === 'netmap')!.bytes);
    }
    samples = await scrape();
    expect(value(samples, 'weft_sessions')).toBe(3);
    expect(value(samples, 'weft_netmaps_sent_total')).toBe(3);
    // Each agent read its netmap, so the server had handed every byte of it to the kernel.
    expect(value(samples, 'weft_netmaps_flushed_total')).toBe(3);
    expect(value(samples, 'weft_last_netmap_flushed_timestamp_seconds')).toBeGreaterThan(0);
    expect(value(samples, 'weft_last_netmap_flushed_timestamp_seconds')).toBeLessThanOrEqual(Date.now() / 1000);
    // Presence is written and patched asynchronously.
    for (let t = 0; value(samples, 'weft_nodes', { state: 'online' }) !== 3 && t < 50; t++) {
      await new Promise((r) => setTimeout(r, 100));
      samples = await scrape();
    }
    expect(value(samples, 'weft_nodes', { state: 'online' })).toBe(3);
    expect(value(samples, 'weft_nodes', { state: 'offline' })).toBe(0);

    const last = agents.pop()!;
    last.close();
    await last.waitFor(() => last.closed !== null);
    for (let t = 0; value(samples, 'weft_sessions') !== 2 && t < 50; t++) {
      await new Promise((r) => setTimeout(r, 100));
      samples = await scrape();
    }
    expect(value(samples, 'weft_sessions')).toBe(2);
    for (let t = 0; value(samples, 'weft_nodes', { state: 'offline' }) !== 1 && t < 50; t++) {
      await new Promise((r) => setTimeout(r, 100));
      samples = await scrape();
    }
    expect(value(samples, 'weft_nodes', { state: 'offline' })).toBe(1);
  });

  it('a node delete counts one nodes-removed change with a latency sample, sends delta bytes, and is counted by route pattern', async () => {
    const victim = new SimAgent(srv.url, 'victim');
    await victim.register(authKey);
    const watcher = agents[0]!;
    await watcher.waitFor(() => watcher.peers.has(victim.self!.id), 10_000, 'victim visible');
    await srv.mapper.settled();
    const before = await scrape();
    expect((await srv.api('DELETE', `/api/v1/nodes/${victim.self!.id}`)).status).toBe(200);
    await watcher.waitFor(() => !watcher.peers.has(victim.self!.id), 10_000, 'victim removed');
    await srv.mapper.settled();
    const after = await scrape();
    const kind = { kind: 'nodes-removed' };
    expect(value(after, 'weft_changes_applied_total', kind) - value(before, 'weft_changes_applied_total', kind)).toBe(1);
    expect(value(after, 'weft_change_apply_to_send_seconds_count', kind) - value(before, 'weft_change_apply_to_send_seconds_count', kind)).toBe(1);
    expect(value(after, 'weft_change_apply_to_send_seconds_sum', kind)).toBeGreaterThan(value(before, 'weft_change_apply_to_send_seconds_sum', kind));
    // Each of the two connected agents got the removal delta.
    expect(value(after, 'weft_deltas_sent_total') - value(before, 'weft_deltas_sent_total')).toBeGreaterThanOrEqual(2);
    expect(value(after, 'weft_delta_bytes_sent_total')).toBeGreaterThan(value(before, 'weft_delta_bytes_sent_total'));

    const route = { method: 'DELETE', route: '/api/v1/nodes/:id', status: '200', status_class: '2xx' };
    expect(value(after, 'weft_http_requests_total', route) - value(before, 'weft_http_requests_total', route)).toBe(1);
    const labelValues = after.filter((s) => s.name.startsWith('weft_http_')).map((s) => s.labels.route);
    expect(labelValues).not.toContain(`/api/v1/nodes/${victim.self!.id}`);
    expect(labelValues.every((r) => r === undefined || r === 'unmatched' || !/\/\d+(\/|$)/.test(r))).toBe(true);
    expect(sum(after, 'weft_db_query_duration_seconds_count', (l) => l.model === 'Node')).toBeGreaterThan(0);
  });

  it('unknown paths are counted as one "unmatched" route, whatever the URL', async () => {
    const before = await scrape();
    for (const p of ['/nope/1', '/nope/2', '/api/v1/nodes/1/nothing']) expect((await fetch(srv.url + p)).status).toBe(404);
    const after = await scrape();
    const l = { method: 'GET', route: 'unmatched', status: '404', status_class: '4xx' };
    expect(value(after, 'weft_http_requests_total', l) - value(before, 'weft_http_requests_total', l)).toBe(3);
  });

  it('counts rate-limit refusals by limit', async () => {
    const before = value(await scrape(), 'weft_rate_limit_refusals_total', { limit: 'credentials' });
    const bad = { authorization: 'Bearer weft_api_nope_000000000000000000000000' };
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await srv.api('GET', '/api/v1/nodes', undefined, bad)).status);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(2);
    const after = value(await scrape(), 'weft_rate_limit_refusals_total', { limit: 'credentials' });
    expect(after - before).toBe(statuses.filter((s) => s === 429).length);
  });
});

describe('metrics off', () => {
  let srv: TestServer;
  beforeAll(async () => (srv = await startServer('pglite')));
  afterAll(async () => srv?.close());

  it('without a token the main port has no /metrics: anonymous scrape is 404 problem+json', async () => {
    const res = await fetch(`${srv.url}/metrics`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(srv.metrics).toBeNull();
  });
});

describe('metrics collected but no token: still no /metrics on the main port', () => {
  let srv: TestServer;
  beforeAll(async () => (srv = await startServer('pglite', { metrics: {} })));
  afterAll(async () => srv?.close());

  it('404 with or without a bearer token', async () => {
    for (const headers of [{}, { authorization: `Bearer ${TOKEN}` }] as Record<string, string>[]) {
      expect((await fetch(`${srv.url}/metrics`, { headers })).status).toBe(404);
    }
    expect(await srv.metrics!.exposition()).toContain('weft_sessions 0');
  });
});

describe('weft-server serve --metrics-listen (separate listener)', () => {
  let proc: ServerProcess;
  let metricsUrl: string;
  beforeAll(async () => {
    const port = await freePort();
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    proc = await spawnServer({}, undefined, ['--metrics-listen', `127.0.0.1:${port}`]);
  });
  afterAll(async () => proc?.stop());

  it('serves the exposition on its own port; the main port has no /metrics; an agent shows as a session', async () => {
    expect((await fetch(`${proc.url}/metrics`)).status).toBe(404);
    const created = await cli(['apikeys', 'create', '--scopes', 'admin', '--json', '--data-dir', proc.dataDir]);
    const adminKey = JSON.parse(created.stdout).key as string;
    const call = (method: string, path: string, body: unknown) =>
      fetch(proc.url + path, { method, headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.json() as Promise<any>);
    await call('POST', '/api/v1/users', { name: 'u' });
    const key = (await call('POST', '/api/v1/authkeys', { user: 'u' })).key as string;
    const agent = new SimAgent(proc.url, 'sep');
    await agent.register(key);
    await agent.connect();
    try {
      await agent.waitFor(() => agent.received.length > 0, 10_000, 'netmap');
      const res = await fetch(metricsUrl);
      expect(res.status).toBe(200);
      const samples = parseExposition(await res.text()).samples;
      expect(value(samples, 'weft_sessions')).toBe(1);
      expect(value(samples, 'weft_netmap_bytes_sent_total')).toBe(agent.received[0]!.bytes);
      expect((await fetch(metricsUrl.replace('/metrics', '/other'))).status).toBe(404);
    } finally {
      agent.close();
    }
  });

  it('a STUN Binding request on the embedded STUN port increments weft_stun_requests_total and weft_stun_responses_total; junk counts as malformed', async () => {
    const m = /STUN \(udp\): (\S+)/.exec(proc.output());
    expect(m, proc.output()).not.toBeNull();
    const stunPort = Number(m![1]!.split(':').at(-1));
    const scrape = async () => parseExposition(await (await fetch(metricsUrl)).text()).samples;
    const before = await scrape();
    for (const name of ['weft_stun_requests_total', 'weft_stun_responses_total', 'weft_stun_error_responses_total', 'weft_stun_malformed_total', 'weft_stun_ignored_total']) {
      expect(before.some((x) => x.name === name), name).toBe(true);
    }
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    try {
      expect(await bindingRequest({ host: '127.0.0.1', port: stunPort, socket: sock })).toMatchObject({ address: '127.0.0.1', port: sock.address().port });
      const junk = Buffer.alloc(20, 0xff); // first two bits set: not STUN
      await new Promise<void>((r, j) => sock.send(junk, stunPort, '127.0.0.1', (err) => (err ? j(err) : r())));
      let after = await scrape();
      for (let t = 0; value(after, 'weft_stun_malformed_total') === value(before, 'weft_stun_malformed_total') && t < 50; t++) {
        await new Promise((r) => setTimeout(r, 50));
        after = await scrape();
      }
      // At least one: the client retransmits if an answer is slow (RFC 8489 RTO), each one answered.
      const requests = value(after, 'weft_stun_requests_total') - value(before, 'weft_stun_requests_total');
      expect(requests).toBeGreaterThanOrEqual(1);
      expect(value(after, 'weft_stun_responses_total') - value(before, 'weft_stun_responses_total')).toBe(requests);
      expect(value(after, 'weft_stun_error_responses_total')).toBe(value(before, 'weft_stun_error_responses_total'));
      expect(value(after, 'weft_stun_malformed_total') - value(before, 'weft_stun_malformed_total')).toBe(1);
    } finally {
      sock.close();
    }
  });

  it('bad metrics config stops start-up with a message naming the key', async () => {
    const short = await cli(['serve', '--data-dir', proc.dataDir], { env: { WEFT_METRICS_TOKEN: 'short' } });
    expect(short.code).not.toBe(0);
    expect(short.stderr).toMatch(/"metrics-token" \(environment variable WEFT_METRICS_TOKEN\): must be at least 16 characters/);
    expect(short.stderr).not.toContain('short\n');
    const same = await cli(['serve', '--listen', '127.0.0.1:1', '--metrics-listen', '127.0.0.1:1', '--data-dir', proc.dataDir]);
    expect(same.code).not.toBe(0);
    expect(same.stderr).toMatch(/"metrics-listen" \(flag --metrics-listen\): must differ from "listen"/);
  });
});

describe('bus lag between two replicas on one Postgres', () => {
  const apps: App[] = [];
  const dbs: { close(): Promise<void> }[] = [];
  beforeAll(async () => {
    const url = await createTestDatabase();
    for (let i = 0; i < 2; i++) {
      const db = await openDatabase({ databaseUrl: url });
      dbs.push(db);
      apps.push(await buildApp({ db, serverUrl: 'http://127.0.0.1', metrics: {}, patchIntervalMs: 20 }));
    }
  });
  afterAll(async () => {
    for (const a of apps) await a.app.close();
    for (const d of dbs) await d.close();
  });

  it('a change one replica writes to the outbox is observed as bus lag (now - created_at) by the other, not by itself', async () => {
    const [a, b] = apps as [App, App];
    const lag = async (x: App) => {
      const samples = parseExposition(await x.metrics!.exposition()).samples;
      return { count: value(samples, 'weft_change_bus_lag_seconds_count'), sum: value(samples, 'weft_change_bus_lag_seconds_sum') };
    };
    const beforeA = await lag(a);
    const beforeB = await lag(b);
    // The write path's own steps (hub.record in the transaction, hub.emit after the commit), with
    // the row's created_at set 5 s back: the lag B observes is measured from that timestamp. A
    // removal of a node no replica has is harmless.
    const change = { kind: 'nodes-removed' as const, nodeIds: [2_000_000_000] };
    await a.state.ctx.prisma.$transaction(async (tx) => {
      await a.hub.record(tx, change);
      await tx.$executeRawUnsafe(`UPDATE changes SET created_at = created_at - interval '5 seconds' WHERE id = (SELECT last FROM change_seq WHERE id = 1)`);
    });
    a.hub.emit(change);
    for (let t = 0; (await lag(b)).count === beforeB.count && t < 50; t++) await new Promise((r) => setTimeout(r, 100));
    const afterB = await lag(b);
    expect(afterB.count - beforeB.count).toBe(1);
    const observed = afterB.sum - beforeB.sum;
    expect(observed).toBeGreaterThanOrEqual(5);
    expect(observed).toBeLessThan(60); // seconds, not milliseconds
    expect(await lag(a)).toEqual(beforeA);
    // The lag is observed when the change arrives; the mapper counts it as applied after its
    // queued fan-out, a moment later.
    const applied = async () => value(parseExposition(await b.metrics!.exposition()).samples, 'weft_changes_applied_total', { kind: 'nodes-removed' });
    for (let t = 0; (await applied()) < 1 && t < 50; t++) await new Promise((r) => setTimeout(r, 100));
    expect(await applied()).toBeGreaterThanOrEqual(1);
  });
});

/**
 * Link health on a real host (issue 12): a dead link is reported stale end to end. Two agents with
 * wireguard-go and the real server; b's WireGuard traffic is dropped with nft (in and out of its
 * WireGuard port, loopback included, so the relay path is dead too) while a keeps sending to b.
 * The rule: stale = handshake older than the threshold while tx grows. The threshold is 180 s by
 * default (covered by the link reporter's unit tests); the agents here run with
 * WEFT_STALE_HANDSHAKE_S=40 so the lab does not wait three minutes (long enough that the link,
 * once fresh again, stays fresh while the test looks: keepalives every 25 s count as traffic).
 */
import { describe, expect, it } from 'vitest';
import type { Host } from './lab/host.js';
import { httpFrom } from './lab/weft-rest.js';
import { useLab } from './lab/vitest.js';
import { WeftAgent, WeftServer } from './lab/weft.js';
import { waitFor } from './lab/wait.js';

const STALE_S = 40;
const METRICS_URL = 'http://127.0.0.1:9090/metrics';

interface FleetLink { nodeId: number; peerId: number; path: string; stale: boolean }
interface Check { id: string; status: 'PASS' | 'WARN' | 'FAIL'; detail: string; fix: string | null }

let server: WeftServer;
const agents = {} as Record<'a' | 'b', WeftAgent>;
const ids = {} as Record<'a' | 'b', number>;
const ips = {} as Record<'a' | 'b', string>;

const ctx = useLab({ name: 'links', hosts: ['server', 'a', 'b'] }, async (lab) => {
  server = await WeftServer.start(lab, { env: { WEFT_METRICS_LISTEN: '127.0.0.1:9090' } });
  const authKey = await server.authKey('lab');
  await Promise.all((['a', 'b'] as const).map(async (h) => {
    agents[h] = await WeftAgent.start(lab.hosts[h], { env: { WEFT_STALE_HANDSHAKE_S: String(STALE_S) } });
    const st = await agents[h].upOk({ server: server.url, authKey, hostname: h });
    ids[h] = st.self!.id;
    ips[h] = st.self!.ipv4;
  }));
});

async function staleLinks(): Promise<FleetLink[]> {
  const r = await server.api.request<{ items: FleetLink[] }>('GET', '/api/v1/links?state=stale');
  expect(r.status).toBe(200);
  return r.body.items;
}

async function staleMetric(): Promise<number> {
  const res = await httpFrom(server.host, 'GET', METRICS_URL, { timeoutMs: 5000 });
  expect(res.status, '/metrics').toBe(200);
  const line = res.text.split('\n').find((l) => l.startsWith('weft_links_stale '));
  expect(line, 'weft_links_stale in /metrics').toBeDefined();
  return Number(line!.slice('weft_links_stale '.length));
}

async function handshakesCheck(): Promise<{ code: number | null; check: Check }> {
  const r = await agents.a.cli(['doctor', '--json', '--socket', agents.a.socket]);
  const checks = (JSON.parse(r.stdout) as { checks: Check[] }).checks;
  return { code: r.code, check: checks.find((c) => c.id === 'handshakes')! };
}

/** Drops every datagram to or from b's WireGuard port (LAN and loopback: direct and relayed). */
async function killLink(b: Host, port: number): Promise<void> {
  await b.execOk('nft', ['-f', '-'], { input: `table inet lab_dead {\n chain in { type filter hook input priority -10; udp dport ${port} drop; }\n chain out { type filter hook output priority -10; udp sport ${port} drop; }\n}\n` });
}

describe('link health', () => {
  it(`a dead link (b's WireGuard dropped with nft, a still sending) is stale in GET /api/v1/links?state=stale, in weft_links_stale and in doctor; traffic back = fresh again`, async () => {
    const { a: ha, b: hb } = ctx.lab.hosts;
    expect((await ha.ping(ips.b, { count: 1, timeoutMs: 5000 })).ok).toBe(true);
    const port = (await agents.b.status()).interface.listenPort!;
    await killLink(hb, port);
    expect((await ha.ping(ips.b, { count: 1, timeoutMs: 2000 })).ok, 'b unreachable once its WireGuard port is dropped').toBe(false);

    // a keeps trying (tx grows) until the server lists a's link to b as stale.
    const listed = await waitFor(async () => {
      await ha.ping(ips.b, { count: 1, timeoutMs: 1000 });
      return (await staleLinks()).find((l) => l.nodeId === ids.a && l.peerId === ids.b) ?? null;
    }, { timeoutMs: 90_000, intervalMs: 1000, what: "a's link to b listed as stale" });
    expect(listed).toMatchObject({ nodeId: ids.a, peerId: ids.b, stale: true });
    expect(await staleMetric()).toBeGreaterThanOrEqual(1);

    const d = await handshakesCheck();
    expect(d.code).toBe(20);
    expect(d.check).toMatchObject({ status: 'FAIL', fix: expect.stringContaining('weft netcheck') });
    expect(d.check.detail).toMatch(new RegExp(`^b \\(last handshake (\\d+ s ago|never)\\): traffic attempted, no session for over ${STALE_S} s$`));

    // The fix: b's WireGuard reachable again. a's next handshake makes the link fresh, everywhere.
    await hb.execOk('nft', ['delete', 'table', 'inet', 'lab_dead']);
    await waitFor(async () => (await ha.ping(ips.b, { count: 1, timeoutMs: 1000 })).ok, { timeoutMs: 30_000, intervalMs: 500, what: 'a reaching b again' });
    // Within the threshold of that handshake: fresh at the daemon's next observation (every 5 s),
    // and on the server with the next report (at most 5 s after the previous one).
    await waitFor(async () => (await handshakesCheck()).check.status === 'PASS', { timeoutMs: 20_000, intervalMs: 1000, what: 'doctor handshakes PASS again' });
    await waitFor(async () => !(await staleLinks()).some((l) => l.nodeId === ids.a && l.peerId === ids.b), { timeoutMs: 20_000, intervalMs: 500, what: "a's link to b no longer stale on the server" });
  });
});

/**
 * The lab's NAT routers (e2e/lab/nat.ts) do what their names say, measured from outside: a
 * reflector on the "internet" reports the source address it sees. Every case starts with conntrack
 * flushed. These are the ground truth the netcheck and NAT traversal tests stand on.
 */
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { Lab, listNamespaces, nsPrefix, type Host, type NatType, type Router, type RouterOptions } from './lab/index.js';
import { useLab } from './lab/vitest.js';

const REFLECTOR = fileURLToPath(new URL('./lab/udp-reflector.mjs', import.meta.url));
const PROBE = fileURLToPath(new URL('./lab/udp-probe.mjs', import.meta.url));
const PORTS = [3478, 3479, 4000];

const ctx = useLab({ name: 'nl', hosts: ['inet', 'a', 'b'] }, async (lab) => {
  const p = lab.hosts.inet.spawn(process.execPath, [REFLECTOR, ...PORTS.map(String)], { logName: 'reflector' });
  await p.waitForLine(/listening/, 10_000);
});

/** What the reflector saw for each of its UDP ports (same socket, local port `lp`), and for one TCP connection. */
async function probe(h: Host, lp: number): Promise<{ udp: (string | null)[]; tcp: string | null }> {
  const inet = ctx.lab.hosts.inet.ip;
  const targets = [...PORTS.map((p) => `${inet}:${p}`), `tcp:${inet}:${PORTS[0]}`];
  const r = await h.execOk(process.execPath, [PROBE, String(lp), ...targets], { timeoutMs: 15_000 });
  const seen = JSON.parse(r.stdout) as Record<string, string | null>;
  return { udp: targets.slice(0, PORTS.length).map((t) => seen[t]!), tcp: seen[targets.at(-1)!]! };
}

/** The lab's router `name`, added on first use: each test runs alone too (`-t`). */
async function router(name: string, nat: NatType, opts: Omit<RouterOptions, 'nat'> = {}): Promise<Router> {
  return ctx.lab.routers.find((r) => r.name === name) ?? (await ctx.lab.addRouter(name, { nat, ...opts }));
}

const port = (addr: string | null) => Number(addr?.split(':')[1]);
const ipOf = (addr: string | null) => addr?.split(':')[0];

describe('NAT routers', () => {
  beforeAll(async () => {
    await ctx.lab.attach(ctx.lab.hosts.a, ctx.lab.internet);
    await ctx.lab.attach(ctx.lab.hosts.b, ctx.lab.internet);
  });

  it('eim (masquerade): one outside port for every destination, the inside port kept', async () => {
    const r = await router('eim', 'eim');
    await r.attach(ctx.lab.hosts.a);
    const seen = await probe(ctx.lab.hosts.a, 41641);
    expect(seen.udp).toEqual(PORTS.map(() => `${r.wanIp}:41641`));
    expect(ipOf(seen.tcp)).toBe(r.wanIp);
  });

  it('eim: a second host with the same inside port gets another outside port, still one for every destination', async () => {
    const r = await router('eim', 'eim');
    await r.attach(ctx.lab.hosts.a);
    await r.attach(ctx.lab.hosts.b);
    const a = await probe(ctx.lab.hosts.a, 41641);
    const b = await probe(ctx.lab.hosts.b, 41641);
    expect(new Set(a.udp.map(port))).toEqual(new Set([41641]));
    expect(new Set(b.udp).size).toBe(1);
    expect(port(b.udp[0]!)).not.toBe(41641);
  });

  it('eim: a probe that reaches the router before the host sent anything does not take the host\'s port', async () => {
    const r = await router('eim', 'eim');
    const { inet, a } = ctx.lab.hosts;
    await r.attach(a); // flushes conntrack
    // inet:4002 -> router:41642 first. Had the router confirmed a conntrack entry for it, the host's
    // later inside:41642 -> inet:4002 would clash with it and be given another outside port.
    await inet.exec(process.execPath, [PROBE, '4002', `${r.wanIp}:41642`], { timeoutMs: 10_000 });
    const late = inet.spawn(process.execPath, [REFLECTOR, '4002'], { logName: 'reflector-4002' });
    await late.waitForLine(/listening/, 10_000);
    const r2 = await a.execOk(process.execPath, [PROBE, '41642', `${inet.ip}:4002`], { timeoutMs: 10_000 });
    await late.kill();
    expect(JSON.parse(r2.stdout)).toEqual({ [`${inet.ip}:4002`]: `${r.wanIp}:41642` });
  });

  it('eim-persistent (masquerade persistent): with one outside address, the same as eim', async () => {
    const r = await router('persist', 'eim-persistent');
    await r.attach(ctx.lab.hosts.a);
    expect((await probe(ctx.lab.hosts.a, 41641)).udp).toEqual(PORTS.map(() => `${r.wanIp}:41641`));
  });

  it('eim-no-preserve: one outside port for every destination, never the inside one', async () => {
    const r = await router('remap', 'eim-no-preserve');
    await r.attach(ctx.lab.hosts.a);
    const seen = await probe(ctx.lab.hosts.a, 41641);
    expect(new Set(seen.udp).size).toBe(1);
    expect(ipOf(seen.udp[0]!)).toBe(r.wanIp);
    expect(port(seen.udp[0]!)).toBeGreaterThanOrEqual(20_000);
    expect(port(seen.udp[0]!)).toBeLessThanOrEqual(30_000);
    expect(ipOf(seen.tcp)).toBe(r.wanIp);
  });

  it('edm (masquerade fully-random): a new outside port per destination, stable per destination', async () => {
    const r = await router('edm', 'edm');
    await r.attach(ctx.lab.hosts.a);
    const first = await probe(ctx.lab.hosts.a, 41641);
    const again = await probe(ctx.lab.hosts.a, 41641);
    expect(first.udp.every((s) => ipOf(s) === r.wanIp)).toBe(true);
    expect(new Set(first.udp.map(port)).size).toBe(PORTS.length);
    expect(again.udp).toEqual(first.udp);
  });

  it('udp-blocked: no UDP answer at all, TCP and ping still go out', async () => {
    const r = await router('tcponly', 'udp-blocked');
    await r.attach(ctx.lab.hosts.a);
    const seen = await probe(ctx.lab.hosts.a, 41641);
    expect(seen.udp).toEqual(PORTS.map(() => null));
    expect(ipOf(seen.tcp)).toBe(r.wanIp);
    expect((await ctx.lab.hosts.a.ping(ctx.lab.hosts.inet.ip)).ok).toBe(true);
  });

  it('double NAT: the internet sees the outer router; the inner router sits on the outer one\'s inside', async () => {
    const isp = await router('isp', 'eim', { subnet: '100.64.7' });
    const cpe = await router('cpe', 'eim', { upstream: isp });
    await cpe.attach(ctx.lab.hosts.a);
    expect(cpe.wanIp.startsWith('100.64.7.')).toBe(true);
    const seen = await probe(ctx.lab.hosts.a, 41641);
    expect(seen.udp).toEqual(PORTS.map(() => `${isp.wanIp}:41641`));
  });

  it('LAN: two hosts behind one router reach each other directly; the internet cannot reach either', async () => {
    const r = await router('lan', 'eim');
    const { a, b, inet } = ctx.lab.hosts;
    await r.attach(a);
    await r.attach(b);
    expect((await a.ping(b.ip)).ok).toBe(true);
    expect((await inet.ping(a.ip, { timeoutMs: 1000 })).ok).toBe(false);
    // Bridged, not routed: the router tracked nothing of it.
    expect(await r.conntrack()).not.toContain(`dst=${b.ip}`);
  });

  it('roaming: a host moved to another router (processes running) is seen from the new router\'s address', async () => {
    const { a } = ctx.lab.hosts;
    const home = await router('lan', 'eim');
    const cafe = await router('cafe', 'eim');
    await home.attach(a);
    const resident = a.spawn('sleep', ['600'], { logName: 'resident' });
    const before = await probe(a, 41641);
    await cafe.attach(a);
    const after = await probe(a, 41641);
    expect(resident.running).toBe(true);
    await resident.kill();
    expect(ipOf(before.udp[0]!)).toBe(home.wanIp);
    expect(ipOf(after.udp[0]!)).toBe(cafe.wanIp);
    expect(a.ip.startsWith(`${cafe.subnet}.`)).toBe(true);
    await ctx.lab.attach(a, ctx.lab.internet);
    expect((await probe(a, 41641)).udp[0]).toBe(`${a.ip}:41641`);
  });
});

describe('router cleanup', () => {
  it('cleanup removes every router namespace, also of a router whose setup failed half-way', async () => {
    const lab = await Lab.create({ name: 'nlc', hosts: ['a'] });
    try {
      const r = await lab.addRouter('home', { nat: 'eim' });
      await r.attach(lab.hosts.a);
      // 300 is no octet: `ip addr add` fails after the namespace exists.
      await expect(lab.addRouter('broken', { nat: 'eim', subnet: '300.1.1' })).rejects.toThrow(/ip -n wl-nlc-r-broken addr add/);
      expect((await listNamespaces()).filter((n) => n.startsWith(nsPrefix('nlc'))).sort()).toEqual(['wl-nlc-a', 'wl-nlc-lan', 'wl-nlc-r-broken', 'wl-nlc-r-home']);
    } finally {
      await lab.cleanup();
    }
    expect((await listNamespaces()).filter((n) => n.startsWith(nsPrefix('nlc')))).toEqual([]);
  });
});

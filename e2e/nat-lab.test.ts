/**
 * The lab's NAT routers (e2e/lab/nat.ts) do what their names say, measured from outside: a
 * reflector on the "internet" reports the source address it sees. Every case starts with conntrack
 * flushed. These are the ground truth the netcheck and NAT traversal tests stand on.
 *
 * Then Weft through them (issue 9 lab cases (a)-(i)): the real server with STUN on the "internet",
 * two agents behind the routers of each case, every case a fresh pair of nodes joining. Each case
 * asserts that pings pass, that the first one passed within 2 s of both nodes having joined
 * (relayed at once when direct is not ready), and what `weft status --json` says of the path and why.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { Lab, listNamespaces, natRules, nsPrefix, type Host, type NatType, type Network, type Router, type RouterOptions } from './lab/index.js';
import { useLab } from './lab/vitest.js';
import { waitFor } from './lab/wait.js';
import { cli, RELAY_BIN, WeftAgent, WeftServer, type AgentPeerStatus } from './lab/weft.js';

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

// ---- Weft through the NATs ------------------------------------------------------------------------

describe('weft through NATs (issue 9 lab cases)', () => {
  let server: WeftServer;
  let authKey: string;
  let live: WeftAgent[] = [];
  const wl = useLab({ name: 'nt', hosts: ['server', 'a', 'b'] }, async (lab) => {
    // A second STUN destination (a standalone weft-relay, region 2): the agents' netcheck needs two to tell endpoint-dependent NATs.
    const host = lab.hosts.server;
    const config = host.tmpPath('server-config.json');
    writeFileSync(config, JSON.stringify({ regions: [{ id: 2, code: 'second', name: 'second STUN (weft-relay)', stun: [`${host.ip}:3479`] }] }));
    const relay = host.spawn(process.execPath, [RELAY_BIN, ...cli.relay({ stunListen: '0.0.0.0:3479' })], { logName: 'weft-relay' });
    await relay.waitForLine(/3479/, 30_000);
    server = await WeftServer.start(lab, { stunListen: '0.0.0.0:3478', env: { WEFT_CONFIG: config }, readyTimeoutMs: 180_000 });
    authKey = await server.authKey('lab');
  });

  async function natRouter(name: string, nat: NatType, opts: Omit<RouterOptions, 'nat'> = {}): Promise<Router> {
    return wl.lab.routers.find((r) => r.name === name) ?? (await wl.lab.addRouter(name, { nat, ...opts }));
  }

  interface Pair { a: WeftAgent; b: WeftAgent; ipA: string; ipB: string; joinToPingMs: number }

  /**
   * Logs out and stops the previous case's nodes, plugs a and b where `aNet`/`bNet` say (conntrack
   * flushed), and joins two new nodes; resolves once a pings b, with how long that took after both
   * `weft up` returned.
   */
  async function freshPair(name: string, aNet: Network, bNet: Network): Promise<Pair> {
    await Promise.all(live.map(async (x) => {
      await x.logout();
      await x.stop();
    }));
    live = [];
    const { lab } = wl;
    await lab.attach(lab.hosts.a, aNet);
    await lab.attach(lab.hosts.b, bNet);
    const [a, b] = await Promise.all((['a', 'b'] as const).map((h) => WeftAgent.start(lab.hosts[h], { stateDir: lab.hosts[h].tmpPath(`agent-${name}`), listenPort: 41641 })));
    live = [a!, b!];
    const [sa, sb] = await Promise.all([a!.upOk({ server: server.url, authKey, hostname: `a-${name}` }), b!.upOk({ server: server.url, authKey, hostname: `b-${name}` })]);
    const joined = Date.now();
    const ipA = sa.self!.ipv4;
    const ipB = sb.self!.ipv4;
    await waitFor(async () => (await lab.hosts.a.ping(ipB, { count: 1, timeoutMs: 1000, replyTimeoutMs: 500 })).ok, { timeoutMs: 20_000, intervalMs: 50, what: `${name}: a -> b over the tunnel` });
    const joinToPingMs = Date.now() - joined;
    console.info(`${name}: join -> first ping a -> b ${joinToPingMs} ms`);
    return { a: a!, b: b!, ipA, ipB, joinToPingMs };
  }

  async function peerOf(agent: WeftAgent): Promise<AgentPeerStatus> {
    const st = await agent.status();
    expect(st.peers).toHaveLength(1);
    return st.peers[0]!;
  }

  /** Waits until both sides report `path` for each other; returns both peer entries. */
  async function bothOn(p: Pair, path: 'direct' | 'relay', timeoutMs: number): Promise<[AgentPeerStatus, AgentPeerStatus]> {
    let last = '';
    return waitFor(async () => {
      const both = [await peerOf(p.a), await peerOf(p.b)] as [AgentPeerStatus, AgentPeerStatus];
      last = JSON.stringify(both.map(({ path, endpoint, reason, region, pathSince }) => ({ path, endpoint, reason, region, pathSince })));
      return both.every((x) => x.path === path) ? both : null;
    }, { timeoutMs, intervalMs: 250, what: `both sides on ${path}` }).catch((err: Error) => {
      throw new Error(`${err.message}; last: ${last}`);
    });
  }

  /** `weft ping PEER -c COUNT --json` on `agent`. */
  async function weftPing(agent: WeftAgent, peer: string, count = 2): Promise<{ code: number | null; replies: { rttMs: number | null; path: string; endpoint: string | null; region: string | null }[] }> {
    const r = await agent.cli(['ping', peer, '-c', String(count), '--json', '--socket', agent.socket]);
    const out = JSON.parse(r.stdout || '{"replies":[]}') as { replies: { rttMs: number | null; path: string; endpoint: string | null; region: string | null }[] };
    return { code: r.code, replies: out.replies };
  }

  async function pingsPass(p: Pair): Promise<void> {
    const { a, b } = wl.lab.hosts;
    const there = await a.ping(p.ipB, { count: 3, intervalMs: 200, timeoutMs: 4000 });
    const back = await b.ping(p.ipA, { count: 3, intervalMs: 200, timeoutMs: 4000 });
    expect(there.received, there.output).toBeGreaterThanOrEqual(2);
    expect(back.received, back.output).toBeGreaterThanOrEqual(2);
  }

  it('(a) both behind endpoint-independent NATs: direct, on the reflexive endpoints', async () => {
    const p = await freshPair('a', await natRouter('eim1', 'eim'), await natRouter('eim2', 'eim'));
    expect(p.joinToPingMs).toBeLessThan(2000);
    const [toB, toA] = await bothOn(p, 'direct', 15_000);
    await pingsPass(p);
    expect(toB.endpoint).toBe(`${(await natRouter('eim2', 'eim')).wanIp}:41641`);
    expect(toA.endpoint).toBe(`${(await natRouter('eim1', 'eim')).wanIp}:41641`);
    expect(toB).toMatchObject({ region: null, reason: null });
    expect(toB.pathSince).not.toBeNull();
    // weft ping says each reply came directly, from b's endpoint.
    const pinged = await weftPing(p.a, `b-a`);
    expect(pinged.code).toBe(0);
    expect(pinged.replies.every((r) => r.rttMs !== null && r.path === 'direct' && r.endpoint === toB.endpoint)).toBe(true);
  });

  it('(c) both behind endpoint-dependent NATs: relay, saying the hole punch timed out and when it retries', async () => {
    const p = await freshPair('c', await natRouter('edm1', 'edm'), await natRouter('edm2', 'edm'));
    expect(p.joinToPingMs).toBeLessThan(2000);
    await bothOn(p, 'relay', 10_000);
    await pingsPass(p);
    // Between probes (during one, WireGuard is aimed at a candidate for a moment), the endpoint is the local relay socket.
    const toB = await waitFor(async () => {
      const x = await peerOf(p.a);
      return x.path === 'relay' && /^127\.0\.0\.1:\d+$/.test(x.endpoint ?? '') ? x : null;
    }, { timeoutMs: 10_000, intervalMs: 100, what: 'a on its relay socket for b' });
    expect(toB.region).toBe('embedded');
    // Relayed pairs are still punched now and then, and a probe's window loses traffic: 4 pings span it.
    const pinged = await weftPing(p.a, 'b-c', 4);
    expect(pinged.code).toBe(0);
    expect(pinged.replies.some((r) => r.rttMs !== null && r.path === 'relay' && r.region === 'embedded')).toBe(true);
    const none = await p.a.cli(['ping', 'no-such-peer', '--socket', p.a.socket]);
    expect(none.code).toBe(21);
    const withReason = await waitFor(async () => {
      const x = await peerOf(p.a);
      return x.path === 'relay' && /hole punch timed out; retrying in \d+ s/.test(x.reason ?? '') ? x : null;
    }, { timeoutMs: 15_000, intervalMs: 250, what: 'a says the hole punch timed out' });
    expect(withReason.reason).toMatch(/endpoint-dependent/);
  });

  it('(b) one endpoint-dependent, one endpoint-independent NAT: connected, and says which path and why', async () => {
    const p = await freshPair('b', await natRouter('edm1', 'edm'), await natRouter('eim2', 'eim'));
    expect(p.joinToPingMs).toBeLessThan(2000);
    await pingsPass(p);
    const x = await peerOf(p.a);
    expect(['direct', 'relay']).toContain(x.path);
    if (x.path === 'relay') expect(x.reason).toBeTruthy();
  });

  it('(d) UDP blocked, only TCP to the server: relay, saying UDP is blocked here', async () => {
    const p = await freshPair('d', await natRouter('tcponly', 'udp-blocked'), wl.lab.internet);
    expect(p.joinToPingMs).toBeLessThan(2000);
    await bothOn(p, 'relay', 10_000);
    await pingsPass(p);
    await waitFor(async () => /UDP to the internet is blocked here/.test((await peerOf(p.a)).reason ?? ''), { timeoutMs: 15_000, intervalMs: 250, what: 'a says UDP is blocked' });
  });

  it('(e) the UDP block lifted: direct within 10 s', async () => {
    const r = await natRouter('tcponly', 'udp-blocked');
    const p = await freshPair('e', r, wl.lab.internet);
    await bothOn(p, 'relay', 10_000);
    // The other side has tried and failed at least once (it backs off), as after a block.
    await waitFor(async () => /hole punch timed out/.test((await peerOf(p.b)).reason ?? ''), { timeoutMs: 20_000, intervalMs: 250, what: 'b: a hole punch timed out' });
    await r.nft(natRules('eim'));
    const t0 = Date.now();
    await bothOn(p, 'direct', 10_000);
    console.info(`(e) block lifted -> direct both ways: ${Date.now() - t0} ms`);
    await pingsPass(p);
  });

  /**
   * Pings a -> b every 200 ms while `disturb` runs, and returns the longest time without a reply
   * (from `ping -D` timestamps): how long traffic stopped.
   */
  async function longestGapDuring(p: Pair, seconds: number, disturb: () => Promise<void>): Promise<number> {
    const count = Math.round(seconds * 5);
    const ping = wl.lab.hosts.a.spawn('ping', ['-n', '-D', '-i', '0.2', '-W', '1', '-c', String(count), p.ipB], { logName: 'ping-gap' });
    await ping.waitForLine(/icmp_seq=3 /, 5000);
    await disturb();
    await ping.exited;
    const times = ping.lines().map((l) => /^\[(\d+\.\d+)\].*icmp_seq=\d+/.exec(l)?.[1]).filter((t): t is string => t !== undefined).map(Number);
    expect(times.length).toBeGreaterThan(3);
    let gap = 0;
    for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
    // The last reply must come near the end: traffic resumed, it did not just stop for good.
    expect(times.length, ping.output()).toBeGreaterThan(count / 2);
    return gap * 1000;
  }

  it('(f) the NAT mapping flushed mid-stream: traffic resumes within 5 s', async () => {
    const remap = await natRouter('remap', 'eim-no-preserve');
    const p = await freshPair('f', remap, await natRouter('eim2', 'eim'));
    await bothOn(p, 'direct', 20_000);
    const gapMs = await longestGapDuring(p, 12, async () => {
      await remap.flushConntrack();
    });
    console.info(`(f) longest gap in replies after the mapping flush: ${gapMs.toFixed(0)} ms`);
    expect(gapMs).toBeLessThan(5000);
    await pingsPass(p);
  });

  it('(i) roaming: a host moved to another router gets its paths back within 5 s', async () => {
    const home = await natRouter('home', 'eim');
    const cafe = await natRouter('cafe', 'eim');
    const p = await freshPair('i', home, await natRouter('eim2', 'eim'));
    await bothOn(p, 'direct', 20_000);
    const gapMs = await longestGapDuring(p, 14, async () => {
      await wl.lab.attach(wl.lab.hosts.a, cafe);
    });
    console.info(`(i) longest gap in replies after roaming home -> cafe: ${gapMs.toFixed(0)} ms`);
    expect(gapMs).toBeLessThan(5000);
    await pingsPass(p);
    const x = await peerOf(p.a);
    expect(['direct', 'relay']).toContain(x.path);
  });

  it('(g) two hosts behind the same NAT: direct over the LAN', async () => {
    const r = await natRouter('lan', 'eim');
    const p = await freshPair('g', r, r);
    expect(p.joinToPingMs).toBeLessThan(2000);
    const [toB] = await bothOn(p, 'direct', 15_000);
    expect(toB.endpoint).toBe(`${wl.lab.hosts.b.ip}:41641`);
    await pingsPass(p);
  });

  it('(h) a host behind two layers of NAT (carrier NAT): connected', async () => {
    const isp = await natRouter('isp', 'eim', { subnet: '100.64.7' });
    const cpe = await natRouter('cpe', 'eim', { upstream: isp });
    const p = await freshPair('h', cpe, await natRouter('eim2', 'eim'));
    expect(p.joinToPingMs).toBeLessThan(2000);
    await pingsPass(p);
    const x = await peerOf(p.a);
    expect(['direct', 'relay']).toContain(x.path);
    if (x.path === 'relay') expect(x.reason).toBeTruthy();
  });
});

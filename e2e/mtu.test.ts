/**
 * Adaptive MTU (issue 12) on real wireguard-go: two agents and the real server. The agents probe
 * the path MTU through the tunnel (apps/agent/src/mtu-probe.ts) and set the interface MTU from it.
 * (1) A clean 1500 underlay ends at 1420. (2) b moves behind a router whose hop carries at most
 * 1400 bytes and drops ICMP "fragmentation needed" (a PMTU black hole): the MTU follows the path
 * down to the largest value that works (1340 = 1400 - 60) and a 20 MB TCP transfer through the
 * tunnel completes. (3) The same hop with the interface pinned at 1420 (--mtu 1420, what a static
 * WireGuard config does): the transfer stalls, and doctor FAILs naming the path with its fix
 * (the measurement with a pinned 1420 is 1328: wireguard-go pads to 16 bytes up to the interface MTU).
 * (4) b back on the clean underlay: the MTU follows it up to 1420 again. One lab for the file.
 */
import { describe, expect, it } from 'vitest';
import { useLab } from './lab/vitest.js';
import { WeftAgent, WeftServer, type AgentStatus } from './lab/weft.js';
import { waitFor } from './lab/wait.js';
import type { Router } from './lab/index.js';

type H = 'a' | 'b';
let server: WeftServer;
let authKey: string;
const agents = {} as Record<H, WeftAgent>;
const ips = {} as Record<H, string>;
let hop: Router;

const ctx = useLab({ name: 'mtu', hosts: ['server', 'a', 'b'] }, async (lab) => {
  server = await WeftServer.start(lab as never);
  authKey = await server.authKey('lab');
  await Promise.all((['a', 'b'] as const).map(async (h) => {
    agents[h] = await WeftAgent.start(lab.hosts[h]);
    const st = await agents[h].upOk({ server: server.url, authKey, hostname: h });
    ips[h] = st.self!.ipv4.split('/')[0]!;
  }));
  // The hop: an EIM NAT whose forwarding drops every packet above 1400 bytes and every ICMP
  // "fragmentation needed" (so nothing tells a sender its packets are too big). TCP through it is
  // MSS-clamped, as PPPoE routers do, so the control channel lives; the tunnel is UDP, not clamped.
  hop = await lab.addRouter('hop', { nat: 'eim' });
  await hop.nft([
    'table inet hop {',
    '  chain hop_forward {',
    '    type filter hook forward priority -5; policy accept;',
    '    tcp flags syn tcp option maxseg size set 1360',
    '    meta length > 1400 drop',
    '    icmp type destination-unreachable icmp code frag-needed drop',
    '  }',
    '  chain hop_output {',
    '    type filter hook output priority -5; policy accept;',
    '    icmp type destination-unreachable icmp code frag-needed drop',
    '  }',
    '}',
  ].join('\n'));
});

const peerOf = (s: AgentStatus, name: string) => s.peers.find((p) => p.name === name);

/** Until both agents' interfaces are at `mtu`, each seeing the other direct with that path MTU. */
async function settlesAt(mtu: number, what: string): Promise<Record<H, AgentStatus>> {
  return waitFor(async () => {
    const [a, b] = [await agents.a.status(), await agents.b.status()];
    const ok = a.interface.mtu === mtu && b.interface.mtu === mtu
      && peerOf(a, 'b')?.path === 'direct' && peerOf(b, 'a')?.path === 'direct'
      && peerOf(a, 'b')?.pathMtu === mtu && peerOf(b, 'a')?.pathMtu === mtu;
    return ok ? { a, b } : null;
  }, { timeoutMs: 60_000, intervalMs: 1000, what });
}

/** The interface MTU as the kernel has it (not only what status says). */
async function linkMtu(h: H): Promise<number> {
  const r = await ctx.lab.hosts[h].execOk('ip', ['-j', 'link', 'show', 'dev', agents[h].iface]);
  return (JSON.parse(r.stdout) as Array<{ mtu: number }>)[0]!.mtu;
}

/** 20 MB from a to b through the tunnel (iperf3 -n), bounded by `limitS`: the seconds taken, or null when it did not finish. */
async function bulk(limitS: number): Promise<{ seconds: number; bitsPerSecond: number } | null> {
  const srv = ctx.lab.hosts.b.spawn('iperf3', ['-s', '-1', '--forceflush', '-B', ips.b, '-p', '5301'], { logName: 'iperf3-mtu' });
  try {
    await srv.waitForLine(/Server listening/, 10_000);
    const t0 = Date.now();
    const r = await ctx.lab.hosts.a.exec('timeout', [String(limitS), 'iperf3', '-c', ips.b, '-p', '5301', '-n', '20M', '-J'], { timeoutMs: (limitS + 10) * 1000 });
    if (r.code !== 0) return null;
    const j = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second?: number } } };
    return { seconds: (Date.now() - t0) / 1000, bitsPerSecond: j.end?.sum_received?.bits_per_second ?? 0 };
  } finally {
    await srv.kill({ graceMs: 1000 });
  }
}

async function doctorMtu(h: H): Promise<{ status: string; detail: string; fix: string | null }> {
  const r = await agents[h].cli(['doctor', '--json', '--socket', agents[h].socket]);
  return (JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string; detail: string; fix: string | null }> }).checks.find((c) => c.id === 'mtu')!;
}

/** Restarts h's daemon on the same node (state dir, interface) with `mtu` pinned, or adaptive (undefined). */
async function restartWith(h: H, mtu: number | undefined): Promise<void> {
  const old = agents[h];
  await old.stop();
  agents[h] = await WeftAgent.start(old.host, { iface: old.iface, stateDir: old.stateDir, ...(mtu !== undefined && { mtu }) });
}

describe('adaptive MTU', () => {
  it('a 1500 underlay ends at interface MTU 1420, each peer\'s path MTU 1420 in status; doctor PASS', async () => {
    const s = await settlesAt(1420, 'interface MTU 1420 on a clean underlay');
    expect(s.a.interface.mtuMode).toBe('adaptive');
    expect([await linkMtu('a'), await linkMtu('b')]).toEqual([1420, 1420]);
    expect(await doctorMtu('a')).toMatchObject({ status: 'PASS', detail: expect.stringContaining('fits every active path: b 1420') });
  });

  it('a 1400 hop dropping ICMP "fragmentation needed": the MTU follows the path down to 1340 and 20 MB of TCP passes', async () => {
    await hop.attach(ctx.lab.hosts.b);
    await settlesAt(1340, 'interface MTU 1340 behind the 1400 hop');
    expect([await linkMtu('a'), await linkMtu('b')]).toEqual([1340, 1340]);
    const t = await bulk(60);
    expect(t, '20 MB through the tunnel within 60 s').not.toBeNull();
    console.log(`mtu e2e: 20 MB a->b at MTU 1340 behind the 1400 hop in ${t!.seconds.toFixed(1)} s (${(t!.bitsPerSecond / 1e6).toFixed(0)} Mbit/s)`);
    expect(await doctorMtu('a')).toMatchObject({ status: 'PASS', detail: expect.stringContaining('b 1340') });
  });

  it('the same hop with the MTU pinned at 1420 (--mtu 1420): the transfer stalls; doctor FAILs naming the path, and its fix works', async () => {
    await restartWith('a', 1420);
    await restartWith('b', 1420);
    const measured = await waitFor(async () => {
      const st = await agents.a.status();
      // Pinned at 1420, a probe of N leaves padded to 16 (wireguard-go) so the largest that passes here is 1328.
      return peerOf(st, 'b')?.pathMtu === 1328 && peerOf(st, 'b')?.path === 'direct' ? st : null;
    }, { timeoutMs: 60_000, intervalMs: 1000, what: 'a measures the path with its MTU pinned' });
    expect(measured.interface).toMatchObject({ mtu: 1420, mtuMode: 'fixed' });
    expect(await linkMtu('a')).toBe(1420); // pinned: probing never moves it
    // Doctor first, while the pair is direct (a stalled direct path is later moved to the relay, which carries 1420).
    const d = await doctorMtu('a');
    expect(d).toMatchObject({ status: 'FAIL', detail: expect.stringContaining('interface MTU 1420 is larger than the path to b (1328)') });
    expect(d.fix).toBe('restart the daemon without --mtu (the MTU then follows the paths), or with --mtu 1328');
    expect(await bulk(20), 'a 1420 interface over a 1400 black hole must not carry 20 MB').toBeNull();
    // The fix: adaptive again (both sides: b's 1420 interface would stall the b->a direction as well).
    await restartWith('a', undefined);
    await restartWith('b', undefined);
    await settlesAt(1340, 'adaptive again behind the hop');
    expect(await bulk(60)).not.toBeNull();
  });

  it('b back on the clean underlay: the path change is probed and the MTU follows it up to 1420', async () => {
    await ctx.lab.routers[0]!.flushConntrack();
    const { attachHost } = await import('./lab/index.js');
    await attachHost(ctx.lab.hosts.b, ctx.lab.internet);
    await settlesAt(1420, 'interface MTU back at 1420 on the clean underlay');
    expect([await linkMtu('a'), await linkMtu('b')]).toEqual([1420, 1420]);
  });
});

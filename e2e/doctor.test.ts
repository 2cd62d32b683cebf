/**
 * `weft doctor` on a real host (issue 12): two agents with wireguard-go and the real server. Each
 * test breaks one thing on purpose behind the agent's back, asserts doctor FAILs naming it (exit
 * 20), runs the fix doctor printed, and asserts doctor passes again. One lab for the file.
 */
import { describe, expect, it } from 'vitest';
import { useLab } from './lab/vitest.js';
import { startMesh, wgKeyOf, type Mesh } from './lab/weft.js';
import { waitFor } from './lab/wait.js';

interface Check { id: string; status: 'PASS' | 'WARN' | 'FAIL'; detail: string; fix: string | null }
interface Report { ok: boolean; checks: Check[] }

let mesh: Mesh<'a' | 'b'>;
const ctx = useLab({ name: 'doctor', hosts: ['server', 'a', 'b'] }, async (lab) => {
  mesh = await startMesh(lab, ['a', 'b'] as const);
});

async function doctor(): Promise<{ code: number | null; report: Report; byId: Record<string, Check> }> {
  const r = await mesh.agents.a.cli(['doctor', '--json', '--socket', mesh.agents.a.socket]);
  const report = JSON.parse(r.stdout) as Report;
  return { code: r.code, report, byId: Object.fromEntries(report.checks.map((c) => [c.id, c])) };
}

/** Runs the fix doctor printed: `weft ...` steps through the agent's CLI, the rest in a shell on host a. */
async function applyFix(fix: string): Promise<void> {
  for (const step of fix.split(' && ')) {
    const r = step.startsWith('weft ')
      ? await mesh.agents.a.cli([...step.slice(5).split(' '), '--socket', mesh.agents.a.socket], 60_000)
      : await ctx.lab.hosts.a.exec('sh', ['-c', step]);
    expect(r.code, `${step}: ${r.stderr}`).toBe(0);
  }
}

async function healthy(): Promise<void> {
  const d = await doctor();
  expect(d.report.checks.filter((c) => c.status === 'FAIL'), JSON.stringify(d.report, null, 1)).toEqual([]);
  expect(d.code).toBe(0);
}

describe('weft doctor', () => {
  it('a healthy node: no FAIL, exit 0; the path MTU is PASS once b\'s path is measured (1420 on this 1500 LAN)', async () => {
    expect((await ctx.lab.hosts.a.ping(mesh.ips.b, { count: 1, timeoutMs: 5000 })).ok).toBe(true);
    // Probing starts with the session and the MTU rises after its 5 s hold: until then the check is WARN "not measured yet".
    const d = await waitFor(async () => {
      const r = await doctor();
      return r.byId.mtu?.status === 'PASS' ? r : null;
    }, { timeoutMs: 30_000, intervalMs: 1000, what: 'doctor path MTU PASS' });
    expect(d.code).toBe(0);
    expect(d.report.ok).toBe(true);
    expect(d.byId.mtu).toMatchObject({ status: 'PASS', detail: expect.stringMatching(/^interface MTU \d+ \(adaptive\) fits every active path: b \d+/) });
    for (const id of ['daemon', 'keys', 'wg-peers', 'routes', 'firewall', 'clock', 'handshakes']) expect(d.byId[id]?.status, id).toBe('PASS');
    // wireguard-go's real socket, read with ss in a's namespace: the agent raised it from the
    // kernel's 208 KiB (Debian's wireguard-go asks for nothing) to 7 MiB, which the kernel reports doubled.
    expect(d.byId['udp-buffer']?.detail).toMatch(/^wireguard-go's socket on UDP \d+ has a \d+ KiB receive buffer/);
    const kib = Number(/has a (\d+) KiB/.exec(d.byId['udp-buffer']!.detail)![1]);
    expect(kib, d.byId['udp-buffer']!.detail).toBeGreaterThanOrEqual(7 * 1024);
    expect(d.byId['udp-buffer']?.status).toBe('PASS');
    expect(mesh.agents.a.process.output()).toContain("wireguard-go's UDP buffers raised");
    // The real agent's link report reaches the real server: a's direct link to b, per node.
    const [sa, sb] = [await mesh.agents.a.status(), await mesh.agents.b.status()];
    const links = await waitFor(async () => {
      const r = await mesh.server.api.request<{ source: string; links: Array<{ peerId: number; path: string; stale: boolean }> }>('GET', `/api/v1/nodes/${sa.self!.id}/links`);
      return r.body.links.some((l) => l.peerId === sb.self!.id && l.path === 'direct') ? r.body : null;
    }, { timeoutMs: 20_000, intervalMs: 500, what: "a's link to b reported" });
    expect(links).toMatchObject({ source: 'live', links: [{ peerId: sb.self!.id, path: 'direct', stale: false }] });
  });

  it('a conflicting route to a peer (ip route add PEER dev lo): FAIL naming it; the printed fix works', async () => {
    await ctx.lab.hosts.a.execOk('ip', ['route', 'add', mesh.ips.b, 'dev', 'lo']);
    const d = await doctor();
    expect(d.code).toBe(20);
    expect(d.byId.routes).toMatchObject({ status: 'FAIL', detail: expect.stringContaining(`${mesh.ips.b} goes via lo`) });
    await applyFix(d.byId.routes!.fix!);
    await healthy();
  });

  it('an ip rule diverting a peer address to another table: FAIL naming the rule; the printed fix works', async () => {
    await ctx.lab.hosts.a.execOk('ip', ['route', 'add', 'default', 'dev', 'lo', 'table', '100']);
    await ctx.lab.hosts.a.execOk('ip', ['rule', 'add', 'to', mesh.ips.b, 'lookup', '100', 'priority', '100']);
    const d = await doctor();
    expect(d.code).toBe(20);
    expect(d.byId.routes).toMatchObject({ status: 'FAIL', detail: expect.stringContaining('ip rule 100 sends it to table 100'), fix: 'ip rule del priority 100' });
    await applyFix(d.byId.routes!.fix!);
    await healthy();
  });

  it('another nftables table dropping the WireGuard port: FAIL naming the table; the printed fix works', async () => {
    const port = (await mesh.agents.a.status()).interface.listenPort!;
    await ctx.lab.hosts.a.execOk('nft', ['-f', '-'], { input: `table inet blocker {\n chain input {\n  type filter hook input priority -10;\n  udp dport ${port} drop\n }\n}\n` });
    const d = await doctor();
    expect(d.code).toBe(20);
    expect(d.byId.firewall).toMatchObject({ status: 'FAIL', detail: expect.stringContaining(`UDP port ${port} (WireGuard) is dropped by table inet blocker chain input`) });
    await applyFix(d.byId.firewall!.fix!);
    await healthy();
    await ctx.lab.hosts.a.execOk('nft', ['delete', 'table', 'inet', 'blocker']);
  });

  it('a peer whose allowed IPs were cleared behind the agent (wg set IFACE peer K allowed-ips ""): FAIL naming it; the printed fix works', async () => {
    const a = await mesh.agents.a.status();
    const peer = a.peers[0]!;
    await ctx.lab.hosts.a.execOk('wg', ['set', a.interface.name, 'peer', wgKeyOf(peer.nodeKey), 'allowed-ips', '']);
    const d = await doctor();
    expect(d.code).toBe(20);
    expect(d.byId['wg-peers']).toMatchObject({ status: 'FAIL', detail: expect.stringContaining(`${peer.name} has allowed IPs (none), want `), fix: 'weft down && weft up' });
    await applyFix(d.byId['wg-peers']!.fix!);
    await healthy();
    expect((await ctx.lab.hosts.a.ping(mesh.ips.b, { count: 1, timeoutMs: 5000 })).ok).toBe(true);
  });

  it('a peer removed from WireGuard behind the agent (wg set IFACE peer K remove) is put back by the agent itself (path choice moves it to the relay): doctor then passes', async () => {
    // Found here: the daemon's path choice sees no handshake for the peer and re-adds it with its
    // relay endpoint within a second or two, so doctor cannot catch the removal in the act; the
    // check that names a missing peer is covered in apps/agent/test/unit/doctor.test.ts.
    const a = await mesh.agents.a.status();
    const peer = a.peers[0]!;
    await ctx.lab.hosts.a.execOk('wg', ['set', a.interface.name, 'peer', wgKeyOf(peer.nodeKey), 'remove']);
    await waitFor(async () => ((await mesh.agents.a.wgDump())?.peers.some((p) => p.publicKey === wgKeyOf(peer.nodeKey)) ? true : null), { timeoutMs: 20_000, intervalMs: 200, what: 'peer back in wg' });
    await healthy();
    // Back on a direct path for the next tests' sake: weft down && weft up programs the netmap again.
    await applyFix('weft down && weft up');
  });
});

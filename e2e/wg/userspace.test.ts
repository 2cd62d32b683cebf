/**
 * The userspace backend against real wireguard-go in network namespaces: tunnels carry traffic,
 * `wg show` sees exactly the peers we set, peer churn does not disturb an existing session, and
 * a killed wireguard-go is restarted with its configuration, and one whose owner was killed with
 * -9 is adopted by the next owner.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateNodeKey, toWireGuardBase64 } from '@weft/crypto';
import type { NodePrivateKey, NodePublicKey } from '@weft/crypto';
import { KernelDriver, ManagedDevice, openDevice, openUserspace, toWgQuick } from '@weft/wg';
import type { PeerConfig, UserspaceDevice } from '@weft/wg';
import { cleanStale, Lab, ping, pingUntil, preflight, sh } from './netns-lab.js';
import type { Host } from './netns-lab.js';

const MESH_ROUTES = ['100.64.0.0/10', 'fd7a:115c:a1e0::/48'];
const PORT = 51820;

interface Node {
  host: Host;
  dev: UserspaceDevice;
  key: { privateKey: NodePrivateKey; publicKey: NodePublicKey };
  v4: string;
  v6: string;
  logs: Array<{ level: string; msg: string }>;
}

let lab: Lab | undefined;
const nodes: Node[] = [];

function peerOf(n: Node): PeerConfig {
  return { publicKey: n.key.publicKey, endpoint: `${n.host.underlay}:${PORT}`, allowedIps: [`${n.v4}/32`, `${n.v6}/128`] };
}

/** Peers listed by `wg show NAME dump` run inside the node's namespace, as base64 keys. */
function wgShowPeers(n: Node): string[] {
  return sh(['wg', 'show', n.host.ifname, 'dump'], { netns: n.host.ns })
    .trim().split('\n').slice(1).filter(Boolean).map((l) => l.split('\t')[0]!).sort();
}

const b64 = (n: Node) => toWireGuardBase64(n.key.publicKey);

beforeAll(async () => {
  preflight();
  cleanStale();
  lab = new Lab(['a', 'b', 'c', 'p']);
  for (const [i, host] of lab.hosts.slice(0, 3).entries()) {
    const logs: Node['logs'] = [];
    const dev = await openUserspace({
      name: host.ifname, backend: 'userspace', netns: host.ns, log: (level, msg) => logs.push({ level, msg }),
    });
    const node: Node = { host, dev, key: generateNodeKey(), v4: `100.64.0.${i + 1}`, v6: `fd7a:115c:a1e0::${i + 1}`, logs };
    nodes.push(node);
    await dev.configure({
      privateKey: node.key.privateKey, listenPort: PORT, addresses: [`${node.v4}/32`, `${node.v6}/128`], routes: MESH_ROUTES,
    });
  }
});

const extra: Array<{ close(): Promise<void> }> = [];

afterAll(async () => {
  for (const n of nodes) await n.dev.close().catch(() => undefined);
  for (const d of extra) await d.close().catch(() => undefined);
  lab?.destroy();
  cleanStale();
});

describe('userspace WireGuard in network namespaces', () => {
  it('configures address, MTU 1280, routes and listen port', async () => {
    const [a] = nodes;
    const link = sh(['ip', '-o', 'link', 'show', 'dev', a!.host.ifname], { netns: a!.host.ns });
    expect(link).toMatch(/mtu 1280/);
    expect(link).toMatch(/UP/);
    expect(sh(['ip', '-o', 'addr', 'show', 'dev', a!.host.ifname], { netns: a!.host.ns })).toContain('100.64.0.1/32');
    expect(sh(['ip', 'route', 'show', 'dev', a!.host.ifname], { netns: a!.host.ns })).toContain('100.64.0.0/10');
    expect(sh(['ip', '-6', 'route', 'show', 'dev', a!.host.ifname], { netns: a!.host.ns })).toContain('fd7a:115c:a1e0::/48');
    expect(await a!.dev.listenPort()).toBe(PORT);
    // Idempotent: configuring again changes nothing and does not fail.
    await a!.dev.configure({ privateKey: a!.key.privateKey, listenPort: PORT, addresses: [`${a!.v4}/32`, `${a!.v6}/128`], routes: MESH_ROUTES });
  });

  it('carries IPv4 and IPv6 pings between two peers; wg show lists exactly them', async () => {
    const [a, b] = nodes as [Node, Node, Node];
    await a.dev.setPeers([peerOf(b)]);
    await b.dev.setPeers([peerOf(a)]);
    expect(wgShowPeers(a)).toEqual([b64(b)]);
    expect(wgShowPeers(b)).toEqual([b64(a)]);
    expect(await pingUntil(a.host.ns, b.v4, 10_000)).toBe(true);
    expect((await ping(a.host.ns, b.v6, ['-c', '3', '-i', '0.2', '-W', '2'])).received).toBe(3);
    const stats = await a.dev.stats();
    expect(stats).toHaveLength(1);
    expect(stats[0]!.publicKey).toBe(b.key.publicKey);
    expect(stats[0]!.lastHandshake).toBeInstanceOf(Date);
    expect(stats[0]!.rxBytes).toBeGreaterThan(0);
    expect(stats[0]!.endpoint).toBe(`${b.host.underlay}:${PORT}`);
  });

  it('adding and removing peer C loses no packets to peer B', async () => {
    const [a, b, c] = nodes as [Node, Node, Node];
    await c.dev.setPeers([peerOf(a)]);
    const handshakeB = (await a.dev.stats()).find((s) => s.publicKey === b.key.publicKey)!.lastHandshake;
    expect(handshakeB).toBeInstanceOf(Date);
    const stream = ping(a.host.ns, b.v4, ['-i', '0.05', '-c', '100', '-W', '1']);
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 300));
      await a.dev.setPeers([peerOf(b), peerOf(c)]);
      expect(wgShowPeers(a)).toEqual([b64(b), b64(c)].sort());
      await new Promise((r) => setTimeout(r, 300));
      await a.dev.upsertPeer({ ...peerOf(c), persistentKeepalive: 25 });
      await a.dev.removePeer(c.key.publicKey);
      expect(wgShowPeers(a)).toEqual([b64(b)]);
    }
    await a.dev.setPeers([peerOf(b), peerOf(c)]);
    const res = await stream;
    expect(res.sent).toBe(100);
    expect(res.received, res.out).toBe(100);
    const afterB = (await a.dev.stats()).find((s) => s.publicKey === b.key.publicKey)!.lastHandshake;
    expect(afterB).toEqual(handshakeB);
    // C is reachable too, and B's session was never replaced (its handshake stays the first one).
    expect(await pingUntil(a.host.ns, c.v4, 10_000)).toBe(true);
    expect(wgShowPeers(a)).toEqual([b64(b), b64(c)].sort());
  });

  it('restarts a SIGKILLed wireguard-go and re-applies its configuration', async () => {
    const [a, b] = nodes as [Node, Node, Node];
    const pid = b.dev.pid;
    expect(pid).toBeGreaterThan(0);
    process.kill(pid!, 'SIGKILL');
    const deadline = Date.now() + 15_000;
    while ((b.dev.pid === null || b.dev.pid === pid || wgShowPeers(b).length === 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(b.dev.pid).not.toBe(pid);
    expect(b.logs.some((l) => l.level === 'warn' && /wireguard-go exited unexpectedly/.test(l.msg))).toBe(true);
    expect(wgShowPeers(b)).toEqual([b64(a)]);
    expect(await b.dev.listenPort()).toBe(PORT);
    expect(sh(['ip', '-o', 'link', 'show', 'dev', b.host.ifname], { netns: b.host.ns })).toMatch(/mtu 1280/);
    // B initiates a fresh handshake as soon as it has traffic for A.
    expect(await pingUntil(b.host.ns, a.v4, 15_000)).toBe(true);
    expect(await pingUntil(a.host.ns, b.v4, 15_000)).toBe(true);
  });

  it('close() stops wireguard-go and removes the link', async () => {
    const c = nodes[2]!;
    const pid = c.dev.pid!;
    await c.dev.close();
    expect(sh(['ip', 'link', 'show', 'dev', c.host.ifname], { netns: c.host.ns, allowFail: true })).toBe('');
    expect(() => process.kill(pid, 0)).toThrow();
    await expect(c.dev.stats()).rejects.toMatchObject({ code: 'closed' });
  });

  it('openDevice auto picks userspace where kernel WireGuard is missing; kernel is refused clearly', async () => {
    const host = lab!.hosts[3]!;
    const kernel = sh(['sh', '-c', 'test -d /sys/module/wireguard && echo yes'], { allowFail: true }).trim() === 'yes';
    const dev = await openDevice({ name: `${host.ifname}x`.slice(0, 15), backend: 'auto', netns: host.ns });
    extra.push(dev);
    expect(dev.backend).toBe(kernel ? 'kernel' : 'userspace');
    await dev.close();
    if (!kernel) {
      await expect(openDevice({ name: `${host.ifname}k`.slice(0, 15), backend: 'kernel', netns: host.ns }))
        .rejects.toMatchObject({ code: 'kernel_unavailable' });
    }
  });

  it('a node-less peer set up from the exported wg-quick text reaches the mesh', async () => {
    const a = nodes[0]!;
    const phone = lab!.hosts[3]!;
    const key = generateNodeKey();
    const text = toWgQuick({
      privateKey: key.privateKey, addresses: ['100.64.0.50/32'], mtu: 1280,
      peers: [{ ...peerOf(a), allowedIps: ['100.64.0.0/10'], persistentKeepalive: 25 }],
    });
    await a.dev.upsertPeer({ publicKey: key.publicKey, allowedIps: ['100.64.0.50/32'] });
    // The phone side: a bare wireguard-go programmed only by the official tools from our text.
    const dev = await openUserspace({ name: phone.ifname, backend: 'userspace', netns: phone.ns });
    extra.push(dev);
    // It holds a private key: a 0700 temp dir of its own, removed whatever happens.
    const keyDir = mkdtempSync(join(tmpdir(), 'weft-wgquick-'));
    const file = join(keyDir, `${phone.ifname}.conf`);
    writeFileSync(file, text, { mode: 0o600 });
    try {
      const stripped = sh(['wg-quick', 'strip', file]);
      writeFileSync(file, stripped, { mode: 0o600 });
      sh(['wg', 'setconf', phone.ifname, file], { netns: phone.ns });
    } finally {
      rmSync(keyDir, { recursive: true, force: true });
    }
    sh(['ip', 'addr', 'add', '100.64.0.50/32', 'dev', phone.ifname], { netns: phone.ns });
    sh(['ip', 'link', 'set', phone.ifname, 'mtu', '1280', 'up'], { netns: phone.ns });
    sh(['ip', 'route', 'add', '100.64.0.0/10', 'dev', phone.ifname], { netns: phone.ns });
    expect(await pingUntil(phone.ns, a.v4, 10_000)).toBe(true);
    expect(wgShowPeers(a)).toContain(toWireGuardBase64(key.publicKey));
  });

  it('down() takes the link down; configure() brings it back with its peers', async () => {
    const [a, b] = nodes as [Node, Node, Node];
    await a.dev.down();
    expect(sh(['ip', '-o', 'link', 'show', 'dev', a.host.ifname], { netns: a.host.ns })).not.toMatch(/[<,]UP[,>]/);
    expect((await ping(a.host.ns, b.v4, ['-c', '1', '-W', '1'])).received).toBe(0);
    await a.dev.configure({ privateKey: a.key.privateKey, listenPort: PORT, addresses: [`${a.v4}/32`, `${a.v6}/128`], routes: MESH_ROUTES });
    expect(await pingUntil(a.host.ns, b.v4, 15_000)).toBe(true);
    expect(wgShowPeers(a)).toContain(b64(b));
  });

  // The kernel backend cannot run here (no module), but `wg set` / `wg show dump` drive a
  // wireguard-go interface just the same, so its command construction and parser run for real.
  it('kernel backend programming (wg set, wg show dump) works against a live interface', async () => {
    const [a, b] = nodes as [Node, Node, Node];
    const host = lab!.hosts[3]!;
    const name = `${host.ifname}w`.slice(0, 15);
    const owner = await openUserspace({ name, backend: 'userspace', netns: host.ns });
    extra.push(owner);
    const dev = new ManagedDevice(new KernelDriver(name, host.ns), () => undefined);
    const key = generateNodeKey();
    await dev.configure({ privateKey: key.privateKey, listenPort: 51821, addresses: ['100.64.0.60/32'], routes: ['100.64.0.0/10'] });
    await a.dev.upsertPeer({ publicKey: key.publicKey, endpoint: `${host.underlay}:51821`, allowedIps: ['100.64.0.60/32'] });
    await dev.setPeers([{ ...peerOf(a), persistentKeepalive: 25 }, peerOf(b)]);
    expect(sh(['wg', 'show', name, 'dump'], { netns: host.ns }).trim().split('\n').slice(1).map((l) => l.split('\t')[0]).sort())
      .toEqual([b64(a), b64(b)].sort());
    expect(await dev.listenPort()).toBe(51821);
    expect(await pingUntil(host.ns, a.v4, 10_000)).toBe(true);
    const stats = await dev.stats();
    expect(stats.find((s) => s.publicKey === a.key.publicKey)?.lastHandshake).toBeInstanceOf(Date);
    await dev.removePeer(b.key.publicKey);
    expect((await dev.stats()).map((s) => s.publicKey)).toEqual([a.key.publicKey]);
  });

  it('a wireguard-go whose owner was killed with -9 is adopted by the next open: same process, session kept, no packet lost', async () => {
    const a = nodes[0]!;
    const host = lab!.hosts[3]!;
    const name = `${host.ifname}o`.slice(0, 15);
    const key = generateNodeKey();
    const config = { privateKey: key.privateKey, listenPort: 51822, addresses: ['100.64.0.70/32'], routes: ['100.64.0.0/10'] };
    const peers = [{ ...peerOf(a), persistentKeepalive: 25 }];
    await a.dev.upsertPeer({ publicKey: key.publicKey, endpoint: `${host.underlay}:51822`, allowedIps: ['100.64.0.70/32'] });
    const holder = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./hold-device.ts', import.meta.url)), JSON.stringify({ name, netns: host.ns, config, peers })], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<void>((r) => holder.once('exit', () => r()));
    const pid = await new Promise<number>((resolve, reject) => {
      let out = '';
      holder.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /READY (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      holder.once('exit', (code) => reject(new Error(`hold-device exited ${code}: ${out}`)));
    });
    expect(await pingUntil(host.ns, a.v4, 10_000)).toBe(true);
    const handshake = () => sh(['wg', 'show', name, 'latest-handshakes'], { netns: host.ns }).trim();
    const before = handshake();

    holder.kill('SIGKILL');
    await exited;
    const alive = () => existsSync(`/proc/${pid}/stat`) && !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    expect(alive()).toBe(true); // orphaned, still forwarding

    const stream = ping(host.ns, a.v4, ['-i', '0.05', '-c', '40', '-W', '1']);
    const logs: string[] = [];
    const dev = await openUserspace({ name, backend: 'userspace', netns: host.ns, log: (_level, msg) => logs.push(msg) });
    extra.push(dev);
    expect(dev.pid).toBe(pid);
    expect(logs).toContain('adopted running wireguard-go');
    await dev.configure(config);
    await dev.setPeers(peers);
    const res = await stream;
    expect(res.received, res.out).toBe(40);
    expect(handshake()).toBe(before); // the session from before the kill carried the stream

    await dev.close();
    expect(sh(['ip', 'link', 'show', 'dev', name], { netns: host.ns, allowFail: true })).toBe('');
    const deadline = Date.now() + 5000;
    while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(alive()).toBe(false);
    await a.dev.removePeer(key.publicKey);
  });
});

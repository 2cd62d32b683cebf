import { describe, expect, it } from 'vitest';
import type { NodePublicKey } from '@weft/crypto';
import { encodeSet, ManagedDevice, parseGet } from '../src/index.js';
import type { DeviceState, Driver, InterfaceSet, PeerOp, PeerState } from '../src/index.js';
import { hex, PRIV_1, PUB_2, PUB_3 } from './fixtures.js';

/** An in-memory WireGuard that behaves like wireguard-go: it stores the private key clamped. */
class FakeDriver implements Driver {
  readonly backend = 'userspace' as const;
  readonly name = 'weft0';
  writes: string[] = [];
  commands: string[][] = [];
  state: DeviceState = { privateKey: null, listenPort: 0, fwmark: 0, peers: [] };
  exists = false;
  readonly runner = async (argv: string[], input?: string) => {
    if (argv.includes('-batch')) {
      for (const line of (input ?? '').trim().split('\n')) this.commands.push(['ip', ...line.split(' ')]);
      return '';
    }
    this.commands.push(argv);
    return argv.includes('-j') ? '[]' : '';
  };
  async ensure() {
    if (this.exists) return false;
    this.exists = true;
    this.state = { privateKey: null, listenPort: 0, fwmark: 0, peers: [] };
    return true;
  }
  async read() {
    return parseGet(this.getText());
  }
  private getText(): string {
    const s = this.state;
    const lines = [`listen_port=${s.listenPort}`];
    if (s.privateKey) lines.unshift(`private_key=${hex(s.privateKey)}`);
    for (const p of s.peers) {
      lines.push(`public_key=${hex(p.publicKey)}`);
      if (p.endpoint) lines.push(`endpoint=${p.endpoint}`);
      lines.push(`persistent_keepalive_interval=${p.persistentKeepalive}`);
      for (const ip of p.allowedIps) lines.push(`allowed_ip=${ip}`);
    }
    return lines.join('\n') + '\nerrno=0\n\n';
  }
  async write(iface: InterfaceSet, ops: PeerOp[]) {
    if (iface.privateKey === undefined && iface.listenPort === undefined && !ops.length) return;
    this.writes.push(encodeSet(iface, ops));
    if (iface.privateKey) {
      const b = Buffer.from(hex(iface.privateKey), 'hex');
      b[0]! &= 248; b[31]! = (b[31]! & 127) | 64;
      this.state.privateKey = `privkey:${b.toString('hex')}` as typeof PRIV_1;
    }
    if (iface.listenPort !== undefined) this.state.listenPort = iface.listenPort || 40000;
    if (!this.state.listenPort) this.state.listenPort = 40000;
    for (const op of ops) {
      const i = this.state.peers.findIndex((p) => p.publicKey === op.publicKey);
      if (op.kind === 'remove') { if (i >= 0) this.state.peers.splice(i, 1); continue; }
      const p: PeerState = i >= 0 ? this.state.peers[i]! : {
        publicKey: op.publicKey, endpoint: null, allowedIps: [], persistentKeepalive: 0, lastHandshake: null, rxBytes: 0, txBytes: 0,
      };
      if (op.endpoint !== undefined) p.endpoint = op.endpoint;
      if (op.allowedIps !== undefined) p.allowedIps = op.allowedIps;
      if (op.persistentKeepalive !== undefined) p.persistentKeepalive = op.persistentKeepalive;
      if (i < 0) this.state.peers.push(p);
    }
  }
  async destroy() { this.exists = false; }
}

const CONFIG = { privateKey: PRIV_1, addresses: ['100.64.0.1/32'], routes: ['100.64.0.0/10'] };
const peer = (k: NodePublicKey, n: number) => ({ publicKey: k, endpoint: `10.0.0.${n}:51820`, allowedIps: [`100.64.0.${n}/32`] });

async function open() {
  const driver = new FakeDriver();
  const logs: string[] = [];
  const dev = new ManagedDevice(driver, (level, msg) => logs.push(`${level}: ${msg}`));
  await dev.recover();
  return { driver, dev, logs };
}

describe('ManagedDevice', () => {
  it('configure is idempotent: the second call writes nothing to WireGuard (clamped key compares equal)', async () => {
    const { driver, dev } = await open();
    await dev.configure(CONFIG);
    expect(driver.writes).toHaveLength(1);
    expect(driver.writes[0]).toContain('private_key=');
    await dev.configure(CONFIG);
    expect(driver.writes).toHaveLength(1);
    expect(driver.commands).toContainEqual(['ip', 'link', 'set', 'dev', 'weft0', 'mtu', '1280', 'up']);
  });

  it('setPeers writes only the peers that changed', async () => {
    const { driver, dev } = await open();
    await dev.configure(CONFIG);
    await dev.setPeers([peer(PUB_2, 2)]);
    driver.writes = [];
    await dev.setPeers([peer(PUB_2, 2), peer(PUB_3, 3)]);
    expect(driver.writes).toEqual([
      `set=1\npublic_key=${hex(PUB_3)}\nendpoint=10.0.0.3:51820\nreplace_allowed_ips=true\nallowed_ip=100.64.0.3/32\n\n`,
    ]);
    driver.writes = [];
    await dev.removePeer(PUB_3);
    await dev.setPeers([peer(PUB_2, 2)]);
    expect(driver.writes).toEqual([`set=1\npublic_key=${hex(PUB_3)}\nremove=true\n\n`]);
  });

  it('re-applies config and peers when the interface comes back empty, keeping the bound port', async () => {
    const { driver, dev, logs } = await open();
    await dev.configure(CONFIG); // random port: the fake binds 40000
    await dev.setPeers([peer(PUB_2, 2)]);
    await driver.destroy(); // wireguard-go died
    await dev.recover();
    expect(driver.state.listenPort).toBe(40000);
    expect(driver.state.peers.map((p) => p.publicKey)).toEqual([PUB_2]);
    expect(logs.some((l) => l.startsWith('warn: wireguard interface was recreated'))).toBe(true);
    expect(driver.writes.at(-2)).toContain('listen_port=40000');
  });

  it('stays down across a re-apply until configured again', async () => {
    const { driver, dev } = await open();
    await dev.configure(CONFIG);
    await dev.down();
    await driver.destroy();
    driver.commands = [];
    await dev.recover();
    expect(driver.commands.at(-1)).toEqual(['ip', 'link', 'set', 'dev', 'weft0', 'down']);
    await dev.configure(CONFIG);
    expect(driver.commands).toContainEqual(['ip', 'link', 'set', 'dev', 'weft0', 'mtu', '1280', 'up']);
  });

  it('rejects (not throws) on a bad peer', async () => {
    const { dev } = await open();
    const p = dev.setPeers([{ publicKey: PUB_2, allowedIps: ['nope'] }]);
    await expect(p).rejects.toThrow(TypeError);
  });

  it('refuses work after close', async () => {
    const { dev } = await open();
    await dev.close();
    await expect(dev.stats()).rejects.toMatchObject({ code: 'closed' });
  });
});

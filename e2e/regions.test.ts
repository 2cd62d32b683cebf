/**
 * Two standalone relay regions (real `weft-relay` processes on hosts `one` and `two`, linked to
 * one weft-server), real agents with wireguard-go whose UDP to each other is dropped (nftables),
 * so they must relay. a's STUN to region two is dropped and b's to region one: each homes on the
 * one region that answers its netcheck (homing by latency is e2e/homing.test.ts), and their pings pass relayed region one -> server ->
 * region two and back. A third agent c sees both regions alike (same LAN, near-equal latency)
 * and must not flap between them over repeated netchecks.
 */
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Host } from './lab/host.js';
import { useLab } from './lab/vitest.js';
import { waitFor } from './lab/wait.js';
import { RELAY_BIN, REPO, SERVER_BIN, WeftAgent, WeftServer } from './lab/weft.js';

let server: WeftServer;
const agents = {} as Record<'a' | 'b' | 'c', WeftAgent>;
const RELAY_PORT = 8443;

/** UDP between this host and `peer` is dropped both ways: the two can only relay (over TCP). */
async function blockUdpWith(h: Host, peer: Host): Promise<void> {
  const file = h.tmpPath('block-udp.nft');
  writeFileSync(file, `table inet lab_block {
  chain in { type filter hook input priority 0; policy accept; ip saddr ${peer.ip} meta l4proto udp counter drop; }
  chain out { type filter hook output priority 0; policy accept; ip daddr ${peer.ip} meta l4proto udp counter drop; }
}
`);
  await h.execOk('nft', ['-f', file]);
}

/** `h`'s STUN requests to `far` are dropped: that region never answers h's netcheck. */
async function blockStunTo(h: Host, far: Host): Promise<void> {
  const file = h.tmpPath('block-stun.nft');
  writeFileSync(file, `table inet lab_stun {
  chain out { type filter hook output priority 0; policy accept; ip daddr ${far.ip} udp dport 3478 counter drop; }
}
`);
  await h.execOk('nft', ['-f', file]);
}

useLab({ name: 'rgn', hosts: ['server', 'one', 'two', 'a', 'b', 'c'] }, async (lab) => {
  const { server: sh, one, two } = lab.hosts;
  const config = sh.tmpPath('server-config.json');
  const region = (id: number, code: string, h: Host) => ({ id, code, name: `region ${code}`, stun: [`${h.ip}:3478`], relayUrl: `http://${h.ip}:${RELAY_PORT}` });
  writeFileSync(config, JSON.stringify({ regions: [region(2, 'one', one), region(3, 'two', two)] }));
  server = await WeftServer.start(lab, { env: { WEFT_CONFIG: config }, readyTimeoutMs: 120_000 });
  const secretFile = sh.tmpPath('mesh.secret');
  await sh.execOk(process.execPath, [SERVER_BIN, 'relay-secret', '--out', secretFile, '--data-dir', server.dataDir], { timeoutMs: 60_000, cwd: REPO });
  for (const [h, name] of [[one, 'region-one'], [two, 'region-two']] as const) {
    const p = h.spawn(process.execPath, [RELAY_BIN, '--server', server.url, '--mesh-secret-file', secretFile, '--listen', `0.0.0.0:${RELAY_PORT}`, '--stun-listen', '0.0.0.0:3478', '--name', name], { logName: 'weft-relay' });
    await p.waitForLine(/linked to the control server/, 60_000);
  }
  await blockStunTo(lab.hosts.a, two);
  await blockStunTo(lab.hosts.b, one);
  await blockUdpWith(lab.hosts.a, lab.hosts.b);
  await blockUdpWith(lab.hosts.b, lab.hosts.a);
  const authKey = await server.authKey('ops');
  for (const n of ['a', 'b', 'c'] as const) {
    agents[n] = await WeftAgent.start(lab.hosts[n]);
    await agents[n].upOk({ server: server.url, authKey, hostname: n });
  }
});

describe('two standalone relay regions (lab)', () => {
  it('a homes on the region that answers it (one) and b on its (two), and with UDP between them blocked they ping each other relayed across the regions', async () => {
    for (const [n, code] of [['a', 'one'], ['b', 'two']] as const) {
      // Each netcheck feeds the home choice; a move needs two in a row.
      await waitFor(async () => {
        await agents[n].netcheck();
        const st = await agents[n].status();
        return st.relay?.connected === true && st.relay.region === code;
      }, { timeoutMs: 60_000, intervalMs: 500, what: `${n} homed on region ${code}` });
    }
    const ipA = (await agents.a.status()).self!.ipv4;
    const ipB = (await agents.b.status()).self!.ipv4;
    await waitFor(async () => (await agents.a.host.ping(ipB, { count: 1, timeoutMs: 2000 })).ok, { timeoutMs: 60_000, intervalMs: 250, what: 'a (region one) -> b (region two) over the tunnel' });
    const back = await agents.b.host.ping(ipA, { count: 5, intervalMs: 200, timeoutMs: 5000 });
    expect(back.ok, back.output).toBe(true);
    for (const [h, other, code] of [['a', 'b', 'one'], ['b', 'a', 'two']] as const) {
      const st = await agents[h].status();
      const peer = st.peers.find((x) => x.name === other)!;
      expect(peer.path, `${h} -> ${other}: ${JSON.stringify(peer)}`).toBe('relay');
      expect(st.relay?.region, `${h}'s home`).toBe(code);
    }
  });

  it('c, with both regions near-equal, keeps one home over repeated netchecks (no flapping)', async () => {
    const homes: string[] = [];
    for (let i = 0; i < 6; i++) {
      await agents.c.netcheck();
      const st = await agents.c.status();
      if (st.relay?.region) homes.push(st.relay.region);
    }
    expect(homes.length, `c's homes: ${homes.join(', ')}`).toBe(6);
    expect(new Set(homes.slice(1)).size, `c's homes after its first netcheck: ${homes.join(', ')}`).toBe(1);
  });
});

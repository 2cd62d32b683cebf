/**
 * `npm run bench:relay-kernel-ceiling`: what relaying costs when the relay forwards in the kernel
 * and Node.js is on no hop (issue 9's "fewer hops" path, before it is built into Weft). A
 * hand-configured wireguard-go pair a <-> b (e2e/lab/wg-pair.ts, the lab's baseline), one iperf3
 * TCP stream a -> b, BENCH_ROUNDS (3) x BENCH_SECONDS (5) s per phase, interleaved round by round:
 *   direct  a and b aim at each other;
 *   kernel  a aims at the relay host's port 40001 and b at its port 40002; the relay host
 *           (host `server`, plain forwarding, no Weft process) DNATs 40001 -> b:51820 with SNAT
 *           to its own 40002, and back (nftables, conntrack); a and b drop UDP between
 *           themselves, so nothing goes direct.
 * Writes bench/results/relay-kernel-ceiling.json with the machine and its load at start and end.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Lab } from '../e2e/lab/lab.js';
import { iperf3, type IperfResult } from '../e2e/lab/iperf.js';
import { startWgPair } from '../e2e/lab/wg-pair.js';
import { machine } from './lib/machine.js';
import { median, round } from './lib/stats.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const PA = 40001;
const PB = 40002;
const here = import.meta.dirname;

const lab = await Lab.create({ name: 'r9kc', hosts: ['server', 'a', 'b'] });
const loadAvg1mAtStart = machine().loadAvg1m;
const runs: Record<'direct' | 'kernel', IperfResult[]> = { direct: [], kernel: [] };
let forwarded = 0;
await lab.run(async () => {
  const { a, b, server: r } = lab.hosts;
  const pair = await startWgPair(a, b);
  await r.execOk('sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.send_redirects=0', 'net.ipv4.conf.eth0.send_redirects=0']);
  const rules = r.tmpPath('kernel-relay.nft');
  writeFileSync(rules, `table ip r9kc {
  chain pre { type nat hook prerouting priority dstnat; policy accept;
    ip saddr ${a.ip} udp sport ${pair.a.listenPort} udp dport ${PA} counter meta mark set ${PA} dnat to ${b.ip}:${pair.b.listenPort}
    ip saddr ${b.ip} udp sport ${pair.b.listenPort} udp dport ${PB} counter meta mark set ${PB} dnat to ${a.ip}:${pair.a.listenPort}
  }
  chain post { type nat hook postrouting priority srcnat; policy accept;
    meta mark ${PA} meta l4proto udp snat to ${r.ip}:${PB}
    meta mark ${PB} meta l4proto udp snat to ${r.ip}:${PA}
  }
  chain forward_count { type filter hook forward priority 0; policy accept; udp dport { ${pair.a.listenPort}, ${pair.b.listenPort} } counter; }
}
`);
  await r.execOk('nft', ['-f', rules]);
  const block = (peerIp: string) => `table inet r9kcblock { chain out { type filter hook output priority 0; policy accept; ip daddr ${peerIp} meta l4proto udp drop; }; }\n`;
  const setPhase = async (phase: 'direct' | 'kernel') => {
    for (const [self, peer, port] of [[pair.a, pair.b, PA], [pair.b, pair.a, PB]] as const) {
      const f = self.host.tmpPath('block.nft');
      writeFileSync(f, `table inet r9kcblock {}\ndelete table inet r9kcblock\n${phase === 'kernel' ? block(peer.host.ip) : ''}`);
      await self.host.execOk('nft', ['-f', f]);
      await self.host.execOk('wg', ['set', self.ifname, 'peer', peer.publicKey, 'endpoint', phase === 'kernel' ? `${r.ip}:${port}` : `${peer.host.ip}:${peer.listenPort}`]);
    }
    await r.execOk('conntrack', ['-F']).catch(() => undefined);
    const ok = await a.ping(pair.b.tunnelIp, { count: 3, intervalMs: 200, timeoutMs: 6000 });
    if (!ok.ok) throw new Error(`${phase}: no ping through the pair`);
  };
  for (let i = 0; i < ROUNDS; i++) {
    for (const phase of ['direct', 'kernel'] as const) {
      await setPhase(phase);
      runs[phase].push(await iperf3(a, b, pair.b.tunnelIp, { seconds: SECONDS }));
      console.log(`${phase.padEnd(7)} ${(runs[phase].at(-1)!.bitsPerSecond / 1e6).toFixed(1)} Mbit/s, ${runs[phase].at(-1)!.retransmits} retransmits`);
    }
  }
  const counters = (await r.execOk('nft', ['list', 'chain', 'ip', 'r9kc', 'forward_count'])).stdout;
  forwarded = Number(/packets (\d+)/.exec(counters)?.[1] ?? 0);
  await pair.close();
});
if (forwarded === 0) throw new Error('the relay host forwarded nothing: the kernel phase did not go through it');
const med = (p: 'direct' | 'kernel') => round(median(runs[p].map((x) => x.bitsPerSecond / 1e6)), 1);
const out = {
  benchmark: 'relay-kernel-ceiling',
  date: new Date().toISOString(),
  loadAvg1mAtStart,
  loadAvg1mAtEnd: machine().loadAvg1m,
  machine: machine({ 'wireguard-go': ['wireguard-go', ['--version']], iperf3: ['iperf3', ['--version']] }),
  setup: `hand-configured wireguard-go pair a <-> b (MTU 1280) on the e2e lab; iperf3 TCP, one stream a -> b, ${ROUNDS} x ${SECONDS} s per phase, phases interleaved per round. direct: a and b aim at each other. kernel: each aims at the relay host (no Weft process there), which DNATs/SNATs between per-pair ports ${PA}/${PB} with nftables and conntrack; a and b drop UDP to each other. The relay host forwarded ${forwarded} WireGuard datagrams.`,
  phases: Object.fromEntries((['direct', 'kernel'] as const).map((p) => [p, { mbitPerSecond: runs[p].map((x) => round(x.bitsPerSecond / 1e6, 1)), retransmits: runs[p].map((x) => x.retransmits), medianMbitPerSecond: med(p) }])),
  fractionOfDirect: { kernel: round(med('kernel') / med('direct'), 3) },
};
mkdirSync(resolve(here, 'results'), { recursive: true });
writeFileSync(resolve(here, 'results/relay-kernel-ceiling.json'), JSON.stringify(out, null, 2) + '\n');
console.log(JSON.stringify(out, null, 2));

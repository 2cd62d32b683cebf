/**
 * `npm run bench:relay-lab`: issue 9's lab row for the relay. One iperf3 TCP stream a -> b through
 * a Weft tunnel on the real-network lab (e2e/lab: network namespaces, real weft-server, real agents
 * with wireguard-go; needs root like the e2e lab), in three phases on the same lab, as
 * e2e/relay.test.ts sets them up:
 *   websocket  a and b drop all UDP on their LAN interface: the pair is relayed over the WebSocket;
 *   udp        UDP to and from the server's STUN port (the relay's UDP port) passes: relayed over UDP;
 *   direct     the block is lifted: the pair goes direct.
 * Each phase runs BENCH_ROUNDS (3) streams of BENCH_SECONDS (5) s; each relayed median is given as a
 * fraction of the direct median (targets: 0.8 over the UDP relay; the WebSocket's is reported).
 *
 * On this lab every process (two iperf3, two wireguard-go, two agents, the server) shares the
 * machine's cores, so those three phases measure CPU: a relay hop costs the same cores the direct
 * path already fills (bench:relay-kernel-ceiling measures the same with the kernel forwarding).
 * So the three are run again with the LAN's ports toward a and b shaped to BENCH_LINK_MBIT (100)
 * Mbit/s (tc tbf), as a router's downlink to each is: direct-link, udp-link, websocket-link. There the question is whether
 * the relay holds one TCP flow back when the link, not the CPU, is the limit.
 * BENCH_UDP_BUFFERS=doctor runs it all on a host set up as `weft doctor` advises for wireguard-go
 * (its "UDP receive buffer" check: net.core.rmem_default and rmem_max raised to
 * UDP_BUFFER_FIX_BYTES, which Debian's wireguard-go 0.0.20220316 takes when it opens its socket;
 * newer wireguard-go asks for 7 MiB itself). The sysctls are put back when the run ends.
 * Writes bench/results/relay-lab.json (relay-lab-doctor.json with BENCH_UDP_BUFFERS=doctor) with
 * the machine and its load at start and end.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { execOkIn } from '../e2e/lab/exec.js';
import { Lab } from '../e2e/lab/lab.js';
import type { Host } from '../e2e/lab/host.js';
import { iperf3, type IperfResult } from '../e2e/lab/iperf.js';
import { waitFor } from '../e2e/lab/wait.js';
import { WeftAgent, WeftServer } from '../e2e/lab/weft.js';
import { UDP_BUFFER_FIX_BYTES } from '../apps/agent/src/doctor/checks.js';
import { machine } from './lib/machine.js';
import { RELAY_UDP_PORT, setUdpBlock } from './lib/udp-block.js';
import { median, round } from './lib/stats.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const LINK_MBIT = Number(process.env.BENCH_LINK_MBIT ?? 100);
const here = import.meta.dirname;
const BUFFERS = process.env.BENCH_UDP_BUFFERS ?? 'default';
if (BUFFERS !== 'default' && BUFFERS !== 'doctor') throw new Error(`BENCH_UDP_BUFFERS must be "default" or "doctor", not ${JSON.stringify(BUFFERS)}`);

/** The host's net.core.rmem_* (the init namespace's: the lab's namespaces take them from there). */
const RMEM = ['rmem_default', 'rmem_max'] as const;
const readRmem = () => Object.fromEntries(RMEM.map((k) => [k, Number(readFileSync(`/proc/sys/net/core/${k}`, 'utf8').trim())])) as Record<(typeof RMEM)[number], number>;
const writeRmem = (v: Record<(typeof RMEM)[number], number>) => {
  // rmem_max first when raising (the default may not exceed it), last when lowering.
  const order = v.rmem_max >= readRmem().rmem_max ? ['rmem_max', 'rmem_default'] as const : ['rmem_default', 'rmem_max'] as const;
  for (const k of order) writeFileSync(`/proc/sys/net/core/${k}`, String(v[k]));
};
const rmemBefore = readRmem();

/**
 * Where datagrams are lost on `h`: the kernel's UDP RcvbufErrors (/proc/net/snmp) and each UDP
 * socket's drop count (`ss -uanmp` skmem d), keyed by owning process and local address, with its
 * receive buffer size (rb). Read before and after a phase: what TCP inside the tunnel backs off on.
 */
async function udpDrops(h: Host): Promise<{ rcvbufErrors: number; sockets: Record<string, { drops: number; rcvbuf: number }> }> {
  const snmp = (await h.execOk('cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const names = snmp[0]!.split(/\s+/);
  const values = snmp[1]!.split(/\s+/);
  const rcvbufErrors = Number(values[names.indexOf('RcvbufErrors')]);
  const sockets: Record<string, { drops: number; rcvbuf: number }> = {};
  const ss = (await h.execOk('ss', ['-uanmpH'])).stdout.replace(/\n\s+skmem/g, ' skmem');
  for (const line of ss.split('\n')) {
    const m = /^\S+\s+\d+\s+\d+\s+(\S+)\s+\S+\s+(?:users:\(\("([^"]+)".*?)?skmem:\(([^)]*)\)/.exec(line.trim());
    if (!m) continue;
    const sk = Object.fromEntries(m[3]!.split(',').map((f) => [f.replace(/\d+$/, ''), Number(f.replace(/^\D+/, ''))]));
    sockets[`${m[2] ?? '?'} ${m[1]}`] = { drops: sk.d ?? 0, rcvbuf: sk.rb ?? 0 };
  }
  return { rcvbufErrors, sockets };
}

/** `after` less `before`: only the sockets that dropped during the phase. */
function dropsDuring(before: Awaited<ReturnType<typeof udpDrops>>, after: Awaited<ReturnType<typeof udpDrops>>) {
  const sockets: Record<string, { drops: number; rcvbuf: number }> = {};
  for (const [k, v] of Object.entries(after.sockets)) {
    const d = v.drops - (before.sockets[k]?.drops ?? 0);
    if (d > 0) sockets[k] = { drops: d, rcvbuf: v.rcvbuf };
  }
  return { rcvbufErrors: after.rcvbufErrors - before.rcvbufErrors, sockets };
}

if (BUFFERS === 'doctor') {
  writeRmem({ rmem_default: UDP_BUFFER_FIX_BYTES, rmem_max: Math.max(rmemBefore.rmem_max, UDP_BUFFER_FIX_BYTES) });
  process.once('exit', () => writeRmem(rmemBefore));
}
const rmemDuring = readRmem();
const lab = await Lab.create({ name: 'rlab', hosts: ['server', 'a', 'b'] });
const loadAvg1mAtStart = machine().loadAvg1m;
const phases: Record<string, { mbitPerSecond: number[]; retransmits: (number | null)[]; medianMbitPerSecond: number; tunnelMtu: Record<string, number>; udpDrops: Record<string, ReturnType<typeof dropsDuring>> }> = {};
await lab.run(async () => {
  const server = await WeftServer.start(lab, { readyTimeoutMs: 180_000, stunListen: `0.0.0.0:${RELAY_UDP_PORT}` });
  const authKey = await server.authKey('lab');
  const { a, b } = lab.hosts;
  await Promise.all([a, b].map((h) => setUdpBlock(h, 'all')));
  // Both transports are measured: UDP is used once it works (WEFT_RELAY_TRANSPORT=udp; the default is the WebSocket).
  const env = { WEFT_RELAY_TRANSPORT: 'udp' };
  const agents = { a: await WeftAgent.start(a, { env }), b: await WeftAgent.start(b, { env }) };
  await Promise.all((['a', 'b'] as const).map((h) => agents[h].upOk({ server: server.url, authKey, hostname: h })));
  const ipB = (await agents.b.status()).self!.ipv4;
  const pathTo = async (h: 'a' | 'b') => (await agents[h].status()).peers.find((p) => p.name === (h === 'a' ? 'b' : 'a'))?.path;
  const run = async (name: string, check: () => Promise<void>) => {
    const rs: IperfResult[] = [];
    const hosts = { a, b, server: lab.hosts.server! };
    const before = Object.fromEntries(await Promise.all(Object.entries(hosts).map(async ([n, h]) => [n, await udpDrops(h)] as const)));
    const tunnelMtu: Record<string, number> = {};
    for (const h of ['a', 'b'] as const) {
      const link = (await hosts[h].execOk('ip', ['-o', 'link', 'show', 'type', 'tun'])).stdout;
      tunnelMtu[h] = Number(/ mtu (\d+)/.exec(link)?.[1] ?? 0);
    }
    for (let i = 0; i < ROUNDS; i++) {
      rs.push(await iperf3(a, b, ipB, { seconds: SECONDS }));
      await check();
      console.log(`${name.padEnd(9)} ${(rs.at(-1)!.bitsPerSecond / 1e6).toFixed(1)} Mbit/s, ${rs.at(-1)!.retransmits ?? '?'} retransmits`);
    }
    const mbit = rs.map((r) => round(r.bitsPerSecond / 1e6, 1));
    const udpDropsDuring = Object.fromEntries(await Promise.all(Object.entries(hosts).map(async ([n, h]) => [n, dropsDuring(before[n]!, await udpDrops(h))] as const)));
    phases[name] = { mbitPerSecond: mbit, retransmits: rs.map((r) => r.retransmits), medianMbitPerSecond: round(median(mbit), 1), tunnelMtu, udpDrops: udpDropsDuring };
    console.log(`${name.padEnd(9)} tunnel MTU ${JSON.stringify(tunnelMtu)}, UDP drops ${JSON.stringify(udpDropsDuring)}`);
  };
  const expectState = async (path: string, transport?: string) => {
    const st = await agents.a.status();
    const p = st.peers.find((x) => x.name === 'b')?.path;
    if (p !== path || (transport && st.relay?.transport !== transport)) throw new Error(`a -> b is ${p} (relay transport ${st.relay?.transport}), the phase needs ${path}${transport ? ` over ${transport}` : ''}`);
  };

  // Each phase starts once adaptive MTU has sized both interfaces for the path (1420 direct and
  // over the WebSocket, under 1400 over the UDP relay: its header comes off), so no phase is run
  // at the size of the one before.
  const settleMtu = async (ok: (mtu: number) => boolean, what: string) => {
    // Pinging meanwhile: an idle pair is never probed.
    for (const h of ['a', 'b'] as const) await waitFor(async () => (await a.ping(ipB, { count: 1, timeoutMs: 2000 })).ok && ok((await agents[h].status()).interface.mtu), { timeoutMs: 60_000, intervalMs: 500, what: `${h}'s interface MTU ${what}` });
  };
  const [full, underUdpRelay] = [(m: number) => m === 1420, (m: number) => m < 1400];
  await waitFor(async () => (await a.ping(ipB, { count: 1, timeoutMs: 2000 })).ok && (await pathTo('a')) === 'relay', { timeoutMs: 60_000, intervalMs: 250, what: 'a -> b relayed over the WebSocket' });
  await settleMtu(full, '1420 over the WebSocket');
  await run('websocket', () => expectState('relay', 'websocket'));

  await Promise.all([a, b].map((h) => setUdpBlock(h, { relayUdpFrom: lab.hosts.server!.ip })));
  for (const h of ['a', 'b'] as const) await waitFor(async () => (await agents[h].status()).relay?.transport === 'udp', { timeoutMs: 30_000, intervalMs: 250, what: `${h} relays over UDP` });
  await settleMtu(underUdpRelay, 'under 1400 over the UDP relay');
  await run('udp', () => expectState('relay', 'udp'));

  await Promise.all([a, b].map((h) => setUdpBlock(h, 'none')));
  await waitFor(async () => (await pathTo('a')) === 'direct' && (await pathTo('b')) === 'direct', { timeoutMs: 60_000, intervalMs: 250, what: 'a <-> b direct once UDP passes' });
  await settleMtu(full, '1420 direct');
  await run('direct', () => expectState('direct'));

  // The same three at a shaped uplink, in reverse (direct first: it is where the pair is).
  // Shaped where a router would be: the LAN's ports toward a and b (their downlinks), which the
  // direct and the relayed path both cross. Not a's own eth0: there the qdisc pushes back on the
  // local sender, which wireguard-go's small socket buffer feels and the agent's large one does not.
  for (const h of [a, b]) await execOkIn(lab.bridgeNs, 'tc', ['qdisc', 'replace', 'dev', `vh${h.index}`, 'root', 'tbf', 'rate', `${LINK_MBIT}mbit`, 'burst', '64kb', 'latency', '20ms']);
  await run('direct-link', () => expectState('direct'));
  await Promise.all([a, b].map((h) => setUdpBlock(h, { relayUdpFrom: lab.hosts.server!.ip })));
  // Pings carry the traffic that finds the direct path dead (an idle pair is not watched).
  await waitFor(async () => (await a.ping(ipB, { count: 1, timeoutMs: 2000 })).ok && (await pathTo('a')) === 'relay' && (await agents.a.status()).relay?.transport === 'udp', { timeoutMs: 60_000, intervalMs: 250, what: 'a -> b relayed over UDP once the direct path is blocked' });
  await settleMtu(underUdpRelay, 'under 1400 over the UDP relay');
  await run('udp-link', () => expectState('relay', 'udp'));
  await Promise.all([a, b].map((h) => setUdpBlock(h, 'all')));
  for (const h of ['a', 'b'] as const) await waitFor(async () => (await a.ping(ipB, { count: 1, timeoutMs: 2000 })).ok && (await agents[h].status()).relay?.transport === 'websocket', { timeoutMs: 60_000, intervalMs: 250, what: `${h} relays over the WebSocket once UDP is blocked` });
  await settleMtu(full, '1420 over the WebSocket');
  await run('websocket-link', () => expectState('relay', 'websocket'));
});

const direct = phases.direct!.medianMbitPerSecond;
const out = {
  benchmark: 'relay-lab',
  date: new Date().toISOString(),
  loadAvg1mAtStart,
  loadAvg1mAtEnd: machine().loadAvg1m,
  udpBuffers: { what: BUFFERS === 'doctor' ? 'the host set up as weft doctor advises (BENCH_UDP_BUFFERS=doctor): net.core.rmem_* raised for the run, put back after' : 'the host\'s own net.core.rmem_* (BENCH_UDP_BUFFERS=default)', ...rmemDuring },
  machine: machine({ 'wireguard-go': ['wireguard-go', ['--version']], iperf3: ['iperf3', ['--version']] }),
  setup: `real-network lab (e2e/lab, hosts server, a, b on one bridge; wireguard-go; weft-server with STUN/relay UDP on ${RELAY_UDP_PORT}): iperf3 TCP, one stream a -> b through the Weft tunnel, ${ROUNDS} x ${SECONDS} s per phase (first second omitted), phases in this order on one lab: websocket (all UDP on a and b dropped: relayed over the WebSocket), udp (UDP to the relay port allowed: relayed over UDP), direct (no block); then with the LAN bridge's ports toward a and b shaped to ${LINK_MBIT} Mbit/s (tc tbf, burst 64 KiB, latency 20 ms: each host's downlink, which the direct and the relayed path both cross): direct-link, udp-link, websocket-link. Each round checks a's weft status still says that path and transport. Per phase: the tunnel interfaces' MTU, and UDP datagrams dropped on each host during it (kernel RcvbufErrors, and per socket the skmem drop count with the socket's receive buffer).`,
  phases,
  fractionOfDirect: {
    what: 'phase median / direct median; targets: udp >= 0.8 (issue 9); websocket reported',
    udp: round(phases.udp!.medianMbitPerSecond / direct, 3),
    websocket: round(phases.websocket!.medianMbitPerSecond / direct, 3),
    udpOverWebsocket: round(phases.udp!.medianMbitPerSecond / phases.websocket!.medianMbitPerSecond, 3),
  },
  fractionOfDirectAtLinkRate: {
    what: `the same with a ${LINK_MBIT} Mbit/s downlink to a and to b: phase median / direct-link median (the link is the limit, not the shared CPU)`,
    linkMbit: LINK_MBIT,
    udp: round(phases['udp-link']!.medianMbitPerSecond / phases['direct-link']!.medianMbitPerSecond, 3),
    websocket: round(phases['websocket-link']!.medianMbitPerSecond / phases['direct-link']!.medianMbitPerSecond, 3),
  },
};
mkdirSync(resolve(here, 'results'), { recursive: true });
writeFileSync(resolve(here, BUFFERS === 'doctor' ? 'results/relay-lab-doctor.json' : 'results/relay-lab.json'), JSON.stringify(out, null, 2) + '\n');
console.log(JSON.stringify(out, null, 2));

/**
 * `npm run bench:relay-profile`: where a relayed iperf3 stream spends its time, hop by hop (a
 * diagnostic next to bench:relay-lab's row; same lab, same phases). PHASES (default
 * "websocket,udp,direct") in that order; per phase one iperf3 TCP stream a -> b of BENCH_SECONDS
 * (6) s, and during it, per lab host: UDP datagrams in/out and receive-buffer drops per second
 * (/proc/net/snmp), each process's CPU in percent of one core (/proc/PID/stat), each UDP socket's
 * drops (ss -uanmp skmem d) and its queue half-way through; and the tunnel RTT (ping every 0.2 s
 * alongside the stream) against the idle one. AGENT_NODE_OPTIONS goes to the agents' NODE_OPTIONS
 * (e.g. "--cpu-prof --cpu-prof-dir=DIR"). Writes bench/results/relay-profile.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Lab } from '../e2e/lab/lab.js';
import type { Host } from '../e2e/lab/host.js';
import { iperf3 } from '../e2e/lab/iperf.js';
import { waitFor } from '../e2e/lab/wait.js';
import { WeftAgent, WeftServer } from '../e2e/lab/weft.js';
import { machine } from './lib/machine.js';
import { RELAY_UDP_PORT, setUdpBlock } from './lib/udp-block.js';
import { median, percentile, round } from './lib/stats.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const PHASES = (process.env.PHASES ?? 'websocket,udp,direct').split(',');
const here = import.meta.dirname;

async function snmp(h: Host): Promise<Record<string, number>> {
  const lines = (await h.execOk('cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const n = lines[0]!.split(/\s+/); const v = lines[1]!.split(/\s+/);
  return Object.fromEntries(n.slice(1).map((k, i) => [k, Number(v[i + 1])]));
}
async function pids(h: Host): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const list = (await h.exec('ip', ['netns', 'pids', h.ns])).stdout.split('\n').filter(Boolean);
  for (const p of list) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      const role = cmd.includes('weft-server') ? 'weft-server' : cmd.includes('weft.mjs') ? 'weft agent' : comm;
      out[`${role} (${p})`] = Number(f[11]) + Number(f[12]);
    } catch { /* gone */ }
  }
  return out;
}
/** Each UDP socket (owner and local address): its drop count and receive queue (ss -uanmp). */
async function sockets(h: Host): Promise<Record<string, { drops: number; recvQ: number; rcvbuf: number }>> {
  const out: Record<string, { drops: number; recvQ: number; rcvbuf: number }> = {};
  const ss = (await h.execOk('ss', ['-uanmpH'])).stdout.replace(/\n\s+skmem/g, ' skmem');
  for (const line of ss.split('\n')) {
    const m = /^\S+\s+(\d+)\s+\d+\s+(\S+)\s+(\S+)\s+(?:users:\(\("([^"]+)".*?)?skmem:\(([^)]*)\)/.exec(line.trim());
    if (!m) continue;
    const sk = Object.fromEntries(m[5]!.split(',').map((f) => [f.replace(/\d+$/, ''), Number(f.replace(/^\D+/, ''))]));
    out[`${m[4] === 'MainThread' ? 'node' : (m[4] ?? '?')} ${m[2]}${m[3] !== '0.0.0.0:*' && m[3] !== '[::]:*' ? ` -> ${m[3]}` : ''}`] = { drops: sk.d ?? 0, recvQ: Number(m[1]), rcvbuf: sk.rb ?? 0 };
  }
  return out;
}

const lab = await Lab.create({ name: 'rprof', hosts: ['server', 'a', 'b'] });
const loadAvg1mAtStart = machine().loadAvg1m;
const report: Record<string, unknown> = {};
await lab.run(async () => {
  const server = await WeftServer.start(lab, { readyTimeoutMs: 180_000, stunListen: `0.0.0.0:${RELAY_UDP_PORT}` });
  const authKey = await server.authKey('lab');
  const { a, b } = lab.hosts;
  const hosts = { a, b, server: lab.hosts.server! };
  await Promise.all([a, b].map((h) => setUdpBlock(h, 'all')));
  const env = { WEFT_RELAY_TRANSPORT: process.env.WEFT_RELAY_TRANSPORT ?? 'udp', ...(process.env.AGENT_NODE_OPTIONS ? { NODE_OPTIONS: process.env.AGENT_NODE_OPTIONS } : {}) };
  const agents = { a: await WeftAgent.start(a, { env }), b: await WeftAgent.start(b, { env }) };
  await Promise.all((['a', 'b'] as const).map((h) => agents[h].upOk({ server: server.url, authKey, hostname: h })));
  const ipB = (await agents.b.status()).self!.ipv4!;
  const pathTo = async (h: 'a' | 'b') => (await agents[h].status()).peers.find((p) => p.name === (h === 'a' ? 'b' : 'a'))?.path;
  await waitFor(async () => (await a.ping(ipB, { count: 1, timeoutMs: 2000 })).ok && (await pathTo('a')) === 'relay', { timeoutMs: 60_000, intervalMs: 250, what: 'relayed' });
  for (const phase of PHASES) {
    if (phase === 'udp') {
      await Promise.all([a, b].map((h) => setUdpBlock(h, { relayUdpFrom: lab.hosts.server!.ip })));
      for (const h of ['a', 'b'] as const) await waitFor(async () => (await agents[h].status()).relay?.transport === 'udp', { timeoutMs: 30_000, intervalMs: 250, what: `${h} relays over UDP` });
    } else if (phase === 'direct') {
      await Promise.all([a, b].map((h) => setUdpBlock(h, 'none')));
      await waitFor(async () => (await pathTo('a')) === 'direct' && (await pathTo('b')) === 'direct', { timeoutMs: 60_000, intervalMs: 250, what: 'direct' });
    }
    const idleRtt = await a.ping(ipB, { count: 5, intervalMs: 200 });
    type Sample = { snmp: Record<string, number>; cpu: Record<string, number>; sockets: Awaited<ReturnType<typeof sockets>> };
    const sample = async (h: Host): Promise<Sample> => ({ snmp: await snmp(h), cpu: await pids(h), sockets: await sockets(h) });
    const before: Record<string, Sample> = {};
    for (const [n, h] of Object.entries(hosts)) before[n] = await sample(h);
    const t0 = Date.now();
    const pinger = a.exec('ping', ['-c', String(SECONDS * 5), '-i', '0.2', '-W', '3', ipB], { timeoutMs: (SECONDS + 10) * 1000 });
    const mid = new Promise<Record<string, Awaited<ReturnType<typeof sockets>>>>((res) => setTimeout(async () => res(Object.fromEntries(await Promise.all(Object.entries(hosts).map(async ([n, h]) => [n, await sockets(h)])))), SECONDS * 500 + 1000));
    const r = await iperf3(a, b, ipB, { seconds: SECONDS });
    const el = (Date.now() - t0) / 1000;
    const after: Record<string, Sample> = {};
    for (const [n, h] of Object.entries(hosts)) after[n] = await sample(h);
    const queues = await mid;
    const p = await pinger;
    const rtts = [...p.stdout.matchAll(/time=([\d.]+)/g)].map((m) => Number(m[1]));
    const d: Record<string, unknown> = {};
    const perS = (n: string, k: string) => Math.round((after[n]!.snmp[k]! - before[n]!.snmp[k]!) / el);
    for (const n of Object.keys(hosts)) {
      const cpu: Record<string, number> = {};
      // clock ticks (USER_HZ 100) per second = percent of one core
      for (const k of Object.keys(after[n]!.cpu)) { const v = (after[n]!.cpu[k]! - (before[n]!.cpu[k] ?? 0)) / el; if (v >= 1) cpu[k] = Math.round(v); }
      const socks: Record<string, { dropsPerSecond: number; recvQueueMidway: number; rcvbuf: number }> = {};
      for (const [k, v] of Object.entries(after[n]!.sockets)) socks[k] = { dropsPerSecond: Math.round((v.drops - (before[n]!.sockets[k]?.drops ?? 0)) / el), recvQueueMidway: queues[n]?.[k]?.recvQ ?? 0, rcvbuf: v.rcvbuf };
      d[n] = { udpInPerSecond: perS(n, 'InDatagrams'), udpOutPerSecond: perS(n, 'OutDatagrams'), rcvbufErrorsPerSecond: perS(n, 'RcvbufErrors'), sndbufErrorsPerSecond: perS(n, 'SndbufErrors'), cpuPercentOfOneCore: cpu, sockets: socks };
    }
    report[phase] = {
      mbitPerSecond: round(r.bitsPerSecond / 1e6, 1), retransmits: r.retransmits, tunnelPacketsPerSecond: Math.round(r.bitsPerSecond / 8 / 1228),
      rttMs: { idle: idleRtt.avgRttMs, loadedMedian: round(median(rtts), 2), loadedP90: round(percentile(rtts, 90), 2), lostPings: SECONDS * 5 - rtts.length },
      hosts: d,
    };
    console.log(phase, JSON.stringify(report[phase], null, 1));
  }
});
const out = {
  benchmark: 'relay-profile',
  date: new Date().toISOString(),
  loadAvg1mAtStart,
  loadAvg1mAtEnd: machine().loadAvg1m,
  machine: machine({ 'wireguard-go': ['wireguard-go', ['--version']], iperf3: ['iperf3', ['--version']] }),
  setup: `bench/relay-lab.ts's lab and phases (${PHASES.join(', ')}), one iperf3 TCP stream a -> b of ${SECONDS} s per phase; per host, rates over the phase: UDP datagrams (/proc/net/snmp), CPU per process in percent of one core, per UDP socket its drops and its receive queue half-way through; tunnelPacketsPerSecond is the goodput over 1228-byte segments (MTU 1280); RTT by ping over the tunnel every 0.2 s during the stream.`,
  phases: report,
};
const file = process.env.OUT ?? resolve(here, 'results/relay-profile.json');
mkdirSync(resolve(file, '..'), { recursive: true });
writeFileSync(file, JSON.stringify(out, null, 2) + '\n');

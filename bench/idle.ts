/**
 * `npm run bench:idle`: packets/s one node sends with 1,000 idle peers (issue 9, "Idle peers cost
 * nothing"; target under 1/s). Needs root (network namespaces, wireguard-go).
 *
 * One real wireguard-go (userspace backend, as the agent opens it) in a network namespace whose
 * only link is a veth to a "sink" namespace that routes nothing back: the peers are fresh keys
 * with endpoints in 10.233.0.0/16 behind the sink, so every packet WireGuard sends for them
 * leaves on the veth and is counted (/sys/class/net/eth0/statistics/tx_packets inside the node's
 * namespace), and none is answered. The node also has one responder peer (the server's, as every
 * netmap gives it), the per-node upkeep that keeps its own NAT mapping; it never answers either.
 *
 *   before  the configuration the agent wrote until now (engine.ts peerConfig with the 25 s
 *           keepalive for every peer), programmed straight through the same Device API;
 *   after   the agent's own Engine and PeerPaths (path choice, which now gates keepalive on
 *           "in use") programming the same peers from a netmap, left to run: the peers are in
 *           use for their first IN_USE_WINDOW_MS, then idle. Its relay points at a closed port
 *           (not connected), so peers stay on their netmap endpoints.
 *
 * Each phase's window is counted in its steady state: `before` once the burst of its setup has
 * passed (BENCH_SETTLE_S), `after` once its peers are idle and WireGuard's handshake retries
 * (an unanswered initiation is retried every ~5 s for 90 s) have run out (BENCH_AFTER_SETTLE_S). Peers that never answer send initiations instead of keepalives: for
 * `before` that is the rate of a node whose peers are offline; peers that answer would cost one
 * keepalive each per 25 s (40/s for 1,000) plus a rekey each per 2 min. Writes
 * bench/results/idle.json. BENCH_PEERS (1000), BENCH_WINDOW_S (30), BENCH_SETTLE_S (95),
 * BENCH_AFTER_SETTLE_S (235).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { generateMachineKey, generateNodeKey } from '@weft/crypto';
import type { Peer, ResponderPeer, SelfNode } from '@weft/protocol';
import { openUserspace, type Device } from '@weft/wg';
import { Engine, peerConfig, responderConfig } from '../apps/agent/src/engine.js';
import { PeerPaths } from '../apps/agent/src/peer-paths.js';
import { RelayPath } from '../apps/agent/src/relay-path.js';
import { IN_USE_WINDOW_MS, PERSISTENT_KEEPALIVE_S } from '../apps/agent/src/tunables.js';
import { machine } from './lib/machine.js';
import { round } from './lib/stats.js';

const PEERS = Number(process.env.BENCH_PEERS ?? 1000);
const WINDOW_S = Number(process.env.BENCH_WINDOW_S ?? 30);
const SETTLE_S = Number(process.env.BENCH_SETTLE_S ?? 95);
/**
 * `after` is counted once its peers are idle and the handshake retries of their last keepalive
 * ran out: the in-use window, then up to one keepalive interval (the last keepalive that found
 * no session started a retry series), then wireguard-go's 90 s of retries, and a margin (a
 * loaded host reads 1,000 peers' counters late, so some go idle seconds after the window).
 */
const AFTER_SETTLE_S = Number(process.env.BENCH_AFTER_SETTLE_S ?? IN_USE_WINDOW_MS / 1000 + PERSISTENT_KEEPALIVE_S + 90 + 60);
const here = import.meta.dirname;
const run = randomBytes(2).toString('hex');
const NODE_NS = `wib-${run}-node`;
const SINK_NS = `wib-${run}-sink`;
const IFNAME = `wib${run}`;

const sh = (argv: string[], ns?: string) =>
  execFileSync(ns ? 'ip' : argv[0]!, ns ? ['netns', 'exec', ns, ...argv] : argv.slice(1), { encoding: 'utf8', timeout: 30_000 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = () => undefined;

function labUp(): void {
  sh(['ip', 'netns', 'add', NODE_NS]);
  sh(['ip', 'netns', 'add', SINK_NS]);
  sh(['ip', 'link', 'add', 'eth0', 'netns', NODE_NS, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', SINK_NS]);
  sh(['ip', 'addr', 'add', '10.232.0.2/24', 'dev', 'eth0'], NODE_NS);
  sh(['ip', 'addr', 'add', '10.232.0.1/24', 'dev', 'eth0'], SINK_NS);
  for (const ns of [NODE_NS, SINK_NS]) {
    sh(['ip', 'link', 'set', 'eth0', 'up'], ns);
    sh(['ip', 'link', 'set', 'lo', 'up'], ns);
  }
  // The peers' and responder's endpoints are behind the sink, which forwards nothing (ip_forward off in a new namespace).
  sh(['ip', 'route', 'add', '10.233.0.0/16', 'via', '10.232.0.1'], NODE_NS);
}

function labDown(): void {
  for (const ns of [NODE_NS, SINK_NS]) {
    try { sh(['ip', 'netns', 'del', ns]); } catch { /* gone */ }
  }
}

const txPackets = () => Number(sh(['cat', '/sys/class/net/eth0/statistics/tx_packets'], NODE_NS).trim());

/** Packets/s sent on the veth over `seconds`, and how many. */
async function count(seconds: number): Promise<{ packets: number; seconds: number; perSecond: number }> {
  const t0 = performance.now();
  const p0 = txPackets();
  await sleep(seconds * 1000);
  const packets = txPackets() - p0;
  const s = (performance.now() - t0) / 1000;
  return { packets, seconds: round(s), perSecond: round(packets / s, 2) };
}

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');
const selfNode = (nodeKey: string): SelfNode => ({ id: 1, name: 'idle-bench', user: 'bench', ipv4: '100.64.0.1', ipv6: 'fd7a:115c:a1e0::1', nodeKey, expiresAt: null } as SelfNode);
/**
 * The node's key and its peers: the node's sorts lowest, so it initiates to every peer (engine.ts
 * `initiatesTo`) and no peer waits out the answering side's grace. That grace reads the device's
 * stats once per peer when it ends (engine.ts `endGrace`): 500 answering peers at once queue 500
 * reads of a 1,000-peer dump ahead of everything else, and on this loaded 2-core host that held
 * the idle switch back by minutes. A measurement of the engine at start-up, not of idle peers.
 */
function keys(): { self: ReturnType<typeof generateNodeKey>; peers: string[] } {
  const all = Array.from({ length: PEERS + 1 }, () => generateNodeKey()).sort((a, b) => (a.publicKey < b.publicKey ? -1 : 1));
  return { self: all[0]!, peers: all.slice(1).map((k) => k.publicKey) };
}
const KEYS = keys();

function peers(): Peer[] {
  return Array.from({ length: PEERS }, (_, i) => {
    const n = i + 2;
    return {
      id: n, name: `idle${n}`, user: 'bench', nodeKey: KEYS.peers[i]!,
      ipv4: `100.64.${n >> 8}.${n & 255}`, ipv6: `fd7a:115c:a1e0::${hex(n, 1)}`,
      allowedIps: [], endpoints: [`10.233.${n >> 8}.${n & 255}:41641`], online: true, lastSeen: null,
    } as Peer;
  });
}
const responder: ResponderPeer = { publicKey: generateNodeKey().publicKey, endpoint: '10.233.255.254:3478' } as ResponderPeer;

const open = (name: string) => openUserspace({ name, backend: 'userspace', netns: NODE_NS, log });

async function before(list: Peer[]) {
  const dev: Device = await open(`${IFNAME}b`);
  try {
    await dev.configure({ privateKey: generateNodeKey().privateKey, listenPort: 41641, addresses: ['100.64.0.1/10'], mtu: 1280 });
    await dev.setPeers([...list.map((p) => peerConfig(p, PERSISTENT_KEEPALIVE_S)), responderConfig(responder)]);
    await sleep(SETTLE_S * 1000);
    const window = await count(WINDOW_S);
    const keepalive = (await dev.stats()).filter((s) => s.publicKey !== responder.publicKey).length;
    return { ...window, peersProgrammed: keepalive };
  } finally {
    await dev.close();
  }
}

async function after(list: Peer[]) {
  const key = KEYS.self;
  const engine = new Engine({
    openDevice: (o) => openUserspace({ ...o, netns: NODE_NS }), interfaceName: `${IFNAME}a`, backend: 'userspace',
    privateKey: key.privateKey, listenPort: 41641, mtu: 1280, log,
  });
  const relay = new RelayPath({
    serverUrl: 'http://127.0.0.1:9', machineKey: generateMachineKey().privateKey, log,
    wireguardPort: async () => undefined, acceptFrom: () => false, onInbound: () => undefined,
  });
  const paths = new PeerPaths({
    engine: () => engine, peers: () => list, relay, forced: () => false,
    selfKey: () => key.publicKey, selfPublicIp: () => undefined, log,
  });
  try {
    await engine.applyFull(selfNode(key.publicKey), list, undefined, [responder]);
    paths.start();
    // In use for their first IN_USE_WINDOW_MS: keepalive on, as before. Counted from 5 s in, for comparison.
    await sleep(5_000);
    const inUse = await count(Math.min(WINDOW_S, IN_USE_WINDOW_MS / 1000 - 10));
    const settleMs = Math.max(0, AFTER_SETTLE_S * 1000 - (5 + inUse.seconds) * 1000);
    await sleep(settleMs);
    const idle = list.filter((p) => engine.isIdle(p.nodeKey)).length;
    const window = await count(WINDOW_S);
    const withKeepalive = (await engine.stats()).size;
    return { firstMinute: inUse, ...window, peersIdle: idle, peersProgrammed: withKeepalive - 1 };
  } finally {
    paths.stop();
    await engine.close();
  }
}

const loadStart = loadavg()[0]!;
process.on('SIGINT', () => { labDown(); process.exit(130); });
labUp();
try {
  const list = peers();
  console.log(`idle bench: ${PEERS} peers, settle ${SETTLE_S} s (after: ${AFTER_SETTLE_S} s), window ${WINDOW_S} s`);
  const b = await before(list);
  console.log('before (25 s keepalive everywhere):', b);
  const a = await after(list);
  console.log('after (keepalive only while in use):', a);
  const result = {
    bench: 'idle',
    machine: { ...machine({ 'wireguard-go': ['wireguard-go', ['--version']] }), loadAvg1mStart: round(loadStart), loadAvg1mEnd: round(loadavg()[0]!) },
    peers: PEERS,
    windowS: WINDOW_S,
    settleS: SETTLE_S,
    afterSettleS: AFTER_SETTLE_S,
    inUseWindowS: IN_USE_WINDOW_MS / 1000,
    note: 'peers never answer (endpoints blackholed), so "before" counts handshake initiations (a node whose peers are offline); answering peers would cost 1 keepalive per peer per 25 s (40/s at 1,000) plus rekeys. Both phases include one responder peer (the node\'s own mapping upkeep). after.firstMinute: the same node while the peers are new (in use).',
    before: b,
    after: a,
    targetPerSecond: 1,
    meetsTarget: a.perSecond < 1,
    ratioAfterToBefore: b.perSecond > 0 ? round(a.perSecond / b.perSecond, 4) : null,
  };
  mkdirSync(resolve(here, 'results'), { recursive: true });
  writeFileSync(resolve(here, 'results/idle.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
} finally {
  labDown();
}

/**
 * `weft ping PEER`: ICMP echo over the tunnel (the system `ping`, one request at a time), and
 * after each reply the daemon's view of the peer's path, so a person sees which way the reply came
 * ("via 203.0.113.7:41641" direct, "via relay fra"), like `tailscale ping`. A reply that arrives
 * while a path change happens is reported with the path seen right after it.
 */
import { execFile } from 'node:child_process';
import type { Parsed } from '../args.js';
import { CliError, ExitCode } from '../exit-codes.js';
import type { LocalClient } from '../local-client.js';
import type { PeerStatus, Status } from '../../status.js';

/** One line of `weft ping --json`'s `replies`. */
export interface PingReply {
  seq: number;
  /** Round trip in ms; null = no reply within the wait. */
  rttMs: number | null;
  path: 'direct' | 'relay' | 'none';
  /** Direct: the peer's endpoint; relay: null (see `region`). */
  endpoint: string | null;
  region: string | null;
}

const REPLY_WAIT_S = 2;

/** The peer named by `target`: its name, tunnel IPv4, or node key. */
export function findPeer(peers: readonly PeerStatus[], target: string): PeerStatus | undefined {
  return peers.find((p) => p.name === target) ?? peers.find((p) => p.ipv4.split('/')[0] === target || p.nodeKey === target);
}

/** The round trip from `ping -c 1` output, or null when no reply came. */
export function parseRtt(output: string): number | null {
  const m = /time[=<]([\d.]+) ?ms/.exec(output);
  return m ? Number(m[1]) : null;
}

export function formatReply(name: string, ip: string, r: PingReply): string {
  if (r.rttMs === null) return `no reply from ${name} (${ip}) within ${REPLY_WAIT_S} s`;
  const via = r.path === 'relay' ? `relay ${r.region ?? '?'}` : r.path === 'direct' ? (r.endpoint ?? 'direct') : 'no known path';
  return `pong from ${name} (${ip}) via ${via} in ${r.rttMs} ms`;
}

function pingOnce(ip: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    execFile('ping', ['-n', '-c', '1', '-W', String(REPLY_WAIT_S), ip], { timeout: (REPLY_WAIT_S + 3) * 1000 }, (err, stdout) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new CliError('weft ping needs the system ping (iputils-ping) on PATH', ExitCode.Generic));
        return;
      }
      resolve(parseRtt(stdout));
    });
  });
}

export async function ping(args: Parsed, client: LocalClient): Promise<number> {
  const status = await client.call<Status>('GET', '/v1/status');
  const peer = findPeer(status.peers, args.target!);
  if (!peer) {
    throw new CliError(`no peer "${args.target}" (by name, tunnel IPv4 or node key)`, ExitCode.NoSuchPeer, 'weft status lists the peers');
  }
  const ip = peer.ipv4.split('/')[0]!;
  const replies: PingReply[] = [];
  for (let seq = 1; seq <= args.count!; seq++) {
    const started = Date.now();
    const rttMs = await pingOnce(ip);
    const now = findPeer((await client.call<Status>('GET', '/v1/status')).peers, peer.nodeKey) ?? peer;
    const reply: PingReply = {
      seq, rttMs, path: now.path, endpoint: now.path === 'direct' ? now.endpoint : null, region: now.path === 'relay' ? now.region ?? null : null,
    };
    replies.push(reply);
    if (!args.json) process.stdout.write(formatReply(peer.name, ip, reply) + '\n');
    const wait = 1000 - (Date.now() - started);
    if (seq < args.count! && wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  if (args.json) process.stdout.write(JSON.stringify({ peer: peer.name, ip, replies }, null, 2) + '\n');
  return replies.some((r) => r.rttMs !== null) ? ExitCode.Ok : ExitCode.NoReply;
}

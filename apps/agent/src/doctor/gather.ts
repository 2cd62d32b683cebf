/**
 * Collects what `weft doctor` judges (checks.ts), inside the daemon (root): the status it already
 * has, and what the host really holds, read with the usual tools (wg, ip, nft, /proc/sys). A tool
 * that is missing or fails becomes that check's finding, never an exception.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { nodePublicKeyOf } from '@weft/crypto';
import { parseWgDump } from '@weft/wg';
import type { DoctorFacts, IpRule, NftRuleset, RouteFacts, WgFacts } from './checks.js';
import type { Status } from '../status.js';

const run = promisify(execFile);

export type Runner = (cmd: string, args: string[]) => Promise<string>;
export const execRunner: Runner = async (cmd, args) => (await run(cmd, args, { timeout: 10_000, maxBuffer: 32 * 1024 * 1024 })).stdout;

export interface GatherInput {
  status: Status;
  localNodeKey: string | null;
  netmapAllowedIps: Record<string, string[]>;
  stalePeers: number[];
  staleAfterS?: number;
  /** The server's Date header and how long the request took; null = failed (error). */
  serverClock: () => Promise<{ date: Date; rttMs: number } | { error: string }>;
  /** Prefixes this node routes for others (checks.ts `routedPrefixes`); none can be configured yet. */
  routedPrefixes?: string[];
  runner?: Runner;
  /** Reads a /proc/sys file (tests: a fake). */
  readSysctl?: (path: string) => Promise<string>;
  now?: () => number;
}

const message = (err: unknown) => ((err as { stderr?: string }).stderr?.trim() || (err as Error).message).split('\n')[0]!;

export async function gather(g: GatherInput): Promise<DoctorFacts> {
  const exec = g.runner ?? execRunner;
  const iface = g.status.interface.name;
  let wg: WgFacts | null = null;
  let wgError: string | null = null;
  try {
    const dump = parseWgDump(await exec('wg', ['show', iface, 'dump']));
    wg = { publicKey: dump.privateKey ? nodePublicKeyOf(dump.privateKey) : null, peers: dump.peers.map((p) => ({ publicKey: p.publicKey, allowedIps: p.allowedIps })) };
  } catch (err) {
    wgError = message(err);
  }
  const routes: Record<string, RouteFacts> = {};
  await Promise.all(g.status.peers.flatMap((p) => [p.ipv4, p.ipv6]).map(async (addr) => {
    try {
      const r = (JSON.parse(await exec('ip', ['-j', ...(addr.includes(':') ? ['-6'] : []), 'route', 'get', addr])) as Array<{ dev?: string; table?: string; type?: string }>)[0];
      routes[addr] = { dev: r?.dev ?? (r?.type && r.type !== 'unicast' ? r.type : null), table: r?.table ?? null, error: null };
    } catch (err) {
      routes[addr] = { dev: null, table: null, error: message(err) };
    }
  }));
  const rules: IpRule[] = [];
  for (const family of [4, 6] as const) {
    try {
      const list = JSON.parse(await exec('ip', ['-j', family === 6 ? '-6' : '-4', 'rule', 'show'])) as Array<Omit<IpRule, 'family'>>;
      for (const r of list) rules.push({ ...r, family });
    } catch {
      /* no rules readable: the route check still sees where packets go */
    }
  }
  let nft: NftRuleset | null = null;
  let nftError: string | null = null;
  try {
    nft = JSON.parse(await exec('nft', ['-j', 'list', 'ruleset'])) as NftRuleset;
  } catch (err) {
    nftError = message(err);
  }
  const readSysctl = g.readSysctl ?? ((path: string) => readFile(path, 'utf8'));
  const sysctl = async (path: string) => {
    try {
      return (await readSysctl(path)).trim() === '1';
    } catch {
      return null;
    }
  };
  let udpReceiveBuffer: number | null = null;
  const port = g.status.interface.listenPort;
  if (port) {
    try {
      const sizes = [...(await exec('ss', ['-uanmH', `sport = :${port}`])).matchAll(/\brb(\d+)/g)].map((m) => Number(m[1]));
      if (sizes.length) udpReceiveBuffer = Math.min(...sizes);
    } catch {
      /* ss missing: not measured */
    }
  }
  const clock = await g.serverClock();
  const now = g.now ?? Date.now;
  let clockSkewS: number | null = null;
  let clockError: string | null = null;
  if ('error' in clock) clockError = clock.error;
  // The Date header has whole seconds and was stamped somewhere in the round trip.
  else clockSkewS = (clock.date.getTime() + clock.rttMs / 2 - now()) / 1000;
  return {
    status: g.status, localNodeKey: g.localNodeKey, wg, wgError, netmapAllowedIps: g.netmapAllowedIps, routes, rules, nft, nftError,
    listenPort: g.status.interface.listenPort, forwarding: { v4: await sysctl('/proc/sys/net/ipv4/ip_forward'), v6: await sysctl('/proc/sys/net/ipv6/conf/all/forwarding') },
    clockSkewS, clockError, stalePeers: g.stalePeers, staleAfterS: g.staleAfterS, routedPrefixes: g.routedPrefixes ?? [], udpReceiveBuffer,
  };
}

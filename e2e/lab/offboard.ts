/**
 * Offboarding measured on the real network (issue 11), shared by e2e/offboard-lab.test.ts and
 * bench/offboard-lab.ts: a user's devices join, every peer's WireGuard is watched (wg-watch.ts,
 * `wg show IFACE dump` every 10 ms in its namespace), `POST /api/v1/users/:id/offboard` is
 * called, and each peer's time is from the response having been read to the first poll that
 * shows none of the user's keys.
 */
import type { Host } from './host.js';
import { waitFor } from './wait.js';
import type { RestClient } from './weft-rest.js';
import { WeftAgent } from './weft.js';
import { watchWg } from './wg-watch.js';

export interface Victim {
  user: string;
  userId: number;
  agents: WeftAgent[];
  /** Their WireGuard public keys (base64, as `wg show` prints them). */
  keys: string[];
}

/**
 * Creates `user` through `api` and joins one device per host to `serverUrl`, each with a fresh
 * state dir (a new node; the host may have carried an earlier victim's, stopped).
 */
export async function joinVictim(api: RestClient, serverUrl: string, user: string, hosts: Host[]): Promise<Victim> {
  const created = await api.createUser(user);
  const authKey = await api.createAuthKey({ user, reusable: true, expiresIn: 0 });
  const agents = await Promise.all(hosts.map(async (h) => {
    const agent = await WeftAgent.start(h, { stateDir: h.tmpPath(`agent-${user}`) });
    await agent.upOk({ server: serverUrl, authKey, hostname: `${user}-${h.name}` });
    return agent;
  }));
  const keys = await Promise.all(agents.map(async (a) => (await a.wgDump())!.publicKey));
  return { user, userId: created.id, agents, keys };
}

export interface OffboardTiming {
  /** Per peer (in the order given): ms from the offboard response read to its WireGuard lacking every key of the user; negative = before the response was read. */
  perPeerMs: number[];
  /** The last peer's. */
  lastMs: number;
  /** The last peer's, from the request being sent (the call's own time included). */
  lastFromSentMs: number;
}

/**
 * Waits until every peer holds every key of the victim, then offboards it through `api` and
 * times the keys leaving each peer. `beforeCall` runs (awaited) just before the call, with the
 * watches running: e.g. breaking a replica's bus.
 */
export async function timeOffboard(o: { api: RestClient; victim: Victim; peers: WeftAgent[]; timeoutMs?: number; beforeCall?: () => Promise<void> }): Promise<OffboardTiming> {
  const { victim, peers } = o;
  const has = (s: { peers: string[] }) => victim.keys.every((k) => s.peers.includes(k));
  const lacks = (s: { peers: string[] }) => victim.keys.every((k) => !s.peers.includes(k));
  await waitFor(async () => {
    for (const p of peers) if (!has({ peers: ((await p.wgDump())?.peers ?? []).map((x) => x.publicKey) })) return false;
    return true;
  }, { timeoutMs: 20_000, intervalMs: 50, what: `every peer holds ${victim.user}'s keys` });
  const watches = await Promise.all(peers.map((p) => watchWg(p)));
  try {
    await o.beforeCall?.();
    const r = await o.api.userOperation(victim.userId, 'offboard');
    const returned = r.receivedAt!;
    const sentAt = r.sentAt!;
    const gone = await Promise.all(watches.map((w) => w.until(lacks, o.timeoutMs ?? 10_000)));
    const perPeerMs = gone.map((s) => s.at - returned);
    const last = Math.max(...gone.map((s) => s.at));
    return { perPeerMs, lastMs: last - returned, lastFromSentMs: last - sentAt };
  } finally {
    await Promise.all(watches.map((w) => w.stop()));
  }
}

/**
 * The content revision of a peer list (NetmapRevision): each node's stable fields hashed on their
 * own, and the list's revision the sum of those hashes modulo 2^128, so one node changing costs
 * one hash and the sum is the same whatever order nodes were added in, after a restart and on
 * every replica (the mapper's list is the same content there). The id is inside what is hashed,
 * so the sum is over distinct entries. Volatile fields (endpoints, online, lastSeen, nat) are not
 * in it: they change by the thousand in a reconnect storm, and a resume sends them as patches.
 */
import { createHash } from 'node:crypto';
import type { Peer } from '@weft/protocol';

const MOD = 1n << 128n;
/** Changes when what is hashed changes, so no old revision matches a new list by accident. */
const FORMAT = 'weft-peer-stable-1';

export class ListRevision {
  private readonly hashes = new Map<number, bigint>();
  private sum = 0n;
  private textCache: string | null = null;

  reset(peers: Iterable<Peer>): void {
    this.hashes.clear();
    this.sum = 0n;
    for (const p of peers) this.set(p);
  }

  set(peer: Peer): void {
    const h = stableHash(peer);
    const old = this.hashes.get(peer.id);
    if (old === h) return;
    this.hashes.set(peer.id, h);
    this.add(h - (old ?? 0n));
  }

  delete(id: number): void {
    const old = this.hashes.get(id);
    if (old === undefined) return;
    this.hashes.delete(id);
    this.add(-old);
  }

  /** The hash `peer` adds to the sum while listed (undefined = not listed). */
  hashOf(id: number): bigint | undefined {
    return this.hashes.get(id);
  }

  /** 32 lower-case hex digits. */
  get text(): string {
    return (this.textCache ??= this.sum.toString(16).padStart(32, '0'));
  }

  private add(d: bigint): void {
    this.sum = (((this.sum + d) % MOD) + MOD) % MOD;
    this.textCache = null;
  }
}

export function stableHash(p: Peer): bigint {
  const stable = JSON.stringify([FORMAT, p.id, p.name, p.user, p.nodeKey, p.ipv4, p.ipv6, p.allowedIps]);
  return BigInt(`0x${createHash('sha256').update(stable).digest('hex').slice(0, 32)}`);
}

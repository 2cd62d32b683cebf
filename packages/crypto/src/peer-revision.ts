/**
 * The endpoints revision of a peer list (NETMAP_ENDPOINTS_HEADER in @weft/protocol): the sum
 * modulo 2^128 of one hash per peer over its id and endpoints, as 32 lower-case hex digits. The
 * agent computes it from the peers it holds and the server from its list, so neither has to track
 * it through patches: a resume then leaves endpoints out when the two agree. Each peer's hash is
 * the first 128 bits of SHA-256 over `JSON.stringify(["weft-peer-endpoints-1", id, endpoints])`.
 */
import { createHash } from 'node:crypto';

const MOD = 1n << 128n;

export function peerEndpointsHash(id: number, endpoints: readonly string[]): bigint {
  return BigInt(`0x${createHash('sha256').update(JSON.stringify(['weft-peer-endpoints-1', id, endpoints])).digest('hex').slice(0, 32)}`);
}

/** `a + b` modulo 2^128 (either may be negative). */
export function addMod128(a: bigint, b: bigint): bigint {
  return (((a + b) % MOD) + MOD) % MOD;
}

export function revisionHex(sum: bigint): string {
  return sum.toString(16).padStart(32, '0');
}

/** The endpoints revision of `peers` (what the agent sends). */
export function endpointsRevision(peers: Iterable<{ id: number; endpoints: readonly string[] }>): string {
  let sum = 0n;
  for (const p of peers) sum = addMod128(sum, peerEndpointsHash(p.id, p.endpoints));
  return revisionHex(sum);
}

/**
 * Learns how each node's NAT maps its WireGuard port. Every node has the server's responder key
 * as a WireGuard peer (netmap `wgResponders`), so its own WireGuard sends handshake initiations
 * from its own port to the server's UDP (STUN) port. `WgResponder` (@weft/relay) authenticates
 * each to the sender's static key without answering; the source address of an authenticated one
 * is that node's reflexive endpoint, exactly what an outside observer sees.
 *
 * Senders are looked up in the mapper's memory (never the database per packet). A new reflexive
 * endpoint goes through state (`nodes.setReflexive`, the one write path): the first at once, then
 * at most one write per node per `intervalMs` with the latest value; one equal to what the node
 * already has (mapper memory, kept current across replicas by the outbox) is not written.
 */
import type { FastifyBaseLogger } from 'fastify';
import { parseEndpoint } from '@weft/protocol';
import { WgResponder, type ResponderKey, type WgResponderCounters } from '@weft/relay';
import type { Mapper } from './mapper/mapper.js';
import type { NodeWithUser } from './state/index.js';

export interface WgMappingOptions {
  key: ResponderKey;
  mapper: Pick<Mapper, 'nodeByWgKey'>;
  write: (nodeId: number, endpoint: string) => Promise<void>;
  intervalMs: number;
  log: Pick<FastifyBaseLogger, 'debug' | 'warn'>;
  maxClockSkewMs?: number;
}

/** A node with a write or its window running: later values wait in `pending`. */
interface Entry {
  /** Latest endpoint seen and not written yet. */
  pending: string | undefined;
  timer: NodeJS.Timeout | undefined;
}

export class WgMapping {
  private readonly responder: WgResponder<NodeWithUser>;
  private readonly entries = new Map<number, Entry>();
  private readonly writes = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly opts: WgMappingOptions) {
    this.responder = new WgResponder({
      key: opts.key,
      lookup: (k) => opts.mapper.nodeByWgKey(k.toString('hex')),
      ...(opts.maxClockSkewMs !== undefined ? { maxClockSkewMs: opts.maxClockSkewMs } : {}),
    });
  }

  get counters(): Readonly<WgResponderCounters> {
    return this.responder.counters;
  }

  /** Nodes with a write or its window running (tests). */
  get activeCount(): number {
    return this.entries.size;
  }

  /** A datagram that looks like an initiation arrived on the UDP port from `from`. Never throws. */
  receive(msg: Uint8Array, from: { address: string; port: number }): void {
    const got = this.responder.receive(msg, from.address);
    if (!got.ok) return;
    const endpoint = endpointOf(from);
    if (!endpoint) return;
    this.observed(got.initiator, endpoint);
  }

  /** Stops writing; waits for writes under way. */
  async close(): Promise<void> {
    this.closed = true;
    for (const e of this.entries.values()) clearTimeout(e.timer);
    await Promise.all([...this.writes]);
  }

  private observed(node: NodeWithUser, endpoint: string): void {
    if (this.closed) return;
    const e = this.entries.get(node.id);
    if (e) {
      e.pending = endpoint;
      return;
    }
    if (node.reflexiveEndpoint === endpoint) return;
    const entry: Entry = { pending: undefined, timer: undefined };
    this.entries.set(node.id, entry);
    this.write(node.id, entry, endpoint);
  }

  private write(nodeId: number, e: Entry, endpoint: string): void {
    this.opts.log.debug({ nodeId, endpoint }, 'reflexive endpoint of WireGuard port changed');
    const w = this.opts
      .write(nodeId, endpoint)
      .catch((err: unknown) => this.opts.log.warn({ err, nodeId }, 'failed to store reflexive endpoint'))
      .finally(() => {
        this.writes.delete(w);
        if (this.closed) return;
        e.timer = setTimeout(() => this.windowEnded(nodeId, e, endpoint), this.opts.intervalMs);
        e.timer.unref();
      });
    this.writes.add(w);
  }

  private windowEnded(nodeId: number, e: Entry, written: string): void {
    e.timer = undefined;
    const next = e.pending;
    e.pending = undefined;
    if (next && next !== written) return this.write(nodeId, e, next);
    this.entries.delete(nodeId);
  }
}

/** The sender as "ip:port" (an IPv4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d); null if not storable (zone ids). */
export function endpointOf(from: { address: string; port: number }): string | null {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(from.address)?.[1];
  const text = v4 ? `${v4}:${from.port}` : from.address.includes(':') ? `[${from.address}]:${from.port}` : `${from.address}:${from.port}`;
  return parseEndpoint(text).ok ? text : null;
}

/**
 * The peer list every node sees when no access policy is stored: each visible node's JSON in
 * cached chunks (what a netmap sends), its volatile fields in chunks of their own (what a resume
 * sends), and the list's content revision (what an agent resumes from). One write path keeps the
 * three in step.
 */
import type { Peer } from '@weft/protocol';
import { ListRevision } from './list-revision.js';
import { PeerChunks } from './peer-chunks.js';

export class SharedList {
  readonly peers = new PeerChunks();
  /** Each peer's PeerPatch with every volatile field (nat null = not known). */
  readonly volatile = new PeerChunks();
  private readonly rev = new ListRevision();
  /**
   * Nodes listed without their change having been broadcast yet (attached before their change
   * reached this replica): while any is, a delta cannot say the agent's list is the revision.
   */
  private readonly unannounced = new Set<number>();

  /** `entries` in id order: each peer with its JSON. */
  reset(entries: [Peer, string][]): void {
    this.unannounced.clear();
    this.peers.reset(entries.map(([p, json]) => [p.id, json]));
    this.volatile.reset(entries.map(([p]) => [p.id, volatileJson(p)]));
    this.rev.reset(entries.map(([p]) => p));
  }

  /**
   * `announced`: true = its change is being broadcast; false = listed for its own view only (others
   * hear of it when its change arrives); absent = as it was (a patch).
   */
  set(peer: Peer, json: string, announced?: boolean): void {
    this.peers.set(peer.id, json);
    this.volatile.set(peer.id, volatileJson(peer));
    this.rev.set(peer);
    if (announced === true) this.unannounced.delete(peer.id);
    else if (announced === false) this.unannounced.add(peer.id);
  }

  delete(id: number): void {
    this.peers.delete(id);
    this.volatile.delete(id);
    this.rev.delete(id);
    this.unannounced.delete(id);
  }

  /** The stable hash a listed node adds to the revision (per view class sums use it too). */
  hashOf(id: number): bigint | undefined {
    return this.rev.hashOf(id);
  }

  /** The list's revision (what a netmap sent now says). */
  get revision(): string {
    return this.rev.text;
  }

  /** The revision for a delta broadcast now: null while a listed node was not announced. */
  get deltaRevision(): string | null {
    return this.unannounced.size ? null : this.rev.text;
  }
}

/** A peer's volatile fields, all of them: its entry in a resume's `patch`. */
function volatileJson(p: Peer): string {
  return JSON.stringify({ id: p.id, endpoints: p.endpoints, online: p.online, lastSeen: p.lastSeen, nat: p.nat ?? null });
}

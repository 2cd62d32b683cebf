/**
 * Change descriptors: what a state write changed, in terms the mapper needs to compute deltas.
 * They carry ids (and small patches), not rows; a replica that reads one from the change outbox
 * reloads the rows it names.
 */
import type { NatVerdict, PeerPatch } from '@weft/protocol';

export type Change =
  /** Nodes created or changed in a way peers must reprogram (key, addresses, name, expiry renewed). */
  | { kind: 'nodes-upserted'; nodeIds: number[] }
  /** Nodes deleted: their sockets close with NodeDeleted and they leave every netmap. */
  | { kind: 'nodes-removed'; nodeIds: number[] }
  /** Nodes expired: their sockets close with NodeExpired and they leave every netmap. */
  | { kind: 'nodes-expired'; nodeIds: number[] }
  /** Nodes whose user was suspended: their sockets close with UserSuspended and they leave every netmap (kept). */
  | { kind: 'nodes-suspended'; nodeIds: number[] }
  /**
   * Small field changes: last seen, endpoints. `reflexive`: nodes whose reflexive endpoint this
   * change set (their own sessions get it as `self`; peers get it in `patches`' endpoints).
   */
  | { kind: 'nodes-patched'; patches: PeerPatch[]; reflexive?: { id: number; endpoint: string }[] }
  /** Online recomputed from sessions (state/presence.ts); `seq` orders them per node. */
  | { kind: 'presence'; nodes: PresenceChange[] }
  /**
   * Netcheck verdicts nodes reported to replica `origin` (null: the node left that replica). Kept
   * in memory only (state/nat.ts): other replicas apply a verdict unless they hold the node's
   * session themselves, and a null only over a verdict from the same origin. `at` is when the
   * origin heard it (ms since the epoch): of two replicas' verdicts the later report wins, however
   * late the outbox brings one (absent in changes from servers before it: the arrival time).
   */
  | { kind: 'nat'; origin: string; nodes: { id: number; nat: NatVerdict | null; at?: number }[] }
  /** The active access policy changed (set, rolled back or removed): the mapper reloads it and recomputes views. */
  | { kind: 'policy-changed'; version: number };

/** A node's presence after one write; a replica applies it only if `seq` is newer than what it has. */
export interface PresenceChange { id: number; online: boolean; lastSeen: string; seq: number }

export type ChangeSink = (change: Change) => void;

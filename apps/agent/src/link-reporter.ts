/**
 * Reports this node's WireGuard links to the control server (`links` messages), built from the
 * same PeerStatus list `weft status` shows, so whatever status learns (path reasons...) is what is
 * reported. Bounded and only on change:
 *
 * - a link's path or stale flag changing, or a link appearing or going, is sent at the next
 *   observation, but never sooner than LINK_REPORT_MIN_GAP_MS after the previous report (a
 *   flapping link costs at most one message per gap);
 * - counters (rx/tx, a new handshake, the endpoint) that moved are sent at most every
 *   LINK_REPORT_INTERVAL_MS;
 * - nothing changed: nothing sent.
 *
 * Only links worth reporting are kept: those with a recent handshake, a relay path, or stale; an
 * idle peer with no session and no traffic attempted is not a link in use. At most
 * MAX_LINKS_PER_NODE, stale ones first. A message holds at most MAX_LINKS_PER_MESSAGE links; a
 * larger report is split, the first part carrying `full` when it replaces everything.
 *
 * `stale` (the team's rule: handshake older than three minutes while traffic is expected): the
 * handshake is older than `staleAfterS` (LINK_STALE_AFTER_S unless WEFT_STALE_HANDSHAKE_S; a peer that never had one: first seen that long ago)
 * and the tx counter grew since the handshake was last fresh. Sticky until a fresh handshake.
 */
import { LINK_STALE_AFTER_S, MAX_LINKS_PER_MESSAGE, MAX_LINKS_PER_NODE, type LinksMessage, type LinkStat } from '@weft/protocol';
import type { PeerStatus } from './status.js';

export const LINK_REPORT_INTERVAL_MS = 30_000;
export const LINK_REPORT_MIN_GAP_MS = 5_000;

export interface LinkReporterOptions {
  /** Sends one message; false = not connected (the report is retried at the next observation). */
  send: (msg: LinksMessage) => boolean;
  now?: () => number;
  intervalMs?: number;
  minGapMs?: number;
  /** Handshake age after which a link whose tx grows is stale; default LINK_STALE_AFTER_S (180 s). */
  staleAfterS?: number;
}

interface Track {
  /** When this peer was first observed (ms). */
  firstSeen: number;
  /** tx bytes at the last observation where the handshake was fresh (or the first one). */
  txBaseline: number;
}

export class LinkReporter {
  private readonly now: () => number;
  private readonly intervalMs: number;
  private readonly minGapMs: number;
  readonly staleAfterS: number;
  private readonly tracks = new Map<number, Track>();
  /** What the server holds, as far as we know: by peer id. */
  private sent = new Map<number, LinkStat>();
  /** The next report must be `full` (new connection). */
  private needFull = true;
  private lastSentAt = -Infinity;
  /** Messages sent (for `weft metrics`). */
  reports = 0;
  /** Peers stale at the last observation (for `weft doctor`). */
  staleIds = new Set<number>();

  constructor(private readonly opts: LinkReporterOptions) {
    this.now = opts.now ?? Date.now;
    this.intervalMs = opts.intervalMs ?? LINK_REPORT_INTERVAL_MS;
    this.minGapMs = opts.minGapMs ?? LINK_REPORT_MIN_GAP_MS;
    this.staleAfterS = opts.staleAfterS ?? LINK_STALE_AFTER_S;
  }

  /** A new control connection: the next observation sends a full report at once. */
  reset(): void {
    this.needFull = true;
    this.sent = new Map();
    this.lastSentAt = -Infinity;
  }

  /** The links as they would be reported now (also what `observe` compares). */
  links(peers: readonly PeerStatus[]): LinkStat[] {
    const now = this.now();
    const seen = new Set<number>();
    const out: LinkStat[] = [];
    for (const p of peers) {
      seen.add(p.id);
      let t = this.tracks.get(p.id);
      if (!t) {
        t = { firstSeen: now, txBaseline: p.txBytes };
        this.tracks.set(p.id, t);
      }
      const ageS = p.handshakeAgeSeconds;
      const old = ageS === null ? now - t.firstSeen > this.staleAfterS * 1000 : ageS > this.staleAfterS;
      if (!old || p.txBytes < t.txBaseline) t.txBaseline = p.txBytes; // fresh, or the counters were reset
      const stale = old && p.txBytes > t.txBaseline;
      if (p.path === 'none' && !stale && (ageS === null || old)) continue; // idle: not a link in use
      out.push({ peer: p.id, path: p.path, endpoint: p.endpoint, handshakeAgeS: ageS, rxBytes: p.rxBytes, txBytes: p.txBytes, stale });
    }
    for (const id of this.tracks.keys()) if (!seen.has(id)) this.tracks.delete(id);
    this.staleIds = new Set(out.filter((l) => l.stale).map((l) => l.peer));
    if (out.length > MAX_LINKS_PER_NODE) {
      const rank = (l: LinkStat) => (l.stale ? 0 : l.path === 'relay' ? 1 : l.path === 'none' ? 2 : 3);
      out.sort((a, b) => rank(a) - rank(b) || a.peer - b.peer);
      out.length = MAX_LINKS_PER_NODE;
    }
    return out;
  }

  /** Called with the current peer statuses (every few seconds); sends what is due. */
  observe(peers: readonly PeerStatus[]): void {
    const now = this.now();
    const current = this.links(peers);
    const byPeer = new Map(current.map((l) => [l.peer, l]));
    let significant = this.needFull;
    let counters = false;
    const changed: LinkStat[] = [];
    for (const l of current) {
      const prev = this.sent.get(l.peer);
      if (!prev || prev.path !== l.path || prev.stale !== l.stale) {
        significant = true;
        changed.push(l);
      } else if (prev.rxBytes !== l.rxBytes || prev.txBytes !== l.txBytes || prev.endpoint !== l.endpoint || handshakeMoved(prev, l, now - this.lastSentAt)) {
        counters = true;
        changed.push(l);
      }
    }
    const removed = [...this.sent.keys()].filter((id) => !byPeer.has(id));
    if (removed.length > 0) significant = true;
    const since = now - this.lastSentAt;
    const due = (significant && since >= this.minGapMs) || (counters && since >= this.intervalMs);
    if (!due) return;
    const messages = this.needFull ? split(current, true, []) : split(changed, false, removed);
    for (const m of messages) {
      if (!this.opts.send(m)) return; // not connected: tried again at the next observation
      this.reports++;
    }
    this.needFull = false;
    this.lastSentAt = now;
    this.sent = byPeer;
  }
}

/**
 * A handshake newer than the one last sent (its age went down, or grew by less than the time since
 * the report): the peer rekeyed. Ages only counting up is not a change.
 */
function handshakeMoved(prev: LinkStat, cur: LinkStat, sinceMs: number): boolean {
  if (prev.handshakeAgeS === cur.handshakeAgeS) return false;
  if (prev.handshakeAgeS === null || cur.handshakeAgeS === null) return true;
  return cur.handshakeAgeS + 2 < prev.handshakeAgeS + Math.max(0, sinceMs / 1000);
}

function split(links: LinkStat[], full: boolean, removed: number[]): LinksMessage[] {
  const out: LinksMessage[] = [];
  for (let i = 0; i === 0 || i < links.length; i += MAX_LINKS_PER_MESSAGE) {
    out.push({ type: 'links', full: full && i === 0, links: links.slice(i, i + MAX_LINKS_PER_MESSAGE), ...(i === 0 && removed.length > 0 && { removed }) });
  }
  return out;
}

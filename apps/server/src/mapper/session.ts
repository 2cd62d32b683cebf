/**
 * One connected agent. Numbers every message it is sent (seq starts at 1 with the netmap) and
 * guards the server against a reader that does not keep up: what may be queued for the socket is
 * bounded by a small multiple of the agent's own netmap, resync requests are coalesced and rate
 * limited, and a socket over the bound is destroyed so its buffers go back at once.
 */
import type { WebSocket } from 'ws';
import { CloseCode } from '@weft/protocol';
import type { SendStats } from '../metrics.js';
import { deflateLast, storedPiece } from './deflate-piece.js';
import type { PeerChunks } from './peer-chunks.js';
import { RESYNC_BURST, RESYNC_INTERVAL_MS, SOCKET_CLOSE_GRACE_MS, SOCKET_QUEUE_FLOOR_BYTES, SOCKET_QUEUE_NETMAPS } from '../tunables.js';
import { ResyncLimiter } from './resync-limiter.js';

/** What became of a resync request (for logs and tests). */
export type ResyncOutcome = 'sent' | 'coalesced' | 'deferred' | 'refused';

export class Session {
  private seq = 0;
  closed = false;
  /** Bytes of the last netmap: the queue bound scales with it. */
  private netmapBytes = 0;
  /** A netmap is written to the socket but not yet taken by the kernel. */
  private netmapQueued = false;
  /**
   * Waiting for its netmap's turn (NetmapGate): nothing is sent meanwhile (the netmap, made when
   * its turn comes, holds every change until then), and resync requests fold into it.
   */
  private held = false;
  /**
   * Called once when a netmap written has left for the kernel, or the session ended (a list: a
   * resync of every session may write a netmap while another is still in flight).
   */
  private netmapLeft: (() => void)[] = [];
  private readonly resyncs = new ResyncLimiter(RESYNC_BURST, RESYNC_INTERVAL_MS);
  private resyncTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly nodeId: number,
    private readonly socket: WebSocket,
    /** Totals this session adds its sends to; absent = not counted. */
    private readonly stats?: SendStats,
    /** JSON of the netmap's `regions` for this agent (regions.ts); absent = none listed. */
    readonly regionsJson?: string,
    /** The agent reads netmaps and resumes as binary raw deflate (NETMAP_ENCODING_HEADER). */
    readonly deflate = false,
  ) {
    socket.once('close', () => {
      this.closed = true;
      this.left();
      clearTimeout(this.resyncTimer);
      clearTimeout(this.killTimer);
    });
  }

  /** Most bytes this socket may have queued before it is dropped. */
  get queueLimit(): number {
    return Math.max(SOCKET_QUEUE_FLOOR_BYTES, SOCKET_QUEUE_NETMAPS * this.netmapBytes);
  }

  /** `rest` is the message's JSON after `"seq":N` (starting with "," or "}"). */
  send(type: 'netmap' | 'delta', rest: string): void {
    if (this.held || !this.ready()) return;
    this.seq++;
    const msg = `{"type":"${type}","seq":${this.seq}${rest}`;
    this.socket.send(msg);
    if (this.stats) this.count(type, Buffer.byteLength(msg));
    this.checkQueue();
  }

  /**
   * A netmap or resume: `head`, then every entry of `list` but this node's (the JSON array's
   * body), then `tail`, all of it the JSON after `"seq":N`. As text, one message sent as one
   * WebSocket fragment per part, so the large shared parts (the cached peer list) are written as
   * they are, never copied into a per-session string. To an agent that reads deflate, one binary
   * message of the list's cached deflate pieces between a head and a tail as stored blocks: the
   * list is compressed once for every session, and nothing is compressed per session.
   */
  sendList(type: 'netmap' | 'resume', head: string, list: PeerChunks, tail: string): void {
    this.held = false;
    if (!this.ready()) return;
    this.seq++;
    const start = `{"type":"${type}","seq":${this.seq}${head}`;
    if (!this.deflate) {
      const parts = [Buffer.from(start), ...list.partsExcept(this.nodeId), Buffer.from(tail)];
      const bytes = parts.reduce((n, p) => n + p.length, 0);
      return this.write(type, parts, false, bytes);
    }
    const { pieces, jsonBytes } = list.deflatedExcept(this.nodeId);
    this.write(type, [storedPiece(start), ...pieces, storedPiece(tail, true)], true, Buffer.byteLength(start) + jsonBytes + Buffer.byteLength(tail));
  }

  /** A resume that is one text (the compact one: no shared list in it); compressed whole for an agent that reads deflate. */
  sendText(type: 'resume', rest: string): void {
    this.held = false;
    if (!this.ready()) return;
    this.seq++;
    const text = `{"type":"${type}","seq":${this.seq}${rest}`;
    this.write(type, [this.deflate ? deflateLast(text) : Buffer.from(text)], this.deflate, Buffer.byteLength(text));
  }

  /**
   * Writes one message, a fragment per part; `jsonBytes` is its JSON's length (the queue bound
   * follows it, compressed or not: deltas that follow are text).
   */
  private write(type: 'netmap' | 'resume', parts: Buffer[], binary: boolean, jsonBytes: number): void {
    const last = parts.length - 1;
    this.netmapBytes = jsonBytes;
    this.netmapQueued = true;
    if (this.stats) this.count(type, parts.reduce((n, p) => n + p.length, 0));
    // The last fragment's callback runs once the whole message has left for the kernel.
    const flushed = (err?: Error) => {
      this.netmapQueued = false;
      this.left();
      if (this.stats && !err) {
        this.stats.netmapsFlushed++;
        this.stats.lastNetmapFlushedAt = Date.now();
      }
    };
    // ws writes each fragment with its own writev; corked, the whole netmap leaves in one (a
    // reconnect storm sends one per agent). ws keeps its TCP socket in `_socket`, not public API:
    // without it the fragments are simply written one by one.
    const tcp = (this.socket as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    tcp?.cork();
    parts.forEach((part, i) => this.socket.send(part, { binary, fin: i === last }, i === last ? flushed : undefined));
    tcp?.uncork();
    this.checkQueue();
  }

  /**
   * The agent asked for a fresh netmap (it saw a seq gap). A netmap still queued answers it
   * already; past the rate limit the answer waits for its turn, and requests meanwhile fold into
   * it. A healthy agent never asks again before its netmap arrived, so more than RESYNC_BURST
   * requests waiting is a misbehaving client, and it is dropped.
   */
  requestNetmap(sendNetmap: () => void): ResyncOutcome {
    if (this.closed) return 'refused';
    if (this.netmapQueued || this.held || this.resyncTimer) {
      if (this.resyncs.unanswered() >= RESYNC_BURST) {
        this.drop(CloseCode.TryAgainLater, 'too many resync requests; reconnect');
        return 'refused';
      }
      this.resyncs.fold();
      return this.resyncTimer ? 'deferred' : 'coalesced';
    }
    const waitMs = this.resyncs.take(Date.now());
    if (waitMs === 0) {
      sendNetmap();
      return 'sent';
    }
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = undefined;
      if (!this.closed && !this.netmapQueued && !this.held) sendNetmap();
    }, waitMs);
    this.resyncTimer.unref();
    return 'deferred';
  }

  /** Its netmap waits for its turn (NetmapGate): until it is written, nothing else is sent. */
  hold(): void {
    this.held = true;
  }

  /** Waiting for its netmap's turn. */
  get waiting(): boolean {
    return this.held;
  }

  /** A netmap written has not all left for the kernel yet. */
  get netmapInFlight(): boolean {
    return this.netmapQueued;
  }

  /**
   * `fn` is called once, when the netmap just written has left for the kernel or the session
   * ended: at once if nothing is in flight (it ended, or sent nothing).
   */
  afterNetmap(fn: () => void): void {
    this.netmapLeft.push(fn);
    if (this.closed || !this.netmapQueued) this.left();
  }

  private left(): void {
    const fns = this.netmapLeft;
    this.netmapLeft = [];
    for (const fn of fns) fn();
  }

  private count(type: 'netmap' | 'resume' | 'delta', bytes: number): void {
    const s = this.stats!;
    if (type === 'netmap') {
      s.netmaps++;
      s.netmapBytes += bytes;
    } else if (type === 'resume') {
      s.resumes++;
      s.resumeBytes += bytes;
    } else {
      s.deltas++;
      s.deltaBytes += bytes;
    }
  }

  private ready(): boolean {
    if (this.closed) return false;
    return this.checkQueue();
  }

  /** Drops the socket when more is queued than this agent can need (checked before and after each send). */
  private checkQueue(): boolean {
    if (this.socket.bufferedAmount <= this.queueLimit) return true;
    this.drop(CloseCode.TryAgainLater, 'reader too slow; reconnect');
    return false;
  }

  /** Restarts numbering for a resync: the fresh netmap is seq 1 again. */
  resetSeq(): void {
    this.seq = 0;
    this.resyncs.answered();
  }

  close(code: number = CloseCode.GoingAway, reason = ''): void {
    this.drop(code, reason);
  }

  /**
   * Sends the close code (queued behind whatever the peer has not read) and destroys the socket
   * if the peer has not completed the close shortly after: ws's own close waits 30 s for a peer
   * that does not read, holding every queued byte meanwhile.
   */
  private drop(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.resyncTimer);
    this.left();
    this.socket.close(code, reason);
    this.killTimer = setTimeout(() => this.socket.terminate(), SOCKET_CLOSE_GRACE_MS);
    this.killTimer.unref();
  }
}

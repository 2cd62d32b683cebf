/**
 * The client side of the relay over UDP (relay-udp.ts): one UDP socket to the relay's UDP port,
 * bound with the ticket the WebSocket session handed out. It rebinds every `bindIntervalMs` (which
 * also keeps the client's NAT mapping open); while unanswered, after `retryMs`, doubling up to
 * `bindIntervalMs` (UDP blocked costs one datagram per interval, and a lifted block is noticed
 * within one), and is
 * `usable` while a BIND_ACK came within `deadAfterMs`: a caller sends over it then, over the
 * WebSocket otherwise. Datagrams from anywhere but the relay's address are dropped.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { bindMacValid, encodeBind, encodeSendHeader, readBindHeader, readRecv, UDP_BIND, UDP_BIND_ACK, UDP_RECV, type UdpTicket } from './relay-udp.js';

export interface RelayUdpClientOptions {
  ticket: UdpTicket;
  /** The relay's IP address (a literal: the caller resolved the name it reached the WebSocket at). */
  host: string;
  onPacket: (from: Buffer, packet: Buffer) => void;
  /** Called when `usable` changes. */
  onUsable?: (usable: boolean) => void;
  bindIntervalMs: number;
  retryMs: number;
  deadAfterMs: number;
  /** Socket buffer sizes asked for (the kernel caps them at net.core.{r,w}mem_max). */
  bufferBytes?: number;
}

export class RelayUdpClient {
  readonly counters = { sent: 0, received: 0, binds: 0, acks: 0, dropped: 0 };
  private seq = 0n;
  /** Binds sent since the last BIND_ACK. */
  private unanswered = 0;
  private lastAckAt = 0;
  private wasUsable = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** SEND headers by the destination key's object (callers pass the same one for a peer each time): no per-packet string. */
  private readonly headers = new WeakMap<Uint8Array, Buffer>();

  private constructor(private readonly socket: Socket, private readonly opts: RelayUdpClientOptions) {}

  /** Opens the socket and sends the first BIND; `usable` once the relay answers. */
  static async open(opts: RelayUdpClientOptions): Promise<RelayUdpClient> {
    const socket = createSocket({ type: isIPv6(opts.host) ? 'udp6' : 'udp4', ...(opts.bufferBytes ? { recvBufferSize: opts.bufferBytes, sendBufferSize: opts.bufferBytes } : {}) });
    // Connected to the relay: a send names no address (no per-datagram dns.lookup of the literal
    // and the tick it defers the send by; no route lookup in the kernel), and the kernel drops
    // datagrams from anywhere else before they cost a callback.
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(opts.ticket.port, opts.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const c = new RelayUdpClient(socket, opts);
    socket.on('message', (msg, rinfo) => c.onMessage(msg, rinfo));
    // A send the kernel refuses (no route, ICMP unreachable) is a lost datagram; BINDs retry.
    socket.on('error', () => {});
    c.bind();
    return c;
  }

  /** A BIND_ACK came recently: packets sent here reach the relay, and it sends ours here. */
  get usable(): boolean {
    return !this.closed && this.lastAckAt > 0 && Date.now() - this.lastAckAt < this.opts.deadAfterMs;
  }

  /**
   * The path to the relay may have changed under us (this host's NAT flushed its mappings, or the
   * host roamed): not `usable` until the relay answers a BIND sent now, so callers use the
   * WebSocket meanwhile instead of sending into a mapping that is gone.
   */
  rebindNow(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.lastAckAt = 0;
    this.unanswered = 0;
    this.bind();
  }

  /**
   * Sends `packet` to the node key `to` (32 bytes) through the relay. The SEND header is cached
   * per `to` object: pass the same bytes object for a peer each time (a new one costs a header).
   */
  send(to: Uint8Array, packet: Uint8Array): void {
    let header = this.headers.get(to);
    if (!header) {
      header = encodeSendHeader(this.opts.ticket.id, to);
      this.headers.set(to, header);
    }
    this.socket.send([header, packet]);
    this.counters.sent++;
  }

  /** Forgets a peer's cached SEND header (the peer left): `to` is the object its packets were sent with. */
  forget(to: Uint8Array): void {
    this.headers.delete(to);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.noteUsable();
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }

  private bind(): void {
    if (this.closed) return;
    this.noteUsable();
    this.seq++;
    this.counters.binds++;
    this.socket.send(encodeBind(UDP_BIND, this.opts.ticket.id, this.opts.ticket.secret, this.seq));
    const wait = this.usable ? this.opts.bindIntervalMs : Math.min(this.opts.bindIntervalMs, this.opts.retryMs * 2 ** Math.min(this.unanswered, 20));
    this.unanswered++;
    this.timer = setTimeout(() => this.bind(), wait);
    this.timer.unref();
  }

  private onMessage(msg: Buffer, rinfo: { address: string; port: number }): void {
    if (rinfo.port !== this.opts.ticket.port || !sameAddress(rinfo.address, this.opts.host)) {
      this.counters.dropped++;
      return;
    }
    if (msg[0] === UDP_RECV) {
      const r = readRecv(msg);
      if (!r) return;
      this.counters.received++;
      this.opts.onPacket(r.from, r.packet);
      return;
    }
    if (msg[0] === UDP_BIND_ACK) {
      const head = readBindHeader(msg, UDP_BIND_ACK);
      if (!head.ok || !head.id.equals(this.opts.ticket.id) || head.seq > this.seq || !bindMacValid(msg, this.opts.ticket.secret)) {
        this.counters.dropped++;
        return;
      }
      this.counters.acks++;
      const first = this.unanswered > 1 || this.lastAckAt === 0;
      this.unanswered = 0;
      this.lastAckAt = Date.now();
      this.noteUsable();
      // Bound at last: from now on at the steady interval.
      if (first) {
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.bind(), this.opts.bindIntervalMs);
        this.timer.unref();
      }
      return;
    }
    this.counters.dropped++;
  }

  private noteUsable(): void {
    const now = this.usable;
    if (now === this.wasUsable) return;
    this.wasUsable = now;
    this.opts.onUsable?.(now);
  }
}

function sameAddress(a: string, b: string): boolean {
  return a === b || a === `::ffff:${b}` || b === `::ffff:${a}`;
}

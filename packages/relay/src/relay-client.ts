/**
 * The client side of the packet relay, over an already-open WebSocket (the caller dials it with
 * its machine token: this package knows nothing of credentials). Sends packets addressed by
 * destination node key and hands received ones to `onPacket` with the sender's key as the server
 * stamped it. Its own queue is bounded like the server's: a packet that would take the socket's
 * unsent bytes past `maxQueueBytes` is dropped (drop newest) and counted.
 *
 * With a server of frame version 3 on (SERVER_INFO), it sends CLIENT_INFO, and packets sent within
 * one event-loop turn leave as one SEND_BATCH message at setImmediate (packets read from UDP
 * sockets in one poll phase are one turn); the server then batches what it sends here too.
 */
import {
  BatchWriter, batchEntry, encodeClientInfo, encodeFrame, FRAME_PEER_GONE, FRAME_PEER_PRESENT, FRAME_RECV_BATCH, FRAME_RECV_PACKET, FRAME_SEND_BATCH, FRAME_SEND_PACKET, FRAME_SERVER_INFO, KEY_BYTES,
  MAX_BATCH_PACKET_BYTES, MAX_PACKET_BYTES, readServerFrame, RELAY_VERSION_BATCH, type PeerGoneReason,
} from './relay-frame.js';
import { RELAY_QUEUE_BYTES } from './tunables.js';
import type { UdpTicket } from './relay-udp.js';

/** The part of a `ws` client WebSocket used here. */
export interface RelayClientSocket {
  readonly bufferedAmount: number;
  send(data: Buffer, options: { binary: true }): void;
  close(code?: number, reason?: string): void;
  on(event: 'message', fn: (data: Buffer, isBinary: boolean) => void): unknown;
}

export interface RelayClientHandlers {
  /** A packet from the peer with node key `from` (32 bytes; a view valid during the call). */
  onPacket: (from: Buffer, packet: Buffer) => void;
  /** The server says `key` cannot be reached (sent once until a packet to it gets through again). */
  onPeerGone?: (key: Buffer, reason: PeerGoneReason) => void;
  /** A peer the server said was not connected has connected (`key`: a view valid during the call). */
  onPeerPresent?: (key: Buffer) => void;
  /** The server's first frame: our node key as it authenticated us, its packet limit, and a UDP ticket when it serves UDP. */
  onServerInfo?: (info: { key: Buffer; version: number; maxPacketBytes: number; udp?: UdpTicket }) => void;
  /** The server sent something that is not a server frame; the client closes the socket. */
  onProtocolError?: (reason: string) => void;
}

export interface RelayClientCounters {
  sent: number;
  received: number;
  /** SEND_BATCH messages sent (each more than one packet). */
  batchesSent: number;
  dropped: { queueFull: number; tooBig: number };
}

export class RelayClient {
  readonly counters: RelayClientCounters = { sent: 0, received: 0, batchesSent: 0, dropped: { queueFull: 0, tooBig: 0 } };
  maxPacketBytes = MAX_PACKET_BYTES;
  /** Set when the server takes batches (SERVER_INFO version 3 on). */
  private out: BatchWriter | undefined;
  private flushQueued = false;
  private readonly flush = () => {
    this.flushQueued = false;
    this.write(this.out?.take());
  };

  constructor(private readonly socket: RelayClientSocket, private readonly handlers: RelayClientHandlers, private readonly maxQueueBytes = RELAY_QUEUE_BYTES) {
    socket.on('message', (data, isBinary) => this.onMessage(data, isBinary));
  }

  /**
   * Sends one packet to the peer with node key `to`; false when it was dropped here. The packet is
   * copied at once; `to` is kept until the batch leaves (this turn), so it must not change before.
   */
  send(to: Uint8Array, packet: Uint8Array): boolean {
    if (to.length !== KEY_BYTES) throw new RangeError(`destination key must be ${KEY_BYTES} bytes`);
    if (packet.length > this.maxPacketBytes) {
      this.counters.dropped.tooBig++;
      return false;
    }
    const out = this.out;
    if (this.socket.bufferedAmount + (out?.pendingBytes ?? 0) + packet.length > this.maxQueueBytes) {
      this.counters.dropped.queueFull++;
      return false;
    }
    this.counters.sent++;
    if (out && packet.length <= MAX_BATCH_PACKET_BYTES) {
      // Copied now: the caller may reuse its buffers once send returns.
      this.write(out.add(to, Buffer.from(packet)));
      if (!this.flushQueued) {
        this.flushQueued = true;
        setImmediate(this.flush);
      }
      return true;
    }
    this.write(out?.take());
    this.socket.send(encodeFrame(FRAME_SEND_PACKET, to, packet), { binary: true });
    return true;
  }

  private write(frame: Buffer | undefined): void {
    if (!frame) return;
    if (frame[0] === FRAME_SEND_BATCH) this.counters.batchesSent++;
    this.socket.send(frame, { binary: true });
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    const read = isBinary ? readServerFrame(data) : ({ ok: false, reason: 'text message on the relay socket' } as const);
    if (!read.ok) {
      this.handlers.onProtocolError?.(read.reason);
      this.socket.close(1002, read.reason);
      return;
    }
    const f = read.frame;
    if (f.type === FRAME_RECV_PACKET) {
      this.counters.received++;
      this.handlers.onPacket(f.key, f.body);
    } else if (f.type === FRAME_RECV_BATCH) {
      for (let i = 0; i < f.entries.offsets.length; i++) {
        const { key, body } = batchEntry(f.entries, i);
        this.counters.received++;
        this.handlers.onPacket(key, body);
      }
    } else if (f.type === FRAME_PEER_GONE) this.handlers.onPeerGone?.(f.key, f.reason);
    else if (f.type === FRAME_PEER_PRESENT) this.handlers.onPeerPresent?.(f.key);
    else if (f.type === FRAME_SERVER_INFO) {
      this.maxPacketBytes = Math.min(MAX_PACKET_BYTES, f.maxPacketBytes);
      if (f.version >= RELAY_VERSION_BATCH && !this.out) {
        this.socket.send(encodeClientInfo(), { binary: true });
        this.out = new BatchWriter(FRAME_SEND_BATCH, FRAME_SEND_PACKET);
      }
      this.handlers.onServerInfo?.(f);
    }
  }
}

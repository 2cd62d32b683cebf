/** A RelaySocket that records what the relay sends it, for the relay core's tests (no WebSocket). */
import { EventEmitter } from 'node:events';
import { batchEntry, encodeFrame, FRAME_RECV_BATCH, FRAME_RECV_PACKET, FRAME_SEND_PACKET, FRAME_SERVER_INFO, readServerFrame, type RelaySocket, type ServerFrame, type UdpTicket } from '../src/index.js';

export class FakeSocket extends EventEmitter implements RelaySocket {
  bufferedAmount = 0;
  sent: Buffer[] = [];
  closed: { code: number; reason: string } | null = null;
  pings = 0;
  send(data: Buffer): void {
    this.sent.push(Buffer.from(data));
  }
  ping(): void {
    this.pings++;
  }
  close(code = 1000, reason = ''): void {
    this.closed ??= { code, reason };
    this.emit('close');
  }
  terminate(): void {
    this.emit('close');
  }
  /** Everything sent, decoded (throws on a frame that does not decode). */
  frames(): ServerFrame[] {
    return this.sent.map((b) => {
      const r = readServerFrame(b);
      if (!r.ok) throw new Error(r.reason);
      return r.frame;
    });
  }
  /** The packets sent (RECV_PACKETs, and the entries of RECV_BATCHes): from whom (the first byte of the key) and the body. */
  packets(): { from: number; body: string }[] {
    return this.frames().flatMap((f) => {
      if (f.type === FRAME_RECV_PACKET) return [{ from: f.key[0]!, body: f.body.toString() }];
      if (f.type !== FRAME_RECV_BATCH) return [];
      return f.entries.offsets.map((_, i) => {
        const e = batchEntry(f.entries, i);
        return { from: e.key[0]!, body: e.body.toString() };
      });
    });
  }
  /** The client sends a packet to `dst`. */
  packet(dst: Buffer, body: Buffer | string): void {
    this.emit('message', encodeFrame(FRAME_SEND_PACKET, dst, Buffer.from(body)), true);
  }
  /** The UDP ticket of the SERVER_INFO greeting. */
  ticket(): UdpTicket {
    const info = this.frames()[0];
    if (info?.type !== FRAME_SERVER_INFO || !info.udp) throw new Error('no UDP ticket in SERVER_INFO');
    return info.udp;
  }
}

/** A node key made of one repeated byte. */
export const key = (n: number): Buffer => Buffer.alloc(32, n);

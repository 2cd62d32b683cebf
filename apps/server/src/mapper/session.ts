/**
 * One connected agent. Numbers every message it is sent (seq starts at 1 with the netmap) and
 * guards the server against a reader that does not keep up.
 */
import type { WebSocket } from 'ws';
import { CloseCode } from '@weft/protocol';

/** A socket with more than this queued is dropped; the agent reconnects and resyncs. */
const MAX_BUFFERED_BYTES = 32 * 1024 * 1024;

export class Session {
  private seq = 0;
  closed = false;

  constructor(
    readonly nodeId: number,
    private readonly socket: WebSocket,
  ) {}

  /** `rest` is the message's JSON after `"seq":N` (starting with "," or "}"). */
  send(type: 'netmap' | 'delta', rest: string): void {
    if (this.closed) return;
    if (this.socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.close(1013, 'reader too slow; reconnect');
      return;
    }
    this.seq++;
    this.socket.send(`{"type":"${type}","seq":${this.seq}${rest}`);
  }

  /** Restarts numbering for a resync: the fresh netmap is seq 1 again. */
  resetSeq(): void {
    this.seq = 0;
  }

  close(code: number = CloseCode.GoingAway, reason = ''): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close(code, reason);
  }
}

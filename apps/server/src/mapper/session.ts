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
    if (!this.ready()) return;
    this.seq++;
    this.socket.send(`{"type":"${type}","seq":${this.seq}${rest}`);
  }

  /**
   * Like send, with the JSON after `"seq":N` in parts: one text message sent as one WebSocket
   * fragment per part, so large shared parts (the cached peer list) are written as they are,
   * never copied into a per-session string. The receiver sees one message.
   */
  sendParts(type: 'netmap' | 'delta', rest: (string | Buffer)[]): void {
    if (!this.ready()) return;
    this.seq++;
    const parts = [`{"type":"${type}","seq":${this.seq}`, ...rest];
    parts.forEach((part, i) => this.socket.send(part, { binary: false, fin: i === parts.length - 1 }));
  }

  private ready(): boolean {
    if (this.closed) return false;
    if (this.socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.close(1013, 'reader too slow; reconnect');
      return false;
    }
    return true;
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

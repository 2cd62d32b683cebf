/**
 * An agent WebSocket that never reads: a raw TCP connection that does the opening handshake by
 * hand, stops reading once the server answered 101, and can still send (masked) text frames. The
 * kernel's receive buffer fills and everything else the server sends stays queued on its side,
 * the way a stalled or hostile client behaves. Used by the slow-reader tests and bench/slow-reader.ts.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export class StalledSocket {
  private constructor(private readonly tcp: Socket) {}

  /** Resolves once the server answered 101 Switching Protocols (rejects on any other answer). */
  static open(serverUrl: string, token: string): Promise<StalledSocket> {
    const url = new URL(serverUrl);
    return new Promise((resolve, reject) => {
      const tcp = connect({ host: url.hostname, port: Number(url.port) });
      tcp.on('error', reject);
      tcp.once('connect', () => {
        tcp.write([
          'GET /agent/v1 HTTP/1.1', `Host: ${url.host}`, 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13',
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`, `Authorization: Bearer ${token}`, '', '',
        ].join('\r\n'));
      });
      tcp.once('data', (chunk: Buffer) => {
        // Never read again: whatever the server sends from here on piles up.
        tcp.pause();
        const status = chunk.subarray(0, 12).toString();
        if (status !== 'HTTP/1.1 101') return reject(new Error(`upgrade refused: ${chunk.toString().split('\r\n')[0]}`));
        tcp.removeListener('error', reject);
        tcp.on('error', () => {});
        resolve(new StalledSocket(tcp));
      });
    });
  }

  /** Sends one client text frame (masked, as RFC 6455 requires of clients). */
  sendText(text: string): void {
    const payload = Buffer.from(text);
    if (payload.length > 125) throw new Error('StalledSocket only sends short frames');
    const mask = randomBytes(4);
    const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
    this.tcp.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
  }

  /** This end's port: the server sees it as the remote port. */
  get localPort(): number {
    return this.tcp.localPort ?? 0;
  }

  get destroyed(): boolean {
    return this.tcp.destroyed;
  }

  destroy(): void {
    this.tcp.destroy();
  }
}

/**
 * A real relay client for tests and benchmarks: the `ws` WebSocket to `GET /api/v1/relay` with a
 * machine token in the Authorization header (as the agent dials it), wrapped in @weft/relay's
 * RelayClient. Records what arrives.
 */
import WebSocket from 'ws';
import { keyBytes, signMachineToken, type MachinePrivateKey, type NodePublicKey } from '@weft/crypto';
import { RELAY_HTTP_PATH, RelayClient, type PeerGoneReason } from '@weft/relay';

export const RELAY_PATH = RELAY_HTTP_PATH;

export class RelayPeer {
  readonly packets: { from: Buffer; packet: Buffer }[] = [];
  readonly gone: { key: Buffer; reason: PeerGoneReason }[] = [];
  info: { key: Buffer; version: number; maxPacketBytes: number } | null = null;
  closed: { code: number; reason: string } | null = null;
  /** Called for every packet (benchmarks count instead of keeping). */
  onPacket: ((from: Buffer, packet: Buffer) => void) | null = null;
  keep = true;
  readonly client: RelayClient;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: WebSocket) {
    this.client = new RelayClient(socket, {
      onPacket: (from, packet) => {
        if (this.onPacket) this.onPacket(from, packet);
        if (this.keep) this.packets.push({ from: Buffer.from(from), packet: Buffer.from(packet) });
        this.wake();
      },
      onPeerGone: (key, reason) => {
        this.gone.push({ key: Buffer.from(key), reason });
        this.wake();
      },
      onServerInfo: (info) => {
        this.info = { ...info, key: Buffer.from(info.key) };
        this.wake();
      },
    });
    socket.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
  }

  /**
   * Opens a relay socket as the machine `machineKey`; resolves once the server's first frame has
   * arrived. Rejects with `refused` (HTTP status and parsed body) when the upgrade is refused.
   */
  static open(serverUrl: string, machineKey: MachinePrivateKey, headers: Record<string, string> = {}): Promise<RelayPeer> {
    return signMachineToken(machineKey).then(
      (token) =>
        new Promise<RelayPeer>((resolve, reject) => {
          const ws = new WebSocket(`${serverUrl.replace(/^http/, 'ws')}${RELAY_PATH}`, { headers: { authorization: `Bearer ${token}`, ...headers }, generateMask: (m: Buffer) => void m.fill(0) });
          const peer = new RelayPeer(ws);
          ws.on('unexpected-response', (_req, res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString();
              let body: unknown = text;
              try {
                body = JSON.parse(text);
              } catch { /* not JSON */ }
              reject(Object.assign(new Error(`relay upgrade refused: HTTP ${res.statusCode}`), { refused: { status: res.statusCode, type: res.headers['content-type'], body } }));
              ws.terminate();
            });
          });
          ws.on('error', reject);
          ws.on('open', () => peer.waitFor(() => peer.info !== null || peer.closed !== null, 5000, 'server info').then(() => resolve(peer), reject));
        }),
    );
  }

  send(to: NodePublicKey | Uint8Array, packet: Uint8Array): boolean {
    return this.client.send(typeof to === 'string' ? keyBytes(to) : to, packet);
  }

  close(): void {
    this.socket.close();
  }

  async waitFor(pred: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; packets=${this.packets.length} gone=${this.gone.length} closed=${JSON.stringify(this.closed)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

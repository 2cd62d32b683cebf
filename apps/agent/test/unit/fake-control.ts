/**
 * A stand-in control server on a loopback port for the agent's unit tests: real HTTP and a real
 * WebSocket, machine tokens verified with @weft/crypto, behaviour scripted by the test.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { verifyMachineToken } from '@weft/crypto';
import type { AgentMessage, RegisterRequest, ServerMessage } from '@weft/protocol';

export type RegisterReply = { status: number; body: unknown };

export class FakeControl {
  url = '';
  registers: RegisterRequest[] = [];
  onRegister: (req: RegisterRequest, n: number) => RegisterReply = () => ({ status: 500, body: {} });
  /** POST /agent/v1/logout calls, by the machine key their token proved. */
  logouts: string[] = [];
  onLogout: (machineKey: string) => RegisterReply = () => ({ status: 200, body: { deleted: 1 } });
  /** Before an upgrade with a valid token: a reply here refuses it with that status and body. */
  onUpgrade: () => RegisterReply | null = () => null;
  /** Upgrade requests seen, refused or not. */
  upgrades = 0;
  /** Upgrades to any other path (the relay), refused with 404. */
  relayUpgrades = 0;
  /** Called when an agent connects; send its netmap here. `req`: its upgrade request (headers). */
  onConnect: (ws: WebSocket, req: IncomingMessage) => void = () => {};
  received: AgentMessage[] = [];
  connections = 0;
  sockets = new Set<WebSocket>();
  private server: Server;
  private wss = new WebSocketServer({ noServer: true });

  /** `tls`: serve https/wss with this certificate and key (PEM), at https://127.0.0.1:PORT. */
  constructor(private readonly tls?: { cert: Buffer; key: Buffer }) {
    const handler = (req: IncomingMessage, res: import('node:http').ServerResponse) => {
      void this.handle(req).then(({ status, body }) => {
        res.writeHead(status, { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json' });
        res.end(JSON.stringify(body));
      });
    };
    this.server = tls ? (createHttpsServer({ cert: tls.cert, key: tls.key }, handler) as unknown as Server) : createServer(handler);
    this.server.on('upgrade', (req, socket, head) => {
      // Node's http server drops its socket error listener on an upgrade: a client that resets while
      // this fake authorises (or after its refusal) would otherwise be an uncaught ECONNRESET.
      socket.on('error', () => {});
      // The daemon also dials the relay (`/api/v1/relay`); this fake is a control server without one.
      if (!req.url?.startsWith('/agent/v1')) {
        this.relayUpgrades++;
        socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
        return;
      }
      void this.authorise(req).then((ok) => {
        this.upgrades++;
        if (!ok) {
          socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n');
          return;
        }
        const refusal = this.onUpgrade();
        if (refusal) {
          const body = JSON.stringify(refusal.body);
          socket.end(`HTTP/1.1 ${refusal.status} Refused\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
          return;
        }
        this.wss.handleUpgrade(req, socket, head, (ws) => {
          this.connections++;
          this.sockets.add(ws);
          ws.on('close', () => this.sockets.delete(ws));
          ws.on('message', (data) => this.received.push(JSON.parse(data.toString()) as AgentMessage));
          this.onConnect(ws, req);
        });
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    const port = (this.server.address() as AddressInfo).port;
    this.url = this.tls ? `https://127.0.0.1:${port}` : `http://127.0.0.1:${port}`;
  }

  async stop(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** https only: serve another certificate to new connections (tls.Server.setSecureContext). */
  setCertificate(leaf: { cert: Buffer; key: Buffer }): void {
    (this.server as unknown as import('node:tls').Server).setSecureContext({ cert: leaf.cert, key: leaf.key });
  }

  send(msg: ServerMessage): void {
    for (const ws of this.sockets) ws.send(JSON.stringify(msg));
  }

  closeAll(code: number): void {
    for (const ws of this.sockets) ws.close(code, 'test');
  }

  private async authorise(req: IncomingMessage): Promise<boolean> {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token) return false;
    try {
      await verifyMachineToken(token);
      return true;
    } catch {
      return false;
    }
  }

  private async handle(req: IncomingMessage): Promise<RegisterReply> {
    if (req.method === 'POST' && req.url === '/agent/v1/logout') {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
      const proven = await verifyMachineToken(token).catch(() => null);
      if (!proven) return { status: 401, body: problem(401, 'unauthorized') };
      this.logouts.push(proven.machineKey);
      return this.onLogout(proven.machineKey);
    }
    if (req.method !== 'POST' || req.url !== '/agent/v1/register') return { status: 404, body: {} };
    if (!(await this.authorise(req))) return { status: 401, body: problem(401, 'unauthorized') };
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString()) as RegisterRequest;
    this.registers.push(body);
    return this.onRegister(body, this.registers.length);
  }
}

export function problem(status: number, code: string, retryable = false) {
  return { type: `https://weft.dev/problems/${code}`, title: code, status, code, detail: `detail for ${code}`, retryable };
}

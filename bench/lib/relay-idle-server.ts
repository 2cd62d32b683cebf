/**
 * The relay process of `npm run bench:relay-idle` (forked, with --expose-gc): @weft/relay's
 * RelayServer behind a `ws` WebSocket server with weft-server's socket options, and the relay
 * over UDP attached (so each client also holds its UDP ticket), as a relay region runs it.
 * Clients are accepted without a machine token (the benchmark measures what the relay holds per
 * connected client, not the authentication on the way in). Answers 'measure' with its memory
 * after a full GC.
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
import { MAX_FRAME_BYTES, RelayServer } from '@weft/relay';

const relay = new RelayServer({ mayRelay: () => true });
const udp = createSocket('udp4');
await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
relay.attachUdp({ port: udp.address().port, send: (m, p, a) => udp.send(m, p, a) });
const http = createServer();
const wss = new WebSocketServer({ server: http, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false, clientTracking: false });
let nextId = 1;
wss.on('connection', (ws, req) => relay.accept(ws, nextId++, randomBytes(32), req.socket));
await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));

function rssKiB(): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
}

process.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'measure') {
    for (let i = 0; i < 3; i++) (globalThis as { gc?: () => void }).gc?.();
    const mem = process.memoryUsage();
    process.send!({ clients: relay.clientCount, rssKiB: rssKiB(), heapUsedKiB: Math.round(mem.heapUsed / 1024), externalKiB: Math.round((mem.external + mem.arrayBuffers) / 1024) });
  } else if (m.cmd === 'exit') process.exit(0);
});
process.send!({ port: (http.address() as { port: number }).port });

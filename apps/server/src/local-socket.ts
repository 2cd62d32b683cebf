/**
 * The admin unix socket: `<data-dir>/weft-server.sock`, mode 0600, so only the server's owner can
 * use it. Requests on it reach the same routes as TCP, marked as local-administrator requests.
 */
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { LOCAL_SOCKET } from './api/auth.js';

export const ADMIN_SOCKET_NAME = 'weft-server.sock';

export const adminSocketPath = (dataDir: string) => join(dataDir, ADMIN_SOCKET_NAME);

export async function listenAdminSocket(app: FastifyInstance, dataDir: string): Promise<Server> {
  const path = adminSocketPath(dataDir);
  if (existsSync(path)) unlinkSync(path); // left by a crashed run
  const server = createServer((req, res) => {
    (req as unknown as Record<symbol, boolean>)[LOCAL_SOCKET] = true;
    app.routing(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    // Create it owner-only from the start, not chmod after a window; the umask is put back either way.
    const old = process.umask(0o177);
    const failed = (err: Error) => {
      process.umask(old);
      reject(err);
    };
    server.once('error', failed);
    server.listen(path, () => {
      server.off('error', failed);
      process.umask(old);
      resolve();
    });
  });
  chmodSync(path, 0o600);
  return server;
}

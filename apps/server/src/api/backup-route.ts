/**
 * `GET /api/v1/backup` (admin): a consistent snapshot of the whole database while the server runs,
 * streamed as JSON lines (packages/db snapshot.ts; `weft-server backup FILE` writes it to a file,
 * `weft-server restore FILE` loads it into a fresh database). Audited before the first byte.
 * A snapshot that fails midway is cut off without its end marker, so it can never be restored
 * as if it were whole. It holds hashes of keys, never a key itself.
 */
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { type Database, writeSnapshot } from '@weft/db';
import type { AbuseLimits } from '../rate-limit.js';
import type { State } from '../state/index.js';
import { authenticate } from './auth.js';

export function backupRoute(app: FastifyInstance, state: State, limits: AbuseLimits, db: Database): void {
  app.get('/api/v1/backup', {
    schema: { tags: ['backup'], security: [{ bearer: [] }], summary: 'A consistent snapshot of the database, as JSON lines (weft-server backup)' },
  }, async (req, reply) => {
    const principal = await authenticate(req, state, limits, 'admin');
    await state.audit.record(principal.actor, 'database.backup', null, { backend: db.backend });
    const out = new PassThrough();
    const write = (line: string) => new Promise<void>((resolve, reject) => {
      if (out.destroyed) return reject(new Error('the client went away'));
      if (out.write(line)) resolve();
      else out.once('drain', resolve);
    });
    writeSnapshot(db.prisma, db.backend, write).then(
      () => out.end(),
      (err: unknown) => {
        req.log.error({ err }, 'backup failed midway; the client gets a snapshot without its end marker');
        out.destroy(err as Error);
      },
    );
    return reply.type('application/x-ndjson').header('cache-control', 'no-store').send(out);
  });
}

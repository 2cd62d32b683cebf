/** `GET /api/v1/status`: fleet facts of this replica, behind an API key (`/readyz` tells no one). */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { Problem, ReplicaStatus } from '@weft/protocol';
import type { Mapper } from '../mapper/mapper.js';
import type { AbuseLimits } from '../rate-limit.js';
import type { State } from '../state/index.js';
import { authenticate } from './auth.js';

export function statusRoute(app: FastifyInstance, state: State, limits: AbuseLimits, mapper: Mapper): void {
  app.withTypeProvider<ZodTypeProvider>().get('/api/v1/status', {
    schema: { tags: ['status'], security: [{ bearer: [] }], summary: 'What this replica sees of the fleet', response: { 200: ReplicaStatus, '4xx': Problem, '5xx': Problem } },
  }, async (req) => {
    await authenticate(req, state, limits, 'read');
    return { connectedNodes: mapper.connectedCount };
  });
}

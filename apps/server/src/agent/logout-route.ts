/** `POST /agent/v1/logout`: a device deregisters itself (`weft logout`); peers drop it at once. */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { LogoutResponse, Problem } from '@weft/protocol';
import { ApiError, Errors } from '../errors.js';
import type { State } from '../state/index.js';
import { machineKeyFrom } from './register-route.js';

export function logoutRoute(app: FastifyInstance, state: State): void {
  app.withTypeProvider<ZodTypeProvider>().post('/agent/v1/logout', {
    schema: {
      tags: ['agent'],
      summary: 'Deregister the calling device (proved by its machine token)',
      response: { 200: LogoutResponse, '4xx': Problem },
    },
    handler: async (req) => {
      const machineKey = await machineKeyFrom(req.headers.authorization);
      const node = await state.nodes.byMachineKey(machineKey);
      if (!node) throw new ApiError(Errors.nodeNotFound, 'this machine is not registered');
      await state.nodes.delete({ type: 'node', id: String(node.id), name: node.name, origin: 'agent', ip: req.ip }, node.id);
      return { deleted: node.id };
    },
  });
}

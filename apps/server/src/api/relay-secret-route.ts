/**
 * `POST /api/v1/relay/secret`: the deployment's relay mesh secret for `weft-server relay-secret`,
 * which writes it to a file for a standalone `weft-relay --mesh-secret-file`. Made if the
 * deployment has none yet, exactly as a starting server would; audited (never the secret itself).
 * Only through the admin socket: the secret lets its holder act as a relay of the deployment, so
 * no API key, however scoped, gets it over the network.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError, Errors } from '../errors.js';
import type { AbuseLimits } from '../rate-limit.js';
import type { State } from '../state/index.js';
import { authenticate } from './auth.js';

export function relaySecretRoute(app: FastifyInstance, state: State, limits: AbuseLimits): void {
  app.post('/api/v1/relay/secret', {
    schema: { tags: ['relay'], summary: "The relay mesh secret, for a standalone weft-relay (admin socket only; weft-server relay-secret)" },
  }, async (req, reply) => {
    const principal = await authenticate(req, state, limits, 'admin');
    if (principal.actor.type !== 'local-socket') {
      throw new ApiError(Errors.forbidden, 'the relay mesh secret is handed out only on the server host, through the admin socket: run weft-server relay-secret --out FILE --data-dir DIR there');
    }
    const secret = await state.exportRelayMeshSecret(principal.actor);
    return reply.header('cache-control', 'no-store').send({ secret: secret.toString('base64') });
  });
}

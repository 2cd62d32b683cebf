/**
 * `POST /agent/v1/register`: a device proves its machine key and joins or comes back. Anonymous
 * callers are bounded per source address: new interactive logins, and auth keys that match nothing.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { MachineTokenError, verifyMachineToken, type MachinePublicKey } from '@weft/crypto';
import { Problem, RegisterRequest, RegisterResponse } from '@weft/protocol';
import { ApiError, Errors } from '../errors.js';
import type { AbuseLimits } from '../rate-limit.js';
import type { State } from '../state/index.js';

export async function machineKeyFrom(authorization: string | undefined): Promise<MachinePublicKey> {
  const token = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
  if (!token) throw new ApiError(Errors.machineUnauthorized, 'send Authorization: Bearer <machine token>');
  try {
    return (await verifyMachineToken(token)).machineKey;
  } catch (err) {
    if (err instanceof MachineTokenError) throw new ApiError(Errors.machineUnauthorized, err.message, { cause: err });
    throw err;
  }
}

export function registerRoute(app: FastifyInstance, state: State, limits: AbuseLimits): void {
  app.withTypeProvider<ZodTypeProvider>().post('/agent/v1/register', {
    schema: {
      tags: ['agent'],
      summary: 'Register a device (auth key or interactive login)',
      body: RegisterRequest,
      response: { 200: RegisterResponse, '4xx': Problem },
    },
    handler: async (req) => {
      const machineKey = await machineKeyFrom(req.headers.authorization);
      if (req.body.authKey) limits.checkCredentials(req.ip);
      try {
        return await state.nodes.register(machineKey, req.body, () => limits.admitLogin(req.ip), { ip: req.ip });
      } catch (err) {
        // Only a key that matches nothing is a guess; expired, used or revoked keys were real.
        if (err instanceof ApiError && err.def === Errors.authKeyInvalid) limits.credentialFailed(req.ip);
        throw err;
      }
    },
  });
}

/**
 * Machine tokens: short-lived EdDSA JWTs an agent signs with its machine key to prove possession
 * on every request (registration and each WebSocket connect). The server verifies the signature
 * with the key named in `sub`, then checks that key against the node it claims to be.
 */
import { SignJWT, importJWK, jwtVerify } from 'jose';
import { MACHINE_TOKEN_AUDIENCE, MACHINE_TOKEN_MAX_AGE_S, MachineTokenClaims, PROTOCOL_VERSION } from '@weft/protocol';
import { machinePrivateJwk, machinePublicJwk } from './jwk.js';
import { machinePublicKeyOf, parseMachinePublicKey, type MachinePrivateKey, type MachinePublicKey } from './keys.js';

export async function signMachineToken(privateKey: MachinePrivateKey, lifetimeS = 60): Promise<string> {
  const key = await importJWK(machinePrivateJwk(privateKey), 'EdDSA');
  return new SignJWT({ pv: PROTOCOL_VERSION })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
    .setSubject(machinePublicKeyOf(privateKey))
    .setAudience(MACHINE_TOKEN_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(`${lifetimeS}s`)
    .sign(key);
}

export class MachineTokenError extends Error {}

/** Verifies a machine token; returns the proven machine key and the agent's protocol version. */
export async function verifyMachineToken(token: string): Promise<{ machineKey: MachinePublicKey; protocolVersion: number }> {
  const parts = token.split('.');
  if (parts.length !== 3 || token.length > 2048) throw new MachineTokenError('machine token is not a JWT');
  let sub: MachinePublicKey;
  try {
    const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { sub?: unknown };
    sub = parseMachinePublicKey(String(payload.sub));
  } catch {
    throw new MachineTokenError('machine token has no valid machine key in "sub"');
  }
  try {
    const key = await importJWK(machinePublicJwk(sub), 'EdDSA');
    const { payload } = await jwtVerify(token, key, { algorithms: ['EdDSA'], audience: MACHINE_TOKEN_AUDIENCE, requiredClaims: ['iat', 'exp', 'sub'] });
    const claims = MachineTokenClaims.parse(payload);
    if (claims.exp - claims.iat > MACHINE_TOKEN_MAX_AGE_S) throw new MachineTokenError('machine token lives too long');
    return { machineKey: sub, protocolVersion: claims.pv };
  } catch (err) {
    if (err instanceof MachineTokenError) throw err;
    throw new MachineTokenError(`machine token rejected: ${(err as Error).message}`, { cause: err });
  }
}

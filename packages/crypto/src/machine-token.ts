/**
 * Machine tokens: short-lived EdDSA JWTs an agent signs with its machine key to prove possession
 * on every request (registration and each WebSocket connect). The server verifies the signature
 * with the key named in `sub`, then checks that key against the node it claims to be.
 */
import { SignJWT, compactVerify, importJWK } from 'jose';
import {
  MACHINE_TOKEN_AUDIENCE, MACHINE_TOKEN_CLOCK_SKEW_S, MACHINE_TOKEN_MAX_AGE_S, MachineTokenClaims, PROTOCOL_VERSION,
} from '@weft/protocol';
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

/** Why a machine token was refused, in one line safe to show the caller. */
export class MachineTokenError extends Error {}

/**
 * Verifies a machine token; returns the proven machine key and the agent's protocol version.
 * `nowS` (seconds since the epoch) is the server's clock; tests pass their own.
 */
export async function verifyMachineToken(token: string, nowS = Math.floor(Date.now() / 1000)): Promise<{ machineKey: MachinePublicKey; protocolVersion: number }> {
  const parts = token.split('.');
  if (parts.length !== 3 || token.length > 2048) throw new MachineTokenError('machine token is not a JWT');
  let sub: MachinePublicKey;
  try {
    const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { sub?: unknown };
    sub = parseMachinePublicKey(String(payload.sub));
  } catch {
    throw new MachineTokenError('machine token has no valid machine key in "sub"');
  }
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(token, await importJWK(machinePublicJwk(sub), 'EdDSA'), { algorithms: ['EdDSA'] }));
  } catch (err) {
    throw new MachineTokenError('machine token signature does not verify with the key in "sub"', { cause: err });
  }
  const claims = checkClaims(JSON.parse(Buffer.from(payload).toString('utf8')), nowS);
  return { machineKey: sub, protocolVersion: claims.pv };
}

/** The claim checks, each failure a one-line reason (never a schema dump). */
function checkClaims(raw: unknown, nowS: number): MachineTokenClaims {
  const parsed = MachineTokenClaims.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const claim = issue.path.length ? `"${issue.path.join('.')}"` : 'the payload';
    throw new MachineTokenError(`machine token claim ${claim} is missing or malformed (${issue.message.split('\n')[0]})`);
  }
  const c = parsed.data;
  const skew = MACHINE_TOKEN_CLOCK_SKEW_S;
  if (c.aud !== MACHINE_TOKEN_AUDIENCE) throw new MachineTokenError(`machine token audience must be "${MACHINE_TOKEN_AUDIENCE}"`);
  if (c.iat > nowS + skew) {
    throw new MachineTokenError(`machine token issued ${c.iat - nowS} s in the future (allowed clock skew ${skew} s); check this device's clock`);
  }
  if (c.exp < c.iat) throw new MachineTokenError('machine token expires (exp) before it was issued (iat)');
  if (c.exp - c.iat > MACHINE_TOKEN_MAX_AGE_S) throw new MachineTokenError(`machine token lives ${c.exp - c.iat} s; at most ${MACHINE_TOKEN_MAX_AGE_S} s is accepted`);
  if (c.nbf !== undefined) {
    if (c.nbf < c.iat || c.nbf > c.exp) throw new MachineTokenError('machine token "nbf" must lie between "iat" and "exp"');
    if (c.nbf > nowS + skew) throw new MachineTokenError(`machine token not valid for another ${c.nbf - nowS} s (nbf; allowed clock skew ${skew} s)`);
  }
  if (c.exp + skew < nowS) {
    throw new MachineTokenError(`machine token expired ${nowS - c.exp} s ago (allowed clock skew ${skew} s); check this device's clock`);
  }
  return c;
}

/**
 * Machine tokens: short-lived EdDSA JWTs an agent signs with its machine key to prove possession
 * on every request (registration and each WebSocket connect). The server verifies the signature
 * with the key named in `sub`, then checks that key against the node it claims to be.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { SignJWT, importJWK } from 'jose';
import {
  MACHINE_TOKEN_AUDIENCE, MACHINE_TOKEN_CLOCK_SKEW_S, MACHINE_TOKEN_MAX_AGE_S, MachineTokenClaims, PROTOCOL_VERSION,
} from '@weft/protocol';
import { machinePrivateJwk } from './jwk.js';
import { keyBytes, machinePublicKeyOf, parseMachinePublicKey, type MachinePrivateKey, type MachinePublicKey } from './keys.js';

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
  const [header, body, signature] = parts as [string, string, string];
  let sub: MachinePublicKey;
  let payload: { sub?: unknown };
  try {
    payload = JSON.parse(base64urlText(body)) as { sub?: unknown };
    sub = parseMachinePublicKey(String(payload.sub));
  } catch {
    throw new MachineTokenError('machine token has no valid machine key in "sub"');
  }
  try {
    checkHeader(header);
    if (!verify(null, Buffer.from(`${header}.${body}`), ed25519Key(sub), base64urlBytes(signature))) throw new Error('signature mismatch');
  } catch (err) {
    throw new MachineTokenError('machine token signature does not verify with the key in "sub"', { cause: err });
  }
  const claims = checkClaims(payload, nowS);
  return { machineKey: sub, protocolVersion: claims.pv };
}

/**
 * The JWS checks jose's compactVerify made, done here because its key import (a JWK turned into a
 * CryptoKey on every call) was most of a connect's verify cost, and a reconnect storm after a
 * restart has no cache to hide it: the protected header is a JSON object naming EdDSA, with no
 * critical extension (this server understands none, so an unencoded payload is refused too).
 */
function checkHeader(encoded: string): void {
  const h = JSON.parse(base64urlText(encoded)) as unknown;
  if (typeof h !== 'object' || h === null || Array.isArray(h)) throw new Error('protected header is not a JSON object');
  const { alg, crit, b64 } = h as Record<string, unknown>;
  if (alg !== 'EdDSA') throw new Error('"alg" must be EdDSA');
  if (crit !== undefined || b64 !== undefined) throw new Error('"crit" and "b64" are not supported');
}

/** An Ed25519 SubjectPublicKeyInfo (RFC 8410) is this fixed DER prefix followed by the 32 key bytes. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function ed25519Key(key: MachinePublicKey): KeyObject {
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, keyBytes(key)]), format: 'der', type: 'spki' });
}

/** Strict base64url (no padding, no other characters): Buffer's decoder would skip what it does not know. */
function base64urlBytes(part: string): Buffer {
  if (!/^[A-Za-z0-9_-]*$/.test(part)) throw new Error('not base64url');
  return Buffer.from(part, 'base64url');
}

const base64urlText = (part: string) => base64urlBytes(part).toString('utf8');

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

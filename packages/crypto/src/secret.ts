/**
 * High-entropy secrets (auth keys, API keys): "weft-<kind>-<prefix>-<secret>". The prefix is
 * visible and used for lookup; only the SHA-256 of the whole key is stored. A fast hash is right
 * here: the secret has 192 bits of entropy, so there is nothing to brute-force.
 */
import { createHash, randomBytes } from 'node:crypto';

export type SecretKind = 'auth' | 'api';

export interface Secret { key: string; prefix: string; hash: string }

export function generateSecret(kind: SecretKind): Secret {
  const prefix = `weft-${kind}-${randomBytes(6).toString('hex')}`;
  const key = `${prefix}-${randomBytes(24).toString('base64url')}`;
  return { key, prefix, hash: hashSecret(key) };
}

export function hashSecret(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** The lookup prefix of a presented key, or null if it is not shaped like one of `kind`. */
export function secretPrefix(kind: SecretKind, key: string): string | null {
  const m = new RegExp(`^(weft-${kind}-[0-9a-f]{12})-[A-Za-z0-9_-]{32}$`).exec(key);
  return m ? m[1]! : null;
}

/** Ed25519 machine keys as JWKs, for signing and verifying machine tokens with jose. */
import { base64url } from './base64url.js';
import { keyBytes, machinePublicKeyOf, type MachinePrivateKey, type MachinePublicKey } from './keys.js';

export interface OkpJwk { kty: 'OKP'; crv: 'Ed25519'; x: string; d?: string }

export function machinePublicJwk(key: MachinePublicKey): OkpJwk {
  return { kty: 'OKP', crv: 'Ed25519', x: base64url(keyBytes(key)) };
}

export function machinePrivateJwk(key: MachinePrivateKey): OkpJwk {
  return { ...machinePublicJwk(machinePublicKeyOf(key)), d: base64url(keyBytes(key)) };
}

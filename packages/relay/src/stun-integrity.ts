/**
 * MESSAGE-INTEGRITY (RFC 8489 §14.5): HMAC-SHA1 over the message up to the attribute, with the
 * header's length field rewritten to end just after MESSAGE-INTEGRITY (so attributes after it,
 * such as FINGERPRINT, are not covered). Short-term credentials (§9.1) key it with the password's
 * bytes; this codec leaves OpaqueString preparation (RFC 8265) to the caller.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ATTRIBUTE_HEADER_LENGTH, HEADER_LENGTH, MESSAGE_INTEGRITY_LENGTH } from './stun-constants.js';
import type { StunMessage } from './stun-message.js';

/** HMAC-SHA1 over `prefix` (the message before MESSAGE-INTEGRITY, length field already rewritten). */
export function messageIntegrity(prefix: Buffer, key: Buffer): Buffer {
  return createHmac('sha1', key).update(prefix).digest();
}

/** The short-term credential key (RFC 8489 §9.1.1) for a password that needs no preparation. */
export function shortTermKey(password: string): Buffer {
  return Buffer.from(password, 'utf8');
}

/** True when the message carries MESSAGE-INTEGRITY and it checks under `key`. */
export function checkMessageIntegrity(message: StunMessage, key: Buffer): boolean {
  const attr = message.attributes[message.integrityIndex];
  if (!attr) return false;
  const prefix = Buffer.from(message.raw.subarray(0, attr.offset));
  prefix.writeUInt16BE(attr.offset + ATTRIBUTE_HEADER_LENGTH + MESSAGE_INTEGRITY_LENGTH - HEADER_LENGTH, 2);
  const want = messageIntegrity(prefix, key);
  return attr.value.length === want.length && timingSafeEqual(attr.value, want);
}

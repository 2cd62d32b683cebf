/**
 * Passwords of local accounts, hashed with scrypt (RFC 7914, Node's built-in). A password is
 * low-entropy, unlike an API key, so the hash must be slow: N = 2^15, r = 8, p = 1 costs 32 MiB
 * and tens of milliseconds per guess (twice the work of the scrypt paper's interactive-login
 * parameters; higher N would make every sign-in a memory spike on a small VM). A 16-byte random salt
 * per password, a 32-byte key. Stored as one string with its parameters, so they can be raised
 * later and old hashes still verify:
 *
 *   $scrypt$ln=15,r=8,p=1$<salt, base64 without padding>$<key, base64 without padding>
 *
 * Verification compares the keys in constant time.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export const SCRYPT_LOG2_N = 15;
export const SCRYPT_R = 8;
export const SCRYPT_P = 1;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
/** Passwords longer than this are refused (scrypt hashes any length; this bounds the work a request asks for). */
export const PASSWORD_MAX_LENGTH = 1024;
export const PASSWORD_MIN_LENGTH = 12;

function derive(password: string, salt: Buffer, ln: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** ln;
  // 128·N·r·p bytes are needed; Node's default maxmem (32 MiB) is exactly that at these parameters, so leave room.
  const opts: ScryptOptions = { N, r, p, maxmem: 256 * N * r * p };
  return new Promise((resolve, reject) => scrypt(password.normalize('NFC'), salt, KEY_BYTES, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P);
  return `$scrypt$ln=${SCRYPT_LOG2_N},r=${SCRYPT_R},p=${SCRYPT_P}$${b64(salt)}$${b64(key)}`;
}

const STORED = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

/** True when `password` matches `stored`. A stored string that is not a hash of ours never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = STORED.exec(stored);
  if (!m) return false;
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (ln < 10 || ln > 20 || r < 1 || p < 1) return false;
  const expected = Buffer.from(m[5]!, 'base64');
  const key = await derive(password, Buffer.from(m[4]!, 'base64'), ln, r, p);
  return expected.length === key.length && timingSafeEqual(expected, key);
}

/**
 * A hash of nothing anyone knows, to verify against when the account does not exist: a sign-in
 * for an unknown name costs the same scrypt as a wrong password, so timing does not tell which.
 */
export const UNMATCHABLE_PASSWORD_HASH = `$scrypt$ln=${SCRYPT_LOG2_N},r=${SCRYPT_R},p=${SCRYPT_P}$${'A'.repeat(22)}$${'A'.repeat(43)}`;

import { describe, expect, it } from 'vitest';
import { hashPassword, UNMATCHABLE_PASSWORD_HASH, verifyPassword } from '../src/password.js';

describe('passwords', () => {
  it('are stored as salted scrypt with their parameters, never as the password', async () => {
    const a = await hashPassword('correct horse battery');
    const b = await hashPassword('correct horse battery');
    expect(a).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(a).not.toContain('correct');
    expect(a).not.toBe(b); // fresh salt each time
  });

  it('verify only the same password', async () => {
    const h = await hashPassword('correct horse battery');
    expect(await verifyPassword('correct horse battery', h)).toBe(true);
    expect(await verifyPassword('correct horse batterY', h)).toBe(false);
    expect(await verifyPassword('', h)).toBe(false);
  });

  it('never match a malformed stored value or the placeholder for unknown accounts', async () => {
    expect(await verifyPassword('x', 'plaintext')).toBe(false);
    expect(await verifyPassword('x', '$scrypt$ln=40,r=8,p=1$AAAA$AAAA')).toBe(false);
    expect(await verifyPassword('', UNMATCHABLE_PASSWORD_HASH)).toBe(false);
  });
});
